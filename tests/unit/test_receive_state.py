"""The receive state's tables stay bounded: held frames by sender, count and bytes; quarantine budgets per window."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from broker.node.receive_state import HeldFrames, QuarantineBook
from broker.transport.base import Record
from tests.conftest import now


def _record(offset: int, value: bytes) -> Record:
    return Record("op7.alerts", 0, offset, None, value, 0)


def _hold(held: HeldFrames, offset: int, sender: str, size: int = 10) -> list[int] | None:
    value = offset.to_bytes(4, "big") * (size // 4)
    pushed = held.hold(
        hashlib.sha256(value).digest(), sender, ("unknown-sender", "?"), _record(offset, value), now(), 1
    )
    if pushed is None:
        return None
    for h in pushed:  # as the subscription does once it quarantined them
        held.drop(hashlib.sha256(h.record.value).digest())
    return [h.record.offset for h in pushed]


def test_held_frames_are_capped_per_sender_in_all_and_in_bytes(tmp_path: Path) -> None:
    held = HeldFrames(tmp_path / "state.db", per_sender=2, total=3, total_bytes=1000)
    assert [_hold(held, i, "XX.A") for i in range(3)] == [[], [], [0]]  # the sender's oldest makes room
    assert _hold(held, 1, "XX.A") is None  # the same bytes are not held twice
    assert _hold(held, 3, "XX.B") == []
    assert _hold(held, 4, "XX.B") == [1]  # three in all: the oldest of any sender goes
    assert _hold(held, 5, "XX.C", size=990) == [2, 3]  # and at most 1,000 bytes of values
    assert [h.record.offset for h in held.frames()] == [4, 5]
    assert [h.record.offset for h in HeldFrames(tmp_path / "state.db").frames()] == [4, 5]  # across restarts


def test_a_quarantine_budget_opens_again_with_the_next_window(tmp_path: Path) -> None:
    book = QuarantineBook(tmp_path / "state.db", per_source=2)
    at = now()
    for i in range(3):
        keep = book.decide(bytes([i]) * 32, "sender FR.GN", at)
        assert keep is not None
        book.kept(bytes([i]) * 32, "sender FR.GN", keep, _record(i, b"x"), at)
        assert keep.omitted == (None if i < 2 else "over-budget")
    assert book.decide(b"\x09" * 32, "partition op7.alerts[0]", at) is not None  # another source's own budget
    later = at + timedelta(hours=1)
    assert book.decide(b"\x07" * 32, "sender FR.GN", later).omitted is None  # type: ignore[union-attr]
    book.prune(at + timedelta(days=9))
    assert book.decide(b"\x00" * 32, "sender FR.GN", later).omitted is None  # type: ignore[union-attr]
