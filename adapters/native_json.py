"""op7's own JSON form of a message: the shared model's fields, as ``op7 alert send`` reads them.

The JSON mirrors the Avro record field for field (digests as hex, times as ISO 8601 with a zone,
``AMBER+STRICT`` accepted for ``AMBER_STRICT``), so nothing is ever left unmapped. Two conveniences make a file
reusable on any date: ``sent_at`` may be left out (it is then the time of sending), and any time or date may be
given relative to ``sent_at``: ``"deadline": "+6h"``, ``"at": "-35m"``, ``"ends_on": "+14d"``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from adapters.base import InboundAdapter, M, Translation
from broker.errors import InputError, Problem
from broker.models.inputs import validate_outgoing

__all__ = ["NativeJsonAdapter"]


class NativeJsonAdapter(InboundAdapter[M]):
    name = "json"

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[M]:
        try:
            document: Any = json.loads(data)
        except UnicodeDecodeError:
            raise InputError(source, [Problem("", "not UTF-8 text")]) from None
        except json.JSONDecodeError as exc:
            raise InputError(
                source, [Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}")]
            ) from None
        if not isinstance(document, dict):
            raise InputError(source, [Problem("", "expected a JSON object", type(document).__name__)])
        return Translation(validate_outgoing(self.model, document, source, now=now), source)
