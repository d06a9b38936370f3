"""The operations centre's operators: local accounts with scrypt-hashed passwords, roles, and login sessions.

Kept in ``$OP7_HOME/ops-accounts.db`` (one file per operations centre, whatever network it watches). A password is
stored as its scrypt hash (n=2**15, r=8, p=1, a 16-byte salt per password); a session as the SHA-256 of its token,
so that a copy of the file opens no session. Ten failed logins in a row lock an account for five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from broker._sqlite import immediate, open_database
from broker.clock import Clock
from broker.errors import ConfigError

__all__ = ["Accounts", "Operator", "Role", "Session"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 BLOB PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, expires_at INTEGER NOT NULL);
"""
_NAME = re.compile(r"[a-z][a-z0-9._-]{1,31}")
_SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
#: Failed logins in a row that lock an account, and for how long.
LOCK_AFTER, LOCK_FOR = 10, timedelta(minutes=5)
#: How long a session lasts without use.
SESSION_IDLE = timedelta(hours=12)
MIN_PASSWORD = 12


class Role(StrEnum):
    OPERATOR = "operator"  # sees everything, acknowledges
    VIEWER = "viewer"  # sees everything, acknowledges nothing


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role


@dataclass(frozen=True)
class Session:
    operator: Operator
    csrf: str


def _us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


class Accounts:
    """Operators and their sessions, in one SQLite file."""

    def __init__(self, path: Path | None, clock: Clock) -> None:
        self.clock = clock
        # Logins hash in a worker thread (scrypt takes a tenth of a second): one thread at a time uses the file.
        self._db: sqlite3.Connection = open_database(path, _SCHEMA, "operator accounts", any_thread=True)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    # --- operators ------------------------------------------------------------------------------------------

    def add(self, name: str, password: str, role: Role) -> Operator:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"operator name {name!r}: 2 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter")
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"operator {name}: a password of {MIN_PASSWORD} characters at least")
        salt = secrets.token_bytes(16)
        with immediate(self._db) as db:
            if db.execute("SELECT 1 FROM operators WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"operator {name} exists already (op7 ops user passwd to change the password)")
            db.execute(
                "INSERT INTO operators (name, role, salt, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, role.value, salt, _hash(password, salt), _us(self.clock.now())),
            )
        return Operator(name, role)

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"operator {name}: a password of {MIN_PASSWORD} characters at least")
        salt = secrets.token_bytes(16)
        with immediate(self._db) as db:
            changed = db.execute(
                "UPDATE operators SET salt = ?, hash = ?, failures = 0, locked_until = 0 WHERE name = ?",
                (salt, _hash(password, salt), name),
            ).rowcount
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password ends the old sessions
        if not changed:
            raise ConfigError(f"no operator {name}")

    def remove(self, name: str) -> None:
        with immediate(self._db) as db:
            if not db.execute("DELETE FROM operators WHERE name = ?", (name,)).rowcount:
                raise ConfigError(f"no operator {name}")
            db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    def operators(self) -> list[Operator]:
        rows = self._db.execute("SELECT name, role FROM operators ORDER BY name").fetchall()
        return [Operator(r[0], Role(r[1])) for r in rows]

    # --- logging in -----------------------------------------------------------------------------------------

    def login(self, name: str, password: str) -> tuple[str, Session] | None:
        """A new session's token and the session, or None (unknown name, wrong password, locked account: the
        caller says only that the login failed)."""
        now = self.clock.now()
        with self._lock:
            row = self._db.execute(
                "SELECT role, salt, hash, failures, locked_until FROM operators WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            _hash(password, b"0" * 16)  # the same work as for a real account: the answer's time tells nothing
            return None
        role, salt, stored, _, locked_until = row
        matches = hmac.compare_digest(_hash(password, salt), stored)  # hashed even when locked: the time tells nothing
        if locked_until > _us(now):
            return None
        if not matches:
            with self._lock, immediate(self._db) as db:
                # Counted in the database, not from what was read before the hash: concurrent tries all count.
                (failures,) = db.execute(
                    "UPDATE operators SET failures = failures + 1 WHERE name = ? RETURNING failures", (name,)
                ).fetchone()
                if failures >= LOCK_AFTER:
                    db.execute(
                        "UPDATE operators SET failures = 0, locked_until = ? WHERE name = ?",
                        (_us(now + LOCK_FOR), name),
                    )
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock, immediate(self._db) as db:
            db.execute("UPDATE operators SET failures = 0 WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (hashlib.sha256(token.encode()).digest(), name, csrf, _us(now + SESSION_IDLE)),
            )
        return token, Session(Operator(name, Role(role)), csrf)

    def session(self, token: str | None) -> Session | None:
        """The session of ``token`` if it is open; its idle time starts again."""
        if not token:
            return None
        now, key = self.clock.now(), hashlib.sha256(token.encode()).digest()
        with self._lock:
            return self._touch(key, now)

    def _touch(self, key: bytes, now: datetime) -> Session | None:
        row = self._db.execute(
            "SELECT s.name, s.csrf, s.expires_at, o.role FROM sessions s JOIN operators o ON o.name = s.name "
            "WHERE s.token_sha256 = ?",
            (key,),
        ).fetchone()
        if row is None or row[2] <= _us(now):
            return None
        with immediate(self._db) as db:
            db.execute("UPDATE sessions SET expires_at = ? WHERE token_sha256 = ?", (_us(now + SESSION_IDLE), key))
        return Session(Operator(row[0], Role(row[3])), row[1])

    def still_open(self, token: str | None) -> bool:
        """Whether ``token``'s session is open, without starting its idle time again (an event stream asks)."""
        if not token:
            return False
        key = hashlib.sha256(token.encode()).digest()
        with self._lock:
            row = self._db.execute("SELECT expires_at FROM sessions WHERE token_sha256 = ?", (key,)).fetchone()
        return row is not None and row[0] > _us(self.clock.now())

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock, immediate(self._db) as db:
                db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (hashlib.sha256(token.encode()).digest(),))
