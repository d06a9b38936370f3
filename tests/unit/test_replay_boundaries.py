"""The freshness window at its exact edges, and the replay store's scope, first digest and pruning edge
(docs/PROTOCOL.md section 12)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from broker.errors import ConfigError, PolicyError
from broker.models import Envelope, KidnappingAlert
from broker.trust.replay import Freshness, ReplayGuard
from broker.wire.envelope import NodeIdentity, build
from tests.conftest import now

TICK = timedelta(microseconds=1)


def envelope(fr: NodeIdentity, alert: KidnappingAlert, **changes: object) -> Envelope:
    env, _ = build(fr, alert, now=now())
    return env.model_copy(update=changes)


def test_the_default_window_is_seven_days_and_five_minutes() -> None:
    assert Freshness() == Freshness(max_age=timedelta(days=7), max_skew=timedelta(minutes=5))


def test_a_message_exactly_as_old_as_the_window_is_fresh(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    policy = Freshness(max_age=timedelta(hours=1), max_skew=timedelta(minutes=2))
    env = envelope(fr, alert)
    policy.check(env, env.created_at + timedelta(hours=1))
    with pytest.raises(PolicyError, match="older than the 1:00:00 freshness window") as info:
        policy.check(env, env.created_at + timedelta(hours=1) + TICK)
    assert info.value.reason == "stale"
    assert f"{env.created_at:%Y-%m-%dT%H:%M:%SZ}" in str(info.value)


def test_a_message_exactly_as_far_ahead_as_the_skew_is_fresh(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    policy = Freshness(max_age=timedelta(hours=1), max_skew=timedelta(minutes=2))
    env = envelope(fr, alert)
    policy.check(env, env.created_at - timedelta(minutes=2))
    policy.check(env, env.created_at)
    with pytest.raises(PolicyError, match="more than 0:02:00 in the future") as info:
        policy.check(env, env.created_at - timedelta(minutes=2) - TICK)
    assert info.value.reason == "from-the-future"


def test_ids_are_scoped_by_sender_and_the_first_digest_stays(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    guard = ReplayGuard()
    assert guard.path is None
    env = envelope(fr, alert)
    guard.remember(env, b"\x01" * 32, now())
    assert guard.digest_of("FR.GN", env.message_id) == b"\x01" * 32
    assert guard.digest_of("ES.PN", env.message_id) is None  # another sender may use the same id
    other = envelope(fr, alert, message_id=env.message_id[:-1] + ("0" if env.message_id[-1] != "0" else "1"))
    assert guard.digest_of("FR.GN", other.message_id) is None
    guard.remember(env, b"\x02" * 32, now())  # other bytes under a handled id never replace the first
    assert guard.digest_of("FR.GN", env.message_id) == b"\x01" * 32
    guard.remember(env.model_copy(update={"sender": "ES.PN"}), b"\x03" * 32, now())
    assert guard.digest_of("ES.PN", env.message_id) == b"\x03" * 32
    guard.close()


def test_pruning_forgets_exactly_what_was_created_before(
    tmp_path: Path, fr: NodeIdentity, alert: KidnappingAlert
) -> None:
    guard = ReplayGuard(tmp_path / "replay.db")
    env = envelope(fr, alert)
    guard.remember(env, b"\x01" * 32, now() + timedelta(seconds=5))
    assert guard.prune(env.created_at) == 0  # created at the cut: kept
    assert guard.digest_of("FR.GN", env.message_id) == b"\x01" * 32
    assert guard.prune(env.created_at + TICK) == 1
    assert guard.digest_of("FR.GN", env.message_id) is None
    assert guard.prune(env.created_at + timedelta(days=1)) == 0


def test_times_are_kept_in_microseconds(tmp_path: Path, fr: NodeIdentity, alert: KidnappingAlert) -> None:
    """What the store holds of a frame: sender, id, digest, when it was created and when it was handled (µs)."""
    guard = ReplayGuard(tmp_path / "replay.db")
    env = envelope(fr, alert)
    handled = env.created_at + timedelta(seconds=3, microseconds=7)
    guard.remember(env, b"\x01" * 32, handled)
    assert guard.unflushed == 1 and guard._db.execute("SELECT COUNT(*) FROM handled").fetchone() == (0,)
    guard.flush()  # remembered in memory, written once per batch
    row = guard._db.execute("SELECT sender, message_id, sha256, created_at, handled_at FROM handled").fetchone()
    assert row == (
        "FR.GN",
        env.message_id,
        b"\x01" * 32,
        int(env.created_at.timestamp() * 1e6),
        int(handled.timestamp() * 1e6),
    )
    assert row[4] - row[3] == 3_000_007


def test_a_store_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    (tmp_path / "replay.db").mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError, match=r"^replay store .*replay\.db: ") as info:
        ReplayGuard(tmp_path / "replay.db")
    assert "Traceback" not in str(info.value)
