"""The Pacer: fleet-wide per-key flow control over a PaceStore, with a short local cache. Thread-safe.

Unpaced keys (no limit, no recent 429) cost no request per message: ``prefetch`` reads the keys of a batch at most
once per ``cache_ttl_s`` and ``acquire`` grants everything. A paced key costs one conditional write per ``acquire``,
however many requests it grants, plus one per slot given back when ``max_in_flight`` is set. The decisions live in
``hookline.pacing.policy``; this module only runs them against the store.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hookline.pacing.config import PacerConfig
from hookline.pacing.exceptions import PacingConfigError, PacingStoreError
from hookline.pacing.model import PaceLimits, PaceRecord
from hookline.pacing.policy import plan_take, slot_limit, slow_down

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hookline.pacing.policy import Plan
    from hookline.pacing.store import PaceStore
    from resilience._clock import Clock

__all__ = ["Admission", "Lease", "MetricsHook", "Pacer"]

logger = logging.getLogger(__name__)

type MetricsHook = Callable[[str, float], None]
"""Called with a metric name (PacingDeferred, PacingSlowedDown, PacingStoreErrors) and a value."""

_TOO_MANY = 429
_NO_LIMITS = PaceLimits()
_LATENCY_WEIGHT = 0.2
"""Weight of the newest request in the running average of a key's latency."""
_MIN_LATENCY_S = 0.001
"""Floor of the latency estimate (an answer measured as instant must not make waves of zero length)."""


@dataclass(frozen=True)
class Lease:
    """Leave for one request to ``key``: start it ``start_in_s`` after the acquire, then hand it to ``release``."""

    key: str
    granted_at: float
    start_in_s: float = 0.0
    bucket: int | None = None
    """The grant bucket of the in-flight slot this lease holds; None when it holds none."""


@dataclass(frozen=True)
class Admission:
    """The answer to ``acquire``: leases for the requests granted, and how long each other one should wait."""

    key: str
    requested: int
    leases: tuple[Lease, ...] = ()
    delays: tuple[float, ...] = ()
    """For each request not granted, in order: re-enqueue it with at least this delay (seconds). Spread out, so
    that deferred requests come back about when their turn comes."""
    paced: bool = False
    """Whether any limit or throttle applied (False: the free path, no store write)."""

    @property
    def granted(self) -> int:
        """How many requests may go."""
        return len(self.leases)

    @property
    def denied(self) -> int:
        """How many requests must wait."""
        return self.requested - len(self.leases)

    @property
    def wait_s(self) -> float:
        """The shortest wait of a request not granted (0.0 when all were granted)."""
        return self.delays[0] if self.delays else 0.0

    def delay_for(self, index: int) -> float:
        """Delay for the ``index``-th request not granted (0-based)."""
        if not 0 <= index < self.denied:
            raise IndexError(f"{index} is not the index of a denied request (denied: {self.denied})")
        return self.delays[index]


@dataclass
class _StoreHealth:
    """Whether the store answered lately, so that an outage is logged once and not asked about on every call."""

    down_until: float = float("-inf")
    errors: int = 0
    logged: bool = False

    def failed(self, now: float, retry_s: float, error: PacingStoreError) -> None:
        self.errors += 1
        self.down_until = now + retry_s
        if not self.logged:
            self.logged = True
            logger.warning("pace store unreachable, delivering unpaced (failing open): %s", error)

    def succeeded(self) -> None:
        if self.logged:
            self.logged = False
            logger.warning("pace store reachable again")

    def is_down(self, now: float) -> bool:
        return now < self.down_until


@dataclass
class _KeyState:
    """What this environment knows about one key."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held across the key's store calls."""
    latency_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held only to update ``latency_s``: a release with nothing to write never waits for a store call."""
    record: PaceRecord | None = None
    fetched_at: float = float("-inf")
    limits: PaceLimits = _NO_LIMITS
    grants: deque[tuple[float, int]] = field(default_factory=deque)
    latency_s: float | None = None
    contributed_since: float | None = None


class Pacer:
    """Per-key rate limit, in-flight limit and 429 back-off, shared by every environment through a PaceStore."""

    def __init__(
        self,
        store: PaceStore,
        *,
        config: PacerConfig | None = None,
        clock: Clock | None = None,
        metrics_hook: MetricsHook | None = None,
    ) -> None:
        self.store = store
        self.config = config or PacerConfig()
        self._clock: Clock = clock or store.clock
        self._metrics_hook = metrics_hook
        self._health = _StoreHealth()
        self._health_lock = threading.Lock()
        self._keys: dict[str, _KeyState] = {}
        self._keys_lock = threading.Lock()
        self._unreturned: dict[tuple[str, int], int] = {}
        self._unreturned_lock = threading.Lock()

    @property
    def store_errors(self) -> int:
        """Store errors this pacer met (each one meant unpaced requests)."""
        return self._health.errors

    def _state(self, key: str) -> _KeyState:
        with self._keys_lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState()
            return state

    # ------------------------------------------------------------------ reading

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read every key whose cached record is stale, in one request: call it with a batch's keys first."""
        now = self._clock()
        stale = [key for key in dict.fromkeys(keys) if now - self._state(key).fetched_at >= self.config.cache_ttl_s]
        if not stale or self._is_down(now):
            return
        try:
            records = self.store.load(stale)
        except PacingStoreError as error:
            self._store_failed(now, error)
            return
        self._store_answered()
        for key in stale:
            state = self._state(key)
            with state.lock:
                self._remember(state, records.get(key) or PaceRecord(key), now)

    @staticmethod
    def _remember(state: _KeyState, record: PaceRecord, now: float) -> None:
        state.record, state.fetched_at = record, now

    def _read(self, state: _KeyState, key: str, now: float, *, consistent: bool = False) -> PaceRecord:
        record = self.store.load([key], consistent=consistent).get(key) or PaceRecord(key)
        self._remember(state, record, now)
        return record

    # ------------------------------------------------------------------ admission

    def acquire(self, key: str, limits: PaceLimits | None = None, *, count: int = 1) -> Admission:
        """Leases for up to ``count`` requests to ``key`` now; the rest wait ``Admission.delay_for(i)``.

        ``limits`` are the key's configured limits (None: no limit; 429 pacing only). Never raises for store errors:
        the pacer fails open and grants everything.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise PacingConfigError(f"count must be an integer >= 1, got {count!r}")
        limits = limits or _NO_LIMITS
        now = self._clock()
        state = self._state(key)
        with state.lock:
            state.limits = limits
            if self._is_down(now):
                return self._unpaced(state, key, count, now)
            try:
                admission = self._admit(state, key, limits, count, now)
            except PacingStoreError as error:
                self._store_failed(now, error)
                return self._unpaced(state, key, count, now)
        if admission.denied:
            self._metric("PacingDeferred", admission.denied)
        return admission

    def _admit(self, state: _KeyState, key: str, limits: PaceLimits, count: int, now: float) -> Admission:
        record = state.record
        answered = False
        if not limits.is_limited and (record is None or now - state.fetched_at >= self.config.cache_ttl_s):
            # Only a fresh record tells an unlimited key whether another environment has seen a 429 lately.
            record, answered = self._read(state, key, now), True
        record = record or PaceRecord(key)
        for _ in range(self.config.max_races + 1):
            plan = plan_take(record, limits, count, now, self.config, latency_s=self._latency(state, record))
            if not plan.paced:
                return self._unpaced(state, key, count, now)
            if plan.slots_full and not answered:
                # The cached count of slots may predate releases by other environments: look once more.
                record, answered = self._read(state, key, now, consistent=True), True
                continue
            if plan.take is None:
                return self._admission(state, plan, record, now)
            applied, record = self.store.take(key, plan.take)
            self._store_answered()
            self._remember(state, record, now)
            answered = True
            if applied:
                return self._admission(state, plan, record, now)
        # Every race lost (heavy contention on one key): defer everything briefly rather than guess.
        period = plan.period_s or 0.0
        wait = max(period, self.config.max_start_delay_s)
        return Admission(key, count, delays=tuple(wait + index * period for index in range(count)), paced=True)

    def _admission(self, state: _KeyState, plan: Plan, record: PaceRecord, now: float) -> Admission:
        """Turn an applied plan (or one that needed no write) and the record after it into leases and waits."""
        key, count = record.key, plan.requested
        take = plan.take
        period = plan.period_s or 0.0
        bucket = take.slots.bucket if take is not None and take.slots is not None and take.slots.count else None
        starts = [0.0] * plan.granted
        if take is not None and take.tat is not None and record.tat is not None:
            # The record after our step: our requests are the last ``granted`` periods before its clock.
            first = record.tat - plan.granted * period
            starts = [max(0.0, first + index * period - plan.tolerance_s - now) for index in range(plan.granted)]
        leases = tuple(Lease(key, now, start, bucket) for start in starts)
        self._note_grants(state, now, plan.granted)
        return Admission(key, count, leases, self._delays(state, plan, record, now), paced=True)

    @staticmethod
    def _delays(state: _KeyState, plan: Plan, record: PaceRecord, now: float) -> tuple[float, ...]:
        """How long each request not granted waits: a wave of requests to end (in-process), its booking on the
        ``due`` clock, or the Retry-After hold."""
        denied = plan.requested - plan.granted
        gap = plan.booking_s
        if plan.hold_until is not None:
            first = plan.hold_until - now
            return tuple(max(0.0, first + index * gap) for index in range(denied))
        slots = slot_limit(state.limits) or 1
        delays = [plan.wave_s * (1 + index // slots) for index in range(plan.soon)]
        booked = denied - plan.soon
        if not booked:
            return tuple(delays)
        if plan.take is not None and plan.take.due is not None and record.due is not None:
            # The record after our step: our bookings are the last ``booked`` gaps before its clock.
            first = max(0.0, record.due - booked * gap - now)
        else:
            first = plan.wave_s  # not reached by the plans of policy.plan_take; a short wait, never none
        return (*delays, *(first + index * gap for index in range(booked)))

    def _latency(self, state: _KeyState, record: PaceRecord) -> float:
        """This environment's latency to the key, else the fleet's, else the default."""
        latency = state.latency_s or record.latency_s or self.config.default_latency_s
        return max(latency, _MIN_LATENCY_S)

    def _unpaced(self, state: _KeyState, key: str, count: int, now: float) -> Admission:
        self._note_grants(state, now, count)
        return Admission(key, count, tuple(Lease(key, now) for _ in range(count)))

    def _note_grants(self, state: _KeyState, now: float, count: int) -> None:
        """Keep this environment's recent grants: an unlimited key's first 429 starts from their rate."""
        if count:
            state.grants.append((now, count))
        horizon = now - self.config.estimate_window_s
        while state.grants and state.grants[0][0] < horizon:
            state.grants.popleft()

    def _local_rate(self, state: _KeyState, now: float) -> float:
        self._note_grants(state, now, 0)
        if not state.grants:
            return 0.0
        total = sum(count for _, count in state.grants)
        return total / max(1.0, now - state.grants[0][0])

    # ------------------------------------------------------------------ answers

    def release(self, lease: Lease | str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        """Report a request's answer and free its in-flight slot.

        ``status``: the HTTP status (None when no answer came, or the lease went unused); 429 slows the key down
        fleet-wide and a Retry-After holds it. A key instead of a lease reports a 429 for a request made without one.
        """
        now = self._clock()
        if isinstance(lease, str):
            lease = Lease(lease, now)
        state = self._state(lease.key)
        if status is not None:
            latency = max(0.0, now - lease.granted_at - lease.start_in_s)
            with state.latency_lock:
                previous = state.latency_s
                state.latency_s = latency if previous is None else previous + _LATENCY_WEIGHT * (latency - previous)
        if lease.bucket is None and status != _TOO_MANY:
            return  # nothing to write: the caller may be an event loop, which must not wait for the key's store calls
        with state.lock:
            if lease.bucket is not None:
                self._give_back(state, lease.key, lease.bucket, 1, now, latency_s=state.latency_s)
            if status == _TOO_MANY:
                self._slow_down(state, lease, retry_after_s, now)

    def _give_back(  # noqa: PLR0913 - one release: the key's state, its bucket, count and time
        self, state: _KeyState, key: str, bucket: int, count: int, now: float, *, latency_s: float | None = None
    ) -> None:
        if self._is_down(now):
            self._keep_unreturned(key, bucket, count)
            return
        try:
            record = self.store.release(key, bucket, count, latency_s=latency_s)
        except PacingStoreError as error:
            self._store_failed(now, error)
            self._keep_unreturned(key, bucket, count)
            return
        self._store_answered()
        if record is not None:
            self._remember(state, record, now)

    def _keep_unreturned(self, key: str, bucket: int, count: int) -> None:
        with self._unreturned_lock:
            self._unreturned[key, bucket] = self._unreturned.get((key, bucket), 0) + count

    def _slow_down(self, state: _KeyState, lease: Lease, retry_after_s: float | None, now: float) -> None:
        if self._is_down(now):
            return
        try:
            record = state.record or self._read(state, lease.key, now)
            for _ in range(self.config.max_races + 1):
                current = record.throttle
                wanted = slow_down(
                    current,
                    limits=state.limits,
                    now=now,
                    granted_at=lease.granted_at,
                    retry_after_s=retry_after_s,
                    local_rate=self._local_rate(state, now),
                    contributed=current is not None and state.contributed_since == current.since,
                    config=self.config,
                )
                if wanted is None:
                    return
                applied, record = self.store.throttle(lease.key, wanted, expected=current)
                self._store_answered()
                self._remember(state, record, now)
                if applied:
                    state.contributed_since = wanted.since
                    if current is None or wanted.since != current.since:
                        self._metric("PacingSlowedDown", 1)
                        logger.info("pacing %s: 429, pace now %.3g/s", lease.key, wanted.rate_per_s)
                    return
        except PacingStoreError as error:
            self._store_failed(now, error)

    def flush(self) -> None:
        """Give back the slots whose release could not reach the store (they expire anyway after their lease)."""
        now = self._clock()
        if self._is_down(now):
            return
        with self._unreturned_lock:
            pending, self._unreturned = self._unreturned, {}
        for (key, bucket), count in pending.items():
            state = self._state(key)
            with state.lock:
                self._give_back(state, key, bucket, count, now)

    # ------------------------------------------------------------------ store health and metrics

    def _is_down(self, now: float) -> bool:
        with self._health_lock:
            return self._health.is_down(now)

    def _store_failed(self, now: float, error: PacingStoreError) -> None:
        with self._health_lock:
            self._health.failed(now, self.config.store_retry_s, error)
        self._metric("PacingStoreErrors", 1)

    def _store_answered(self) -> None:
        with self._health_lock:
            self._health.succeeded()

    def _metric(self, name: str, value: float) -> None:
        if self._metrics_hook is None:
            return
        try:
            self._metrics_hook(name, value)
        except Exception:
            logger.exception("pacing: metrics hook failed")
