from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.errors import PolicyError
from broker.models import KidnappingAlert
from broker.trust.replay import Freshness, ReplayGuard
from broker.wire.envelope import NodeIdentity, build
from tests.conftest import now


def test_freshness_window_and_clock_skew(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    policy = Freshness(max_age=timedelta(hours=1), max_skew=timedelta(minutes=2))
    fresh, _ = build(fr, alert, now=now - timedelta(minutes=59))
    policy.check(fresh, now)
    policy.check(build(fr, alert, now=now + timedelta(minutes=1))[0], now)
    with pytest.raises(PolicyError, match="older than the 1:00:00 freshness window") as info:
        policy.check(build(fr, alert, now=now - timedelta(minutes=61))[0], now)
    assert info.value.reason == "stale"
    with pytest.raises(PolicyError, match="in the future") as info:
        policy.check(build(fr, alert, now=now + timedelta(minutes=3))[0], now)
    assert info.value.reason == "from-the-future"


def test_handled_ids_survive_a_restart_and_can_be_pruned(
    tmp_path: Path, fr: NodeIdentity, alert: KidnappingAlert
) -> None:
    env, frame = build(fr, alert, now=now())
    digest = hashlib.sha256(frame).digest()
    guard = ReplayGuard(tmp_path / "replay.db")
    assert guard.digest_of(env.sender, env.message_id) is None
    guard.remember(env, digest, now())
    guard.close()
    again = ReplayGuard(tmp_path / "replay.db")
    assert again.digest_of(env.sender, env.message_id) == digest
    assert again.prune(env.created_at + timedelta(seconds=1)) == 1
    assert again.digest_of(env.sender, env.message_id) is None
