"""The circuit breaker: a local cache, an outcome buffer and one compare-and-set loop over a shared StateStore.

The rules of the state machine live in ``resilience.breaker.transitions`` as pure functions; this module decides
when to read and write, and applies a transition with ``_apply``, its only compare-and-set loop.

Healthy path: ``allow()`` answers from the cached record and outcomes are buffered, so nothing is written per call;
buffered successes go out as one atomic ADD when the cached record goes stale, and that write's answer is the
refresh. A failure is written at the next ``allow()`` (or ``flush()``), and the store's answer carries the fleet-wide
counters, so the environment that sees failures also decides, at once, whether the fleet should trip.

Async callers use ``allow_async()``, ``record_*_async()`` and ``flush_async()``: what can be answered from the
cache and the buffer is answered on the event loop, and every store call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
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

from resilience.breaker import transitions
from resilience.breaker.buffer import OutcomeBuffer
from resilience.breaker.config import BreakerConfig
from resilience.breaker.model import BreakerRecord, BreakerSnapshot, BreakerState, Transition
from resilience.breaker.transitions import Admit, Change, Probe, Refuse
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

    async def record_success_async(self, latency_s: float | None = None) -> None:
        """Report that the call succeeded, from a coroutine (a probe's outcome is written from a thread)."""
        await self.breaker.record_success_async(latency_s, permit=self)

    async def record_failure_async(self, latency_s: float | None = None, *, error: str | None = None) -> None:
        """Report that the call failed, from a coroutine (a probe's outcome is written from a thread)."""
        await self.breaker.record_failure_async(latency_s, error=error, permit=self)


@dataclass(frozen=True)
class _Lost:
    """Every compare-and-set of a transition lost its race; ``record`` is the last one read."""

    record: BreakerRecord


class CircuitBreaker:
    """A breaker for one named target, shared fleet-wide through a StateStore. Thread-safe.

    Use ``allow()`` + ``record_success/record_failure`` (buffered; see ``BreakerRegistry.flush``), or the wrappers:
    ``with breaker:``, ``async with breaker:``, ``@breaker``, ``breaker.call(fn, ...)``, ``await breaker.call_async``.
    """

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
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
        self._buffer = OutcomeBuffer()
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

    def _refresh_due(self, now: float) -> bool:
        """True when deciding needs the store first: the cache is stale or failures are due, and the store is up."""
        failures_due = self._buffer.failures and now - self._written_at >= self.config.failure_flush_s
        return bool(self._stale(now) or failures_due) and not self._store_health.is_down(now)

    def _cached(self, now: float) -> BreakerRecord | None:
        """The cached record while it is fresh enough to act on, else None (act closed: fail open)."""
        return None if self._stale(now) else self._record

    def _current(self, now: float) -> BreakerRecord | None:
        """The record to decide on, refreshed (by a flush or a read) when due.

        None when a refresh is due and the store does not answer: the caller then acts closed (fails open). A record
        that is still fresh keeps being used through a store outage.
        """
        fallback = self._cached(now)
        if not self._refresh_due(now):
            return fallback
        try:
            if self._buffer.calls:
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

    def allow_nowait(self) -> Permit | None:
        """``allow()``'s answer if it needs no store call (a Permit, or ``CircuitOpenError``), else None.

        None means only the store can answer: a refresh or a failure write is due, a probe lease is to be granted, or
        another thread is talking to the store for this breaker right now. Never blocks.
        """
        now = self._clock()
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._refresh_due(now):
                return None
            record = self._cached(now)
            if record is None:
                return Permit(self)  # stale and the store is down: act closed, as allow() does
            verdict = transitions.admission(record, now, self.config)
            return None if isinstance(verdict, Probe) else self._answer(verdict)
        finally:
            self._lock.release()

    async def allow_async(self) -> Permit:
        """``allow()`` for a coroutine: answered on the event loop when no store call is needed, else in a thread."""
        permit = self.allow_nowait()
        if permit is not None:
            return permit
        return await asyncio.to_thread(self.allow)

    def _admit(self, record: BreakerRecord, now: float) -> Permit:
        config = self.config
        probe_id = f"{self.writer}-{uuid.uuid4().hex[:8]}"

        def decide(current: BreakerRecord) -> Change | Admit | Refuse:
            verdict = transitions.admission(current, now, config)
            return transitions.grant_probe(current, now, config, probe_id) if isinstance(verdict, Probe) else verdict

        applied: Change | Admit | Refuse | _Lost = self._apply(decide, record, now)
        if isinstance(applied, _Lost):
            raise self._refusal(config.suspect_cache_ttl_s, applied.record.state)
        if isinstance(applied, Change):
            self._probes.append(probe_id)
            self._metric("BreakerProbeGranted")
            return Permit(self, probe_id=probe_id)
        return self._answer(applied)

    def _answer(self, verdict: Admit | Refuse) -> Permit:
        if isinstance(verdict, Refuse):
            raise self._refusal(verdict.retry_after, verdict.state)
        return Permit(self, tracked=verdict.tracked)

    def _refusal(self, retry_after: float, state: BreakerState) -> CircuitOpenError:
        self._metric("BreakerRejected")
        return CircuitOpenError(self.name, retry_after=max(0.0, retry_after), state=state.value)

    # ------------------------------------------------------------------ outcomes

    def record_success(self, latency_s: float | None = None, *, permit: Permit | None = None) -> None:
        """Report a successful call (a call slower than ``slow_call_s`` counts as a failure)."""
        slow = self._slow_call(latency_s)
        self._record_outcome(failed=slow is not None, error=slow, permit=permit)

    def record_failure(
        self, latency_s: float | None = None, *, error: str | None = None, permit: Permit | None = None
    ) -> None:
        """Report a failed call; the failure reaches the store at the next ``allow()`` or ``flush()``."""
        del latency_s  # a failure counts the same however long it took
        self._record_outcome(failed=True, error=error, permit=permit)

    async def record_success_async(self, latency_s: float | None = None, *, permit: Permit | None = None) -> None:
        """``record_success()`` for a coroutine: a probe's outcome is written from a thread, never on the loop."""
        slow = self._slow_call(latency_s)
        await self._record_outcome_async(failed=slow is not None, error=slow, permit=permit)

    async def record_failure_async(
        self, latency_s: float | None = None, *, error: str | None = None, permit: Permit | None = None
    ) -> None:
        """``record_failure()`` for a coroutine: a probe's outcome is written from a thread, never on the loop."""
        del latency_s
        await self._record_outcome_async(failed=True, error=error, permit=permit)

    def _slow_call(self, latency_s: float | None) -> str | None:
        """The failure a success turns into when it was slower than ``slow_call_s``, else None."""
        slow = self.config.slow_call_s
        if slow is not None and latency_s is not None and latency_s > slow:
            return f"slow call ({latency_s:.3f}s)"
        return None

    def _record_outcome(self, *, failed: bool, error: str | None, permit: Permit | None) -> None:
        now = self._clock()
        with self._lock:
            probe_id = self._buffer_outcome(failed, permit, now)
            if probe_id is not None:
                self._settle_probe(probe_id, failed, error, now)

    async def _record_outcome_async(self, *, failed: bool, error: str | None, permit: Permit | None) -> None:
        now = self._clock()
        if not self._lock.acquire(blocking=False):
            # Another thread holds the breaker (talking to the store): wait for it in a thread, not on the loop.
            await asyncio.to_thread(self._record_outcome, failed=failed, error=error, permit=permit)
            return
        try:
            probe_id = self._buffer_outcome(failed, permit, now)
        finally:
            self._lock.release()
        if probe_id is not None:
            await asyncio.to_thread(self._settle_probe, probe_id, failed, error, now)

    def _buffer_outcome(self, failed: bool, permit: Permit | None, now: float) -> str | None:
        """Buffer an outcome (no I/O); returns the probe it answers instead, whose outcome must be written."""
        if permit is not None and not permit.tracked:
            return None
        probe_id = self._claim_probe(permit)
        if probe_id is not None:
            return probe_id
        if self._record is not None and self._record.state is BreakerState.DISABLED:
            return None
        bucket = int(now // self.config.bucket_s * self.config.bucket_s)
        self._buffer.add(bucket, failed, now, self._keep_after(now))
        return None

    def _claim_probe(self, permit: Permit | None) -> str | None:
        """The probe this outcome answers: the permit's own, else the oldest probe this environment holds."""
        if permit is not None:
            if permit.probe_id is not None and permit.probe_id in self._probes:
                self._probes.remove(permit.probe_id)
                return permit.probe_id
            return None
        return self._probes.popleft() if self._probes else None

    def _settle_probe(self, probe_id: str, failed: bool, error: str | None, now: float) -> None:
        """Write a probe's outcome (``transitions.finish_probe``); a store error fails open like ``allow()``."""

        def finish(current: BreakerRecord) -> Change | None:
            return transitions.finish_probe(current, now, self.config, probe_id, failed=failed, error=error)

        with self._lock:
            try:
                self._apply(finish, self._record or self._reload(now), now)
            except StateStoreError as store_error:
                self._store_failed(now, store_error)

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

    async def flush_async(self, *, force: bool = False) -> None:
        """``flush()`` from a thread, so a coroutine's event loop never waits on the store."""
        await asyncio.to_thread(self.flush, force=force)

    def _flush_locked(self, now: float) -> BreakerRecord:
        record = self.store.add_outcomes(self.name, self._buffer.delta(now, self._keep_after(now)))
        self._written_at = now
        self._store_health.succeeded()
        self._buffer.reset(self._buffer.epoch)
        self._set_record(record, now)
        # The store's answer carries the fleet's counters: this environment decides for the fleet whether to trip.
        config = self.config
        self._apply(lambda current: transitions.trip(current, now, config), record, now)
        assert self._record is not None
        return self._record

    def _keep_after(self, now: float) -> float:
        """Buckets starting at or before this time have left the window."""
        return now - self.config.window_s - self.config.bucket_s

    # ------------------------------------------------------------------ the one compare-and-set loop

    def _apply[T](
        self, step: Callable[[BreakerRecord], Change | T], record: BreakerRecord, now: float
    ) -> Change | T | _Lost:
        """Apply a pure transition: write the Change ``step`` wants, if nobody changed the record meanwhile.

        On a lost race, read again (consistently) and ask ``step`` again on what the winner wrote. Returns ``step``'s
        answer when it is not a Change (a verdict, or None: nothing to write), the Change once stored, or _Lost
        after ``cas_retries`` lost races.
        """
        for _ in range(self.config.cas_retries + 1):
            change = step(record)
            if not isinstance(change, Change):
                return change
            wanted = change.record.evolve(updated_at=now, updated_by=self.writer)
            stored = self.store.compare_and_set(
                wanted, expected_version=record.version, reset_counters=change.reset_counters
            )
            if stored is not None:
                self._set_record(stored, now)
                if change.announced:
                    self._transitioned(record, stored, now, change.reason, change.source)
                return change
            record = self._reload(now)
        return _Lost(record)

    # ------------------------------------------------------------------ manual control

    def force_open(self, reason: str, *, source: str = "operator") -> bool:
        """Hold the breaker open until lifted by the same source; an operator's hold outranks health's."""
        self._check_source(source)
        return self._change(lambda record, now: transitions.force_open(record, now, reason=reason, source=source))

    def force_close(self, *, source: str = "operator", reason: str | None = None) -> bool:
        """Close an open, half-open or forced-open breaker; a forced open is lifted only by the source that set it."""
        self._check_source(source)
        return self._change(lambda record, now: transitions.force_close(record, source=source, reason=reason))

    def reset(self) -> bool:
        """Close the breaker whatever its state (operator action), clearing counters and forced holds."""
        return self._change(lambda record, now: transitions.reset(record))

    def disable(self) -> bool:
        """Turn the breaker off fleet-wide: every call is allowed and nothing is counted until ``reset()``."""
        return self._change(lambda record, now: transitions.disable(record))

    @staticmethod
    def _check_source(source: str) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")

    def _change(self, step: Callable[[BreakerRecord, float], Change | None]) -> bool:
        """Apply a manual change from a fresh consistent read; store errors reach the caller (an operator must know)."""
        now = self._clock()
        with self._lock:
            applied = self._apply(lambda record: step(record, now), self._reload(now), now)
            if isinstance(applied, _Lost):
                raise StateStoreError(f"breaker {self.name!r}: gave up after {self.config.cas_retries + 1} lost races")
            if applied is None:
                return False
            self._probes.clear()
            return True

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
        return self._enter(self.allow())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        permit, latency, error = self._exit(exc)
        if error is not None:
            permit.record_failure(latency, error=error)
        else:
            permit.record_success(latency)

    async def __aenter__(self) -> Permit:
        return self._enter(await self.allow_async())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        permit, latency, error = self._exit(exc)
        if error is not None:
            await permit.record_failure_async(latency, error=error)
        else:
            await permit.record_success_async(latency)

    def _enter(self, permit: Permit) -> Permit:
        self._active.set((*self._active.get(), (permit, self._timer())))
        return permit

    def _exit(self, exc: BaseException | None) -> tuple[Permit, float, str | None]:
        """The permit of the call that ended, its latency, and its failure (None: a success)."""
        stack = self._active.get()
        permit, started = stack[-1]
        self._active.set(stack[:-1])
        latency = self._timer() - started
        # An exception the predicate does not count (say a 4xx) still means the target answered: a success.
        failed = exc is not None and self.config.is_failure(exc)
        return permit, latency, type(exc).__name__ if failed else None

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
