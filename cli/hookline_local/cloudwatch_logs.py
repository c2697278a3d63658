"""Ship function output to CloudWatch Logs (moto's), as Lambda does, for the log groups delivery history reads.

Delivery history is read from the delivery function's log group (docs/history.md); on the local stack this is what
puts the lines there. Lines are buffered and sent with PutLogEvents every ``interval_s`` (and on ``flush``/``close``),
one stream per log group: moto serves one request at a time, so fewer, bigger requests keep the stack fast.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LogShipper"]

_log = logging.getLogger("hookline.local")
_MAX_EVENTS = 1000  # per PutLogEvents (the API allows 10,000 and 1 MB; stay well inside)
_MAX_MESSAGE_BYTES = 256 * 1024


class LogShipper:
    """Buffers (log group, stream, line) and puts them into CloudWatch Logs from a background thread."""

    def __init__(self, client: Any, *, interval_s: float = 0.25, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._known: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shipped = 0
        self.errors = 0
        self.bytes = 0
        """Bytes of the lines queued (as CloudWatch Logs would ingest them, newline included)."""
        self._stream = f"{time.strftime('%Y/%m/%d', time.gmtime(clock()))}/[$LATEST]local-{uuid.uuid4().hex[:12]}"

    def add(self, group: str, line: str) -> None:
        """Queue one line (its timestamp: now)."""
        message = line[:_MAX_MESSAGE_BYTES]
        event = {"timestamp": int(self._clock() * 1000), "message": message}
        with self._lock:
            self._pending.setdefault((group, self._stream), []).append(event)
            self.bytes += len(message.encode("utf-8")) + 1

    def start(self) -> None:
        """Ship in the background until ``close``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def flush(self) -> None:
        """Send everything queued so far."""
        with self._lock:
            pending, self._pending = self._pending, {}
        with self._send_lock:
            for (group, stream), events in pending.items():
                # Several environments write to one stream: PutLogEvents wants each request in time order.
                self._send(group, stream, sorted(events, key=lambda event: event["timestamp"]))

    def _send(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        try:
            self._ensure(group, stream)
            for start in range(0, len(events), _MAX_EVENTS):
                chunk = events[start : start + _MAX_EVENTS]
                self._client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=chunk)
                self.shipped += len(chunk)
        except Exception:  # a lost log line must not stop the stack; it is counted and logged
            self.errors += 1
            _log.exception("PutLogEvents failed for %s", group)

    def _ensure(self, group: str, stream: str) -> None:
        if (group, stream) in self._known:
            return
        groups = self._client.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if not any(item.get("logGroupName") == group for item in groups):
            self._client.create_log_group(logGroupName=group)
        self._client.create_log_stream(logGroupName=group, logStreamName=stream)
        self._known.add((group, stream))

    def close(self) -> None:
        """Stop the thread and send what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
