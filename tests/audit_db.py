"""Evidence stores for tests, on SQLite and on a real PostgreSQL server: a fresh empty store per test.

PostgreSQL is found at $OP7_TEST_POSTGRES (``scripts/postgres start`` starts one; ``scripts/postgres url`` prints
it). Each test gets a schema of its own in that database (pytest-xdist runs tests side by side), dropped after it.
Without a server the PostgreSQL tests skip on a developer machine and FAIL under CI=true.

A test module takes the fixtures by naming them at its top level::

    from tests import audit_db

    evidence_url = audit_db.evidence_url
    evidence_store = audit_db.evidence_store
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from broker.audit.store import EvidenceStore, open_store
from tests.conftest import under_ci

__all__ = ["evidence_store", "evidence_url", "fresh_store_url", "postgres_url", "store_urls", "tamper"]

POSTGRES_ENV = "OP7_TEST_POSTGRES"


def store_urls() -> list[Any]:
    """The backends, as pytest params: ``sqlite`` and ``postgresql``."""
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]


def postgres_url() -> str:
    """The test server's URL; the test skips without one (and fails under CI=true)."""
    url = os.environ.get(POSTGRES_ENV, "")
    reason = None
    if not url:
        reason = f"no PostgreSQL server: ${POSTGRES_ENV} is not set (scripts/postgres start; scripts/postgres url)"
    else:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            reason = f"PostgreSQL at ${POSTGRES_ENV} is not reachable: {exc}"
    if reason is not None:
        if under_ci():
            pytest.fail(reason + " -- under CI the PostgreSQL tests must run", pytrace=False)
        pytest.skip(reason)
    return url


@contextmanager
def fresh_store_url(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty store: a file in ``directory``, or a schema of its own on the test server (its
    ``search_path``), dropped at the end."""
    if backend == "sqlite":
        yield f"sqlite://{directory.resolve() / f'evidence-{uuid.uuid4().hex[:8]}.db'}"
        return
    base = postgres_url()
    schema = f"evidence_{uuid.uuid4().hex[:12]}"
    with closing(psycopg.connect(base, autocommit=True)) as db:
        # A store the test left open would hold its locks: the drop then fails rather than waits for ever.
        db.execute("SET lock_timeout = '30s'")
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in base else "?"
            yield f"{base}{separator}options={quote(f'-csearch_path={schema}', safe='')}"
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=store_urls())
def evidence_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store's URL, on each backend."""
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def evidence_store(evidence_url: str) -> Iterator[EvidenceStore]:
    """A fresh store, open, on each backend."""
    with open_store(evidence_url) as store:
        yield store


def tamper(store_url: str, sql: str, params: Sequence[Any] = ()) -> int:
    """Run ``sql`` (``?`` parameters) on the store's database behind its back, committed; the rows it changed."""
    if store_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(store_url.removeprefix("sqlite://"))) as lite, lite:
            return lite.execute(sql, params).rowcount
    with closing(psycopg.connect(store_url, autocommit=True)) as db:
        return db.execute(sql.replace("?", "%s"), params).rowcount
