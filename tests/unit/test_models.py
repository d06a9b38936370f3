from __future__ import annotations

import copy
from datetime import UTC, timedelta
from typing import Any

import pytest

from broker.errors import InputError
from broker.models import KidnappingAlert, Tlp, new_message_id
from broker.models.inputs import validate
from tests.conftest import now


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputError) as info:
        validate(KidnappingAlert, data, "alert.json")
    assert info.value.source == "alert.json"
    return {p.path: p.message for p in info.value.problems}


def test_example_alert_is_valid_and_times_are_normalised_to_utc(alert: KidnappingAlert, alert_data: dict) -> None:
    assert alert.sent_at.tzinfo == UTC
    paris = KidnappingAlert.model_validate({**alert_data, "sent_at": "2026-11-30T09:15:00+01:00"})
    assert paris.sent_at.hour == 8 and paris.sent_at.tzinfo == UTC
    assert alert.victims[0].photo is not None and len(alert.victims[0].photo.sha256) == 32


def test_every_problem_is_listed_with_its_path(alert_data: dict[str, Any]) -> None:
    data = copy.deepcopy(alert_data)
    data["sent_at"] = "2026-11-30T09:15:00"  # no zone
    data["victims"][0]["height_cm"] = "tall"
    data["last_seen"]["position"]["latitude"] = 95.0
    data["last_seen"]["country"] = "XX"
    data["vehicles"][0]["registration_country"] = "FRA"
    data["ransom"] = {"demand": {"amount": "50000", "currency": "EURO"}}
    data["colour"] = "red"
    problems = _problems(data)
    assert set(problems) == {
        "sent_at",
        "victims[0].height_cm",
        "last_seen.position.latitude",
        "last_seen.country",
        "vehicles[0].registration_country",
        "ransom.demand.currency",
        "colour",
    }
    assert "timezone" in problems["sent_at"]
    assert "ISO 3166-1" in problems["last_seen.country"]
    assert "ISO 4217" in problems["ransom.demand.currency"]
    assert "unknown field" in problems["colour"]


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"victims": []}, "", "at least one victim"),
        ({"msg_type": "Update"}, "", "references the alert_ids"),
        (
            {"issuer": {"node": "fr.gn", "name": "x", "contact": {"desk": "d", "phone": "+33100000000"}}},
            "issuer.node",
            "CC.AGENCY",
        ),
        ({"languages": ["French"]}, "languages[0]", "BCP 47"),
        ({"expires_at": "2026-11-30T08:00:00+00:00"}, "", "expires_at is not after sent_at"),
        ({"status": "Real"}, "status", "'Actual', 'Exercise' or 'Test'"),
    ],
)
def test_rules_avro_cannot_express(
    alert_data: dict[str, Any], change: dict[str, Any], path: str, fragment: str
) -> None:
    problems = _problems({**alert_data, **change})
    assert path in problems
    assert fragment in problems[path]


def test_photo_digest_must_be_sha256(alert_data: dict[str, Any]) -> None:
    data = copy.deepcopy(alert_data)
    data["victims"][0]["photo"]["sha256"] = "abc"
    assert "SHA-256" in _problems(data)["victims[0].photo.sha256"]


def test_ransom_amount_needs_currency_and_at_most_four_decimals(alert_data: dict[str, Any]) -> None:
    assert (
        "Field required" in _problems({**alert_data, "ransom": {"demand": {"amount": "100"}}})["ransom.demand.currency"]
    )
    too_precise = {**alert_data, "ransom": {"demand": {"amount": "1.00001", "currency": "EUR"}}}
    assert "ransom.demand.amount" in _problems(too_precise)


def test_tlp_accepts_the_tlp2_spelling(alert_data: dict[str, Any]) -> None:
    alert = KidnappingAlert.model_validate({**alert_data, "handling": {"tlp": "AMBER+STRICT"}})
    assert alert.handling.tlp is Tlp.AMBER_STRICT


def test_models_are_frozen(alert: KidnappingAlert) -> None:
    with pytest.raises(Exception, match="frozen"):
        alert.case_id = "other"  # type: ignore[misc]


def test_message_ids_are_uuid7_and_time_ordered() -> None:
    import uuid

    first = new_message_id(now())
    second = new_message_id(now() + timedelta(milliseconds=2))
    assert uuid.UUID(first).version == 7
    assert first < second
