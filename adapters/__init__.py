"""Translations between local formats and the shared schema.

Each inbound adapter is offered to the op7 command through the ``op7.adapters`` entry-point group (see
``broker.plugins``): ``op7 send --format NAME`` reads its file with the adapter registered as NAME. The package
itself is never imported by ``broker``.
"""
