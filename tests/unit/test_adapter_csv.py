"""The declarative CSV mapping adapter: the example export read row by row, the mapping file checked whole, a received
message written back as a row, and hostile files that yield clear errors per row, never a crash."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import Translation
from adapters.csv_mapping import FORMULA_START, MAX_CELL, CsvMappingAdapter
from broker.errors import ConfigError, InputError
from broker.models import KidnappingAlert, Message, Severity, Sex, Tlp, message_model
from tests.conftest import ROOT, example

#: The time of sending of every test: fixed, so that the tests pass on any date (the export's dates are absolute).
NOW = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
EXAMPLE = ROOT / "examples" / "adapters" / "csv"
ISSUER = {"node": "ES.PN", "name": "Policia Demo", "desk": "Sala Demo 24/7", "phone": "+34910000000"}
HEADER = (EXAMPLE / "alerts.csv").read_text(encoding="utf-8").splitlines()[0]
COLUMNS = HEADER.split(";")
GOOD_ROW = (EXAMPLE / "alerts.csv").read_text(encoding="utf-8").splitlines()[1]
GOOD_CELLS = next(csv.reader([GOOD_ROW], delimiter=";"))

#: The least a KidnappingAlert mapping must feed; tests add their keys to it.
MINIMAL = """
message_type = "KidnappingAlert"
[constants]
msg_type = "Alert"
languages = ["en"]
[columns.ref]
to = "case_id"
[columns.title]
to = "headline"
[columns.first]
to = "victims[0].given_names"
[columns.last]
to = "victims[0].family_names"
"""


@cache
def example_adapter() -> CsvMappingAdapter:
    return CsvMappingAdapter(settings={"mapping": str(EXAMPLE / "alerts.toml"), "issuer": ISSUER, "status": "Exercise"})


def adapter_of(tmp_path: Path, toml: str, name: str = "alerts.toml", **more: Any) -> CsvMappingAdapter:
    (tmp_path / name).write_text(toml, encoding="utf-8")
    return CsvMappingAdapter(settings={"mapping": str(tmp_path / name), "issuer": ISSUER, **more})


def results(adapter: CsvMappingAdapter, text: str | bytes, source: str = "alerts.csv") -> list[Any]:
    data = text.encode() if isinstance(text, str) else text
    return list(adapter.translate_all(data, source, now=NOW))


def alert(translation: Translation[Message]) -> KidnappingAlert:
    assert isinstance(translation.message, KidnappingAlert)
    return translation.message


def problems(error: Any) -> dict[str, str | None]:
    assert isinstance(error, InputError), error
    return {p.path: p.got for p in error.problems}


# --- the example export ----------------------------------------------------------------------------------------


def test_the_example_export_goes_through_but_its_bad_row() -> None:
    out = results(example_adapter(), (EXAMPLE / "alerts.csv").read_bytes())
    assert [type(r) for r in out] == [Translation, Translation, InputError, Translation]
    assert [r.source for r in out] == [f"alerts.csv line {n}" for n in (2, 3, 4, 5)]
    # The bad row: each problem names its column and the local value.
    assert problems(out[2]) == {"sexo": '"Q"', "fecha_desaparicion": '"32.12.2025 09:00"'}
    assert "alerts.csv line 4: sexo: not a code of columns.sexo.values (H, M, D)" in str(out[2])
    first: KidnappingAlert = out[0].message
    assert first.case_id == "ES-DEMO-2025-0001" and first.msg_type == "Alert" and first.languages == ("es",)
    victim = first.victims[0]
    assert (victim.given_names, victim.family_names, victim.sex) == ("Demo", "Example-Child", Sex.FEMALE)
    assert victim.date_of_birth == date(2017, 4, 2) and victim.height_cm == 121
    assert victim.nationalities == ("ES", "FR")
    assert first.last_seen is not None and first.last_seen.country == "ES"
    assert first.last_seen.at == datetime(2025, 12, 31, 13, 5, tzinfo=UTC)  # 14:05 in Madrid, winter time
    assert first.last_seen.place == "Colegio Ejemplo; calle Ficticia 1, Villademo"
    assert first.severity is Severity.EXTREME and first.vehicles[0].plate == "0000-DEM"
    # What the export does not say comes from the settings and the time of sending.
    assert first.issuer.node == "ES.PN" and first.status == "Exercise" and first.handling.tlp is Tlp.AMBER
    assert first.sent_at == NOW
    assert out[0].record == GOOD_ROW.encode()  # the row's own bytes: read again, it is the same record
    assert out[1].message.victims[0].sex is Sex.MALE and out[1].message.victims[0].height_cm is None


def test_the_loss_report_lists_unmapped_and_ignored_cells_per_row() -> None:
    out = results(example_adapter(), (EXAMPLE / "alerts.csv").read_bytes())
    assert [(x.field, x.value) for x in out[0].lost] == [
        ("observaciones_internas", "Seguimiento por el grupo 3"),
        ("unidad", "Grupo Demo"),
    ]
    assert "not for other countries" in out[0].lost[0].reason and "unmapped column" in out[0].lost[1].reason
    assert out[1].lost == ()  # empty cells are not given, so not lost
    report = out[3].report("0190a0a0-0000-7000-8000-000000000000")
    assert report["source"] == "alerts.csv line 5" and report["message_type"] == "op7.alert.KidnappingAlert"
    assert report["lost"] == [
        {"field": "unidad", "value": "Grupo Demo", "reason": "unmapped column: the mapping has no entry for it"}
    ]


def test_translate_reads_a_file_of_exactly_one_row() -> None:
    adapter = example_adapter()
    one = adapter.translate(f"{HEADER}\n{GOOD_ROW}\n".encode(), "one.csv", now=NOW)
    assert one.source == "one.csv line 2"
    with pytest.raises(InputError, match="exactly one data row, found 2"):
        adapter.translate(f"{HEADER}\n{GOOD_ROW}\n{GOOD_ROW}\n".encode(), "two.csv", now=NOW)
    with pytest.raises(InputError, match="exactly one data row, found 0"):
        adapter.translate(f"{HEADER}\n".encode(), "none.csv", now=NOW)


def test_model_problems_are_named_by_column_and_local_value() -> None:
    row = GOOD_ROW.replace(";121;ES|FR;", ";999;ES|XX;").replace("Example-Child;", ";")
    (error,) = results(example_adapter(), f"{HEADER}\n{row}\n")
    found = problems(error)
    assert found["estatura_cm"] == '"999"'
    assert found["nacionalidades[1]"] == '"XX"'
    assert "apellidos" in found and "required, but the cell is empty" in str(error)
    assert error.source == "alerts.csv line 2"


def test_header_problems_refuse_the_whole_file() -> None:
    adapter = example_adapter()
    (error,) = results(adapter, HEADER.replace("sexo;", "") + "\n" + GOOD_ROW + "\n")
    assert error.source == "alerts.csv line 1" and "sexo" in problems(error)
    (error,) = results(adapter, HEADER.replace(";", ",") + "\n")
    assert "is the delimiter ';' right?" in str(error)
    (error,) = results(adapter, b"")
    assert "empty" in str(error)
    (error,) = results(adapter, f"{HEADER};sexo\n")
    assert problems(error) == {"(column 16)": '"sexo"'} and "a second column of that name" in str(error)


def test_rows_of_another_width_and_blank_lines() -> None:
    text = f"\n{HEADER}\r\n\r\n{GOOD_ROW};extra\r\n;;;;;;;;;;;;;;\r\n{GOOD_ROW}\r\n"
    out = results(example_adapter(), text)
    assert [r.source for r in out] == ["alerts.csv line 4", "alerts.csv line 6"]
    assert "16 cells, where the header has 15" in str(out[0]) and isinstance(out[1], Translation)
    # A quoted cell over three lines: the next record is counted from the line it starts on.
    multi = GOOD_ROW.replace("Abrigo rojo, botas azules", '"Abrigo rojo,\r\nbotas\nazules"')
    out = results(example_adapter(), f"{HEADER}\n{multi}\n{GOOD_ROW.replace(';121;', ';1;')}\n")
    assert out[0].message.victims[0].clothing == "Abrigo rojo,\r\nbotas\nazules" and out[0].record == multi.encode()
    assert out[1].source == "alerts.csv line 5" and problems(out[1]) == {"estatura_cm": '"1"'}


# --- encodings, sizes, times -----------------------------------------------------------------------------------


def test_undecodable_bytes_are_refused_in_their_row_only() -> None:
    latin = GOOD_ROW.encode().replace(b";Demo;", b";Dem\xf3;")  # an accent of another encoding
    data = f"{HEADER}\n{GOOD_ROW}\n".encode() + latin + b"\n"
    good, bad = results(example_adapter(), data)
    assert isinstance(good, Translation)
    assert bad.source == "alerts.csv line 3" and problems(bad) == {"nombre": '"Dem\\\\xf3"'}
    assert "not utf-8 text" in str(bad)


def test_a_byte_order_mark_is_accepted_in_utf8_and_refused_in_another_encoding(tmp_path: Path) -> None:
    (one,) = results(example_adapter(), b"\xef\xbb\xbf" + f"{HEADER}\n{GOOD_ROW}\n".encode())
    assert isinstance(one, Translation)
    latin = adapter_of(tmp_path, 'encoding = "latin-1"\n' + MINIMAL)
    (error,) = results(latin, b"\xef\xbb\xbfref,title,first,last\n")
    assert "byte order mark" in str(error)
    (ok,) = results(latin, "ref,title,first,last\nX-1,Ni\xf1o,Demo,Example-Child\n".encode("latin-1"))
    assert ok.message.headline == "Ni\xf1o"


def test_huge_cells_are_reported_not_crashed_on() -> None:
    over = GOOD_ROW.replace("Abrigo rojo", "x" * (MAX_CELL + 10))
    long = GOOD_ROW.replace("Abrigo rojo", "x" * 9000)
    too_big, too_long, fine = results(example_adapter(), f"{HEADER}\n{over}\n{long}\n{GOOD_ROW}\n")
    assert too_big.source == "alerts.csv line 2" and f"longer than {MAX_CELL} characters" in str(too_big)
    assert "vestimenta" in problems(too_big)
    assert too_long.source == "alerts.csv line 3" and "vestimenta" in problems(too_long)
    assert isinstance(fine, Translation)


def test_times_follow_the_mapping_zone_and_its_clock_changes() -> None:
    summer = GOOD_ROW.replace("31.12.2025 14:05", "14.07.2025 14:05")
    gap = GOOD_ROW.replace("31.12.2025 14:05", "30.03.2025 02:30")  # Madrid went from 02:00 to 03:00
    relative = GOOD_ROW.replace("31.12.2025 14:05", "-35m")
    out = results(example_adapter(), f"{HEADER}\n{summer}\n{gap}\n{relative}\n")
    assert out[0].message.last_seen.at == datetime(2025, 7, 14, 12, 5, tzinfo=UTC)
    assert "does not exist in Europe/Madrid" in str(out[1]) and "fecha_desaparicion" in problems(out[1])
    assert out[2].message.last_seen.at == datetime(2026, 1, 10, 8, 25, tzinfo=UTC)


def test_iso_times_without_a_format_and_without_a_zone(tmp_path: Path) -> None:
    toml = MINIMAL + '[columns.seen]\nto = "last_seen.at"\n[columns.place]\nto = "last_seen.place"\n'
    toml += '[columns.country]\nto = "last_seen.country"\n'
    adapter = adapter_of(tmp_path, toml)
    text = "ref,title,first,last,seen,place,country\n"
    text += "X-1,T,Demo,Example-Child,2025-12-31T14:05:00-06:00,Demo,MX\n"
    text += "X-2,T,Demo,Example-Child,2025-12-31 14:05,Demo,MX\n"
    aware, naive = results(adapter, text)
    assert aware.message.last_seen.at == datetime(2025, 12, 31, 20, 5, tzinfo=UTC)
    assert "sets no timezone" in str(naive) and "seen" in problems(naive)


# --- the mapping file ------------------------------------------------------------------------------------------


def test_every_problem_of_a_mapping_file_in_one_error(tmp_path: Path) -> None:
    toml = """
message_type = "KidnappingAlert"
timezone = "Europe/Atlantis"
colour = "blue"
[constants]
msg_type = "Alrt"
languages = ["es"]
[columns.expediente]
to = "case_id"
[columns.nombre]
to = "victims[0].given_name"
[columns.apellidos]
to = "victims[0].family_names"
[columns.sexo]
to = "victims[0].sex"
values = { H = "Male", M = "Q" }
[columns.fecha]
to = "last_seen.at"
date_format = "%d.%m"
[columns.lugar]
to = "last_seen.place"
split = "|"
[columns.otro]
to = "case_id"
[columns.nota]
ignore = ""
[columns.extra]
to = "victims"
"""
    with pytest.raises(ConfigError) as caught:
        adapter_of(tmp_path, toml)
    text = str(caught.value)
    expected = [
        "alerts.toml: columns.sexo.values: 'Q' is not a Sex (Female, Male, Other, Unknown)",
        "alerts.toml: colour: unknown key",
        "alerts.toml: timezone: 'Europe/Atlantis' is not an IANA time zone",
        "alerts.toml: constants.msg_type: 'Alrt' is not a AlertMessageType",
        "alerts.toml: columns.nombre.to: 'victims[0].given_name': Victim has no field 'given_name'",
        "alerts.toml: columns.fecha.date_format: '%d.%m' is not a strptime format",
        "alerts.toml: columns.lugar.split: a non-empty separator, for a list field only",
        "alerts.toml: columns.otro.to: case_id is already fed by columns.expediente",
        "alerts.toml: columns.nota.ignore: the reason it is left out",
        "alerts.toml: columns.extra.to: 'victims' holds Victim records",
        "alerts.toml: headline: KidnappingAlert requires it, but no column or constant feeds it",
        "alerts.toml: last_seen.country: LastSeen requires it",
    ]
    assert [line for line in expected if line not in text] == []
    assert all(line.startswith(str(tmp_path / "alerts.toml")) for line in text.splitlines())


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('message_type = "Kidnapping"\n', "not a shared message type"),
        ("[columns.x]\nto = 1\n", "message_type: required"),
        ('message_type = "KidnappingAlert"\ndelimiter = ";;"\n', "delimiter: one character"),
        ('message_type = "KidnappingAlert"\nencoding = "utf-16"\n', "not an ASCII-compatible text encoding"),
        ('message_type = "KidnappingAlert"\nencoding = "klingon"\n', "not an ASCII-compatible text encoding"),
        ('message_type = "KidnappingAlert"\n', "columns: required"),
        (MINIMAL + '[columns.x]\nto = "victims.given_names"\n', "victims is a list: give an item (victims[0])"),
        (MINIMAL + '[columns.x]\nto = "case_id.x"\n', "case_id has no fields"),
        (MINIMAL + '[columns.x]\nto = "victims[100].sex"\n', "is not a field path"),
        (MINIMAL + '[columns.x]\nto = "headline"\nbogus = 1\n', "columns.x.bogus: unknown key"),
        (MINIMAL + '[columns.x]\nto = "severity"\ndate_format = "%d"\n', "for a date or time field only"),
        (MINIMAL + '[columns.x]\nto = "victims[0].date_of_birth"\ndate_format = "%q"\n', "not a strptime format"),
        (MINIMAL + '[columns.x]\nto = "expires_at"\ndate_format = "%d.%m.%Y"\n', "hours and minutes"),
        (MINIMAL + '[columns.x]\nignore = "why"\nto = "headline"\n', "alone"),
        (MINIMAL + '[constants.last_seen]\nat = "yesterday"\n', "constants.last_seen.at"),
        ("= broken", "not a TOML file"),
    ],
)
def test_mapping_checks(tmp_path: Path, toml: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        adapter_of(tmp_path, toml)


def test_the_mapping_setting_is_required_and_its_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set mapping"):
        CsvMappingAdapter(settings={"issuer": ISSUER})
    with pytest.raises(ConfigError, match="cannot read the mapping file"):
        CsvMappingAdapter(settings={"mapping": str(tmp_path / "none.toml")})
    with pytest.raises(ConfigError, match="unknown setting"):
        CsvMappingAdapter(settings={"mapping": str(EXAMPLE / "alerts.toml"), "colour": "blue"})
    with pytest.raises(ConfigError, match="asked for CaseInformation"):
        CsvMappingAdapter(message_model("CaseInformation"), settings={"mapping": str(EXAMPLE / "alerts.toml")})
    assert CsvMappingAdapter.directions() == ("inbound", "outbound")


def test_constants_and_columns_override_the_envelope(tmp_path: Path) -> None:
    toml = (
        MINIMAL
        + """[constants.handling]
tlp = "RED"
[constants.issuer]
node = "ES.PN"
name = "Policia Demo"
"contact.desk" = "Sala Demo"
[columns.phone]
to = "issuer.contact.phone"
"""
    )
    (tmp_path / "m.toml").write_text(toml, encoding="utf-8")
    adapter = CsvMappingAdapter(settings={"mapping": str(tmp_path / "m.toml")})  # no issuer in the settings
    good, bad = results(adapter, "ref,title,first,last,phone\nX-1,T,Demo,Example-Child,+34910000000\nX-2,T,D,E,12\n")
    assert good.message.handling.tlp is Tlp.RED and good.message.issuer.contact.desk == "Sala Demo"
    assert good.message.issuer.contact.phone == "+34910000000"
    assert problems(bad) == {"phone": '"12"'}
    # A mapping may feed part of the issuer, the settings the rest.
    phone = adapter_of(tmp_path, MINIMAL + '[columns.phone]\nto = "issuer.contact.phone"\n', "phone.toml")
    (out,) = results(phone, "ref,title,first,last,phone\nX-1,T,Demo,Example-Child,+34919999999\n")
    assert out.message.issuer.contact.phone == "+34919999999" and out.message.issuer.node == "ES.PN"
    without = adapter_of(tmp_path, MINIMAL, "plain.toml", issuer=None)
    with pytest.raises(ConfigError, match="issuing authority is not known"):
        results(without, "ref,title,first,last\n")


# --- writing ---------------------------------------------------------------------------------------------------


def rendered_rows(data: bytes, delimiter: str = ";") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))


def test_render_writes_the_mapped_columns_and_reports_the_rest() -> None:
    adapter = example_adapter()
    message = results(adapter, f"{HEADER}\n{GOOD_ROW}\n")[0].message
    other = message.model_copy(
        update={
            "description": "Seen with an adult",
            "victims": (message.victims[0].model_copy(update={"sex": Sex.OTHER}),),
        }
    )
    out = adapter.render(other, message_id="0190a0a0-0000-7000-8000-000000000000", sender="ES.PN")
    assert (out.media_type, out.suffix) == ("text/csv", ".csv") and out.data.endswith(b"\r\n")
    header, row = rendered_rows(out.data)
    cells = dict(zip(header, row, strict=True))
    assert header == [c for c in COLUMNS if c != "unidad"]  # the mapping's columns, in its order
    assert cells["fecha_desaparicion"] == "31.12.2025 14:05" and cells["fecha_nacimiento"] == "02.04.2017"
    assert cells["nacionalidades"] == "ES|FR" and cells["gravedad"] == "1" and cells["sexo"] == ""
    assert cells["observaciones_internas"] == ""
    lost = {x.field: x.reason for x in out.lost}
    assert lost["victims[0].sex"] == "columns.sexo.values has no local code for it"
    assert lost["description"] == "no column of the mapping holds it"
    assert {"issuer.node", "sent_at", "alert_id", "handling.tlp", "status"} <= set(lost)
    # Fields equal to the mapping's constants are implied by the format, so not lost.
    assert not {"msg_type", "languages", "last_seen.country", "urgency"} & set(lost)


def test_render_refuses_another_message_type() -> None:
    with pytest.raises(ConfigError, match="maps KidnappingAlert messages, not CaseInformation"):
        example_adapter().render(example("CaseInformation", NOW), message_id="x", sender="ES.PN")


def test_inbound_then_outbound_gives_back_the_mapped_cells() -> None:
    source = (EXAMPLE / "alerts.csv").read_text(encoding="utf-8").splitlines()
    header = source[0].split(";")
    adapter = example_adapter()
    for line, translated in zip(source[1:], results(adapter, "\n".join(source)), strict=True):
        if not isinstance(translated, Translation):
            continue
        original = dict(zip(header, next(csv.reader([line], delimiter=";")), strict=True))
        written_header, written = rendered_rows(adapter.render(translated.message, message_id="x", sender="ES.PN").data)
        back = dict(zip(written_header, written, strict=True))
        mapped = [c for c in header if c not in ("observaciones_internas", "unidad")]
        assert {c: back[c] for c in mapped} == {c: original[c] for c in mapped}


def test_a_latin1_mapping_reports_what_it_cannot_write(tmp_path: Path) -> None:
    adapter = adapter_of(tmp_path, 'encoding = "latin-1"\n' + MINIMAL)
    (out,) = results(adapter, "ref,title,first,last\nX-1,Demo,Demo,Example-Child\n")
    message = out.message.model_copy(update={"headline": "Demo \u20ac"})
    rendered = adapter.render(message, message_id="x", sender="ES.PN")
    assert rendered.data.decode("latin-1").splitlines()[1] == "X-1,Demo ?,Demo,Example-Child"
    assert any(x.field == "headline" and "latin-1 cannot write" in x.reason for x in rendered.lost)


@pytest.mark.parametrize("headline", ['=HYPERLINK("http://x.example")', "+1", "-2+3", "@SUM(A1)", "'=1", "''+x"])
def test_formula_injection_is_quoted_out_and_read_back(headline: str) -> None:
    adapter = example_adapter()
    message = results(adapter, f"{HEADER}\n{GOOD_ROW}\n")[0].message.model_copy(update={"headline": headline})
    data = adapter.render(message, message_id="x", sender="ES.PN").data
    cells = dict(zip(*rendered_rows(data), strict=True))
    assert cells["titular"] == "'" + headline
    assert alert(adapter.translate(data, "back.csv", now=NOW)).headline == headline


# --- hostile input ---------------------------------------------------------------------------------------------

CELL = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Zs", "Po", "Sm"]), max_size=20),
    st.sampled_from(["", "H", "M", "1", "ES|FR", "31.12.2025 14:05", "-35m", "+999999w", "'=1", "01.01.0001 00:00"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "\u00e9", ";", '"', "\n"]), st.integers(0, 2 * MAX_CELL)),
)
#: Bounded in time; no example database written into the checkout.
HOSTILE = settings(deadline=None, max_examples=100, database=None, suppress_health_check=[HealthCheck.too_slow])


def assert_clear(outcome: Any, source: str) -> None:
    """A translation, or an error naming the record, each problem printable and naming a field."""
    assert isinstance(outcome, Translation | InputError), repr(outcome)
    if isinstance(outcome, InputError):
        assert outcome.source.startswith(source) and outcome.problems
        assert str(outcome).encode("utf-8")  # printable: no undecodable bytes left in it
        for problem in outcome.problems:
            field = problem.path.split("[")[0].split(".")[0]
            assert (
                field in COLUMNS
                or field in KidnappingAlert.model_fields
                or problem.path.startswith(("constants.", "line ", "(column "))
                or field == ""
            ), problem


@HOSTILE
@given(st.lists(st.dictionaries(st.integers(0, len(COLUMNS) - 1), CELL, min_size=1, max_size=4), max_size=3))
def test_hostile_cells_give_one_clear_outcome_per_row(changes: list[dict[int, str]]) -> None:
    # Each row is the good one with a few cells replaced: every column's reading meets hostile values.
    rows = [[changed.get(i, cell) for i, cell in enumerate(GOOD_CELLS)] for changed in [{}, *changes]]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    outcomes = results(example_adapter(), out.getvalue(), "fuzz.csv")
    assert len(outcomes) == len(rows)  # one per row, whatever the others hold
    assert isinstance(outcomes[0], Translation)
    for outcome in outcomes:
        assert_clear(outcome, "fuzz.csv line ")


@HOSTILE
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes_give_clear_outcomes(data: bytes, after_header: bool) -> None:
    if after_header:
        data = HEADER.encode() + b"\n" + data
    for outcome in results(example_adapter(), data, "fuzz.csv"):
        assert_clear(outcome, "fuzz.csv")


@HOSTILE
@given(st.sampled_from(["", "'", "'=", *FORMULA_START]), st.text(min_size=1, max_size=200), st.text(max_size=300))
def test_written_cells_never_start_a_formula_and_read_back(start: str, headline: str, clothing: str) -> None:
    adapter = example_adapter()
    base = results(adapter, f"{HEADER}\n{GOOD_ROW}\n")[0].message
    data = base.model_dump(exclude={"alert_id"})
    data["headline"], data["victims"][0]["clothing"] = start + headline, start + clothing or None
    try:
        message = KidnappingAlert.model_validate(data, context={"now": NOW})
    except ValueError:
        return  # not a message anyone could send (blank headline, too long once stripped)
    written = adapter.render(message, message_id="x", sender="ES.PN").data
    for cell in rendered_rows(written)[1]:
        assert not cell.startswith(FORMULA_START)
    back = alert(adapter.translate(written, "back.csv", now=NOW))
    assert (back.headline, back.victims[0].clothing) == (message.headline, message.victims[0].clothing)
