"""Consumed against acknowledged, as Kafka's own replication tests judge a run: nothing acknowledged is missing,
nothing is handed twice, and each case's messages arrive in the order they were acknowledged."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.cluster.stream import Attempt, Line


@dataclass
class Verdict:
    """One receiver's account of one kind of message."""

    kind: str
    acknowledged: int
    handed: int
    #: Acknowledged, never handed to the receiver's handler: (case, item, message id, partition).
    lost: list[tuple[str, str, str, int | None]] = field(default_factory=list)
    #: Message ids handed over more than once, with how many times.
    duplicated: dict[str, int] = field(default_factory=dict)
    #: Messages handed over after one of their case acknowledged later: (case, item, after item).
    out_of_order: list[tuple[str, str, str]] = field(default_factory=list)
    #: Handed over although their publish raised (the caller published them again under a new id).
    unacknowledged: int = 0
    #: Items of the plan handed over under more than one message id (a caller's retry of a publish that had landed).
    copies: int = 0

    def summary(self) -> str:
        return (
            f"{self.kind}: acknowledged {self.acknowledged}, handed {self.handed}, lost {len(self.lost)}, "
            f"duplicated {sum(n - 1 for n in self.duplicated.values())}, out of order {len(self.out_of_order)}, "
            f"handed though the publish raised {self.unacknowledged}, items under two ids {self.copies}"
        )

    def details(self, limit: int = 8) -> str:
        parts = [self.summary()]
        if self.lost:
            by_partition = Counter(p for *_, p in self.lost)
            parts.append(f"lost per partition {dict(by_partition)}; first: {self.lost[:limit]}")
        if self.duplicated:
            parts.append(f"duplicated: {list(self.duplicated.items())[:limit]}")
        if self.out_of_order:
            parts.append(f"out of order: {self.out_of_order[:limit]}")
        return "\n".join(parts)


def judge(kind: str, acknowledged: list[Attempt], lines: list[Line]) -> Verdict:
    """Compare what callers saw acknowledged with what one receiver's handler was handed."""
    acked = {a.message_id: a for a in acknowledged if a.message_id is not None}
    handed = Counter(line.message_id for line in lines)
    verdict = Verdict(kind, len(acked), len(handed))
    verdict.lost = sorted((a.case, a.item, mid, a.partition) for mid, a in acked.items() if mid not in handed)
    verdict.duplicated = {mid: n for mid, n in handed.items() if n > 1}
    verdict.unacknowledged = sum(1 for mid in handed if mid not in acked)
    ids_of_item: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        ids_of_item[line.item].add(line.message_id)
    verdict.copies = sum(1 for ids in ids_of_item.values() if len(ids) > 1)
    verdict.out_of_order = _order(acked, lines)
    return verdict


def _order(acked: dict[str, Attempt], lines: list[Line]) -> list[tuple[str, str, str]]:
    """Within each case, the first handing-over of each acknowledged message must follow the acknowledgement order."""
    rank: dict[str, int] = {}
    for case_rank, attempt in enumerate(sorted(acked.values(), key=lambda a: (a.case, a.ended))):
        rank[attempt.message_id or ""] = case_rank
    seen: set[str] = set()
    highest: dict[str, tuple[int, str]] = {}
    violations = []
    for line in lines:
        if line.message_id in seen or line.message_id not in acked:
            continue
        seen.add(line.message_id)
        case, r = acked[line.message_id].case, rank[line.message_id]
        top = highest.get(case)
        if top is not None and r < top[0]:
            violations.append((case, line.item, top[1]))
        else:
            highest[case] = (r, line.item)
    return violations


def handed_again(lines: list[Line], killed_life: int, batch: int) -> tuple[set[str], set[str]]:
    """Message ids handed over by the killed life and again by a later one, and those of them outside the killed
    life's last ``batch`` hand-overs (the only ones a crash may repeat: docs/PROTOCOL.md section 7)."""
    before = [x.message_id for x in lines if x.life == killed_life]
    after = {x.message_id for x in lines if x.life > killed_life}
    again = set(before) & after
    return again, again - set(before[-batch:])
