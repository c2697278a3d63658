"""The breaker from an event loop: answers from the cache on the loop, every store call in a worker thread, and the
fleet-wide half-open probe limit still holding (in-memory store that notes the thread of every call, fake clock)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from resilience import CircuitOpenError, StateStoreError
from resilience.breaker import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker, MemoryStateStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from resilience.breaker import BreakerRecord, OutcomeDelta, Transition
    from tests.support.timefakes import FakeClock

CONFIG = BreakerConfig(min_calls=100, consecutive_failures=2, failure_flush_s=0, half_open_probes=2, open_s=30)
HOLD_TIMEOUT_S = 10.0  # a safety net only: the tests release every hold themselves


class ThreadNotingStore(MemoryStateStore):
    """A memory store that notes which thread made each call; ``hold`` makes ``load`` wait until it is set, ``down``
    makes every call fail."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock, cache_ttl_s=10.0)
        self.calls: list[tuple[str, int]] = []
        self.hold: threading.Event | None = None
        self.held = threading.Event()
        self.released_in_time: list[bool] = []
        self.down = False

    def _note(self, operation: str) -> None:
        self.calls.append((operation, threading.get_ident()))
        if self.down:
            raise StateStoreError("connection refused")
        if operation == "load" and self.hold is not None and not self.hold.is_set():
            self.held.set()
            self.released_in_time.append(self.hold.wait(HOLD_TIMEOUT_S))

    def load(self, names: Sequence[str], *, consistent: bool = False) -> dict[str, BreakerRecord]:
        self._note("load")
        return super().load(names, consistent=consistent)

    def compare_and_set(
        self, record: BreakerRecord, *, expected_version: int, reset_counters: bool = False
    ) -> BreakerRecord | None:
        self._note("compare_and_set")
        return super().compare_and_set(record, expected_version=expected_version, reset_counters=reset_counters)

    def add_outcomes(self, name: str, delta: OutcomeDelta) -> BreakerRecord:
        self._note("add_outcomes")
        return super().add_outcomes(name, delta)

    def append_history(self, transition: Transition) -> None:
        self._note("append_history")
        super().append_history(transition)

    def operations_on(self, thread: int) -> list[str]:
        return [operation for operation, ident in self.calls if ident == thread]


@pytest.fixture
def store(clock: FakeClock) -> ThreadNotingStore:
    return ThreadNotingStore(clock)


def environment(store: ThreadNotingStore) -> CircuitBreaker:
    """One execution environment's breaker: its own registry, cache and buffer over the shared store."""
    return BreakerRegistry(store, config=CONFIG).get("https://a.example")


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(CONFIG.consecutive_failures):
        breaker.allow().record_failure(error="503")
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN


async def test_healthy_calls_are_answered_on_the_loop_and_the_refresh_runs_in_a_thread(
    store: ThreadNotingStore, clock: FakeClock
) -> None:
    loop_thread = threading.get_ident()
    breaker = environment(store)
    permit = await breaker.allow_async()  # nothing cached yet: one read, in a thread
    await permit.record_success_async(0.1)
    assert [operation for operation, _ in store.calls] == ["load"]
    for _ in range(100):
        permit = await breaker.allow_async()
        await permit.record_success_async(0.1)
        clock.advance(0.05)
    assert len(store.calls) == 1  # 100 calls in 5 s: answered from the cache, outcomes buffered
    clock.advance(10)
    await breaker.allow_async()  # stale: the buffered successes go out, and that write is the refresh
    assert [operation for operation, _ in store.calls] == ["load", "add_outcomes"]
    assert store.operations_on(loop_thread) == []


async def test_the_fleet_wide_probe_limit_holds_for_concurrent_async_callers(
    store: ThreadNotingStore, clock: FakeClock
) -> None:
    loop_thread = threading.get_ident()
    fleet = [environment(store) for _ in range(12)]
    trip(fleet[0])
    clock.advance(CONFIG.open_s)

    async def try_probe(breaker: CircuitBreaker) -> str | None:
        try:
            return (await breaker.allow_async()).probe_id
        except CircuitOpenError as refused:
            assert refused.state == "half_open"
            return None

    store.calls.clear()
    granted = [probe for probe in await asyncio.gather(*map(try_probe, fleet)) if probe is not None]
    assert store.operations_on(loop_thread) == []
    assert len(granted) == CONFIG.half_open_probes
    assert set(granted) == set(store.load([fleet[0].name])[fleet[0].name].live_probes(clock.now))


async def test_probe_outcomes_reported_from_the_loop_close_the_breaker_in_a_thread(
    store: ThreadNotingStore, clock: FakeClock
) -> None:
    loop_thread = threading.get_ident()
    breaker = environment(store)
    trip(breaker)
    clock.advance(CONFIG.open_s)
    store.calls.clear()
    probes = [await breaker.allow_async() for _ in range(CONFIG.success_threshold)]
    for probe in probes:
        assert probe.probe_id is not None
        await probe.record_success_async(0.1)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert "compare_and_set" in [operation for operation, _ in store.calls]
    assert store.operations_on(loop_thread) == []


async def test_a_failed_probe_reported_async_reopens(store: ThreadNotingStore, clock: FakeClock) -> None:
    breaker = environment(store)
    trip(breaker)
    clock.advance(CONFIG.open_s)
    probe = await breaker.allow_async()
    await probe.record_failure_async(0.1, error="timeout")
    snap = breaker.snapshot()
    assert (snap.state, snap.reason) == (BreakerState.OPEN, "probe failed: timeout")


def test_allow_nowait_answers_only_what_needs_no_store_call(store: ThreadNotingStore, clock: FakeClock) -> None:
    breaker = environment(store)
    assert breaker.allow_nowait() is None  # nothing cached yet
    breaker.allow()
    permit = breaker.allow_nowait()
    assert permit is not None and permit.probe_id is None
    trip(breaker)
    before = len(store.calls)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.allow_nowait()  # open, and the cached record says so
    assert refused.value.retry_after == pytest.approx(CONFIG.open_s)
    clock.advance(CONFIG.open_s)
    assert breaker.allow_nowait() is None  # a probe lease is only granted by a conditional write
    assert len(store.calls) == before


def test_allow_nowait_leaves_due_failures_to_allow(store: ThreadNotingStore) -> None:
    breaker = environment(store)
    breaker.allow().record_failure(error="503")
    assert breaker.allow_nowait() is None  # the failure must reach the store before the next call
    breaker.allow()
    assert breaker.pending_outcomes == 0
    assert breaker.allow_nowait() is not None


def test_allow_nowait_fails_open_like_allow_while_the_store_is_down(store: ThreadNotingStore, clock: FakeClock) -> None:
    breaker = environment(store)
    trip(breaker)
    store.down = True
    clock.advance(10)
    assert breaker.allow().probe_id is None  # stale, and the read fails: act closed, ask again after store_retry_s
    before = len(store.calls)
    permit = breaker.allow_nowait()
    assert permit is not None and permit.probe_id is None
    assert len(store.calls) == before


async def test_a_breaker_busy_with_the_store_never_blocks_the_loop(store: ThreadNotingStore) -> None:
    breaker = environment(store)
    store.hold = threading.Event()
    worker = threading.Thread(target=breaker.allow)  # reads the store, holding the breaker, until released
    worker.start()
    assert store.held.wait(HOLD_TIMEOUT_S)
    assert breaker.allow_nowait() is None  # busy: says so at once instead of waiting
    allowed = asyncio.create_task(breaker.allow_async())
    recorded = asyncio.create_task(breaker.record_success_async(0.1))
    await asyncio.sleep(0)  # both tasks start: they wait in worker threads, not on this loop
    assert not allowed.done() and not recorded.done()
    store.hold.set()  # released from the loop: a blocked loop would never get here before the safety timeout
    permit = await allowed
    await recorded
    worker.join(HOLD_TIMEOUT_S)
    assert store.released_in_time == [True]
    assert permit.probe_id is None
    assert breaker.pending_outcomes == 1


async def test_async_wrappers_keep_every_store_call_off_the_loop(store: ThreadNotingStore) -> None:
    loop_thread = threading.get_ident()
    breaker = environment(store)

    @breaker
    async def deliver() -> None:
        raise ConnectionError("reset by peer")

    for _ in range(CONFIG.consecutive_failures):
        with pytest.raises(ConnectionError):
            await deliver()
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pass
    assert breaker.snapshot().state is BreakerState.OPEN
    assert {"add_outcomes", "compare_and_set"} <= {operation for operation, _ in store.calls}
    assert store.operations_on(loop_thread) == []


async def test_registry_prefetch_and_flush_async_run_in_a_thread(store: ThreadNotingStore) -> None:
    loop_thread = threading.get_ident()
    registry = BreakerRegistry(store, config=CONFIG)
    names = ["https://a.example", "https://b.example"]
    await registry.prefetch_async(name for name in names)
    for name in names:
        (await registry.get(name).allow_async()).record_success(0.1)
    await registry.flush_async(force=True)
    await registry.get(names[0]).flush_async()
    assert [operation for operation, _ in store.calls] == ["load", "add_outcomes", "add_outcomes"]
    assert store.operations_on(loop_thread) == []
