"""Pacing test support: what a receiver saw (peak requests in any window, peak concurrency) and a fleet simulation.

The simulation drives several environments, each with its own Pacer and store client, in rounds of fake time: in a
round every environment that has finished its last batch acquires for its next one at once (threads released
together), starts what it was granted at the start time it was given, and defers the rest by the delay it was told.
The receiver log holds every request's start and end.
"""

from __future__ import annotations

import heapq
import math
import threading
from bisect import bisect_left
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hookline.pacing import Lease, PaceLimits, Pacer
    from tests.support.timefakes import FakeClock


def peak_in_window(starts: Sequence[float], window_s: float) -> int:
    """The most requests that started within any window of ``window_s`` seconds (sliding, half-open)."""
    ordered = sorted(starts)
    return max((bisect_left(ordered, start + window_s) - index for index, start in enumerate(ordered)), default=0)


def peak_concurrency(spans: Sequence[tuple[float, float]]) -> int:
    """The most requests in flight at once (a request ending at t no longer counts at t)."""
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    peak = current = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


type Receiver = Callable[[float], tuple[int, float | None]]
"""Answers a request started at the given time with a status and a Retry-After (seconds or None)."""


def always_ok(start: float) -> tuple[int, float | None]:
    """A receiver that takes everything."""
    del start
    return 200, None


class TokenBucketReceiver:
    """A receiver that allows ``rate`` requests/s with bursts of ``burst`` and answers 429 beyond (thread-safe)."""

    def __init__(self, rate: float, burst: float, *, retry_after_s: float | None = None) -> None:
        self.rate, self.burst, self.retry_after_s = rate, burst, retry_after_s
        self._tokens, self._at = burst, float("-inf")
        self._lock = threading.Lock()
        self.refused = 0

    def __call__(self, start: float) -> tuple[int, float | None]:
        with self._lock:
            if self._at != float("-inf"):
                self._tokens = min(self.burst, self._tokens + max(0.0, start - self._at) * self.rate)
            self._at = max(self._at, start)
            if self._tokens >= 1:
                self._tokens -= 1
                return 200, None
            self.refused += 1
            return 429, self.retry_after_s


@dataclass
class FleetResult:
    """What the receiver saw and what the fleet did."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    """Every request the receiver saw (429s included): start and end."""
    delivered: int = 0
    """Messages the receiver accepted (a 2xx)."""
    deferrals: int = 0
    """Re-enqueues: requests sent back to the queue with a delay."""
    acquires: int = 0
    finished_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def starts(self) -> list[float]:
        """Every request's start time."""
        return [start for start, _ in self.spans]


@dataclass(frozen=True)
class Scenario:
    """The traffic: ``messages`` numbered from 0, each to ``key_of(number)``, arriving ``arrival_s(number)`` after the
    start, taking ``latency_s(number)``; every key has ``limits``; ``receiver`` answers."""

    messages: int
    key_of: Callable[[int], str]
    limits: PaceLimits
    latency_s: Callable[[int], float]
    receiver: Receiver = always_ok
    arrival_s: Callable[[int], float] = lambda number: 0.0
    batch_size: int = 10
    retry_s: float = 5.0
    """A message the receiver refused is tried again this much later (or after its Retry-After, when longer)."""


@dataclass
class _Environment:
    pacer: Pacer
    ready: list[tuple[float, int]] = field(default_factory=list)  # (due time, message number), a heap
    running: list[tuple[float, int, Lease, int, float | None]] = field(default_factory=list)
    """(end time, message number, lease, status, Retry-After) of the requests under way."""


def simulate_fleet(  # noqa: PLR0913 - the fleet, its clock and scenario, then simulation knobs
    pacers: Sequence[Pacer],
    clock: FakeClock,
    scenario: Scenario,
    *,
    step_s: float = 0.1,
    in_process_wait_s: float = 1.0,
    max_rounds: int = 100_000,
) -> FleetResult:
    """Spread the scenario's messages over the environments and run rounds until every one was delivered.

    Like a Lambda environment, each one takes a batch of up to ``batch_size`` due messages, prefetches their keys,
    acquires for each key, and takes the next batch only once every request of the last one has ended. A request
    told to wait less than ``in_process_wait_s`` waits in its batch and is acquired again; a longer wait is a
    re-enqueue (counted in ``deferrals``) with the delay rounded up to whole seconds, as SQS DelaySeconds does.
    """
    simulation = _FleetSimulation(pacers, clock, scenario, in_process_wait_s=in_process_wait_s)
    return simulation.run(step_s=step_s, max_rounds=max_rounds)


class _FleetSimulation:
    """One run of ``simulate_fleet``: the environments' queues and requests, what was delivered, the tallies."""

    def __init__(
        self, pacers: Sequence[Pacer], clock: FakeClock, scenario: Scenario, *, in_process_wait_s: float
    ) -> None:
        self.environments = [_Environment(pacer) for pacer in pacers]
        self.clock = clock
        self.scenario = scenario
        self.in_process_wait_s = in_process_wait_s
        for number in range(scenario.messages):
            arrival = (clock.now + scenario.arrival_s(number), number)
            heapq.heappush(self.environments[number % len(self.environments)].ready, arrival)
        self.result = FleetResult()
        self.delivered: set[int] = set()
        self.barrier = threading.Barrier(len(self.environments))

    def run(self, *, step_s: float, max_rounds: int) -> FleetResult:
        """Rounds of ``step_s`` until every message was delivered (or ``max_rounds``)."""
        with ThreadPoolExecutor(max_workers=len(self.environments)) as pool:
            for _ in range(max_rounds):
                list(pool.map(self._round, self.environments))
                if len(self.delivered) == self.scenario.messages:
                    break
                self.clock.advance(step_s)
        self.result.finished_at = self.clock.now
        self.result.delivered = len(self.delivered)
        return self.result

    def _round(self, environment: _Environment) -> None:
        self.barrier.wait()  # every environment acts in the same instant of fake time
        now = self.clock.now
        if not self._finish(environment, now):
            return  # the batch is not over
        by_key: dict[str, list[int]] = {}
        for _ in range(self.scenario.batch_size):
            if not environment.ready or environment.ready[0][0] > now:
                break
            number = heapq.heappop(environment.ready)[1]
            by_key.setdefault(self.scenario.key_of(number), []).append(number)
        if by_key:
            environment.pacer.prefetch(by_key)
        for key, numbers in by_key.items():
            self._send(environment, key, numbers, now)

    def _finish(self, environment: _Environment, now: float) -> bool:
        """Release what ended; True when the environment's batch is over."""
        still_running = []
        for end, number, lease, status, retry_after in environment.running:
            if end > now:
                still_running.append((end, number, lease, status, retry_after))
                continue
            environment.pacer.release(lease, status=status, retry_after_s=retry_after)
            if status < 300:
                with self.result.lock:
                    self.delivered.add(number)
            else:
                heapq.heappush(environment.ready, (end + max(self.scenario.retry_s, retry_after or 0.0), number))
        environment.running = still_running
        return not still_running

    def _send(self, environment: _Environment, key: str, numbers: list[int], now: float) -> None:
        scenario, result = self.scenario, self.result
        admission = environment.pacer.acquire(key, scenario.limits, count=len(numbers))
        with result.lock:
            result.acquires += 1
        for number, lease in zip(numbers, admission.leases, strict=False):
            begin = now + lease.start_in_s
            end = begin + scenario.latency_s(number)
            status, retry_after = scenario.receiver(begin)
            environment.running.append((end, number, lease, status, retry_after))
            with result.lock:
                result.spans.append((begin, end))
        for index, number in enumerate(numbers[admission.granted :]):
            delay = admission.delay_for(index)
            if delay < self.in_process_wait_s:
                heapq.heappush(environment.ready, (now + delay, number))  # waited out in the batch, no re-enqueue
                continue
            with result.lock:
                result.deferrals += 1
            heapq.heappush(environment.ready, (now + math.ceil(delay), number))  # SQS DelaySeconds: whole seconds
