"""Value types of the breaker: its states, the record a state store keeps, and what callers can read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BreakerRecord",
    "BreakerSnapshot",
    "BreakerState",
    "Counts",
    "OutcomeDelta",
    "Transition",
    "TransitionSource",
]

_EMPTY: Mapping[str, float] = MappingProxyType({})


class BreakerState(StrEnum):
    """The states of a breaker; the values are what the store and the CLI show."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


TransitionSource = str
"""Who caused a transition: "fleet" (outcomes), "probe", "health" or "operator"."""


@dataclass(frozen=True)
class Counts:
    """Calls and failures counted in one time bucket."""

    calls: int = 0
    failures: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.calls + other.calls, self.failures + other.failures)


@dataclass(frozen=True)
class BreakerRecord:
    """Everything a state store keeps for one breaker.

    State fields change only by compare-and-set on ``version``; counters change only by atomic adds. Counters are
    keyed by ``epoch`` (the version at which they were last reset), so outcomes that arrive after a reset from an
    environment that had not seen it yet land in an old epoch and are ignored.
    """

    name: str
    state: BreakerState = BreakerState.CLOSED
    version: int = 0
    epoch: int = 0
    opened_at: float | None = None
    open_until: float | None = None
    reopen_count: int = 0
    forced_by: str | None = None
    reason: str | None = None
    probes: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    half_open_successes: int = 0
    updated_at: float | None = None
    updated_by: str | None = None
    expires_at: int | None = None
    buckets: Mapping[tuple[int, int], Counts] = field(default_factory=dict)
    consecutive: Mapping[int, int] = field(default_factory=dict)
    run_started: Mapping[int, float] = field(default_factory=dict)

    def window(self, now: float, window_s: float) -> Counts:
        """Calls and failures of the current epoch in buckets that started within the last ``window_s``."""
        total = Counts()
        for (epoch, start), counts in self.buckets.items():
            if epoch == self.epoch and now - window_s < start <= now:
                total += counts
        return total

    @property
    def run(self) -> int:
        """Fleet-wide consecutive failures of the current epoch."""
        return self.consecutive.get(self.epoch, 0)

    def live_probes(self, now: float) -> dict[str, float]:
        """Probe leases that have not expired at ``now``."""
        return {probe: until for probe, until in self.probes.items() if until > now}

    def evolve(self, **changes: Any) -> BreakerRecord:
        """A copy with some state fields changed (counters are never changed this way)."""
        return replace(self, **changes)

    def snapshot(self, now: float, window_s: float) -> BreakerSnapshot:
        """What callers and the CLI see of this record at ``now``."""
        window = self.window(now, window_s)
        return BreakerSnapshot(
            name=self.name,
            state=self.state,
            opened_at=self.opened_at,
            open_until=self.open_until,
            forced_by=self.forced_by,
            reason=self.reason,
            reopen_count=self.reopen_count,
            window_calls=window.calls,
            window_failures=window.failures,
            consecutive_failures=self.run,
            half_open_probes=len(self.live_probes(now)),
            half_open_successes=self.half_open_successes,
            version=self.version,
            updated_at=self.updated_at,
        )


@dataclass(frozen=True)
class OutcomeDelta:
    """Buffered outcomes of one environment, added atomically to the store's counters.

    ``trailing_failures`` are the failures after the last success (``last_success_at``); the first of them happened at
    ``run_started_at``.
    """

    epoch: int
    at: float
    buckets: Mapping[int, Counts]
    trailing_failures: int
    last_success_at: float | None
    run_started_at: float | None
    keep_after: float

    def breaks_run(self, run_started: float | None) -> bool:
        """True when this delta's last success is not older than the fleet's current run of failures (or no run).

        Successes are written late (buffered), so a success older than failures other environments already wrote
        must not reset the fleet-wide run: ordering is by the writers' timestamps, not by arrival.
        """
        return self.last_success_at is not None and (run_started is None or self.last_success_at >= run_started)

    @property
    def calls(self) -> int:
        """Calls in this delta."""
        return sum(counts.calls for counts in self.buckets.values())


@dataclass(frozen=True)
class BreakerSnapshot:
    """A breaker's state as read by callers, metrics and the CLI."""

    name: str
    state: BreakerState
    opened_at: float | None = None
    open_until: float | None = None
    forced_by: str | None = None
    reason: str | None = None
    reopen_count: int = 0
    window_calls: int = 0
    window_failures: int = 0
    consecutive_failures: int = 0
    half_open_probes: int = 0
    half_open_successes: int = 0
    version: int = 0
    updated_at: float | None = None

    @property
    def failure_rate(self) -> float:
        """Failures over calls in the window (0.0 without calls)."""
        return self.window_failures / self.window_calls if self.window_calls else 0.0


@dataclass(frozen=True)
class Transition:
    """One state change, as kept in the store's history (with a TTL) and handed to transition hooks."""

    name: str
    from_state: BreakerState
    to_state: BreakerState
    at: float
    reason: str | None = None
    source: TransitionSource = "fleet"
    writer: str | None = None
    version: int = 0
