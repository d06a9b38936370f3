"""op7's own JSON form, as the json adapter reads it: hostile input gets an InputError naming the field, never
another exception; a typed wrapper (what the outbound side writes) reads back to the same message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.native_json import NativeJsonAdapter
from broker.errors import InputError
from broker.models import KidnappingAlert
from tests.conftest import ROOT

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
EXAMPLE = json.loads((ROOT / "examples" / "kidnapping-alert.json").read_text())
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
CHECKS = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _outcome(data: bytes, typed: bool = True) -> None:
    adapter = NativeJsonAdapter(KidnappingAlert if typed else None)
    try:
        adapter.translate(data, "in.json", now=NOW)
    except InputError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    assert all(str(p) for p in problems)


@CHECKS
@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_with_a_problem(data: bytes) -> None:
    _outcome(data)
    _outcome(data, typed=False)


@CHECKS
@given(st.dictionaries(st.sampled_from(sorted(EXAMPLE)), JSON, max_size=8))
def test_the_example_with_random_values_in_its_fields_is_refused_field_by_field(changes: dict[str, object]) -> None:
    _outcome(json.dumps({**EXAMPLE, **changes}).encode())


def test_a_huge_field_and_deep_nesting_are_refused_by_field() -> None:
    for field, value in (("headline", "x" * 1_000_000), ("victims", [[[[[[[[[[[]]]]]]]]]]])):
        document = json.dumps({**EXAMPLE, field: value}).encode()
        with pytest.raises(InputError) as caught:
            NativeJsonAdapter(KidnappingAlert).translate(document, "in.json", now=NOW)
        assert [p.path.split(".")[0].split("[")[0] for p in caught.value.problems] == [field]
    deep = b"[" * 100_000 + b"]" * 100_000
    _outcome(deep)


def test_what_the_outbound_side_writes_reads_back_as_the_same_message() -> None:
    adapter = NativeJsonAdapter(None)
    alert = NativeJsonAdapter(KidnappingAlert).translate(json.dumps(EXAMPLE).encode(), "in.json", now=NOW).message
    written = adapter.render(alert, message_id="00000000-0000-0000-0000-000000000001", sender="FR.GN")
    assert adapter.translate(written.data, "back.json", now=NOW).message == alert
    with pytest.raises(InputError) as caught:
        adapter.translate(b'{"message_type": "NoSuchType", "message": {}}', "x.json", now=NOW)
    assert [p.path for p in caught.value.problems] == ["message_type"]
