"""What every adapter shares: a translation result that reports the fields it could not carry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from broker.errors import InputError, Problem
from broker.models import Message

__all__ = ["InboundAdapter", "Translation"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Translation(Generic[M]):
    """A local record translated to the shared model; ``unmapped`` names local fields left behind."""

    message: M
    source: str
    unmapped: tuple[str, ...] = field(default=())


class InboundAdapter(ABC, Generic[M]):
    """Translates a local record (a file, a request body) into a shared-schema message.

    A subclass built from a message model (``Adapter(model)``) is what the ``op7.adapters`` entry points name;
    it fits ``broker.plugins.AdapterFactory``.
    """

    #: Short name used on the command line and in logs.
    name: str

    @abstractmethod
    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[M]:
        """Translate ``data`` into a message to be sent at ``now`` (what a record leaves out, such as its time
        of sending, is filled from it); raise :class:`broker.errors.InputError` listing every problem found."""

    def translate_file(self, path: Path, *, now: datetime) -> Translation[M]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(str(path), [Problem("", "file not found")]) from None
        except OSError as exc:
            raise InputError(str(path), [Problem("", f"cannot read: {exc.strerror or exc}")]) from None
        return self.translate(data, str(path), now=now)
