"""The circuit breaker: a state machine over a shared StateStore, with a local cache and an outcome buffer.

Healthy path: ``allow()`` answers from the cached record and outcomes are buffered, so nothing is written per call;
buffered successes go out as one atomic ADD when the cached record goes stale, and that write's answer is the
refresh. A failure is written at the next ``allow()`` (or ``flush()``), and the store's answer carries the fleet-wide
counters, so the environment that sees failures also decides, at once, whether the fleet should trip.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from resilience.breaker.config import BreakerConfig
from resilience.breaker.model import BreakerRecord, BreakerSnapshot, BreakerState, Counts, OutcomeDelta, Transition
from resilience.exceptions import CircuitOpenError, StateStoreError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from resilience._clock import Clock
    from resilience.breaker.store import StateStore

__all__ = ["CircuitBreaker", "MetricsHook", "Permit", "StoreHealth", "TransitionHook"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

type TransitionHook = Callable[[Transition], None]
"""Called with every transition this environment makes (after it is stored)."""

type MetricsHook = Callable[[str, float], None]
"""Called with a metric name (BreakerOpened, BreakerRejected, BreakerProbeGranted, BreakerStoreErrors) and a value."""

_SOURCES = ("health", "operator")


@dataclass
class StoreHealth:
    """Whether the store answered lately; shared by every breaker of a registry so an outage is logged once."""

    down_until: float = 0.0
    errors: int = 0
    logged: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, now: float, retry_s: float, error: StateStoreError) -> None:
        """Note a store error: stay away for ``retry_s`` and log only the first error of an outage."""
        with self.lock:
            self.errors += 1
            self.down_until = now + retry_s
            first = not self.logged
            self.logged = True
        if first:
            logger.warning("breaker state store unreachable, failing open (acting closed): %s", error)

    def succeeded(self) -> None:
        """Note an answer from the store; log the recovery once."""
        if self.logged:
            with self.lock:
                recovered, self.logged = self.logged, False
            if recovered:
                logger.warning("breaker state store reachable again")

    def is_down(self, now: float) -> bool:
        """True while recent errors say not to ask the store."""
        return now < self.down_until


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; report its outcome through it (or through the breaker)."""

    breaker: CircuitBreaker
    probe_id: str | None = None
    tracked: bool = True

    def record_success(self, latency_s: float | None = None) -> None:
        """Report that the call succeeded."""
        self.breaker.record_success(latency_s, permit=self)

    def record_failure(self, latency_s: float | None = None, *, error: str | None = None) -> None:
        """Report that the call failed."""
        self.breaker.record_failure(latency_s, error=error, permit=self)


@dataclass
class _Buffer:
    """Outcomes of this environment not yet written, all of one counter epoch."""

    epoch: int = 0
    buckets: dict[int, Counts] = field(default_factory=dict)
    trailing_failures: int = 0
    last_success_at: float | None = None
    run_started_at: float | None = None

    @property
    def calls(self) -> int:
        return sum(counts.calls for counts in self.buckets.values())

    @property
    def failures(self) -> int:
        return sum(counts.failures for counts in self.buckets.values())

    def add(self, bucket: int, failed: bool, now: float, keep_after: float) -> None:
        if bucket not in self.buckets:
            # Bounded while the store is unreachable: buckets that left the window would be dropped anyway.
            for start in [start for start in self.buckets if start <= keep_after]:
                del self.buckets[start]
        self.buckets[bucket] = self.buckets.get(bucket, Counts()) + Counts(1, int(failed))
        if failed:
            if not self.trailing_failures:
                self.run_started_at = now
            self.trailing_failures += 1
        else:
            self.trailing_failures = 0
            self.run_started_at = None
            self.last_success_at = now

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.buckets = {}
        self.trailing_failures = 0
        self.last_success_at = None
        self.run_started_at = None


class CircuitBreaker:
    """A breaker for one named target, shared fleet-wide through a StateStore. Thread-safe.

    Use ``allow()`` + ``record_success/record_failure`` (buffered; see ``BreakerRegistry.flush``), or the wrappers:
    ``with breaker:``, ``async with breaker:``, ``@breaker``, ``breaker.call(fn, ...)``, ``await breaker.call_async``.
    """

    def __init__(
        self,
        name: str,
        *,
        store: StateStore,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
        timer: Clock = time.perf_counter,
        writer: str | None = None,
        on_transition: TransitionHook | None = None,
        metrics_hook: MetricsHook | None = None,
        store_health: StoreHealth | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.config = config or BreakerConfig()
        self._clock: Clock = clock or store.clock
        self._timer = timer
        self.writer = writer or uuid.uuid4().hex[:12]
        self._on_transition = on_transition
        self._metrics_hook = metrics_hook
        self._store_health = store_health or StoreHealth()
        self._lock = threading.RLock()
        self._record: BreakerRecord | None = None
        self._fetched_at = 0.0
        self._written_at = float("-inf")
        self._buffer = _Buffer()
        self._probes: deque[str] = deque()
        self._active: contextvars.ContextVar[tuple[tuple[Permit, float], ...]] = contextvars.ContextVar(
            f"breaker:{name}", default=()
        )

    # ------------------------------------------------------------------ reading state

    def _ttl(self, record: BreakerRecord, now: float) -> float:
        """How long a cached record may be acted on: shorter while the fleet reports failures or probes."""
        healthy = self.store.cache_ttl_s
        if record.state is BreakerState.HALF_OPEN or (
            record.state is BreakerState.CLOSED and (record.run or record.window(now, self.config.window_s).failures)
        ):
            return min(healthy, self.config.suspect_cache_ttl_s)
        return healthy

    def needs_refresh(self, now: float) -> bool:
        """True when the cached record is missing or too old to act on."""
        with self._lock:
            return self._stale(now)

    def _stale(self, now: float) -> bool:
        record = self._record
        return record is None or now - self._fetched_at >= self._ttl(record, now)

    def accept(self, record: BreakerRecord | None, now: float) -> None:
        """Take a record read by someone else (``BreakerRegistry.prefetch``); None = never written (closed)."""
        with self._lock:
            self._set_record(record or BreakerRecord(self.name), now)

    def _set_record(self, record: BreakerRecord, now: float) -> None:
        self._record = record
        self._fetched_at = now
        if record.epoch != self._buffer.epoch:
            # Outcomes seen before a reset must not count after it.
            self._buffer.reset(record.epoch)

    def _store_failed(self, now: float, error: StateStoreError) -> None:
        self._store_health.failed(now, self.config.store_retry_s, error)
        self._metric("BreakerStoreErrors")

    def _current(self, now: float) -> BreakerRecord | None:
        """The record to decide on, refreshed (by a flush or a read) when due.

        None when a refresh is due and the store does not answer: the caller then acts closed (fails open). A record
        that is still fresh keeps being used through a store outage.
        """
        record = self._record
        stale = self._stale(now)
        failures_due = self._buffer.failures and now - self._written_at >= self.config.failure_flush_s
        if not stale and not failures_due:
            return record
        fallback = None if stale else record
        if self._store_health.is_down(now):
            return fallback
        try:
            if failures_due or self._buffer.calls:
                return self._flush_locked(now)
            found = self.store.load([self.name]).get(self.name)
        except StateStoreError as error:
            self._store_failed(now, error)
            return fallback
        self._store_health.succeeded()
        self._set_record(found or BreakerRecord(self.name), now)
        return self._record

    def _reload(self, now: float) -> BreakerRecord:
        """A consistent read, after losing a compare-and-set race."""
        found = self.store.load([self.name], consistent=True).get(self.name)
        self._set_record(found or BreakerRecord(self.name), now)
        assert self._record is not None
        return self._record

    # ------------------------------------------------------------------ admission

    def allow(self) -> Permit:
        """Leave for one call, or raise ``CircuitOpenError`` carrying ``retry_after`` seconds."""
        now = self._clock()
        with self._lock:
            record = self._current(now)
            if record is None:
                return Permit(self)
            try:
                return self._admit(record, now)
            except StateStoreError as error:
                self._store_failed(now, error)
                return Permit(self)

    def _admit(self, record: BreakerRecord, now: float) -> Permit:
        for _ in range(self.config.cas_retries + 1):
            state = record.state
            if state is BreakerState.DISABLED:
                return Permit(self, tracked=False)
            if state is BreakerState.CLOSED:
                return Permit(self)
            if state is BreakerState.FORCED_OPEN:
                raise self._refusal(self.config.open_s, state)
            if state is BreakerState.OPEN and record.open_until is not None and now < record.open_until:
                raise self._refusal(record.open_until - now, state)
            live = record.live_probes(now)
            if len(live) >= self.config.half_open_probes:
                raise self._refusal(min(live.values()) - now, state)
            probe_id = f"{self.writer}-{uuid.uuid4().hex[:8]}"
            wanted = record.evolve(
                state=BreakerState.HALF_OPEN,
                probes={**live, probe_id: now + self.config.probe_lease_s},
                half_open_successes=record.half_open_successes if state is BreakerState.HALF_OPEN else 0,
                updated_at=now,
                updated_by=self.writer,
            )
            stored = self.store.compare_and_set(wanted, expected_version=record.version)
            if stored is not None:
                self._set_record(stored, now)
                self._probes.append(probe_id)
                self._metric("BreakerProbeGranted")
                if state is not BreakerState.HALF_OPEN:
                    self._transitioned(record, stored, now, "open period over, probing", "fleet")
                return Permit(self, probe_id=probe_id)
            record = self._reload(now)
        raise self._refusal(self.config.suspect_cache_ttl_s, record.state)

    def _refusal(self, retry_after: float, state: BreakerState) -> CircuitOpenError:
        self._metric("BreakerRejected")
        return CircuitOpenError(self.name, retry_after=max(0.0, retry_after), state=state.value)

    # ------------------------------------------------------------------ outcomes

    def record_success(self, latency_s: float | None = None, *, permit: Permit | None = None) -> None:
        """Report a successful call (a call slower than ``slow_call_s`` counts as a failure)."""
        slow = self.config.slow_call_s
        if slow is not None and latency_s is not None and latency_s > slow:
            self.record_failure(latency_s, error=f"slow call ({latency_s:.3f}s)", permit=permit)
            return
        self._record_outcome(failed=False, error=None, permit=permit)

    def record_failure(
        self, latency_s: float | None = None, *, error: str | None = None, permit: Permit | None = None
    ) -> None:
        """Report a failed call; the failure reaches the store at the next ``allow()`` or ``flush()``."""
        del latency_s  # a failure counts the same however long it took
        self._record_outcome(failed=True, error=error, permit=permit)

    def _record_outcome(self, *, failed: bool, error: str | None, permit: Permit | None) -> None:
        now = self._clock()
        with self._lock:
            if permit is not None and not permit.tracked:
                return
            probe_id = self._claim_probe(permit)
            if probe_id is not None:
                try:
                    self._finish_probe(probe_id, failed=failed, error=error, now=now)
                except StateStoreError as store_error:
                    self._store_failed(now, store_error)
                return
            if self._record is not None and self._record.state is BreakerState.DISABLED:
                return
            bucket = int(now // self.config.bucket_s * self.config.bucket_s)
            self._buffer.add(bucket, failed, now, self._keep_after(now))

    def _claim_probe(self, permit: Permit | None) -> str | None:
        """The probe this outcome answers: the permit's own, else the oldest probe this environment holds."""
        if permit is not None:
            if permit.probe_id is not None and permit.probe_id in self._probes:
                self._probes.remove(permit.probe_id)
                return permit.probe_id
            return None
        return self._probes.popleft() if self._probes else None

    def _finish_probe(self, probe_id: str, *, failed: bool, error: str | None, now: float) -> None:
        record = self._record or self._reload(now)
        config = self.config
        for _ in range(config.cas_retries + 1):
            if record.state is not BreakerState.HALF_OPEN:
                return  # closed, reopened or forced by someone else meanwhile: this probe no longer matters
            probes = {probe: until for probe, until in record.live_probes(now).items() if probe != probe_id}
            reset = True
            if failed:
                reopen = record.reopen_count + 1
                wanted = record.evolve(
                    state=BreakerState.OPEN,
                    opened_at=now,
                    open_until=now + config.open_duration(reopen),
                    reopen_count=reopen,
                    probes={},
                    half_open_successes=0,
                    reason=f"probe failed: {error or 'error'}",
                )
            elif record.half_open_successes + 1 >= config.success_threshold:
                wanted = record.evolve(
                    state=BreakerState.CLOSED,
                    opened_at=None,
                    open_until=None,
                    reopen_count=0,
                    probes={},
                    half_open_successes=0,
                    reason=f"{record.half_open_successes + 1} probes succeeded",
                )
            else:
                reset = False
                wanted = record.evolve(probes=probes, half_open_successes=record.half_open_successes + 1)
            wanted = wanted.evolve(updated_at=now, updated_by=self.writer)
            stored = self.store.compare_and_set(wanted, expected_version=record.version, reset_counters=reset)
            if stored is not None:
                self._set_record(stored, now)
                if stored.state is not record.state:
                    self._transitioned(record, stored, now, wanted.reason, "probe")
                return
            record = self._reload(now)

    # ------------------------------------------------------------------ flushing and tripping

    def flush(self, *, force: bool = False) -> None:
        """Write buffered failures now, and buffered successes too when ``force`` or the cache is stale."""
        now = self._clock()
        with self._lock:
            if not self._buffer.calls or (self._store_health.is_down(now) and not force):
                return
            if not (force or self._buffer.failures or self._stale(now)):
                return
            try:
                self._flush_locked(now)
            except StateStoreError as error:
                self._store_failed(now, error)

    def _flush_locked(self, now: float) -> BreakerRecord:
        buffer = self._buffer
        delta = OutcomeDelta(
            epoch=buffer.epoch,
            at=now,
            buckets=dict(buffer.buckets),
            trailing_failures=buffer.trailing_failures,
            last_success_at=buffer.last_success_at,
            run_started_at=buffer.run_started_at,
            keep_after=self._keep_after(now),
        )
        record = self.store.add_outcomes(self.name, delta)
        self._written_at = now
        self._store_health.succeeded()
        buffer.reset(buffer.epoch)
        self._set_record(record, now)
        if record.state is BreakerState.CLOSED:
            reason = self._trip_reason(record, now)
            if reason is not None:
                self._trip(record, now, reason)
        assert self._record is not None
        return self._record

    def _keep_after(self, now: float) -> float:
        """Buckets starting at or before this time have left the window."""
        return now - self.config.window_s - self.config.bucket_s

    def _trip_reason(self, record: BreakerRecord, now: float) -> str | None:
        config = self.config
        window = record.window(now, config.window_s)
        if window.calls >= config.min_calls and window.failures >= config.failure_rate * window.calls:
            return f"{window.failures}/{window.calls} calls failed in {config.window_s:g}s"
        if config.consecutive_failures and record.run >= config.consecutive_failures:
            return f"{record.run} consecutive failures"
        return None

    def _trip(self, record: BreakerRecord, now: float, reason: str) -> None:
        wanted = record.evolve(
            state=BreakerState.OPEN,
            opened_at=now,
            open_until=now + self.config.open_duration(0),
            reopen_count=0,
            probes={},
            half_open_successes=0,
            reason=reason,
            updated_at=now,
            updated_by=self.writer,
        )
        stored = self.store.compare_and_set(wanted, expected_version=record.version, reset_counters=True)
        if stored is None:
            self._reload(now)  # someone else changed the state first (often: tripped it too)
            return
        self._set_record(stored, now)
        self._transitioned(record, stored, now, reason, "fleet")

    # ------------------------------------------------------------------ manual control

    def force_open(self, reason: str, *, source: str = "operator") -> bool:
        """Hold the breaker open until lifted by the same source; an operator's hold outranks health's."""
        self._check_source(source)

        def change(record: BreakerRecord, now: float) -> BreakerRecord | None:
            if record.state is BreakerState.FORCED_OPEN and record.forced_by == "operator" and source == "health":
                return None
            return record.evolve(
                state=BreakerState.FORCED_OPEN,
                forced_by=source,
                reason=reason,
                opened_at=now,
                open_until=None,
                probes={},
                half_open_successes=0,
            )

        return self._change(change, source, reset_counters=True)

    def force_close(self, *, source: str = "operator", reason: str | None = None) -> bool:
        """Close an open, half-open or forced-open breaker; a forced open is lifted only by the source that set it."""
        self._check_source(source)

        def change(record: BreakerRecord, now: float) -> BreakerRecord | None:
            del now
            if record.state in (BreakerState.CLOSED, BreakerState.DISABLED):
                return None
            if record.state is BreakerState.FORCED_OPEN and record.forced_by != source:
                return None
            return self._closed(record, reason or f"closed by {source}")

        return self._change(change, source, reset_counters=True)

    def reset(self) -> bool:
        """Close the breaker whatever its state (operator action), clearing counters and forced holds."""
        return self._change(lambda record, now: self._closed(record, "reset by operator"), "operator", True)

    def disable(self) -> bool:
        """Turn the breaker off fleet-wide: every call is allowed and nothing is counted until ``reset()``."""

        def change(record: BreakerRecord, now: float) -> BreakerRecord | None:
            del now
            if record.state is BreakerState.DISABLED:
                return None
            return self._closed(record, "disabled by operator").evolve(state=BreakerState.DISABLED)

        return self._change(change, "operator", reset_counters=True)

    @staticmethod
    def _closed(record: BreakerRecord, reason: str) -> BreakerRecord:
        return record.evolve(
            state=BreakerState.CLOSED,
            forced_by=None,
            reason=reason,
            opened_at=None,
            open_until=None,
            reopen_count=0,
            probes={},
            half_open_successes=0,
        )

    @staticmethod
    def _check_source(source: str) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")

    def _change(
        self,
        change: Callable[[BreakerRecord, float], BreakerRecord | None],
        source: str,
        reset_counters: bool,
    ) -> bool:
        """Apply a manual change with compare-and-set; store errors reach the caller (an operator must know)."""
        now = self._clock()
        with self._lock:
            record = self._reload(now)
            for _ in range(self.config.cas_retries + 1):
                wanted = change(record, now)
                if wanted is None:
                    return False
                wanted = wanted.evolve(updated_at=now, updated_by=self.writer)
                stored = self.store.compare_and_set(
                    wanted, expected_version=record.version, reset_counters=reset_counters
                )
                if stored is not None:
                    self._set_record(stored, now)
                    self._probes.clear()
                    self._transitioned(record, stored, now, wanted.reason, source)
                    return True
                record = self._reload(now)
        raise StateStoreError(f"breaker {self.name!r}: gave up after {self.config.cas_retries + 1} lost races")

    # ------------------------------------------------------------------ observing

    def snapshot(self, *, refresh: bool = False) -> BreakerSnapshot:
        """The breaker as this environment sees it (``refresh`` re-reads the store first)."""
        now = self._clock()
        with self._lock:
            if refresh or self._record is None:
                self._reload(now)
            assert self._record is not None
            return self._record.snapshot(now, self.config.window_s)

    @property
    def pending_outcomes(self) -> int:
        """Outcomes recorded here and not yet written to the store."""
        with self._lock:
            return self._buffer.calls

    def _transitioned(
        self, before: BreakerRecord, after: BreakerRecord, now: float, reason: str | None, source: str
    ) -> None:
        transition = Transition(
            name=self.name,
            from_state=before.state,
            to_state=after.state,
            at=now,
            reason=reason,
            source=source,
            writer=self.writer,
            version=after.version,
        )
        if after.state is BreakerState.OPEN:
            self._metric("BreakerOpened")
        logger.info(
            "breaker %s: %s -> %s (%s, by %s)", self.name, before.state.value, after.state.value, reason, source
        )
        try:
            self.store.append_history(transition)
        except StateStoreError as error:
            logger.warning("breaker %s: transition not kept in history: %s", self.name, error)
        if self._on_transition is not None:
            try:
                self._on_transition(transition)
            except Exception:
                logger.exception("breaker %s: on_transition hook failed", self.name)

    def _metric(self, metric: str) -> None:
        if self._metrics_hook is None:
            return
        try:
            self._metrics_hook(metric, 1.0)
        except Exception:
            logger.exception("breaker %s: metrics hook failed", self.name)

    # ------------------------------------------------------------------ wrappers

    def __enter__(self) -> Permit:
        permit = self.allow()
        self._active.set((*self._active.get(), (permit, self._timer())))
        return permit

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        stack = self._active.get()
        permit, started = stack[-1]
        self._active.set(stack[:-1])
        latency = self._timer() - started
        if exc is not None and self.config.is_failure(exc):
            permit.record_failure(latency, error=type(exc).__name__)
        else:
            # An exception the predicate does not count (say a 4xx) still means the target answered.
            permit.record_success(latency)

    async def __aenter__(self) -> Permit:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` under the breaker."""
        with self:
            return fn(*args, **kwargs)

    async def call_async(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn`` under the breaker."""
        async with self:
            return await fn(*args, **kwargs)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function so every call runs under the breaker."""
        if inspect.iscoroutinefunction(fn):
            async_fn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(async_fn, *args, **kwargs)

            return cast("Callable[P, R]", run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return run

    def __repr__(self) -> str:
        state = self._record.state.value if self._record is not None else "unknown"
        return f"CircuitBreaker({self.name!r}, state={state})"
