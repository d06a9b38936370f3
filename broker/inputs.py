"""Reading user input (JSON files) into models, with every problem listed: field path, expected, got."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError, Problem

__all__ = ["load_json_file", "problems_from", "validate"]

M = TypeVar("M", bound=BaseModel)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from(exc: ValidationError) -> list[Problem]:
    """One :class:`Problem` per pydantic error, with a JSON-ish path such as ``victims[0].height_cm``."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        got = None if err["type"] in ("missing",) or isinstance(err["input"], dict) else _shown(err["input"])
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not in the schema)"
        problems.append(Problem(_path(loc), msg, got))
    return problems


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raises :class:`InputError` naming ``source`` and every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, problems_from(exc)) from None


def load_json_file(path: Path) -> Any:
    """Read a JSON document; a missing file or bad JSON is an :class:`InputError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), [Problem("", f"cannot read file: {exc}")]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            str(path), [Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}")]
        ) from None
