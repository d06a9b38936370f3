"""Reading user input (JSON files) into models, with every problem listed: field path, expected, got."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from broker.errors import InputError, Problem
from broker.models import Message, Request
from broker.models._types import Timestamp

__all__ = ["first_problem", "outgoing_problems", "problems_from", "validate", "validate_outgoing"]

M = TypeVar("M", bound=BaseModel)
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


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


def validate_outgoing(model: type[M], data: Any, source: str, *, now: datetime) -> M:
    """Validate a message a user is about to send at ``now``.

    ``sent_at`` is ``now`` when the input leaves it out, and relative times (``"deadline": "+6h"``,
    ``"at": "-35m"``, ``"ends_on": "+14d"``) count from ``sent_at``: an input file never goes stale.
    """
    if isinstance(data, dict) and "sent_at" in model.model_fields:
        data = {**data} if "sent_at" in data else {**data, "sent_at": now}
        base = _time_of(data["sent_at"], now)
    else:
        base = now
    try:
        return model.model_validate(data, context={"now": base})
    except ValidationError as exc:
        raise InputError(source, problems_from(exc)) from None


def _time_of(value: Any, now: datetime) -> datetime:
    """``sent_at`` as given, to count relative times from; ``now`` when it is itself invalid (reported later)."""
    try:
        result: datetime = _TIMESTAMP.validate_python(value, context={"now": now})
    except ValidationError:
        return now
    return result


def outgoing_problems(message: Message, now: datetime, *, max_skew: timedelta, late: bool = False) -> list[Problem]:
    """What makes ``message`` wrong to send at ``now``: a ``sent_at`` further ahead than receivers tolerate, and,
    unless ``late``, a request deadline, grant validity or alert expiry already past."""
    problems = []
    if message.sent_at - now > max_skew:
        problems.append(
            Problem(
                "sent_at",
                f"is {_span(message.sent_at - now)} in the future; receivers refuse messages dated more than "
                f"{_span(max_skew)} ahead (leave sent_at out to send it as of now)",
                _stamp(message.sent_at),
            )
        )
    if late:
        return problems
    for name in ("deadline", "valid_until", "expires_at"):
        when = getattr(message, name, None)
        if name == "deadline" and not isinstance(message, Request):
            continue  # a Reminder's deadline is the one that passed
        if isinstance(when, datetime) and when <= now:
            problems.append(
                Problem(
                    name,
                    f'is already past ({_span(now - when)} ago); give a later one (e.g. "+6h", or '
                    "--deadline-in for a request), or --force to send it late",
                    _stamp(when),
                )
            )
    return problems


def _stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{seconds} s"
