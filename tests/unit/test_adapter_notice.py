"""The notice-style JSON adapter: yellow and red notices in, alerts and case information out, every loss reported."""

from __future__ import annotations

import json
import operator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import Translation
from adapters.notice_json import NoticeJsonAdapter, spoken_language
from broker.errors import ConfigError, InputError
from broker.models import CaseInformation, KidnappingAlert, PersonRole, Sex
from tests.conftest import ROOT, example

#: The time of sending of every translation: fixed, so that no test depends on the day it runs.
NOW = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
NOTICES = ROOT / "examples" / "adapters" / "notice"
ISSUER = {"node": "FR.GN", "name": "Demo Police", "desk": "Demo desk 24/7", "phone": "+33100000000"}
SETTINGS: dict[str, Any] = {"issuer": ISSUER, "evaluation": "B2"}
#: Notice fields that have a place in an alert: a round trip keeps them.
KEPT = (
    "entity_id",
    "forename",
    "name",
    "date_of_birth",
    "sex_id",
    "nationalities",
    "height",
    "distinguishing_marks",
    "place",
    "date_of_event",
    "country",
)


def _notice(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((NOTICES / name).read_text(encoding="utf-8"))
    return loaded


def _translate(doc: Any, **extra: Any) -> Translation[Any]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return NoticeJsonAdapter(settings={**SETTINGS, **extra}).translate(data, "notice.json", now=NOW)


def _problems(doc: Any, **extra: Any) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        _translate(doc, **extra)
    assert caught.value.source == "notice.json"
    return {problem.path: problem.message for problem in caught.value.problems}


def _losses(translation: Translation[Any]) -> dict[str, str]:
    return {item.field: item.reason for item in translation.lost}


# --- inbound: the examples -----------------------------------------------------------------------------------------


def test_a_yellow_notice_is_an_alert_with_the_person_as_victim() -> None:
    alert = _translate(_notice("yellow-notice.json")).message
    assert isinstance(alert, KidnappingAlert)
    assert alert.case_id == "NOTICE-2019/40001"
    assert alert.msg_type.value == "Alert"
    assert alert.sent_at == NOW
    assert alert.headline == "Missing: Demo EXAMPLE-PERSON, last seen in Example-Town, school entrance (FR)"
    assert alert.languages == ("en",)
    (victim,) = alert.victims
    assert (victim.given_names, victim.family_names) == ("Demo", "EXAMPLE-PERSON")
    assert victim.date_of_birth == date(2012, 4, 2)
    assert victim.sex is Sex.FEMALE
    assert victim.nationalities == ("FR", "ES")
    assert victim.height_cm == 121
    assert victim.distinguishing_marks == "Small scar above the left eyebrow"
    assert alert.last_seen is not None
    assert alert.last_seen.at == datetime(2019, 5, 28, tzinfo=UTC)
    assert (alert.last_seen.place, alert.last_seen.country) == ("Example-Town, school entrance", "FR")
    assert (alert.issuer.node, alert.status.value, alert.handling.tlp.value) == ("FR.GN", "Actual", "AMBER")


def test_a_yellow_notice_reports_each_field_left_behind_with_its_reason() -> None:
    assert _losses(_translate(_notice("yellow-notice.json"))) == {
        "languages_spoken_ids[0]": "speaks fr: the shared schema has no spoken languages",
        "languages_spoken_ids[1]": "speaks es: the shared schema has no spoken languages",
        "birth_name": "a victim in an alert has no other names",
        "weight": "the shared schema has no weight",
        "eyes_colors_id": "the shared schema has no eye colour",
        "hairs_id": "the shared schema has no hair colour",
        "country_of_birth_id": "the shared schema has no country of birth",
        "place_of_birth": "a victim in an alert has no place of birth",
        "_embedded": "images are not carried: a shared photo reference needs the image's SHA-256 digest",
        "_links": "links into the notices API are not carried",
    }


def test_a_loss_shows_the_value_left_behind() -> None:
    lost = {item.field: item.value for item in _translate(_notice("yellow-notice.json")).lost}
    assert lost["weight"] == "25"
    assert lost["eyes_colors_id"] == '["BRO"]'
    assert lost["languages_spoken_ids[0]"] == "FRE"


def test_a_yellow_notice_read_as_case_information_keeps_the_birth_name_and_place() -> None:
    translation = _translate(_notice("yellow-notice.json"), yellow_as="case")
    info = translation.message
    assert isinstance(info, CaseInformation)
    assert info.case_id == "NOTICE-2019/40001"
    assert info.subject == "Missing person: Demo EXAMPLE-PERSON (yellow notice 2019/40001)"
    assert (info.evaluation.source.value, info.evaluation.accuracy.value) == ("B", "ACCURACY_2")
    (entry,) = info.persons
    assert entry.role is PersonRole.VICTIM
    assert entry.person.aliases == ("Demo SAMPLE",)
    assert entry.person.place_of_birth == "Example-City"
    assert entry.person.description == "Small scar above the left eyebrow"
    (sighting,) = info.sightings
    assert (sighting.location.description, sighting.location.country) == ("Example-Town, school entrance", "FR")
    lost = _losses(translation)
    assert lost["height"] == "a person in case information has no height"
    assert "birth_name" not in lost
    assert "place_of_birth" not in lost


def test_a_red_notice_is_case_information_on_a_suspect_with_the_warrants_in_the_summary() -> None:
    translation = _translate(_notice("red-notice.json"))
    info = translation.message
    assert isinstance(info, CaseInformation)
    assert info.case_id == "NOTICE-2020/50002"
    assert info.subject == "Wanted: Example DEMO-SUSPECT (red notice 2020/50002)"
    assert info.summary == (
        "Arrest warrant issued by ES: Secuestro de menor (translation: Kidnapping of a minor)\n"
        "Arrest warrant issued by FR: Extortion"
    )
    (entry,) = info.persons
    assert entry.role is PersonRole.SUSPECT
    assert (entry.person.given_names, entry.person.family_names) == ("Example", "DEMO-SUSPECT")
    assert (entry.person.sex, entry.person.nationalities) == (Sex.MALE, ("ES",))
    assert info.sightings == ()
    assert set(_losses(translation)) == {
        "languages_spoken_ids[0]",
        "languages_spoken_ids[1]",
        "height",
        "weight",
        "eyes_colors_id",
        "hairs_id",
        "country_of_birth_id",
        "_embedded",
        "_links",
    }


def test_notice_type_decides_the_kind_before_the_warrants_do() -> None:
    red = {**_notice("yellow-notice.json"), "notice_type": "RED"}
    assert _translate(red).message.persons[0].role is PersonRole.SUSPECT
    assert _problems({**_notice("red-notice.json"), "notice_type": "yellow"}) == {
        "arrest_warrants": "a yellow notice has no arrest warrants (notice_type is yellow)"
    }
    assert _problems({**_notice("yellow-notice.json"), "notice_type": "blue"}) == {
        "notice_type": "expected red or yellow"
    }


def test_a_red_notice_is_refused_where_an_alert_is_asked_for() -> None:
    adapter = NoticeJsonAdapter(KidnappingAlert, settings=SETTINGS)
    with pytest.raises(InputError) as caught:
        adapter.translate_file(NOTICES / "red-notice.json", now=NOW)
    assert [p.path for p in caught.value.problems] == ["arrest_warrants"]


def test_case_information_needs_the_senders_evaluation() -> None:
    adapter = NoticeJsonAdapter(settings={"issuer": ISSUER})
    with pytest.raises(ConfigError, match="evaluation"):
        adapter.translate_file(NOTICES / "red-notice.json", now=NOW)


def test_settings_are_checked_when_the_adapter_is_made() -> None:
    for bad in (
        {"yellow_as": "notice"},
        {"case_prefix": "-bad prefix"},
        {"languages": ["English"]},
        {"evaluation": "Z9"},
        {"max_bytes": 0},
        {"colour": "yellow"},
    ):
        with pytest.raises(ConfigError):
            NoticeJsonAdapter(settings={**SETTINGS, **bad})
    with pytest.raises(ConfigError, match="contradicts"):
        NoticeJsonAdapter(KidnappingAlert, settings={**SETTINGS, "yellow_as": "case"})
    with pytest.raises(ConfigError, match="ExtraditionRequest"):
        NoticeJsonAdapter(type(example("ExtraditionRequest", NOW)), settings=SETTINGS)
    with pytest.raises(ConfigError, match="issuing authority"):
        NoticeJsonAdapter().translate_file(NOTICES / "yellow-notice.json", now=NOW)


def test_the_case_prefix_and_the_settings_reach_the_message() -> None:
    alert = _translate(_notice("yellow-notice.json"), case_prefix="IP-", tlp="RED", status="Exercise").message
    assert alert.case_id == "IP-2019/40001"
    assert (alert.handling.tlp.value, alert.status.value) == ("RED", "Exercise")


# --- inbound: what is lost rather than refused ---------------------------------------------------------------------


def test_an_incomplete_last_seen_is_reported_not_guessed() -> None:
    doc = {k: v for k, v in _notice("yellow-notice.json").items() if k != "place"}
    translation = _translate(doc)
    assert translation.message.last_seen is None
    reason = "last seen needs place, date_of_event and country (place missing)"
    assert _losses(translation)["date_of_event"] == reason
    assert _losses(translation)["country"] == reason


def test_a_year_alone_unknown_codes_fields_and_a_zero_height_are_losses() -> None:
    doc = {
        **_notice("yellow-notice.json"),
        "date_of_birth": "2012",
        "height": 0,
        "languages_spoken_ids": ["QQQ"],
        "kind": "yellow",
    }
    translation = _translate(doc)
    assert translation.message.victims[0].date_of_birth is None
    lost = _losses(translation)
    assert lost["date_of_birth"] == "a year alone is not a date, and the shared schema has full dates only"
    assert lost["height"] == "0 stands for unknown in notices"
    assert (
        lost["languages_spoken_ids[0]"]
        == "no BCP 47 tag known for this code; the shared schema has no spoken languages"
    )
    assert lost["kind"] == "not a notice field this adapter knows"


def test_spoken_languages_know_both_iso_639_2_forms() -> None:
    assert [spoken_language(c) for c in ("FRE", "fra", "GER", "DEU", "SPA", "ENG", "QQQ")] == [
        "fr",
        "fr",
        "de",
        "de",
        "es",
        "en",
        None,
    ]


def test_a_date_of_event_may_be_a_time_with_its_zone() -> None:
    doc = {**_notice("yellow-notice.json"), "date_of_event": "2019-05-28T16:45:00+02:00"}
    assert _translate(doc).message.last_seen.at == datetime(2019, 5, 28, 14, 45, tzinfo=UTC)


# --- inbound: refused, every problem at once, by notice field ------------------------------------------------------


def test_every_problem_is_named_by_its_notice_field() -> None:
    doc = {
        "entity_id": "2019/4 0001",
        "forename": 5,
        "date_of_birth": "2012/13/40",
        "sex_id": "X",
        "nationalities": ["FR", "zz"],
        "height": "tall",
        "distinguishing_marks": "x" * 8001,
        "place": "Example-Town",
        "date_of_event": "yesterday",
        "country": "FR",
    }
    assert _problems(doc) == {
        "entity_id": "does not make a case id: letters, digits and . _ : / -, 100 at most",
        "forename": "expected text",
        "date_of_birth": "not a date: month must be in 1..12",
        "sex_id": "expected F, M or U",
        "height": "expected a number of metres (e.g. 1.21)",
        "date_of_event": "expected a date YYYY/MM/DD, or a time in ISO 8601 with its zone",
        "name": "Field required",
        "nationalities[1]": "not an ISO 3166-1 alpha-2 country code",
        "distinguishing_marks": "String should have at most 8000 characters",
    }


def test_dates_in_the_future_are_refused() -> None:
    tomorrow = NOW.date() + timedelta(days=1)
    assert _problems({**_notice("yellow-notice.json"), "date_of_birth": f"{tomorrow:%Y/%m/%d}"}) == {
        "date_of_birth": "is in the future"
    }
    in_an_hour = (NOW + timedelta(hours=1)).isoformat()
    assert _problems({**_notice("yellow-notice.json"), "date_of_event": in_an_hour}) == {
        "date_of_event": "is in the future"
    }


def test_warrants_are_checked_item_by_item() -> None:
    doc = {
        **_notice("red-notice.json"),
        "arrest_warrants": [{"charge": "Kidnapping", "issuing_country_id": "XX"}, "Extortion", {"charge": ["x"]}],
    }
    assert _problems(doc) == {
        "arrest_warrants[0].issuing_country_id": "not an ISO 3166-1 alpha-2 country code",
        "arrest_warrants[1]": "expected an object with charge and issuing_country_id",
        "arrest_warrants[2].charge": "expected text",
    }


def test_unreadable_input_is_refused_with_where_and_why() -> None:
    assert _problems(b'{\n  "forename": "Demo",\n  oops\n}') == {
        "line 3 column 3": "invalid JSON: Expecting property name enclosed in double quotes"
    }
    assert _problems(b'{"forename": "Jos\xe9"}') == {"": "not UTF-8 text (byte 17: 0xe9)"}
    assert _problems(b"[1, 2]") == {"": "expected a JSON object (one notice)"}
    assert _problems(b"[" * 100_000 + b"]" * 100_000) == {"": "invalid JSON: nested too deeply"}
    assert _problems(b'{"forename": "\\ud800"}')["forename"] == "not valid Unicode text (a lone surrogate escape)"
    assert _problems(b" " * 101, max_bytes=100) == {"": "101 bytes: larger than max_bytes (100)"}


def test_a_byte_order_mark_and_deeply_nested_extras_are_not_errors() -> None:
    doc = {**_notice("yellow-notice.json"), "extra": json.loads("[" * 600 + "]" * 600)}
    translation = _translate(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert "extra" in _losses(translation)


# --- outbound ------------------------------------------------------------------------------------------------------


def _render(message: Any) -> tuple[dict[str, Any], dict[str, str]]:
    rendered = NoticeJsonAdapter(settings=SETTINGS).render(message, message_id="m-1", sender="FR.GN")
    assert (rendered.media_type, rendered.suffix) == ("application/json", ".json")
    return json.loads(rendered.data), {item.field: item.reason for item in rendered.lost}


def test_a_yellow_notice_survives_a_round_trip_through_an_alert() -> None:
    original = _notice("yellow-notice.json")
    notice, _ = _render(_translate(original).message)
    assert notice["notice_type"] == "yellow"
    assert {key: notice.get(key) for key in KEPT} == {key: original[key] for key in KEPT}
    again = _translate(notice).message
    assert again.model_dump(exclude={"alert_id"}) == _translate(original).message.model_dump(exclude={"alert_id"})


def test_a_red_notice_survives_a_round_trip_through_case_information() -> None:
    original = _notice("red-notice.json")
    notice, _ = _render(_translate(original).message)
    kept = ("entity_id", "forename", "name", "date_of_birth", "sex_id", "nationalities", "place_of_birth")
    assert {key: notice.get(key) for key in kept} == {key: original[key] for key in kept}
    assert notice["distinguishing_marks"] == original["distinguishing_marks"]
    assert notice["arrest_warrants"] == [
        {"issuing_country_id": "ES", "charge": "Secuestro de menor", "charge_translation": "Kidnapping of a minor"},
        {"issuing_country_id": "FR", "charge": "Extortion"},
    ]


def test_an_alert_rendered_reports_the_shared_fields_a_notice_cannot_hold() -> None:
    alert = example("KidnappingAlert", NOW)
    notice, lost = _render(alert)
    assert notice["entity_id"] == "FR-GN-2026-000142"
    assert notice["height"] == 1.21
    assert notice["date_of_birth"] == "2018/04/02"
    assert {
        "headline",
        "description",
        "suspects",
        "vehicles",
        "handling",
        "issuer",
        "status",
        "sent_at",
        "alert_id",
        "urgency",
        "severity",
        "languages",
        "victims[0].clothing",
        "victims[0].photo",
        "last_seen.at",
        "last_seen.position",
    } <= set(lost)
    assert lost["handling"] == "a notice has no handling code: keep the message's TLP and restrictions with the file"
    assert lost["last_seen.at"] == "a notice's date_of_event has no time of day"


def test_a_cancel_and_a_sex_without_a_notice_code_are_reported() -> None:
    data = example("KidnappingAlert", NOW).model_dump()
    data |= {"msg_type": "Cancel", "references": ["a-1"]}
    data["victims"][0]["sex"] = "Other"
    cancel = KidnappingAlert.model_validate(data, context={"now": NOW})
    notice, lost = _render(cancel)
    assert "sex_id" not in notice
    assert lost["victims[0].sex"] == "notices write sex as F, M or U only"
    assert lost["msg_type"] == "a notice has no lifecycle: this notice stands for an alert's Cancel"


def test_case_information_renders_its_victim_and_reports_the_rest() -> None:
    info = example("CaseInformation", NOW)
    notice, lost = _render(info)
    assert notice["notice_type"] == "yellow"
    assert "forename" not in notice  # its only person is a suspect, and no arrest warrant makes it a red notice
    assert {"persons[0]", "summary", "subject", "evaluation", "intelligence", "phones", "accounts"} <= set(lost)
    assert notice["place"] == "A9 toll gate, Le Boulou"


def test_a_message_type_without_a_notice_form_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"op7\.exchange\.Receipt"):
        NoticeJsonAdapter(settings=SETTINGS).render(example("Receipt", NOW), message_id="m-1", sender="FR.GN")


# --- hostile input: an InputError or a translation, never anything else --------------------------------------------

NOTICE_KEYS = (
    *KEPT,
    "birth_name",
    "weight",
    "eyes_colors_id",
    "hairs_id",
    "languages_spoken_ids",
    "country_of_birth_id",
    "place_of_birth",
    "notice_type",
    "arrest_warrants",
    "_links",
    "_embedded",
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner))
WARRANTS = st.lists(
    st.dictionaries(st.sampled_from(("charge", "issuing_country_id", "charge_translation", "x")), JSON_VALUES),
    max_size=3,
)
#: Past every limit of the shared model (200, 8000 characters) up to a megabyte, in one to four bytes a character.
HUGE = st.builds(
    operator.mul, st.sampled_from(("x", "é", "\u20ac", "\U0001f600", "\x00")), st.sampled_from((201, 8_001, 1_000_000))
)


def _refused_or_translated(data: bytes) -> None:
    """The only outcomes allowed: a translation (sendable, its report printable) or an InputError whose problems
    are printable and named by notice field."""
    try:
        outcome: Translation[Any] | InputError = _translate(data)
    except InputError as exc:
        outcome = exc
    if isinstance(outcome, Translation):
        outcome.message.model_dump_json()
        json.dumps(outcome.report()).encode("utf-8")
        return
    assert outcome.problems
    str(outcome).encode("utf-8")
    roots = {p.path.split("[")[0].split(".")[0] for p in outcome.problems}
    assert roots <= {*NOTICE_KEYS, ""} or all(p.path.startswith("line ") for p in outcome.problems), roots


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _refused_or_translated(data)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(JSON_VALUES)
def test_random_json_values(value: Any) -> None:
    _refused_or_translated(json.dumps(value).encode())


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(("yellow-notice.json", "red-notice.json")),
    st.dictionaries(st.sampled_from(NOTICE_KEYS), JSON_VALUES, max_size=6),
    st.none() | WARRANTS,
)
def test_notices_with_random_typed_fields(base: str, changes: dict[str, Any], warrants: Any) -> None:
    doc = {**_notice(base), **changes}
    if warrants is not None:
        doc["arrest_warrants"] = warrants
    _refused_or_translated(json.dumps(doc).encode())


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(("yellow-notice.json", "red-notice.json")), st.sampled_from(NOTICE_KEYS), HUGE)
def test_huge_fields(base: str, key: str, text: str) -> None:
    _refused_or_translated(json.dumps({**_notice(base), key: text}, ensure_ascii=False).encode())


def test_a_megabyte_in_any_field_is_refused_or_left_behind() -> None:
    for base in ("yellow-notice.json", "red-notice.json"):
        for key in NOTICE_KEYS:
            _refused_or_translated(json.dumps({**_notice(base), key: "\u20ac" * 350_000}, ensure_ascii=False).encode())


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from((2, 500, 900, 1_000, 5_000, 100_000)), st.sampled_from(("[", '{"a":')), st.sampled_from(NOTICE_KEYS)
)
def test_deeply_nested_fields(depth: int, opener: str, key: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + ("" if opener == "[" else "1") + closer * depth
    _refused_or_translated(f'{{"entity_id": "2019/1", "{key}": {nested}}}'.encode())
