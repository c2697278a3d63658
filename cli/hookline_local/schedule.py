"""Schedule emulator: invokes a function on its EventBridge rule's or Scheduler schedule's expression.

``rate(...)`` runs every interval (first run one interval after start, as a new rule does), or every given
interval; ``at(...)`` runs once at its time in the schedule's time zone (Scheduler's one-time schedules; a time
already past runs at once); ``cron(...)`` is not parsed and needs a given interval. When a run is due is decided
in one place, ``ScheduleRunner._delays()``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hookline_local.events import scheduled_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hookline_local.invoke import Invoker, InvokeResult
    from hookline_local.resolve import ScheduleSpec

__all__ = ["ScheduleRunner", "parse_at", "parse_rate"]

_log = logging.getLogger("hookline.local")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT = re.compile(r"^at\(\s*(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\s*\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_LONGEST_WAIT_S = 86400.0


def parse_rate(expression: str) -> float | None:
    """Seconds between runs of a ``rate(N unit)`` expression; None for any other expression."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    value = int(match.group(1))
    if value < 1:
        raise ValueError(f"invalid schedule expression {expression!r}")
    return float(value * _UNIT_S[match.group(2).rstrip("s")])


def parse_at(expression: str, timezone: str | None = None) -> datetime | None:
    """The moment of an ``at(yyyy-mm-ddThh:mm:ss)`` expression in ``timezone`` (default UTC); None for others."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    zone = ZoneInfo(timezone) if timezone else UTC
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=zone)


class ScheduleRunner:
    """Runs one schedule on its own thread until stopped; ``run_now()`` runs it at once."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        spec: ScheduleSpec,
        *,
        invoker: Invoker,
        region: str,
        account_id: str,
        interval_s: float | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.spec = spec
        self.invoker = invoker
        self._region = region
        self._account_id = account_id
        self._now = now
        self.interval_s = interval_s if interval_s is not None else parse_rate(spec.expression)
        self.run_at = None if interval_s is not None else parse_at(spec.expression, spec.timezone)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = threading.Lock()
        self.runs = 0
        self.failures = 0
        self.skipped = 0
        self.last_result: InvokeResult | None = None

    @property
    def busy(self) -> bool:
        """Whether a run is in progress."""
        return self._running.locked()

    @property
    def emulated(self) -> bool:
        """Whether the emulator can tell when this schedule runs (rate, at, or a given interval)."""
        return (self.interval_s is not None and self.interval_s > 0) or self.run_at is not None

    def describe(self) -> str:
        """When it runs, in words (for `local up` and the log)."""
        if self.interval_s:
            return f"every {self.interval_s:g}s"
        if self.run_at is not None:
            return f"once at {self.run_at.isoformat()}"
        return f"{self.spec.expression} (not emulated)"

    def start(self) -> bool:
        """Start ticking; False when the schedule is disabled or its expression cannot be emulated."""
        if not self.spec.enabled:
            _log.info("%s is disabled; not scheduled", self.spec.logical_id)
            return False
        if not self.emulated:
            _log.warning(
                "%s: %r is not emulated (only rate(...) and at(...)); give an interval",
                self.spec.logical_id,
                self.spec.expression,
            )
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{self.spec.logical_id}", daemon=True)
        self._thread.start()
        return True

    def _delays(self) -> Iterator[float]:
        """Seconds to wait before each run: forever every interval, or once until the ``at`` moment."""
        if self.interval_s:
            while True:
                yield self.interval_s
        elif self.run_at is not None:
            yield max(0.0, (self.run_at - self._now()).total_seconds())

    def _stopped_within(self, delay_s: float) -> bool:
        """Wait ``delay_s`` (in slices: a far ``at`` moment is beyond what one wait can take); True if stopped."""
        deadline = time.monotonic() + delay_s
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(remaining, _LONGEST_WAIT_S)):
                return True
        return self._stop.is_set()

    def _loop(self) -> None:
        for delay in self._delays():
            if self._stopped_within(delay):
                return
            if self.busy:
                # Lambda would start a second environment; locally an overlapping tick is skipped and logged.
                self.skipped += 1
                _log.info("%s: previous run still in progress; tick skipped", self.spec.logical_id)
                continue
            self.run_now()

    def event(self) -> Any:
        """The event the next run receives."""
        return scheduled_event(
            kind=self.spec.kind,
            resource_arn=self.spec.arn,
            region=self._region,
            account_id=self._account_id,
            now=self._now(),
            payload=self.spec.input,
        )

    def run_now(self) -> InvokeResult:
        """Invoke the function once now (waits for a run in progress to finish first)."""
        with self._running:
            result = self.invoker.invoke(self.event())
            self.runs += 1
            if not result.ok:
                self.failures += 1
                _log.warning("%s: run failed: %s: %s", self.spec.logical_id, result.error_type, result.error_message)
            self.last_result = result
            return result

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop ticking; a run in progress may finish within ``grace_s``, else its environment is killed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(grace_s)
            if self._thread.is_alive():
                self.invoker.kill()
                self._thread.join(5.0)
            self._thread = None
        self.invoker.close()
