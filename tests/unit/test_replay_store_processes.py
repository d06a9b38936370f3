"""Several processes of one node (``--workers N``, or a listener beside ``inbox watch``) share its replay store file:
opened at the same moment and written at once, none fails with "database is locked"; every row is kept."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from broker.node.receive_state import HeldFrames, QuarantineBook
from broker.trust.replay import ReplayGuard

PROCESSES = 4
BATCHES = 10
PER_BATCH = 50


def _worker(path: str, index: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait()
        # As a worker's subscription opens them: the replay store and the receive state, in one file.
        guard, book, held = ReplayGuard(Path(path)), QuarantineBook(Path(path)), HeldFrames(Path(path))
        at = datetime.now(UTC)
        for batch in range(BATCHES):
            for n in range(PER_BATCH):
                envelope = SimpleNamespace(sender=f"N{index}", message_id=f"{batch}-{n}", created_at=at)
                guard.remember(envelope, sha256(f"{index}{batch}{n}".encode()).digest(), at)  # type: ignore[arg-type]
            guard.flush()
            book.prune(at)
        guard.close()
        book.close()
        held.close()
        results.put((index, "ok"))
    except Exception as exc:  # told to the test, which names it
        results.put((index, repr(exc)))


def test_processes_writing_one_replay_store_at_once_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "state" / "replay-NL.NCC.db"  # not there yet: the processes create it together
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=_worker, args=(str(path), i, barrier, results)) for i in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert outcomes == dict.fromkeys(range(PROCESSES), "ok")
    with sqlite3.connect(path) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM handled").fetchone()
    assert rows == PROCESSES * BATCHES * PER_BATCH
