"""The operations centre's accounts: scrypt-hashed passwords, sessions by hashed token, lockout, roles."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError
from broker.ops.accounts import LOCK_AFTER, LOCK_FOR, SESSION_IDLE, Accounts, Role

GOOD = "correct horse battery"


@pytest.fixture
def accounts(tmp_path: Path, clock: ManualClock) -> Accounts:
    made = Accounts(tmp_path / "ops-accounts.db", clock)
    made.add("jdoe", GOOD, Role.OPERATOR)
    made.add("wall", GOOD + "!", Role.VIEWER)
    return made


def test_a_password_is_kept_only_as_its_scrypt_hash_and_a_session_only_as_its_token_hash(
    accounts: Accounts, tmp_path: Path
) -> None:
    token, session = accounts.login("jdoe", GOOD) or ("", None)
    assert session is not None and session.operator.role is Role.OPERATOR
    raw = (tmp_path / "ops-accounts.db").read_bytes() + (tmp_path / "ops-accounts.db-wal").read_bytes()
    assert GOOD.encode() not in raw and token.encode() not in raw
    assert accounts.session(token) == session
    assert accounts.session("forged") is None and accounts.session(None) is None


def test_a_wrong_password_or_an_unknown_name_opens_nothing(accounts: Accounts) -> None:
    assert accounts.login("jdoe", "wrong password!") is None
    assert accounts.login("nobody", GOOD) is None
    assert accounts.login("wall", GOOD + "!") is not None


def test_ten_failures_lock_the_account_for_five_minutes(accounts: Accounts, clock: ManualClock) -> None:
    for _ in range(LOCK_AFTER):
        assert accounts.login("jdoe", "wrong password!") is None
    assert accounts.login("jdoe", GOOD) is None  # locked, even with the right password
    clock.advance(LOCK_FOR + timedelta(seconds=1))
    assert accounts.login("jdoe", GOOD) is not None


def test_a_session_ends_when_idle_at_logout_and_when_the_password_changes(
    accounts: Accounts, clock: ManualClock
) -> None:
    token, _ = accounts.login("jdoe", GOOD) or ("", None)
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    assert accounts.session(token) is not None  # used: its idle time starts again
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    assert accounts.session(token) is not None
    clock.advance(SESSION_IDLE + timedelta(seconds=1))
    assert accounts.session(token) is None
    token, _ = accounts.login("jdoe", GOOD) or ("", None)
    accounts.set_password("jdoe", "another long password")
    assert accounts.session(token) is None
    token, _ = accounts.login("jdoe", "another long password") or ("", None)
    accounts.logout(token)
    assert accounts.session(token) is None


def test_names_and_passwords_are_checked_and_an_operator_is_added_once(accounts: Accounts) -> None:
    with pytest.raises(ConfigError, match="12 characters"):
        accounts.add("short", "too short", Role.OPERATOR)
    with pytest.raises(ConfigError, match="operator name"):
        accounts.add("Bad Name", GOOD, Role.OPERATOR)
    with pytest.raises(ConfigError, match="exists already"):
        accounts.add("jdoe", GOOD, Role.OPERATOR)
    accounts.remove("wall")
    assert [o.name for o in accounts.operators()] == ["jdoe"]
    with pytest.raises(ConfigError, match="no operator"):
        accounts.remove("wall")


def test_failures_tried_at_once_all_count_towards_the_lock(accounts: Accounts) -> None:
    with ThreadPoolExecutor(max_workers=LOCK_AFTER + 2) as pool:
        results = list(pool.map(lambda _: accounts.login("jdoe", "wrong password!"), range(LOCK_AFTER + 2)))
    assert results == [None] * (LOCK_AFTER + 2)
    assert accounts.login("jdoe", GOOD) is None  # locked: every concurrent failure counted


def test_an_event_stream_asks_whether_its_session_is_still_open_without_extending_it(
    accounts: Accounts, clock: ManualClock
) -> None:
    token, _ = accounts.login("jdoe", GOOD) or ("", None)
    assert accounts.still_open(token)
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    assert accounts.still_open(token)
    clock.advance(timedelta(minutes=2))
    assert not accounts.still_open(token)  # asking did not keep it alive
    token, _ = accounts.login("jdoe", GOOD) or ("", None)
    accounts.logout(token)
    assert not accounts.still_open(token) and not accounts.still_open(None)
