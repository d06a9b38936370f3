"""``op7 audit verify``: recompute the whole evidence log and name the first entry that was modified, deleted,
inserted or reordered.

Three things hold an entry in place. Its leaf hash covers its fields and bytes (a change shows against the hash
stored with it); it names the leaf hash of the entry before it (a hash rewritten with its entry shows at the next
one); and the auditor's signed checkpoints fix the Merkle root of every size they were signed at (a log rewritten
from end to end, every hash recomputed, shows against them, as does a log cut short).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import Entry, Kind, Outcome
from broker.audit.gaps import Gap, SequenceTracker
from broker.audit.history import DirectoryHistory
from broker.audit.store import EvidenceStore
from broker.errors import MessageError
from broker.wire import merkle

__all__ = ["Finding", "LogReport", "verify_log"]


@dataclass(frozen=True, order=True)
class Finding:
    """A problem, at the entry it names (None: the log as a whole)."""

    index: int
    kind: str  # modified, deleted, inserted, reordered, rewritten, checkpoint
    text: str


@dataclass
class LogReport:
    """What verifying the log found."""

    size: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    refused: int = 0

    @property
    def intact(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return min(self.findings) if self.findings else None

    @property
    def uncovered(self) -> int:
        """Entries after the last signed checkpoint (not yet fixed by a signature)."""
        return self.size - max((c.size for c in self.checkpoints), default=0)


@dataclass
class _Row:
    position: int
    index: int
    previous: bytes
    stored: bytes
    computed: bytes


def verify_log(
    store: EvidenceStore,
    history: DirectoryHistory,
    *,
    published: Sequence[bytes] = (),
    progress: Callable[[int], None] | None = None,
) -> LogReport:
    """Verify every entry of ``store`` and every checkpoint (those it keeps and the ``published`` copies read from
    the checkpoint topic); directory versions logged in it are taken into ``history`` in order, to verify the
    checkpoints' signatures by the keys of their time."""
    report = LogReport()
    rows: list[_Row] = []
    tracker = SequenceTracker()
    for position, entry in store.rows():
        rows.append(_Row(position, entry.index, entry.previous, entry.leaf, entry.computed_leaf()))
        _follow(history, entry)
        tracker.add(entry)
        report.refused += entry.outcome is not Outcome.VERIFIED
        if progress is not None:
            progress(1)
    report.size = len(rows)
    report.findings = _places(rows) + _hashes(rows)
    report.findings += _checkpoints(rows, history, [*store.checkpoints(), *published], report)
    report.gaps = tracker.gaps()
    return report


def _follow(history: DirectoryHistory, entry: Entry) -> None:
    if entry.kind is Kind.DIRECTORY and entry.outcome is Outcome.VERIFIED and history.anchor is not None:
        # Verified when logged; the findings about this entry say whether it changed since.
        with contextlib.suppress(MessageError):
            history.offer(entry.value)


def _places(rows: list[_Row]) -> list[Finding]:
    """Rows missing from their places, and rows at another entry's place."""
    found: set[Finding] = set()
    expected = 0
    for row in rows:
        if row.position > expected:
            what = f"entry {expected}" if row.position == expected + 1 else f"entries {expected} to {row.position - 1}"
            found.add(Finding(expected, "deleted", f"{what} deleted: the log goes on at entry {row.position}"))
        expected = row.position + 1
    index_at = {r.position: r.index for r in rows}
    first_at: dict[int, int] = {}
    for row in rows:
        if row.index in first_at:
            text = (
                f"entry {row.position} inserted: it claims the place of entry {row.index}, "
                f"already at {first_at[row.index]}"
            )
            found.add(Finding(row.position, "inserted", text))
            continue
        first_at[row.index] = row.position
        if row.index == row.position:
            continue
        if index_at.get(row.index) == row.position:
            low, high = sorted((row.position, row.index))
            found.add(Finding(low, "reordered", f"entries {low} and {high} swapped places"))
        else:
            text = f"entry {row.position} reordered: it holds the entry logged as {row.index}"
            found.add(Finding(row.position, "reordered", text))
    return sorted(found)


def _hashes(rows: list[_Row]) -> list[Finding]:
    """Entries whose content no longer matches their stored hash, and stored hashes rewritten with their entry (the
    entry after, in its place, names another)."""
    found = []
    for before, row in zip([None, *rows], rows, strict=False):
        if row.computed != row.stored:
            text = f"entry {row.position} modified: its bytes or fields differ from what was logged"
            found.append(Finding(row.position, "modified", text))
        elif (
            before is not None
            and before.index == before.position == row.position - 1 == row.index - 1
            and before.computed == before.stored
            and row.previous != before.stored
        ):
            text = f"entry {before.position} rewritten with its hash: entry {row.position} names another before it"
            found.append(Finding(before.position, "rewritten", text))
    return found


def _checkpoints(
    rows: list[_Row], history: DirectoryHistory, kept: Sequence[bytes], report: LogReport
) -> list[Finding]:
    """Each checkpoint's signature, and the root it signed against the root of the log's first entries now; the
    first that differs names the entries between it and the last that matched."""
    found: list[Finding] = []
    checkpoints: dict[bytes, Checkpoint] = {}
    for data in kept:
        try:
            checkpoint = Checkpoint.from_bytes(data)
            checkpoint.verify(history)
        except MessageError as exc:
            found.append(Finding(0, "checkpoint", f"a checkpoint does not verify: {exc}"))
            continue
        checkpoints.setdefault(checkpoint.signed_part(), checkpoint)
    ordered = sorted(checkpoints.values(), key=lambda c: (c.size, c.at))
    roots = merkle.prefix_roots([r.computed for r in rows], [c.size for c in ordered if c.size <= len(rows)])
    matched = 0
    for checkpoint in ordered:
        if checkpoint.size > len(rows):
            text = (
                f"entries {len(rows)} to {checkpoint.size - 1} deleted: the log holds {len(rows)} entries, "
                f"the {checkpoint.describe()}"
            )
            found.append(Finding(len(rows), "deleted", text))
        elif roots[checkpoint.size] != checkpoint.root:
            if any(matched <= f.index < checkpoint.size for f in report.findings):
                break  # explained by a finding that names its entry
            text = (
                f"one of entries {matched} to {checkpoint.size - 1} changed: the log's first {checkpoint.size} entries "
                f"are not those of the {checkpoint.describe()}"
            )
            found.append(Finding(matched, "checkpoint", text))
            break
        else:
            matched = checkpoint.size
            report.checkpoints.append(checkpoint)
    return found
