"""The inbound webhook: an HTTP endpoint to which a local system POSTs its records, and gets back their message ids.

``POST /v1/records`` with ``Authorization: Bearer TOKEN`` (each client's token is configured as its SHA-256 only)
and a body of at most ``max_bytes``: JSON (read by the client's ``json_format`` adapter: op7's own JSON, or notice
JSON) or CAP XML (``application/cap+xml``, ``application/xml``, ``text/xml``). The answer is ``202`` with each
record's message id, state and loss report, ``200`` when every record had been sent before (the same body from the
same client is the same message: a retried POST sends nothing twice), or a 4xx whose body lists every problem:
401 (token), 413 (size), 415 (media type), 422 (the records: by record and field; nothing of the body is sent).
``GET /openapi.json`` serves the OpenAPI document (committed as ``docs/webhook-openapi.json``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.base import InboundAdapter
from adapters.config import Client
from adapters.sending import Sender, record_id
from broker.clock import Clock
from broker.errors import ConfigError, DeliveryError, InputError, Op7Error
from broker.models import Message

__all__ = ["OPENAPI", "XML_TYPES", "inbound_app"]

log = logging.getLogger("op7.adapter.webhook")

XML_TYPES = {"application/cap+xml", "application/xml", "text/xml"}

_PROBLEM = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["record", "field", "problem"],
                "properties": {
                    "record": {"type": "string"},
                    "field": {"type": "string"},
                    "problem": {"type": "string"},
                    "value": {"type": ["string", "null"]},
                },
            },
        },
    },
}
_RECORDS = {
    "type": "object",
    "required": ["records"],
    "properties": {
        "records": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["message_id", "state", "lost"],
                "properties": {
                    "message_id": {"type": "string", "format": "uuid"},
                    "state": {"type": "string", "enum": ["sent", "pending", "already sent"]},
                    "message_type": {"type": "string"},
                    "source": {"type": "string"},
                    "lost": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "value": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
            },
        }
    },
}


def _answer(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(schema)}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "op7 adapter webhook",
        "version": "1",
        "description": "A local system POSTs its records; each is translated to the shared schema, signed and sent.",
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/records": {
            "post": {
                "summary": "Send local records",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        **{t: {"schema": {"type": "string"}} for t in sorted(XML_TYPES)},
                    },
                },
                "responses": {
                    "200": _answer("Every record had been sent before: nothing sent again", _RECORDS),
                    "202": _answer("Sent (or pending in the node's outbox)", _RECORDS),
                    "401": _answer("No bearer token, or not one of this endpoint's clients'", _PROBLEM),
                    "413": _answer("The body is larger than the endpoint accepts", _PROBLEM),
                    "415": _answer("A media type the endpoint does not read", _PROBLEM),
                    "422": _answer("Records that do not translate: every problem, nothing sent", _PROBLEM),
                    "500": _answer("The adapter is not configured to read this kind of body", _PROBLEM),
                    "503": _answer("The node could not send", _PROBLEM),
                },
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "up"}}}},
    },
}


def _error(
    status: int, error: str, problems: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if problems is not None:
        body["problems"] = problems
    return JSONResponse(body, status_code=status, headers=headers)


def inbound_app(
    readers: Mapping[str, InboundAdapter[Message]],
    clients: tuple[Client, ...],
    sender: Sender,
    clock: Clock,
    *,
    max_bytes: int,
) -> Starlette:
    """The endpoint: ``readers`` by format name (``cap`` reads XML bodies, a client's ``json_format`` its JSON)."""
    by_hash = {c.token_sha256: c for c in clients}

    def client_of(request: Request) -> Client | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        return next((c for h, c in by_hash.items() if hmac.compare_digest(h, digest)), None)

    async def body_of(request: Request) -> bytes | None:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def records(request: Request) -> JSONResponse:
        client = client_of(request)
        if client is None:
            return _error(
                401,
                "a bearer token of one of this endpoint's clients is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        name = "cap" if media in XML_TYPES else client.json_format if media == "application/json" else None
        reader = readers.get(name) if name else None
        if reader is None:
            readable = ", ".join(["application/json", *sorted(XML_TYPES)])
            return _error(415, f"media type {media or '(none)'!r} is not read here; send one of: {readable}")
        body = await body_of(request)
        if body is None:
            return _error(413, f"the body is larger than {max_bytes:,} bytes")
        source = f"{client.name} POST"
        try:
            results = list(reader.translate_all(body, source, now=clock.now()))
        except ConfigError as exc:  # the adapter's configuration, not the body: said to the client and logged
            log.error("webhook: %s", exc)
            return _error(500, f"the adapter is not configured to read this: {exc}")
        refused = [r for r in results if isinstance(r, InputError)]
        if refused:
            problems = [
                {"record": e.source, "field": p.path, "problem": p.message, "value": p.got}
                for e in refused
                for p in e.problems
            ]
            return _error(
                422, f"{len(refused)} of {len(results)} record(s) do not translate: nothing was sent", problems
            )
        outcomes = []
        for n, translation in enumerate(r for r in results if not isinstance(r, InputError)):
            record = translation.record if translation.record is not None else body + f"\0{n}".encode()
            try:
                outcomes.append(await sender.send(translation, record_id(client.name, record)))
            except DeliveryError as exc:
                return _error(503, str(exc))
            except Op7Error as exc:  # refused by the node before sending: the record's fault, said as such
                problem = {"record": translation.source, "field": "", "problem": f"not sent: {exc}", "value": None}
                return _error(422, "a record was refused by the node", [problem])
        status = 200 if all(o.state == "already sent" for o in outcomes) else 202
        return JSONResponse({"records": [o.as_dict() for o in outcomes]}, status_code=status)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/records", records, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
