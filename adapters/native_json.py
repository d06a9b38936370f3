"""op7's own JSON form of a message: the shared model's fields, as ``op7 alert send`` reads them.

The JSON mirrors the Avro record field for field (digests as hex, times as ISO 8601 with a zone,
``AMBER+STRICT`` accepted for ``AMBER_STRICT``), so nothing is ever left unmapped.
"""

from __future__ import annotations

import json
from typing import Any

from broker.errors import InputError, Problem
from broker.inputs import validate

from .base import InboundAdapter, M, Translation

__all__ = ["NativeJsonAdapter"]


class NativeJsonAdapter(InboundAdapter[M]):
    name = "json"

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def translate(self, data: bytes, source: str) -> Translation[M]:
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
        return Translation(validate(self.model, document, source), source)
