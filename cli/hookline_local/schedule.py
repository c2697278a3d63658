"""Schedule emulator: invokes a function on its EventBridge rule's or Scheduler schedule's rate."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookline_local.events import scheduled_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookline_local.invoke import Invoker, InvokeResult
    from hookline_local.resolve import ScheduleSpec

__all__ = ["ScheduleRunner", "parse_rate"]

_log = logging.getLogger("hookline.local")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def parse_rate(expression: str) -> float | None:
    """Seconds between runs of a ``rate(N unit)`` expression; None for cron() and at() (not emulated)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    value = int(match.group(1))
    if value < 1:
        raise ValueError(f"invalid schedule expression {expression!r}")
    return float(value * _UNIT_S[match.group(2).rstrip("s")])


class ScheduleRunner:
    """Runs one schedule: the first run one interval after start (as a new rule does), then every interval."""

    def __init__(
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

    def start(self) -> bool:
        """Start ticking; False when the schedule is disabled or its expression cannot be emulated."""
        if not self.spec.enabled:
            _log.info("%s is disabled; not scheduled", self.spec.logical_id)
            return False
        if self.interval_s is None or self.interval_s <= 0:
            _log.warning(
                "%s: %r is not emulated (only rate(...)); give an interval", self.spec.logical_id, self.spec.expression
            )
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{self.spec.logical_id}", daemon=True)
        self._thread.start()
        return True

    def _loop(self) -> None:
        assert self.interval_s is not None
        while not self._stop.wait(self.interval_s):
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
