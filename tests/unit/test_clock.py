"""Time is an input: one clock, a test clock that moves only when told, relative times only in input files."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.clock import ManualClock, SystemClock, default_clock, parse_duration, parse_offset, using
from broker.errors import InputError
from broker.models import KidnappingAlert, MutualLegalAssistanceRequest, Reminder
from broker.models.inputs import outgoing_problems, validate_outgoing
from tests.conftest import ROOT, example

T = datetime(2031, 5, 17, 3, 4, 5, tzinfo=UTC)

#: Calls that read the machine's clock. Only broker/clock.py may make them.
_CLOCK_READS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time")}


def _clock_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in _CLOCK_READS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}.{node.func.attr}()")
    return found


def test_only_the_clock_module_reads_the_machine_clock() -> None:
    sources = [p for d in ("broker", "adapters") for p in sorted((ROOT / d).rglob("*.py"))]
    offenders = [hit for p in sources if p.name != "clock.py" for hit in _clock_reads(p)]
    assert offenders == [], "read the time through broker.clock: " + "; ".join(offenders)
    assert _clock_reads(ROOT / "broker" / "clock.py")  # the detector itself finds the one real reading


def test_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(T)
    assert clock.now() == T == clock.now()
    assert clock.advance(timedelta(hours=2)) == T + timedelta(hours=2) == clock.now()
    clock.set(datetime(2040, 1, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2040
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2030, 1, 1))


def test_the_default_clock_can_be_replaced_for_a_block() -> None:
    outer = default_clock()
    with using(ManualClock(T)) as inner:
        assert default_clock() is inner and default_clock().now() == T
        # Message ids made without an explicit time come from the default clock.
        alert = example("KidnappingAlert")
        assert alert.sent_at == T
    assert default_clock() is outer
    assert isinstance(SystemClock().now().tzinfo, type(UTC))


def test_durations_and_offsets() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_offset("-35m") == -timedelta(minutes=35)
    assert parse_offset("+1.5h") == timedelta(hours=1, minutes=30)
    assert parse_offset("2026-11-30") is None
    assert parse_offset("+999999w") is None  # past year 9999: refused, not an overflow
    for bad in ("-2h", "6 h", "6y", "", "h", "999999w"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_input_files_resolve_relative_times_from_their_sending() -> None:
    request = example("MutualLegalAssistanceRequest", now=T)
    assert request.sent_at == T
    assert request.deadline == T + timedelta(hours=6)  # "+6h"
    alert = example("KidnappingAlert", now=T)
    assert alert.last_seen is not None and alert.last_seen.at == T - timedelta(minutes=35)
    collaboration = example("CollaborationRequest", now=T)
    assert collaboration.ends_on == (T + timedelta(days=14)).date()
    # A relative time counts from the file's own sent_at when it gives one.
    data = example("MutualLegalAssistanceRequest", now=T).model_dump(mode="json") | {
        "sent_at": "2031-05-01T00:00:00Z",
        "deadline": "+1d",
    }
    given = validate_outgoing(MutualLegalAssistanceRequest, data, "x.json", now=T)
    assert given.deadline == datetime(2031, 5, 2, tzinfo=UTC)


def test_a_relative_time_beyond_a_century_names_its_field() -> None:
    data = example("MutualLegalAssistanceRequest", now=T).model_dump(mode="json") | {"deadline": "+999999w"}
    with pytest.raises(InputError) as info:
        validate_outgoing(MutualLegalAssistanceRequest, data, "x.json", now=T)
    assert [p.path for p in info.value.problems] == ["deadline"]


def test_relative_times_never_come_off_the_wire() -> None:
    data = example("KidnappingAlert", now=T).model_dump(mode="json")
    data["last_seen"]["at"] = "-35m"
    with pytest.raises(ValidationError, match="only input files may give one"):
        KidnappingAlert.model_validate(data)


def test_what_is_wrong_to_send_now() -> None:
    request = example("MutualLegalAssistanceRequest", now=T)
    assert outgoing_problems(request, T, max_skew=timedelta(minutes=5)) == []
    later = T + timedelta(hours=7)
    (problem,) = outgoing_problems(request, later, max_skew=timedelta(minutes=5))
    assert problem.path == "deadline" and "already past (1 h ago)" in problem.message
    assert outgoing_problems(request, later, max_skew=timedelta(minutes=5), late=True) == []
    (ahead,) = outgoing_problems(request, T - timedelta(hours=3), max_skew=timedelta(minutes=5))
    assert ahead.path == "sent_at" and "3 h in the future" in ahead.message
    # A reminder's deadline is the one that passed: never a reason to refuse it.
    reminder = example("Reminder", now=T)
    assert isinstance(reminder, Reminder) and reminder.deadline < T
    assert outgoing_problems(reminder, T, max_skew=timedelta(minutes=5)) == []
