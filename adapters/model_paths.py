"""Field paths into the shared model (``victims[0].given_names``): parsed, checked against a pydantic model, and
used to put values into and get them out of a message's plain ``dict`` form.

A path is dotted field names, ``[N]`` for an item of a list (indexes up to 99); it starts with a field name. The
field it ends at is a :class:`Leaf`: one value, or a list of values; a path ending at records is refused.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin

from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

__all__ = [
    "Leaf",
    "Step",
    "annotation_at",
    "bare_type",
    "get",
    "leaf_at",
    "overlap",
    "parse_path",
    "path_text",
    "put",
    "record_type",
]

#: One step of a path: a field name, or the index of a list item.
Step = str | int
_STEP = re.compile(r"(?:^|\.)([a-z_][a-z0-9_]*)|\[(\d{1,2})\]")


@dataclass(frozen=True)
class Leaf:
    """The shared field a path ends at: its type with constraints, that of one value, and what it holds."""

    annotation: Any
    item: Any
    many: bool
    kind: str  # "datetime", "date", "enum" or "value"


def parse_path(text: str) -> tuple[Step, ...] | None:
    """The steps of a field path, or None if ``text`` is not one."""
    steps: list[Step] = []
    end = 0
    for match in _STEP.finditer(text):
        if match.start() != end:
            return None
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        end = match.end()
    return tuple(steps) if end == len(text) and steps and isinstance(steps[0], str) else None


def path_text(steps: tuple[Step, ...]) -> str:
    """The field path of ``steps``, as written in a mapping."""
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


def overlap(a: str, b: str) -> bool:
    """Whether one field path is the other, or inside it."""
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def bare_type(annotation: Any) -> Any:
    """The type under ``Annotated`` and ``| None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif (
            origin in (Union, UnionType) and len(args := [a for a in get_args(annotation) if a is not type(None)]) == 1
        ):
            annotation = args[0]
        else:
            return annotation


def _bare_item(annotation: Any) -> Any:
    """The item type of a ``tuple[X, ...]`` field (with its constraints), or None."""
    bare = bare_type(annotation)
    args = get_args(bare)
    return args[0] if get_origin(bare) is tuple and len(args) == 2 and args[1] is Ellipsis else None


def _annotation(info: FieldInfo) -> Any:
    return cast(Any, Annotated)[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def record_type(annotation: Any) -> type[BaseModel] | None:
    """The record (pydantic model) type of ``annotation``, or None if it is not one."""
    bare = bare_type(annotation)
    return bare if isinstance(bare, type) and issubclass(bare, BaseModel) else None


def annotation_at(model: type[BaseModel], steps: tuple[Step, ...]) -> Any:
    """The annotation of the field at ``steps`` (the model at the root), or None where the path leaves the schema."""
    current: Any = model
    for step in steps:
        if isinstance(step, int):
            current = _bare_item(current)
        else:
            record = record_type(current)
            current = _annotation(record.model_fields[step]) if record and step in record.model_fields else None
        if current is None:
            return None
    return current


def leaf_at(model: type[BaseModel], path: str, where: str, problems: list[str]) -> Leaf | None:
    """The field of ``model`` at ``path``, or None with the problem recorded (named by ``where``)."""
    steps = parse_path(path)
    if steps is None:
        problems.append(f"{where}: {path!r} is not a field path (e.g. victims[0].given_names; indexes up to 99)")
        return None
    for i, step in enumerate(steps):
        if annotation_at(model, steps[: i + 1]) is None:
            parent, above = annotation_at(model, steps[:i]), path_text(steps[:i])
            record = record_type(parent)
            if _bare_item(parent) is not None:
                why = f"{above} is a list: give an item ({above}[0])"
            elif record is None or isinstance(step, int):
                why = f"{above} is not a list" if isinstance(step, int) else f"{above} has no fields"
            else:
                why = f"{record.__name__} has no field {step!r} (it has: {', '.join(record.model_fields)})"
            problems.append(f"{where}: {path!r}: {why}")
            return None
    annotation = annotation_at(model, steps)
    item = _bare_item(annotation)
    record = record_type(item if item is not None else annotation)
    if record is not None:
        problems.append(f"{where}: {path!r} holds {record.__name__} records: map their fields one by one")
        return None
    return Leaf(
        annotation, item if item is not None else annotation, item is not None, _kind(bare_type(item or annotation))
    )


def _kind(base: Any) -> str:
    if base is AwareDatetime or (isinstance(base, type) and issubclass(base, datetime)):
        return "datetime"
    if isinstance(base, type) and issubclass(base, date):
        return "date"
    return "enum" if isinstance(base, type) and issubclass(base, Enum) else "value"


def put(tree: dict[str, Any], steps: tuple[Step, ...], value: Any) -> None:
    """Set ``value`` at ``steps``, making the records and lists on the way (list gaps are left empty)."""
    node: Any = tree
    for step, after in itertools.pairwise(steps):
        empty: Any = [] if isinstance(after, int) else {}
        if isinstance(step, int):
            node.extend({} for _ in range(step + 1 - len(node)))
            if not isinstance(node[step], type(empty)):
                node[step] = empty
        elif not isinstance(node.get(step), type(empty)):
            node[step] = empty
        node = node[step]
    last = steps[-1]
    if isinstance(last, int):
        node.extend(None for _ in range(last + 1 - len(node)))
    node[last] = value


def get(tree: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``tree``, or None where there is none."""
    for step in steps:
        if isinstance(step, int):
            tree = tree[step] if isinstance(tree, list | tuple) and step < len(tree) else None
        else:
            tree = tree.get(step) if isinstance(tree, dict) else None
    return tree
