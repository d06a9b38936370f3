"""Where ``op7 audit`` commands find the evidence log."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from broker.audit.store import EvidenceStore, open_store
from broker.cli._common import Env

__all__ = ["STORE_HELP", "opened", "store_url"]

STORE_HELP = "the evidence log: a SQLite file or a postgresql:// URL (default: OP7_AUDIT_STORE, else audit.db here)"


def store_url(env: Env, given: str | None) -> str:
    return given or env.settings.audit_store or str(env.home.state_dir() / "audit.db")


@contextlib.contextmanager
def opened(env: Env, given: str | None, *, create: bool = False) -> Iterator[EvidenceStore]:
    """The evidence log; only ``op7 audit run`` (``create``) makes a new one."""
    store = open_store(store_url(env, given), create=create)
    try:
        yield store
    finally:
        store.close()
