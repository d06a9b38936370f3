"""Reading user input (JSON files) into models, with every problem listed: field path, expected, got."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError, Problem

__all__ = ["first_problem", "problems_from", "validate"]

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


def first_problem(exc: ValidationError) -> str:
    """The first problem of a validation failure, path and message, without the offending value: for errors about
    what came off the network, where the value may be sealed content and the error may travel in clear."""
    problem = problems_from(exc)[0]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{Problem(problem.path, problem.message)}{more}"


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; raises :class:`InputError` naming ``source`` and every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, problems_from(exc)) from None
