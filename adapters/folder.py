"""Folders as edges: files dropped in one are translated and sent; received messages are written to another.

Inbound, each file of the folder (not hidden, not ``*.part`` or ``*.tmp``: write elsewhere or under such a name,
then rename into place) is read whole, translated record by record and sent; it then moves to ``done/`` with a
``NAME.sent.json`` beside it (each record's message id, state and loss report), or, when any record was refused,
to ``failed/`` with a ``NAME.reason`` (every problem, by record and field; the records that were good are sent all
the same). A record's message id derives from the file's name and the record's bytes (:func:`record_id`): after a
crash mid-file, the file is read again and nothing already sent goes twice.

Outbound, each received message is written as ``MESSAGE_ID.SUFFIX`` (written under a temporary name, then
renamed: a reader never sees half a file), with ``MESSAGE_ID.losses.json`` beside it when the local format could
not hold everything; a message handed over again overwrites its own file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.base import InboundAdapter, Rendered, read_file
from adapters.sending import Outcome, Sender, record_id
from broker.clock import Clock
from broker.errors import InputError, Op7Error, Problem
from broker.models import Message

__all__ = ["FileDone", "FolderWatch", "write_atomically"]

log = logging.getLogger("op7.adapter.folder")

_SKIPPED = (".part", ".tmp", ".reason", ".sent.json")


@dataclass(frozen=True)
class FileDone:
    """One file dealt with: where it went and what became of each record."""

    path: Path
    outcomes: tuple[Outcome, ...]
    problems: tuple[InputError, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "records": [o.as_dict() for o in self.outcomes],
            "refused": [{"source": e.source, "problems": [str(p) for p in e.problems]} for e in self.problems],
        }


class FolderWatch:
    """Reads the files dropped in ``folder`` with ``adapter`` and sends them with ``sender``."""

    def __init__(self, folder: Path, adapter: InboundAdapter[Message], sender: Sender, clock: Clock) -> None:
        self.folder = folder
        self.adapter = adapter
        self.sender = sender
        self.clock = clock
        self.done = folder / "done"
        self.failed = folder / "failed"
        for path in (folder, self.done, self.failed):
            path.mkdir(parents=True, exist_ok=True)

    def dropped(self) -> list[Path]:
        """The files waiting, oldest first."""
        return self.waiting_in(self.folder)

    @staticmethod
    def waiting_in(folder: Path) -> list[Path]:
        """The files waiting in ``folder``, oldest first (none when it does not exist yet)."""
        if not folder.is_dir():
            return []
        files = [
            p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_SKIPPED)
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    async def once(self) -> list[FileDone]:
        """Deal with every file waiting now."""
        return [await self.take(path) for path in self.dropped()]

    async def run(self, poll: float, stop: asyncio.Event, on_file: Any = None) -> None:
        """Watch until ``stop`` is set, looking every ``poll`` seconds."""
        while not stop.is_set():
            for path in self.dropped():
                done = await self.take(path)
                if on_file is not None:
                    on_file(done)
            self.sender.settle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)

    async def take(self, path: Path) -> FileDone:
        now = self.clock.now()
        try:
            data = read_file(path)
        except InputError as exc:
            return self._finish(path, [], [exc], now)
        outcomes: list[Outcome] = []
        problems: list[InputError] = []
        for n, result in enumerate(self.adapter.translate_all(data, path.name, now=now)):
            if isinstance(result, InputError):
                problems.append(result)
                continue
            record = result.record if result.record is not None else data + f"\0{n}".encode()
            try:
                outcomes.append(await self.sender.send(result, record_id(path.name, record)))
            except Op7Error as exc:  # refused by the node (dated ahead, a key out of force) or refused for good
                problems.append(InputError(result.source, [Problem("", f"not sent: {exc}")]))
        return self._finish(path, outcomes, problems, now)

    def _finish(self, path: Path, outcomes: list[Outcome], problems: list[InputError], now: datetime) -> FileDone:
        target = _free(self.failed if problems else self.done, path.name, now)
        done = FileDone(target, tuple(outcomes), tuple(problems))
        if problems:
            lines = [f"{e.source}: {p}" for e in problems for p in e.problems]
            if outcomes:
                lines.append(f"{len(outcomes)} other record(s) of the file were sent: see {target.name}.sent.json")
            write_atomically(target.with_name(target.name + ".reason"), ("\n".join(lines) + "\n").encode())
        if outcomes or not problems:
            report = json.dumps(done.as_dict()["records"], indent=2, ensure_ascii=False) + "\n"
            write_atomically(target.with_name(target.name + ".sent.json"), report.encode())
        os.replace(path, target)
        log.info("%s: %d sent, %d refused: %s", path.name, len(outcomes), len(problems), target)
        return done


def _free(folder: Path, name: str, now: datetime) -> Path:
    """``folder/name``, or with the time added when a file of that name went there before."""
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.partition(".")
    return folder / f"{stem}-{now:%Y%m%dT%H%M%S%f}{dot}{suffix}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it into place."""
    part = path.with_name(f".{path.name}.part")
    with part.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def write_received(folder: Path, message_id: str, rendered: Rendered) -> Path:
    """A received message, rendered, as ``folder/MESSAGE_ID.SUFFIX`` (and its losses beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{message_id}{rendered.suffix}"
    if rendered.lost:
        losses = [item.as_dict() for item in rendered.lost]
        write_atomically(folder / f"{message_id}.losses.json", (json.dumps(losses, indent=2) + "\n").encode())
    write_atomically(path, rendered.data)
    return path
