"""The ``op7`` command, built on Click: one module per command group (see :mod:`broker.cli.app` for the root).

Exit codes: 0 success; 1 an op7 error (bad input, bad configuration, transport failure), with one line per
problem on standard error and no traceback; 2 a usage error; 130 interrupted.
"""

from __future__ import annotations

from broker.cli.app import main

__all__ = ["main"]
