"""The issuing authority of a node as the network directory lists it: what an adapter's local record does not say."""

from __future__ import annotations

from typing import Any

from broker.models.directory import NodeEntry
from broker.trust.directory import DirectoryTrust
from broker.wire.trust import Trust

__all__ = ["directory_entry", "issuer_setting"]


def directory_entry(trust: Trust, node_id: str) -> NodeEntry | None:
    """This node's entry in the network directory, when it follows one."""
    if isinstance(trust, DirectoryTrust) and trust.directory is not None:
        return next((n for n in trust.directory.nodes if n.node_id == node_id), None)
    return None


def issuer_setting(trust: Trust, node_id: str) -> dict[str, Any] | None:
    """An adapter's ``issuer`` setting for ``node_id``: its agency and 24/7 contact from the directory, or None."""
    entry = directory_entry(trust, node_id)
    if entry is None or entry.contact is None:
        return None
    contact = entry.contact
    issuer = {"node": node_id, "name": entry.agency, "desk": contact.desk, "phone": contact.phone}
    return issuer | ({"email": contact.email} if contact.email else {})
