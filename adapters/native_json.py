"""op7's own JSON form of a message: the shared model's fields, as ``op7 send`` reads them.

The JSON mirrors the Avro record field for field (digests as hex, times as ISO 8601 with a zone,
``AMBER+STRICT`` accepted for ``AMBER_STRICT``), so nothing is ever left unmapped. Two conveniences make a file
reusable on any date: ``sent_at`` may be left out (it is then the time of sending), and any time or date may be
given relative to ``sent_at``: ``"deadline": "+6h"``, ``"at": "-35m"``, ``"ends_on": "+14d"``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from adapters.base import InboundAdapter, M, OutboundAdapter, Rendered, Translation
from broker.errors import InputError, Problem
from broker.models import MESSAGE_MODELS, Message, message_model
from broker.models.inputs import validate_outgoing

__all__ = ["NativeJsonAdapter"]


class NativeJsonAdapter(InboundAdapter[M], OutboundAdapter):
    name = "json"
    summary = "op7's own JSON form of every message type, field for field (see examples/)"
    message_types = tuple(MESSAGE_MODELS)

    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[M]:
        try:
            document: Any = json.loads(data)
        except UnicodeDecodeError:
            raise InputError(source, [Problem("", "not UTF-8 text")]) from None
        except RecursionError:  # no message of the shared schema nests that deep
            raise InputError(source, [Problem("", "JSON nested too deeply to be a message")]) from None
        except json.JSONDecodeError as exc:
            raise InputError(
                source, [Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}")]
            ) from None
        if not isinstance(document, dict):
            raise InputError(source, [Problem("", "expected a JSON object", type(document).__name__)])
        model: type[Message] | None = self.model
        body: dict[str, Any] = document
        if model is None:  # no type given: the document names it, as render() writes it
            model, body = self._typed(document, source)
        return Translation(validate_outgoing(model, body, source, now=now), source)  # type: ignore[arg-type]

    @staticmethod
    def _typed(document: dict[str, Any], source: str) -> tuple[type[Message], dict[str, Any]]:
        name, message = document.get("message_type"), document.get("message")
        if not isinstance(name, str) or not isinstance(message, dict):
            raise InputError(
                source,
                [
                    Problem(
                        "message_type",
                        "no message type given: name it, or wrap the message as "
                        '{"message_type": "KidnappingAlert", "message": {...}}',
                    )
                ],
            )
        try:
            return message_model(name), message
        except KeyError:
            raise InputError(
                source, [Problem("message_type", "not a message type of the shared schema", name)]
            ) from None

    def render(self, message: Message, *, message_id: str, sender: str) -> Rendered:
        body: dict[str, Any] = {"message_type": message.avro_name, "message_id": message_id, "sender": sender}
        body["message"] = message.model_dump(mode="json", exclude={"original_content_key"})
        return Rendered(json.dumps(body, indent=2, ensure_ascii=False).encode() + b"\n", "application/json", ".json")
