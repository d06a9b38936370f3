"""``op7 adapter`` as integrators run it: one home per node, a TOML file per run, local records in a folder or over
HTTP, through a real Kafka broker (the webhook tests on the embedded default), back out as local records."""

from __future__ import annotations

import csv
import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.delivering import verify_body
from adapters.webhook import OPENAPI
from tests.conftest import ROOT, Background, run_op7, trusting_homes

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
XSD = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "fixtures" / "cap" / "CAP-v1.2.xsd")))
AMBER = ROOT / "examples" / "adapters" / "cap" / "amber-oasis.xml"
ISSUER_TABLE = """[settings.issuer]
node = "FR.GN"
name = "Gendarmerie nationale"
desk = "Centre de commandement 24/7"
phone = "+33140000000"
"""
ISSUER = "[settings]\n" + ISSUER_TABLE
REFERENCE = "KARO@CLETS.DOJ.CA.GOV,KAR0-0306112239-SW,2003-06-11T22:39:00-07:00"


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """FR.GN sends, NL.NCC receives: a home each, trusting each other, on topics of their own."""
    monkeypatch.setenv("OP7_TOPIC_PREFIX", f"op7ad{uuid.uuid4().hex[:10]}")
    return trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})


def until(found: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.25)
    return value


def once(home: Path, name: str, config: Path, bootstrap: str | None) -> tuple[int, list[dict[str, Any]], str]:
    """``op7 adapter run NAME --config FILE --once --json``: exit status, one object per file, standard error."""
    result = run_op7(home, "adapter", "run", name, "--config", str(config), "--once", "--json", bootstrap=bootstrap)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines() if line.strip()], result.stderr


def receiving(homes: dict[str, Path], name: str, bootstrap: str | None, extra: str = "") -> tuple[Background, Path]:
    """NL.NCC's adapter run writing every received alert to a folder."""
    config = homes["nl"] / f"{name}-out.toml"
    config.write_text(
        f'as = "NL.NCC"\n{extra}\n[outbound]\ntopics = ["alerts"]\n[outbound.folder]\npath = "received"\n'
    )
    running = Background(homes["nl"], bootstrap, "adapter", "run", name, "--config", str(config))
    running.wait_for("running as NL.NCC")
    return running, homes["nl"] / "received"


def sending(homes: dict[str, Path], name: str, settings: str) -> tuple[Path, Path]:
    config = homes["fr"] / f"{name}-in.toml"
    config.write_text(f'as = "FR.GN"\n{settings}\n[inbound.folder]\npath = "drop"\n')
    drop = homes["fr"] / "drop"
    drop.mkdir(exist_ok=True)
    return config, drop


def cap_document(msg_type: str, identifier: str) -> bytes:
    """The AMBER example as an Update or Cancel of itself: its own identifier, referencing the alert."""
    text = AMBER.read_text(encoding="utf-8")
    text = text.replace("<identifier>KAR0-0306112239-SW</identifier>", f"<identifier>{identifier}</identifier>")
    text = text.replace("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")
    text = text.replace("<scope>Public</scope>", f"<scope>Public</scope>\n   <references>{REFERENCE}</references>")
    return text.encode()


@pytest.mark.kafka
def test_the_oasis_amber_alert_reaches_a_cap_system_across_kafka_in_both_languages_and_moves_with_its_update_and_cancel(
    homes: dict[str, Path], kafka_bootstrap: str
) -> None:
    assert run_op7(homes["fr"], "topics", "create", bootstrap=kafka_bootstrap).returncode == 0
    nl, received = receiving(homes, "cap", kafka_bootstrap)
    try:
        config, drop = sending(homes, "cap", ISSUER)
        shutil.copy(AMBER, drop / "amber.xml")
        code, [done], _ = once(homes["fr"], "cap", config, kafka_bootstrap)
        assert code == 0
        [record] = done["records"]
        assert record["state"] == "sent"
        lost = {item["field"] for item in record["lost"]}
        assert {"alert/sender", "alert/source", "alert/info[2]/event", "victims"} <= lost
        alert_id = record["message_id"]
        written = until(lambda: list(received.glob(f"{alert_id}.xml")), "the alert written as CAP")[0]
        document = etree.parse(str(written))
        XSD.assertValid(document)
        infos = document.getroot().findall(f"{CAP}info")
        assert [i.findtext(f"{CAP}language") for i in infos] == ["en-US", "es-US"]
        assert [i.findtext(f"{CAP}headline") for i in infos] == [
            "Amber Alert in Los Angeles County",
            "Alerta Amber en el condado de Los Ángeles",
        ]
        assert document.getroot().findtext(f"{CAP}identifier") == "KAR0-0306112239-SW"
        # An Update, then a Cancel, of the same alert: the same case at the other end.
        for n, msg_type in enumerate(("Update", "Cancel"), 1):
            (drop / f"{msg_type.lower()}.xml").write_bytes(cap_document(msg_type, f"KAR0-0306112239-SW-{n}"))
            code, [done], _ = once(homes["fr"], "cap", config, kafka_bootstrap)
            assert code == 0, done
            message_id = done["records"][0]["message_id"]
            path = until(lambda mid=message_id: list(received.glob(f"{mid}.xml")), f"the {msg_type} written")[0]
            root = etree.parse(str(path)).getroot()
            XSD.assertValid(root)
            assert root.findtext(f"{CAP}msgType") == msg_type
            assert root.findtext(f"{CAP}incidents") == "KAR0-0306112239-SW"
            assert root.findtext(f"{CAP}references").split(",")[1] == "KAR0-0306112239-SW"
        # The same file again: recognised, nothing sent twice.
        shutil.copy(AMBER, drop / "amber.xml")
        code, [again], _ = once(homes["fr"], "cap", config, kafka_bootstrap)
        assert [r["state"] for r in again["records"]] == ["already sent"]
        assert again["records"][0]["message_id"] == alert_id
        time.sleep(3)
        assert len(list(received.glob("*.xml"))) == 3
    finally:
        nl.stop()
    # Kept with the network's state: asked on the same network (the same Kafka), not the embedded default.
    losses = run_op7(homes["fr"], "adapter", "losses", alert_id, "cap", "--as", "FR.GN", bootstrap=kafka_bootstrap)
    assert losses.returncode == 0, losses.stderr
    assert any(item["field"] == "alert/sender" for item in json.loads(losses.stdout)["lost"])


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("name", "example", "settings", "sent"),
    [
        ("json", "../kidnapping-alert.json", 'type = "KidnappingAlert"\n', 1),
        ("notice", "notice/yellow-notice.json", ISSUER, 1),
        ("csv", "csv/alerts.csv", '[settings]\nmapping = "mapping.toml"\n' + ISSUER_TABLE, 3),
    ],
)
def test_a_local_record_crosses_kafka_and_comes_back_as_the_same_kind_of_record(
    homes: dict[str, Path], kafka_bootstrap: str, name: str, example: str, settings: str, sent: int
) -> None:
    assert run_op7(homes["fr"], "topics", "create", bootstrap=kafka_bootstrap).returncode == 0
    mapping = ROOT / "examples" / "adapters" / "csv" / "alerts.toml"
    for home in homes.values():
        shutil.copy(mapping, home / "mapping.toml")
    extra = '[settings]\nmapping = "mapping.toml"\n' if name == "csv" else ""
    nl, received = receiving(homes, name, kafka_bootstrap, extra)
    try:
        config, drop = sending(homes, name, settings)
        source = ROOT / "examples" / "adapters" / example
        shutil.copy(source, drop / source.name)
        dry = run_op7(homes["fr"], "adapter", "run", name, "--config", str(config), "--dry-run", "--json")
        assert dry.stdout.count('"message_type"') == sent and "Traceback" not in dry.stderr
        assert (drop / source.name).exists()  # a dry run moves nothing
        code, [done], _ = once(homes["fr"], name, config, kafka_bootstrap)
        assert [r["state"] for r in done["records"]] == ["sent"] * sent
        assert code == (1 if done["refused"] else 0)  # the example export has one bad row: reported, the rest sent
        ids = [r["message_id"] for r in done["records"]]
        suffix = ".csv" if name == "csv" else ".json"
        paths = until(
            lambda: (
                [p for i in ids for p in received.glob(f"{i}{suffix}")]
                if all((received / f"{i}{suffix}").exists() for i in ids)
                else []
            ),
            "every record written back",
        )
        if name == "json":
            back = json.loads(paths[0].read_text())
            assert back["sender"] == "FR.GN" and back["message_id"] == ids[0]
            original = json.loads(source.read_text())
            assert _within(original, back["message"]), back["message"]
        elif name == "notice":
            original, back = json.loads(source.read_text()), json.loads(paths[0].read_text())
            for field in ("forename", "name", "date_of_birth", "sex_id", "nationalities", "place", "country"):
                assert back[field] == original[field], field
        else:
            originals = {r["expediente"]: r for r in csv.DictReader(source.open(encoding="utf-8"), delimiter=";")}
            for path in paths:
                [back] = list(csv.DictReader(path.open(encoding="utf-8", newline=""), delimiter=";"))
                original = originals[back["expediente"]]
                for column in ("nombre", "apellidos", "sexo", "nacionalidades", "fecha_desaparicion", "lugar"):
                    assert back[column] == original[column], column
                assert back["observaciones_internas"] == ""  # ignored on the way in: not sent to other countries
    finally:
        nl.stop()


def _within(given: Any, got: Any) -> bool:
    """Whether everything ``given`` says is in ``got`` (which also has the defaults and the resolved times)."""
    if isinstance(given, dict):
        return isinstance(got, dict) and all(
            k in {"sent_at", "at"} or (k in got and _within(v, got[k])) for k, v in given.items()
        )
    if isinstance(given, list):
        return isinstance(got, list) and len(given) == len(got) and all(map(_within, given, got))
    return bool(given == got)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_webhook_takes_records_with_a_token_answers_every_problem_and_sends_a_retried_post_once(
    homes: dict[str, Path],
) -> None:
    token = "a-long-enough-test-token-0123456789"
    digest = __import__("hashlib").sha256(token.encode()).hexdigest()
    port = _free_port()
    config = homes["fr"] / "hook.toml"
    config.write_text(
        f'as = "FR.GN"\n{ISSUER}\n'
        f'[inbound.webhook]\nlisten = "127.0.0.1:{port}"\nmax_bytes = 200000\n'
        f'[[inbound.webhook.clients]]\nname = "records-system"\ntoken_sha256 = "{digest}"\n'
        f'json_format = "notice"\n'
    )
    hook = Background(homes["fr"], None, "adapter", "run", "notice", "--config", str(config))
    url = f"http://127.0.0.1:{port}"
    try:
        hook.wait_for("webhook listening")
        until(lambda: _up(url), "the webhook answering")
        notice = (ROOT / "examples" / "adapters" / "notice" / "yellow-notice.json").read_bytes()
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=30) as http:
            assert (
                http.post("/v1/records", content=notice, headers={"Content-Type": "application/json"}).status_code
                == 401
            )
            wrong = {"Authorization": "Bearer not-the-token", "Content-Type": "application/json"}
            assert http.post("/v1/records", content=notice, headers=wrong).status_code == 401
            assert (
                http.post("/v1/records", content=b"x", headers={**auth, "Content-Type": "text/plain"}).status_code
                == 415
            )
            big = http.post(
                "/v1/records",
                content=b"{" + b" " * 300_000 + b"}",
                headers={**auth, "Content-Type": "application/json"},
            )
            assert big.status_code == 413
            bad = http.post(
                "/v1/records",
                content=b'{"entity_id": "2019/1", "sex_id": "Q"}',
                headers={**auth, "Content-Type": "application/json"},
            )
            assert bad.status_code == 422
            assert any(p["field"] == "sex_id" for p in bad.json()["problems"]), bad.json()
            first = http.post("/v1/records", content=notice, headers={**auth, "Content-Type": "application/json"})
            assert first.status_code == 202, first.text
            [record] = first.json()["records"]
            assert record["state"] == "sent" and any(i["field"] == "weight" for i in record["lost"])
            again = http.post("/v1/records", content=notice, headers={**auth, "Content-Type": "application/json"})
            assert again.status_code == 200
            assert again.json()["records"][0] == {**record, "state": "already sent"}
            cap = http.post(
                "/v1/records", content=AMBER.read_bytes(), headers={**auth, "Content-Type": "application/cap+xml"}
            )
            assert cap.status_code == 202, cap.text
            assert http.get("/openapi.json").json() == OPENAPI
    finally:
        hook.stop()
    listed = run_op7(homes["nl"], "listen", "--as", "NL.NCC", "--topic", "alerts", "--json", "--timeout", "5")
    sent = [json.loads(line)["envelope"]["message_id"] for line in listed.stdout.splitlines() if '"envelope"' in line]
    assert sorted(sent) == sorted([record["message_id"], cap.json()["records"][0]["message_id"]])
    committed = json.loads((ROOT / "docs" / "webhook-openapi.json").read_text())
    assert committed == OPENAPI  # the committed document is the one served


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def posting(homes: dict[str, Path], port: int) -> tuple[Path, Background]:
    """NL.NCC's json adapter run POSTing every received alert to the local system on ``port``."""
    config = homes["nl"] / "out.toml"
    config.write_text(
        'as = "NL.NCC"\n[outbound]\ntopics = ["alerts"]\n[outbound.webhook]\n'
        f'url = "http://127.0.0.1:{port}/op7"\nsecret_env = "OP7_TEST_WEBHOOK_SECRET"\nfirst_wait = 0.2\n'
    )
    return config, Background(homes["nl"], None, "adapter", "run", "json", "--config", str(config))


class Receiver:
    """A local system's endpoint: answers ``status(n)`` to its n-th POST (by default 503 to the first, then 200);
    keeps what it got."""

    def __init__(self, port: int, status: Callable[[int], int] = lambda n: 503 if n == 1 else 200) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []

        async def take(request: Request) -> JSONResponse:
            self.got.append((dict(request.headers), await request.body()))
            return JSONResponse({}, status_code=status(len(self.got)))

        app = Starlette(routes=[Route("/op7", take, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "hmac-key-for-the-test-0123456789"
    monkeypatch.setenv("OP7_TEST_WEBHOOK_SECRET", value)
    return value


def test_received_alerts_are_posted_to_the_local_system_signed_retried_and_once(
    homes: dict[str, Path], secret: str
) -> None:
    port = _free_port()
    with Receiver(port) as local:
        _, nl = posting(homes, port)
        try:
            nl.wait_for("running as NL.NCC")
            sent = run_op7(
                homes["fr"], "send", "KidnappingAlert", str(ROOT / "examples" / "kidnapping-alert.json"), "--json"
            )
            assert sent.returncode == 0, sent.stderr
            until(lambda: len(local.got) >= 2, "the delivery retried after a 503")
        finally:
            nl.stop()
    (first_headers, first), (headers, body) = local.got[:2]
    assert body == first and headers["idempotency-key"] == first_headers["idempotency-key"]
    clock = int(time.time())  # the receiving system's clock, which the delivery's timestamp is checked against
    assert verify_body(secret.encode(), headers, body, now=clock)
    assert not verify_body(b"another-key-0123456789", headers, body, now=clock)
    # What the signature covers: a replay under another Idempotency-Key, or another sender, does not verify.
    assert not verify_body(secret.encode(), {**headers, "idempotency-key": "another-id"}, body, now=clock)
    assert not verify_body(secret.encode(), {**headers, "x-op7-sender": "XX.EVIL"}, body, now=clock)
    assert not verify_body(secret.encode(), headers, body + b" ", now=clock)
    assert not verify_body(secret.encode(), headers, body, now=clock + 600)  # too old
    message = json.loads(body)
    assert message["message_id"] == headers["idempotency-key"] and message["sender"] == "FR.GN"
    assert message["message"]["case_id"] == "FR-GN-2026-000142"
    assert len(local.got) == 2  # delivered once it was answered 200: not again
    listed = run_op7(homes["nl"], "adapter", "deliveries", "json", "--as", "NL.NCC", "--json")
    assert listed.returncode == 0, listed.stderr
    [delivery] = json.loads(listed.stdout)
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2
    assert delivery["message_id"] == headers["idempotency-key"]


def test_list_translate_and_token_for_an_integrator_with_clear_errors(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    listed = run_op7(home, "adapter", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {a["name"]: a for a in json.loads(listed.stdout)}
    assert set(names) >= {"cap", "csv", "json", "notice"}
    assert names["cap"]["directions"] == ["inbound", "outbound"]
    config = tmp_path / "cap.toml"
    config.write_text(f'as = "FR.GN"\n{ISSUER}\n[inbound.folder]\npath = "drop"\n')
    dry = run_op7(home, "adapter", "translate", "cap", str(AMBER), "--config", str(config), "--json")
    assert dry.returncode == 0, dry.stderr
    [shown] = [json.loads(line) for line in dry.stdout.splitlines()]
    assert shown["message"]["languages"] == ["en-US", "es-US"]
    assert shown["message"]["translations"][0]["headline"] == "Alerta Amber en el condado de Los Ángeles"
    source = {"field": "alert/source", "value": "SW", "reason": "CAP source: no place in the shared alert"}
    assert source in shown["lost"]
    back = run_op7(home, "adapter", "translate", "cap", str(ROOT / "examples" / "kidnapping-alert.json"), "--outbound")
    assert back.returncode == 0, back.stderr
    XSD.assertValid(etree.fromstring(back.stdout.encode()))
    csv_dry = run_op7(
        home,
        "adapter",
        "translate",
        "csv",
        str(ROOT / "examples" / "adapters" / "csv" / "alerts.csv"),
        "--set",
        f"mapping={ROOT / 'examples' / 'adapters' / 'csv' / 'alerts.toml'}",
        "--config",
        str(config),
    )
    assert csv_dry.returncode == 1  # one bad row: named with its line, column and value; the others shown
    assert 'alerts.csv line 4: sexo: not a code of columns.sexo.values (H, M, D) (got "Q")' in csv_dry.stderr
    assert csv_dry.stdout.count("(nothing sent)") == 3
    # op7 send reads CAP too; a CAP record names no issuer: without a directory listing FR.GN, it says what to do.
    unnamed = run_op7(home, "send", "KidnappingAlert", str(AMBER), "--format", "cap", "--as", "FR.GN")
    assert unnamed.returncode == 1 and "Traceback" not in unnamed.stderr
    assert "the issuing authority is not known" in unnamed.stderr
    token = run_op7(home, "adapter", "token", "records-system")
    assert token.returncode == 0 and "token_sha256" in token.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text('as = "FR.GN"\n[inbound.folder]\npoll = -1\n[outbound]\ncolour = "red"\n')
    refused = run_op7(home, "adapter", "run", "cap", "--config", str(broken))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    for named in ("inbound.folder.path", "inbound.folder.poll", "outbound.colour"):
        assert f"broken.toml: {named}" in refused.stderr, refused.stderr


def test_a_delivery_the_local_system_refuses_is_kept_as_failed_and_sent_again_on_demand(
    homes: dict[str, Path], secret: str
) -> None:
    port = _free_port()
    with Receiver(port, lambda n: 400 if n == 1 else 200) as local:
        config, nl = posting(homes, port)
        try:
            nl.wait_for("running as NL.NCC")
            alert = str(ROOT / "examples" / "kidnapping-alert.json")
            assert run_op7(homes["fr"], "send", "KidnappingAlert", alert).returncode == 0
            failed = until(
                lambda: json.loads(
                    run_op7(homes["nl"], "adapter", "deliveries", "json", "--as", "NL.NCC", "--failed", "--json").stdout
                ),
                "the delivery listed as failed",
            )
            assert len(local.got) == 1  # a 400 is the system's answer: not retried by itself
            # Kept with its bytes: the operator sends it again once the system is put right.
            again = run_op7(homes["nl"], "adapter", "redeliver", "json", "--config", str(config))
            assert again.returncode == 0, again.stderr
            assert f"{failed[0]['message_id']}: delivered" in again.stdout
        finally:
            err = nl.stop()
    assert failed[0]["state"] == "failed" and "HTTP 400" in failed[0]["last_error"]
    assert "failed for good" in err
    assert len(local.got) == 2 and local.got[0][1] == local.got[1][1]  # the same bytes
    assert local.got[0][0]["idempotency-key"] == local.got[1][0]["idempotency-key"]
    listed = run_op7(homes["nl"], "adapter", "deliveries", "json", "--as", "NL.NCC", "--failed", "--json")
    assert json.loads(listed.stdout) == []
