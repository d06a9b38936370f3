"""JSON files of trust material (stores, cards, anchors, directories): read with errors naming the file, written
atomically (a crash leaves the old file or the new one, never half of one)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from broker.errors import ConfigError

__all__ = ["b64", "read_json", "unb64", "write_json"]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from None


def write_json(path: Path, data: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(path: Path | str, what: str, text: Any) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise ConfigError(f"{path}: {what} is not valid base64") from None
