"""The dashboard's HTTP rules, through Starlette's test client: nothing without a session, CSRF on every POST,
viewers see and do not acknowledge, no outside resources, filters checked. (The whole dashboard, in a browser over
Kafka, is tests/browser/test_dashboard.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from broker.clock import ManualClock
from broker.ops.accounts import Accounts, Role, Session
from broker.ops.case_store import CaseStore
from broker.ops.cases import CaseBook, CaseView
from broker.ops.server import Dashboard, FeedHealth, Hub
from broker.wire.envelope import NodeIdentity
from tests.unit.test_ops_cases import alert, deliver

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PASSWORD = "a long operator password"


@pytest.fixture
def site(tmp_path: Path, fr: NodeIdentity) -> dict[str, Any]:
    clock = ManualClock(T0)
    accounts = Accounts(tmp_path / "accounts.db", clock)
    accounts.add("jdoe", PASSWORD, Role.OPERATOR)
    accounts.add("wall", PASSWORD, Role.VIEWER)
    book = CaseBook(CaseStore(tmp_path / "cases.db"), clock)
    book.apply(deliver(fr, alert(at=T0)))
    acknowledged: list[tuple[str, str]] = []

    async def acknowledge(case_id: str, session: Session) -> tuple[CaseView, str]:
        acknowledged.append((case_id, session.operator.name))
        return book.acknowledge(case_id, session.operator.name, "NL.NCC", "receipt-1"), "receipt-1"

    dashboard = Dashboard(book, accounts, Hub(), FeedHealth(clock), acknowledge, "NL.NCC")
    return {"client": TestClient(dashboard.app()), "acknowledged": acknowledged}


def _log_in(client: TestClient, name: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login", data={"username": name, "password": PASSWORD, "csrf": token.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    me = client.get("/api/me").json()
    return str(me["csrf"])


def test_nothing_but_the_login_page_is_served_without_a_session(site: dict[str, Any]) -> None:
    client: TestClient = site["client"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    for path in ("/api/me", "/api/cases", "/api/cases/FR.GN/FR-GN-2026-000142", "/api/events", "/api/health"):
        assert client.get(path).status_code == 401, path
    assert client.get("/static/app.js").status_code == 404
    assert client.get("/static/app.css").status_code == 200  # the login page's own style
    assert client.get("/static/../accounts.db").status_code == 404
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_a_login_needs_its_form_token_and_the_right_password(site: dict[str, Any]) -> None:
    client: TestClient = site["client"]
    forged = client.post("/login", data={"username": "jdoe", "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 400 and "The form expired" in forged.text
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    wrong = client.post("/login", data={"username": "jdoe", "password": "wrong password!", "csrf": token.group(1)})
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
    assert client.get("/api/me").status_code == 401


def test_an_operator_acknowledges_with_the_csrf_token_and_a_viewer_cannot(site: dict[str, Any]) -> None:
    client: TestClient = site["client"]
    csrf = _log_in(client, "jdoe")
    cases = client.get("/api/cases").json()["cases"]
    assert [c["case_id"] for c in cases] == ["FR.GN/FR-GN-2026-000142"]
    assert client.post("/api/cases/FR.GN/FR-GN-2026-000142/ack").status_code == 403  # no token
    assert client.post("/api/cases/FR.GN/FR-GN-2026-000142/ack", headers={"X-CSRF-Token": "x"}).status_code == 403
    done = client.post("/api/cases/FR.GN/FR-GN-2026-000142/ack", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["receipt_id"] == "receipt-1"
    assert done.json()["case"]["acknowledged"][0]["operator"] == "jdoe"
    assert client.post("/api/cases/NO-SUCH/ack", headers={"X-CSRF-Token": csrf}).status_code == 404
    client.cookies.clear()
    csrf = _log_in(client, "wall")
    refused = client.post("/api/cases/FR.GN/FR-GN-2026-000142/ack", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and "viewer" in refused.json()["error"]
    assert site["acknowledged"] == [("FR.GN/FR-GN-2026-000142", "jdoe")]


def test_a_wrong_filter_is_answered_with_what_is_wrong(site: dict[str, Any]) -> None:
    client: TestClient = site["client"]
    _log_in(client, "jdoe")
    assert client.get("/api/cases?view=sideways").status_code == 400
    bad = client.get("/api/cases?severity=Apocalyptic")
    assert bad.status_code == 400 and "severity" in bad.json()["error"]
    assert client.get("/api/cases?status=Actual").json()["cases"] == []  # the example is an Exercise
    assert len(client.get("/api/cases?status=Exercise&country=FR&q=lyon").json()["cases"]) == 1
