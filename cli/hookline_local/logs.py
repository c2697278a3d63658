"""The local stack's log: function output and the stack's own messages, to a file and optionally the console."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["LogSink", "SinkHandler"]


class LogSink:
    """Thread-safe line writer: ``<time> [<source>] <line>`` to a file and/or a console stream."""

    def __init__(
        self, path: Path | None = None, *, console: IO[str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._console = console
        self._clock = clock
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def write(self, source: str, line: str) -> None:
        """Append one line."""
        stamp = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} [{source}] {line}\n"
        with self._lock:
            if self._file is not None:
                self._file.write(text)
                self._file.flush()
            if self._console is not None:
                self._console.write(text)
                self._console.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class SinkHandler(logging.Handler):
    """A logging handler that writes the stack's own log records into a LogSink."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record."""
        try:
            self._sink.write(f"local {record.levelname.lower()}", self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
