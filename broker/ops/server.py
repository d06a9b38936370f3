"""The operations centre's web dashboard: login, the cases as JSON, live changes as server-sent events, and the
acknowledge action. Nothing but the login page and its stylesheet is served without a session; every POST carries the
session's CSRF token (the login form a double-submit token of its own); the pages load nothing from elsewhere."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from broker.clock import Clock
from broker.errors import Op7Error
from broker.ops.accounts import Accounts, Role, Session
from broker.ops.cases import CaseBook, CaseFilter, CaseView

__all__ = ["Dashboard", "FeedHealth", "Hub"]

log = logging.getLogger("op7.ops")

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "op7_session"
#: Bytes of a login form (a name, a password and a token take a few hundred).
MAX_FORM = 4096
LOGIN_CSRF = "op7_login_csrf"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "media-src 'none'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: Files of the dashboard a browser may fetch (after login, but the login page's own stylesheet).
_FILES = {"app.js": "text/javascript", "app.css": "text/css"}

Acknowledge = Callable[[str, Session], Awaitable[tuple[CaseView, str]]]


class Hub:
    """Fans each change out to every open event stream; a slow browser loses its oldest events, not the others."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, str]]] = set()

    def publish(self, event: str, data: dict[str, Any]) -> None:
        text = json.dumps(data)
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((event, text))

    async def stream(self, first: list[tuple[str, dict[str, Any]]], closing: Callable[[], bool]) -> AsyncIterator[str]:
        """One browser's events; ends soon after ``closing()`` turns true (the server shutting down: a stream left
        open would hold the shutdown up)."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=1000)
        self._queues.add(queue)
        try:
            yield "retry: 2000\n\n"
            for event, data in first:
                yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
            quiet = 0.0
            while not closing():
                try:
                    event, text = await asyncio.wait_for(queue.get(), timeout=0.5)
                except TimeoutError:
                    quiet += 0.5
                    if quiet >= 15:  # proxies close silent connections
                        quiet = 0.0
                        yield ": keep-alive\n\n"
                    continue
                quiet = 0.0
                yield f"event: {event}\ndata: {text}\n\n"
        finally:
            self._queues.discard(queue)


@dataclass
class FeedHealth:
    """What the dashboard says of its feed: the broker reached or not, the last message, the lag."""

    clock: Clock
    stale_after: float = 60.0
    broker: str = "connected"
    since: datetime | None = None
    last_message_at: datetime | None = None
    lag: int | None = None

    def stale(self) -> bool:
        """Messages wait (lag) and none was handled for ``stale_after`` seconds: the feed is stuck."""
        if self.lag is None or self.lag == 0:
            return False
        last = self.last_message_at or self.since
        return last is None or (self.clock.now() - last).total_seconds() > self.stale_after

    def to_json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat(timespec="seconds").replace("+00:00", "Z")

        return {
            "broker": self.broker,
            "since": iso(self.since),
            "last_message_at": iso(self.last_message_at),
            "lag": self.lag,
            "stale": self.stale(),
        }


def _page(name: str, **values: str) -> str:
    text = (STATIC / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@dataclass
class Dashboard:
    """The dashboard's endpoints over the case book, the accounts and the feed."""

    book: CaseBook
    accounts: Accounts
    hub: Hub
    health: FeedHealth
    acknowledge: Acknowledge
    node_id: str
    secure_cookies: bool = False
    #: True once the server shuts down: the event streams then end.
    closing: Callable[[], bool] = lambda: False

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.index),
                Route("/login", self.login_form, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/static/{name}", self.static),
                Route("/api/me", self.me),
                Route("/api/cases", self.cases),
                Route("/api/cases/{case_id:path}/ack", self.ack, methods=["POST"]),
                Route("/api/cases/{case_id:path}", self.case),
                Route("/api/events", self.events),
                Route("/api/health", self.health_json),
            ]
        )

    # --- sessions -------------------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.accounts.session(request.cookies.get(COOKIE))

    def _cookie(self, response: Response, name: str, value: str, path: str) -> None:
        response.set_cookie(name, value, httponly=True, samesite="strict", secure=self.secure_cookies, path=path)

    def login_page(self, error: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        page = HTMLResponse(_page("login.html", csrf=token, error=_escape(error)), status_code=status)
        self._cookie(page, LOGIN_CSRF, token, "/login")
        return _secured(page)

    async def login_form(self, request: Request) -> Response:
        return self.login_page()

    async def login(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_FORM:  # read before any session: kept small
            return self.login_page("The form is too large.", 413)
        form = await request.form(max_files=0, max_fields=10)
        expected = request.cookies.get(LOGIN_CSRF, "")
        if not expected or not _same(str(form.get("csrf", "")), expected):
            return self.login_page("The form expired: log in again.", 400)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        opened = await asyncio.to_thread(self.accounts.login, name, password)
        if opened is None:
            log.warning("ops: failed login for %r", name[:40])
            return self.login_page("Wrong user name or password.", 401)
        token, session = opened
        log.info("ops: %s logged in (%s)", session.operator.name, session.operator.role.value)
        response = RedirectResponse("/", status_code=303)
        self._cookie(response, COOKIE, token, "/")
        response.delete_cookie(LOGIN_CSRF, path="/login")
        return _secured(response)

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        form = await request.form()
        if session is not None and _same(str(form.get("csrf", "")), session.csrf):
            self.accounts.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return _secured(response)

    # --- pages and data -------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        if self.session_of(request) is None:
            return _secured(RedirectResponse("/login", status_code=303))
        return _secured(HTMLResponse(_page("index.html")))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES or (name != "app.css" and self.session_of(request) is None):
            return _refused(404, "not found")
        return _secured(FileResponse(STATIC / name, media_type=_FILES[name]))

    async def me(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is None:
            return _refused(401, "log in first")
        user = {"user": session.operator.name, "role": session.operator.role.value, "node": self.node_id}
        return _secured(JSONResponse({**user, "csrf": session.csrf}))

    async def cases(self, request: Request) -> Response:
        if self.session_of(request) is None:
            return _refused(401, "log in first")
        view = request.query_params.get("view", "open")
        if view not in ("open", "closed"):
            return _refused(400, f"view={view!r}: open or closed")
        try:
            wanted = CaseFilter.from_query({k: v for k, v in request.query_params.items() if k != "view"})
        except ValueError as exc:
            return _refused(400, str(exc))
        return _secured(JSONResponse({"cases": [c.summary() for c in self.book.cases(view, wanted)]}))

    async def case(self, request: Request) -> Response:
        if self.session_of(request) is None:
            return _refused(401, "log in first")
        found = self.book.view(request.path_params["case_id"])
        return _refused(404, "no such case") if found is None else _secured(JSONResponse(found.detail()))

    async def ack(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is None:
            return _refused(401, "log in first")
        if not _same(request.headers.get("x-csrf-token", ""), session.csrf):
            return _refused(403, "missing or wrong X-CSRF-Token")
        if session.operator.role is not Role.OPERATOR:
            return _refused(403, f"{session.operator.name} is a viewer: viewers do not acknowledge")
        case_id = request.path_params["case_id"]
        if self.book.view(case_id) is None:
            return _refused(404, "no such case")
        try:
            view, receipt_id = await self.acknowledge(case_id, session)
        except Op7Error as exc:
            log.error("ops: acknowledgement of %s by %s not sent: %s", case_id, session.operator.name, exc)
            return _refused(502, f"the acknowledgement was not sent: {exc}")
        self.hub.publish("case", view.summary())
        return _secured(JSONResponse({"case": view.detail(), "receipt_id": receipt_id}))

    async def events(self, request: Request) -> Response:
        if self.session_of(request) is None:
            return _refused(401, "log in first")
        token = request.cookies.get(COOKIE)
        # The stream ends with the session (logout, a removed operator, a new password, idle expiry), not only
        # with the server: it carries every case's summary.
        ended = lambda: self.closing() or not self.accounts.still_open(token)  # noqa: E731
        stream = self.hub.stream([("health", self.health.to_json())], ended)
        return _secured(StreamingResponse(stream, media_type="text/event-stream"))

    async def health_json(self, request: Request) -> Response:
        if self.session_of(request) is None:
            return _refused(401, "log in first")
        return _secured(JSONResponse(self.health.to_json()))


def _same(given: str, expected: str) -> bool:
    """Tokens compared in constant time, as bytes (a non-ASCII value is simply not equal)."""
    return secrets.compare_digest(given.encode(), expected.encode())


def _secured(response: Response) -> Response:
    response.headers.update(_HEADERS)
    return response


def _refused(status: int, error: str) -> Response:
    return _secured(JSONResponse({"error": error}, status_code=status))
