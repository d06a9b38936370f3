"""The operations centre's dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium), over a real Kafka broker, set up as a centre sets it up: its own home, ``op7 ops user add``, ``op7 ops
serve``; the issuing node in another home, sending with ``op7 alert send`` and reading its inbox with ``op7 inbox
watch``. The run writes the screenshots of the list and the detail view to docs/screenshots/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT, Background, run_op7, trusting_homes, under_ci

pytestmark = pytest.mark.kafka

CHROMIUM = os.environ.get("OP7_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OP7_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "a long operator password"
SHOTS = ROOT / "docs" / "screenshots"
CONTACT = (
    "--agency",
    "Politie Landelijke Eenheid",
    "--desk",
    "Landelijk Operationeel Centrum",
    "--phone",
    "+31880000000",
)
FR_CONTACT = ("--agency", "Gendarmerie nationale", "--desk", "Centre de commandement 24/7", "--phone", "+33140000000")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = f"no Chromium at {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        if under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000", "--lang=en"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("OP7_TOPIC_PREFIX", f"op7ui{uuid.uuid4().hex[:10]}")
    return trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})


def _alert(tmp_path: Path, name: str, **changes: Any) -> str:
    data = json.loads((ROOT / "examples" / "kidnapping-alert.json").read_text())
    data.update(changes)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return str(path)


def _row(driver: WebDriver, case_id: str) -> WebElement | None:
    """The row of FR.GN's case ``case_id`` (the centre keys a case by its issuing node and its id)."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'#cases .case-row[data-case-id="FR.GN/{case_id}"]')
    return rows[0] if rows else None


def _log_in(driver: WebDriver, url: str, name: str, password: str) -> None:
    driver.get(f"{url}/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.login-form button[type=submit]").click()


def _wait(driver: WebDriver, timeout: float, what: str, until: Any) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: until())
    except WebDriverException as exc:
        raise AssertionError(f"not {what} within {timeout} s") from exc


def test_the_dashboard_shows_a_new_alert_live_highlights_its_update_acknowledges_it_and_survives_a_restart(
    homes: dict[str, Path], kafka_bootstrap: str, browser: WebDriver, tmp_path: Path
) -> None:
    fr, nl = homes["fr"], homes["nl"]
    assert run_op7(nl, "topics", "create", bootstrap=kafka_bootstrap).returncode == 0
    env_password = {**os.environ, "OP7_OPS_PASSWORD": PASSWORD, "OP7_HOME": str(nl)}
    for name, role in (("jdoe", "operator"), ("wall", "viewer")):
        added = subprocess.run(
            [sys.executable, "-m", "broker.cli", "ops", "user", "add", name, "--role", role],
            env=env_password,
            capture_output=True,
            text=True,
            check=False,
        )
        assert added.returncode == 0, added.stderr
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ("ops", "serve", "--as", "NL.NCC", "--listen", f"127.0.0.1:{port}", *CONTACT)
    dashboard = Background(nl, kafka_bootstrap, *serve)

    def restarted(running: Background, *, lose_store: bool = False) -> Background:
        running.stop()
        for lost in nl.glob("state/*/ops-NL.NCC.db*") if lose_store else ():
            lost.unlink()
        again = Background(nl, kafka_bootstrap, *serve)
        again.wait_for("dashboard of NL.NCC")
        return again

    inbox = Background(fr, kafka_bootstrap, "inbox", "watch", "--as", "FR.GN", *FR_CONTACT)
    try:
        dashboard.wait_for("dashboard of NL.NCC")
        inbox.wait_for("watching the inbox of FR.GN")
        # A wrong password is refused, and nothing but the login page is served without a session.
        _log_in(browser, url, "jdoe", "not the password at all")
        assert "Wrong user name or password." in browser.find_element(By.ID, "login-error").text
        browser.get(f"{url}/api/cases")
        assert "log in first" in browser.page_source
        _log_in(browser, url, "jdoe", PASSWORD)
        _wait(
            browser,
            20,
            "the event stream open",
            lambda: browser.find_element(By.ID, "connected").get_attribute("data-state") == "open",
        )
        # A new alert on the real broker: on the open page within 2 seconds, without a reload.
        case = f"FR-GN-UI-{uuid.uuid4().hex[:6]}"
        first = _alert(tmp_path, "alert", case_id=case, alert_id=f"{case}-A1", status="Actual")
        sent = run_op7(fr, "alert", "send", first, bootstrap=kafka_bootstrap)
        assert sent.returncode == 0, sent.stderr
        published = time.monotonic()
        row = _wait(browser, 2.0, "the new alert on the dashboard", lambda: _row(browser, case))
        shown_after = time.monotonic() - published
        assert "unacked" in (row.get_attribute("class") or "")
        assert "Child abducted in Lyon" in row.text
        banner = browser.find_element(By.ID, "banner")
        assert banner.is_displayed() and "Child abducted in Lyon" in banner.text  # Immediate and Actual
        # An Update changes the case in place, highlighted.
        update = _alert(
            tmp_path,
            "update",
            case_id=case,
            alert_id=f"{case}-U1",
            msg_type="Update",
            references=[f"{case}-A1"],
            status="Actual",
            headline="Update: the vehicle was seen at the Le Perthus crossing",
        )
        assert run_op7(fr, "alert", "send", update, bootstrap=kafka_bootstrap).returncode == 0
        _wait(browser, 10, "the update on the row", lambda: "Le Perthus crossing" in (_row(browser, case) or row).text)
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "dashboard-list.png"))
        # Acknowledge: the detail view, the button, a signed receipt to FR.GN.
        (_row(browser, case) or row).click()
        _wait(
            browser,
            10,
            "the detail view",
            lambda: browser.find_element(By.ID, "detail").get_attribute("data-case-id") == f"FR.GN/{case}",
        )
        detail = browser.find_element(By.ID, "detail")
        for text in ("Demo", "Victim-One", "Ecole Jean Mace", "GH-123-KL", "Centre de commandement 24/7"):
            assert text in detail.text, text
        browser.save_screenshot(str(SHOTS / "dashboard-detail.png"))
        browser.find_element(By.ID, "ack").click()
        _wait(
            browser,
            15,
            "the acknowledgement shown",
            lambda: (
                "jdoe" in browser.find_element(By.ID, "detail").text
                and "unacked" not in ((_row(browser, case) or row).get_attribute("class") or "")
            ),
        )
        acks: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not acks and time.monotonic() < deadline:
            listed = run_op7(fr, "alert", "acks", "--as", "FR.GN", "--json", bootstrap=kafka_bootstrap)
            acks = json.loads(listed.stdout or "[]")
            time.sleep(0.5)
        assert acks and "NL.NCC" in acks[0]["detail"] and "jdoe" in acks[0]["detail"], acks
        # The server restarts: every open case is still there, the session too.
        dashboard = restarted(dashboard)
        browser.get(url)
        again = _wait(browser, 20, "the case after the restart", lambda: _row(browser, case))
        assert "Le Perthus crossing" in again.text
        # The centre's store lost: a new one is filled again from the alerts topic (a new group of its own).
        dashboard = restarted(dashboard, lose_store=True)
        browser.get(url)
        rebuilt = _wait(browser, 30, "the case rebuilt from Kafka", lambda: _row(browser, case))
        assert "Le Perthus crossing" in rebuilt.text
    finally:
        dashboard.stop()
        inbox.stop()
    print(f"dashboard: the new alert showed {shown_after:.2f} s after 'op7 alert send' returned")
