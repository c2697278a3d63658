"""Reading values that may come from a file (``@path``), stdin (``@-``) or the command line itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hookline_cli.output import UsageError

__all__ = ["read_json_value", "read_value"]


def read_value(value: str, *, label: str) -> bytes:
    """``@path`` -> the file's bytes, ``@-`` -> stdin's bytes, anything else -> its UTF-8 bytes."""
    if not value.startswith("@"):
        return value.encode("utf-8")
    source = value[1:]
    if source == "-":
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    if not source:
        raise UsageError(f"{label}: '@' must be followed by a file name (or '-' for stdin)")
    try:
        return Path(source).expanduser().read_bytes()
    except OSError as error:
        raise UsageError(f"{label}: cannot read {source}: {error.strerror or error}") from None


def read_json_value(value: str, *, label: str) -> Any:
    """A JSON document given inline, as ``@path`` or as ``@-``; UsageError naming the problem if it does not parse."""
    raw = read_value(value, label=label)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise UsageError(f"{label} is not UTF-8") from None
    except ValueError as error:
        raise UsageError(f"{label} is not valid JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
