"""``op7 audit verify``: recompute the whole evidence log and name the first entry that was modified, deleted,
inserted or reordered.

Three things hold an entry in place. Its leaf hash covers its fields and bytes (a change shows against the hash
stored with it); it names the leaf hash of the entry before it (a hash rewritten with its entry shows at the next
one); and the auditor's signed checkpoints fix the Merkle root of every size they were signed at (a log rewritten
from end to end, every hash recomputed, shows against them, as does a log cut short).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import GENESIS, Entry, Kind, Outcome
from broker.audit.gaps import Gap, SequenceTracker
from broker.audit.history import DirectoryHistory
from broker.audit.store import EvidenceStore
from broker.errors import MessageError, VerificationError
from broker.wire import merkle

__all__ = ["Finding", "LogReport", "verify_log"]


@dataclass(frozen=True, order=True)
class Finding:
    """A problem, at the first entry it touches (0 for a checkpoint that does not verify: it vouches for nothing)."""

    index: int
    kind: str  # modified, deleted, inserted, reordered, rewritten, checkpoint
    text: str


@dataclass
class LogReport:
    """What verifying the log found."""

    size: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    #: In the order of the entries they name.
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
    #: Why the row could not be read as an entry (None when it could).
    unreadable: str | None = None


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
    for position, entry in _readable(store):
        if isinstance(entry, VerificationError):
            rows.append(_Row(position, position, GENESIS, GENESIS, GENESIS, unreadable=str(entry)))
            continue
        rows.append(_Row(position, entry.index, entry.previous, entry.leaf, entry.computed_leaf()))
        _follow(history, entry)
        tracker.add(entry)
        report.refused += entry.outcome is not Outcome.VERIFIED
        if progress is not None:
            progress(1)
    report.size = len(rows)
    report.findings = _places(rows) + _hashes(rows)
    report.findings = sorted(report.findings + _checkpoints(rows, history, [*store.checkpoints(), *published], report))
    report.gaps = tracker.gaps()
    return report


def _readable(store: EvidenceStore) -> Iterator[tuple[int, Entry | VerificationError]]:
    """Every row in position order; one that does not read as an entry as the error reading it, and the rows after
    it still read."""
    start, end = 0, store.size()
    while True:
        try:
            for position, entry in store.rows(start):
                start = position + 1
                yield position, entry
            return
        except VerificationError as exc:
            position = _first_row(store, start, end)
            yield position, exc
            start = position + 1


def _first_row(store: EvidenceStore, start: int, end: int) -> int:
    """The position of the first row at or after ``start`` (before ``end``), which does not read: a binary search,
    each step reading one row at most."""
    low, high = start, end - 1
    while low < high:
        middle = (low + high) // 2
        try:
            next(store.rows(start, middle + 1), None)
        except VerificationError:
            high = middle
        else:
            low = middle + 1
    return low


def _follow(history: DirectoryHistory, entry: Entry) -> None:
    if entry.kind is Kind.DIRECTORY and entry.outcome is Outcome.VERIFIED and history.anchor is not None:
        # Verified when logged; the findings about this entry say whether it changed since.
        with contextlib.suppress(MessageError):
            history.offer(entry.value)


def _places(rows: list[_Row]) -> list[Finding]:
    """Rows missing from their places, rows that claim a place another holds, and rows at another entry's place."""
    found: set[Finding] = set()
    expected = 0
    for row in rows:
        if row.position > expected:
            text = f"{_entries(expected, row.position - 1)} deleted: the log goes on at entry {row.position}"
            found.add(Finding(expected, "deleted", text))
        expected = row.position + 1
    holders = _holders(rows, found)
    index_at = {r.position: r.index for r in rows}
    for row in holders:
        if row.index == row.position:
            continue
        if index_at.get(row.index) == row.position:
            low, high = sorted((row.position, row.index))
            found.add(Finding(low, "reordered", f"entries {low} and {high} swapped places"))
        else:
            text = f"entry {row.position} reordered: it holds the entry logged as {row.index}"
            found.add(Finding(row.position, "reordered", text))
    return sorted(found)


def _holders(rows: list[_Row], found: set[Finding]) -> list[_Row]:
    """The row that holds each entry index, in position order; a row that claims an index another holds was
    inserted (added to ``found``). Of two rows with one index, the one the hash chain goes on from holds it: the row
    after it names its hash, not the other's; the first one when the chain says neither."""
    followed = {row.position for row, after in itertools.pairwise(rows) if after.previous == row.stored}
    holder: dict[int, _Row] = {}
    for row in rows:
        first = holder.setdefault(row.index, row)
        if first is row:
            continue
        if row.position in followed and first.position not in followed:
            holder[row.index], row = row, first
        text = (
            f"entry {row.position} inserted: it claims the place of entry {row.index}, which the entry at "
            f"{holder[row.index].position} holds"
        )
        found.add(Finding(row.position, "inserted", text))
    return sorted(holder.values(), key=lambda r: r.position)


def _hashes(rows: list[_Row]) -> list[Finding]:
    """Entries whose content no longer matches their stored hash, and stored hashes rewritten with their entry (the
    entry after, in its place, names another)."""
    found = []
    for before, row in zip([None, *rows], rows, strict=False):
        if row.unreadable is not None:
            text = f"entry {row.position} modified: it no longer reads as an entry ({row.unreadable})"
            found.append(Finding(row.position, "modified", text))
        elif row.computed != row.stored:
            text = f"entry {row.position} modified: its bytes or fields differ from what was logged"
            found.append(Finding(row.position, "modified", text))
        elif (
            before is not None
            and before.unreadable is None
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
    first that differs names the entries between it and the last that matched, and the largest that covers more
    than the log holds names the entries missing at its end."""
    found: list[Finding] = []
    ordered = sorted(_verified(kept, history, found), key=lambda c: (c.size, c.at))
    end = rows[-1].position + 1 if rows else 0
    beyond = [c for c in ordered if c.size > end]
    if beyond:
        held = f"the log ends at entry {end - 1}" if end else "the log is empty"
        text = f"{_entries(end, beyond[-1].size - 1)} deleted: {held}, the {beyond[-1].describe()} covers them"
        found.append(Finding(end, "deleted", text))
    roots = merkle.prefix_roots([r.computed for r in rows], [c.size for c in ordered if c.size <= len(rows)])
    matched = 0
    for checkpoint in ordered[: len(ordered) - len(beyond)]:
        if roots.get(checkpoint.size) == checkpoint.root:
            matched = checkpoint.size
            report.checkpoints.append(checkpoint)
        elif not any(matched <= f.index < checkpoint.size for f in report.findings):
            text = (
                f"one of entries {matched} to {checkpoint.size - 1} changed: the log's first {checkpoint.size} entries "
                f"are not those of the {checkpoint.describe()}"
            )
            found.append(Finding(matched, "checkpoint", text))
            break
        # Otherwise explained by a finding that names its entry (rows missing inside it, or changed).
    return found


def _verified(kept: Sequence[bytes], history: DirectoryHistory, found: list[Finding]) -> list[Checkpoint]:
    """The checkpoints of ``kept`` that verify, each once; a finding for each other."""
    checkpoints: dict[bytes, Checkpoint] = {}
    for data in kept:
        try:
            checkpoint = Checkpoint.from_bytes(data)
        except MessageError as exc:
            found.append(Finding(0, "checkpoint", f"a checkpoint does not read: {exc}"))
            continue
        try:
            checkpoint.verify(history)
        except MessageError as exc:
            found.append(Finding(0, "checkpoint", f"a {checkpoint.describe()} does not verify: {exc}"))
            continue
        checkpoints.setdefault(checkpoint.signed_part(), checkpoint)
    return list(checkpoints.values())


def _entries(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first} to {last}"
