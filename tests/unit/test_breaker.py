"""Circuit breaker state machine, with the in-memory store and a fake clock (no sleeping, no wall clock)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from resilience import CircuitOpenError, ConfigurationError, StateStoreError
from resilience.breaker import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    MemoryStateStore,
    Transition,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from resilience.breaker import BreakerRecord, OutcomeDelta
    from tests.support.timefakes import FakeClock

FAST = BreakerConfig(
    min_calls=10,
    failure_rate=0.5,
    consecutive_failures=0,
    open_s=30,
    max_open_s=100,
    half_open_probes=2,
    probe_lease_s=20,
    success_threshold=2,
)


@pytest.fixture
def store(clock: FakeClock) -> MemoryStateStore:
    return MemoryStateStore(clock=clock, cache_ttl_s=10.0)


def env(store: MemoryStateStore, config: BreakerConfig = FAST, **kwargs: object) -> BreakerRegistry:
    """One execution environment: its own registry, cache and buffer over the shared store."""
    return BreakerRegistry(store, config=config, **kwargs)  # type: ignore[arg-type]


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.allow().record_failure(0.1, error="timeout")


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.allow().record_success(0.1)


def trip(breaker: CircuitBreaker) -> None:
    fail(breaker, FAST.min_calls)
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN


# ---------------------------------------------------------------- healthy path


def test_healthy_path_writes_nothing_per_call(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("https://a.example")
    for _ in range(1000):
        succeed(breaker)
        clock.advance(0.01)  # 1000 calls in 10 s: one cache period
    assert store.requests <= 2
    assert breaker.pending_outcomes > 0


def test_buffered_successes_go_out_as_the_refresh_when_the_cache_is_stale(
    store: MemoryStateStore, clock: FakeClock
) -> None:
    breaker = env(store).get("a")
    succeed(breaker, 30)
    clock.advance(10)
    before = store.requests
    succeed(breaker)
    assert store.requests == before + 1  # one add (whose answer refreshed the cache), no separate read
    assert breaker.snapshot().window_calls == 30


def test_registry_flush_writes_failures_now_and_successes_only_when_due(
    store: MemoryStateStore, clock: FakeClock
) -> None:
    registry = env(store)
    healthy, failing = registry.get("healthy"), registry.get("failing")
    succeed(healthy, 5)
    fail(failing, 2)
    before = store.requests
    registry.flush()
    assert store.requests == before + 1
    assert failing.pending_outcomes == 0
    assert healthy.pending_outcomes == 5
    registry.flush(force=True)
    assert healthy.pending_outcomes == 0
    assert store.load(["healthy"])["healthy"].window(clock.now, 60).calls == 5


def test_prefetch_reads_every_stale_breaker_in_one_request(store: MemoryStateStore, clock: FakeClock) -> None:
    registry = env(store)
    names = [f"https://t{index}.example" for index in range(7)]
    registry.prefetch(names)
    assert store.requests == 1
    for name in names:
        registry.get(name).allow()
    assert store.requests == 1
    registry.prefetch(names)  # still fresh: nothing to read
    assert store.requests == 1
    clock.advance(10)
    registry.prefetch(names)
    assert store.requests == 2


def test_prefetch_refreshes_a_breaker_with_buffered_outcomes_through_their_write(
    store: MemoryStateStore, clock: FakeClock
) -> None:
    registry = env(store)
    registry.prefetch(["busy", "idle"])
    succeed(registry.get("busy"), 40)
    clock.advance(10)
    before = store.requests
    registry.prefetch(["busy", "idle"])
    assert store.requests == before + 2  # one add for "busy" (its answer is the refresh), one read for "idle"
    assert registry.get("busy").pending_outcomes == 0
    assert store.load(["busy"])["busy"].window(clock.now, 60).calls == 40


def test_the_buffer_stays_bounded_while_outcomes_cannot_be_written(clock: FakeClock) -> None:
    store = FlakyStore(clock=clock, cache_ttl_s=10)
    breaker = env(store, BreakerConfig(window_s=60, bucket_s=10)).get("a")
    store.down = True
    for _ in range(360):  # an hour of one success every 10 s
        breaker.record_success(0.1)
        clock.advance(10)
    assert breaker.pending_outcomes <= 8  # the window's buckets, not an hour of them


# ---------------------------------------------------------------- tripping


def test_failures_are_written_at_most_every_failure_flush_s(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store, BreakerConfig(min_calls=1000, consecutive_failures=0, failure_flush_s=0.5)).get("a")
    breaker.allow()
    before = store.requests
    for _ in range(10):
        breaker.allow().record_failure()
        clock.advance(0.1)  # ten failures in one second
    assert store.requests - before == 2  # the first failure at once, then one write per half second
    assert breaker.pending_outcomes > 0


def test_trips_on_the_fleet_wide_failure_rate_once_min_calls_is_reached(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    succeed(breaker, 5)
    fail(breaker, 4)
    breaker.flush(force=True)
    assert breaker.snapshot().state is BreakerState.CLOSED  # 4/9: below min_calls
    fail(breaker)
    breaker.flush()
    snap = breaker.snapshot()
    assert snap.state is BreakerState.OPEN
    assert snap.reason == "5/10 calls failed in 60s"


def test_does_not_trip_below_the_failure_rate(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    for _ in range(10):
        succeed(breaker, 3)
        fail(breaker, 2)
        breaker.flush(force=True)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.snapshot().window_failures == 20


def test_failures_older_than_the_window_do_not_count(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("a")
    fail(breaker, 9)
    breaker.flush()
    clock.advance(80)
    fail(breaker, 1)
    succeed(breaker, 1)
    breaker.flush(force=True)
    snap = breaker.snapshot()
    assert (snap.state, snap.window_calls, snap.window_failures) == (BreakerState.CLOSED, 2, 1)


def test_trips_on_consecutive_failures_for_a_quiet_target(store: MemoryStateStore) -> None:
    config = BreakerConfig(min_calls=100, consecutive_failures=3)
    breaker = env(store, config).get("quiet")
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    breaker.flush(force=True)
    assert breaker.snapshot().state is BreakerState.CLOSED
    fail(breaker)
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.snapshot().reason == "3 consecutive failures"


def test_slow_calls_count_as_failures_when_configured(store: MemoryStateStore) -> None:
    config = BreakerConfig(min_calls=100, consecutive_failures=3, slow_call_s=2.0, failure_flush_s=0)
    breaker = env(store, config).get("slow")
    for _ in range(3):
        breaker.allow().record_success(2.5)
    with pytest.raises(CircuitOpenError):
        breaker.allow()  # the pending slow calls are written first, and they trip the breaker
    assert breaker.snapshot().reason == "3 consecutive failures"


def test_failures_of_two_environments_add_up_fleet_wide(store: MemoryStateStore, clock: FakeClock) -> None:
    first, second = env(store).get("a"), env(store).get("a")
    fail(first, 5)
    first.flush()
    fail(second, 4)
    second.flush()
    assert second.snapshot().state is BreakerState.CLOSED
    fail(second)
    second.flush()
    assert second.snapshot().state is BreakerState.OPEN
    first.allow().record_failure()  # first still acts on its cached record...
    clock.advance(FAST.failure_flush_s)
    with pytest.raises(CircuitOpenError):
        first.allow()  # ...until writing that failure brings back the fleet's state


def test_an_environment_that_sees_a_failure_learns_the_fleet_state_before_its_next_call(
    store: MemoryStateStore,
) -> None:
    first, second = env(store).get("a"), env(store).get("a")
    succeed(second)
    trip(first)
    second.allow().record_failure(error="boom")
    with pytest.raises(CircuitOpenError):
        second.allow()


# ---------------------------------------------------------------- open, half-open, close


def test_open_breaker_refuses_with_the_time_left(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("a")
    trip(breaker)
    clock.advance(12)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.allow()
    assert refused.value.name == "a"
    assert refused.value.state == "open"
    assert refused.value.retry_after == pytest.approx(18)


def test_half_open_admits_at_most_the_configured_probes(store: MemoryStateStore, clock: FakeClock) -> None:
    envs = [env(store).get("a") for _ in range(5)]
    trip(envs[0])
    clock.advance(30)
    granted, refused = [], 0
    for breaker in envs:
        try:
            granted.append(breaker.allow())
        except CircuitOpenError as error:
            refused += 1
            assert error.state == "half_open"
    assert len(granted) == 2
    assert refused == 3
    assert all(permit.probe_id for permit in granted)
    assert envs[0].snapshot(refresh=True).half_open_probes == 2


def test_closes_after_the_success_threshold_counted_fleet_wide(store: MemoryStateStore, clock: FakeClock) -> None:
    first, second, third = (env(store).get("a") for _ in range(3))
    trip(first)
    clock.advance(30)
    probe_one, probe_two = first.allow(), second.allow()
    probe_one.record_success(0.1)
    assert third.snapshot(refresh=True).state is BreakerState.HALF_OPEN
    probe_two.record_success(0.1)
    snap = third.snapshot(refresh=True)
    assert snap.state is BreakerState.CLOSED
    assert snap.reason == "2 probes succeeded"


def test_a_crashed_prober_lease_expires_and_frees_its_slot(store: MemoryStateStore, clock: FakeClock) -> None:
    crashed, other, late = (env(store).get("a") for _ in range(3))
    trip(crashed)
    clock.advance(30)
    crashed.allow()
    other.allow()  # both probe slots taken; neither prober ever reports
    with pytest.raises(CircuitOpenError) as refused:
        late.allow()
    assert refused.value.retry_after == pytest.approx(20)
    clock.advance(20)
    assert late.allow().probe_id is not None


def test_failed_probe_reopens_for_longer_each_time_up_to_the_cap(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("a")
    trip(breaker)
    durations = []
    for _ in range(4):
        clock.advance(breaker.snapshot().open_until - clock.now)  # type: ignore[operator]
        breaker.allow().record_failure(error="still down")
        snap = breaker.snapshot()
        assert snap.state is BreakerState.OPEN
        durations.append(snap.open_until - clock.now)  # type: ignore[operator]
    assert durations == [30, 60, 100, 100]  # the first re-open keeps open_s, then it doubles
    assert breaker.snapshot().reopen_count == 4
    assert breaker.snapshot().reason == "probe failed: still down"


def test_closing_resets_the_open_period_and_the_old_failures(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("a")
    trip(breaker)
    clock.advance(30)
    breaker.allow().record_failure()
    clock.advance(60)
    succeed(breaker, 2)
    snap = breaker.snapshot()
    assert (snap.state, snap.reopen_count, snap.window_calls) == (BreakerState.CLOSED, 0, 0)
    fail(breaker, 5)
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.CLOSED  # 5 < min_calls: the earlier failures are gone
    fail(breaker, 5)
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.snapshot().open_until == clock.now + 30  # first open period again


def test_outcomes_from_before_a_reset_do_not_count_after_it(store: MemoryStateStore, clock: FakeClock) -> None:
    stale, operator = env(store).get("a"), env(store).get("a")
    fail(stale, 9)  # buffered, not yet written
    operator.force_open("maintenance")
    operator.reset()
    clock.advance(10)
    stale.allow()  # refresh sees the new epoch and drops the old buffer
    stale.flush(force=True)
    assert operator.snapshot(refresh=True).window_failures == 0


def test_probe_outcome_without_a_permit_answers_the_oldest_probe(store: MemoryStateStore, clock: FakeClock) -> None:
    breaker = env(store).get("a")
    trip(breaker)
    clock.advance(30)
    breaker.allow()
    breaker.allow()
    breaker.record_success(0.1)
    breaker.record_success(0.1)
    assert breaker.snapshot().state is BreakerState.CLOSED


# ---------------------------------------------------------------- manual control


def test_health_forced_open_is_lifted_by_health_only(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    assert breaker.force_open("probe failing", source="health")
    with pytest.raises(CircuitOpenError) as refused:
        breaker.allow()
    assert refused.value.state == "forced_open"
    assert not breaker.force_close(source="operator")
    assert breaker.snapshot().forced_by == "health"
    assert breaker.force_close(source="health")
    assert breaker.snapshot().state is BreakerState.CLOSED


def test_operator_forced_open_outranks_health(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    assert breaker.force_open("incident 42", source="operator")
    assert not breaker.force_open("probe failing", source="health")
    assert not breaker.force_close(source="health")
    snap = breaker.snapshot()
    assert (snap.state, snap.forced_by, snap.reason) == (BreakerState.FORCED_OPEN, "operator", "incident 42")
    assert breaker.force_close(source="operator")


def test_health_may_close_a_breaker_the_fleet_opened(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    trip(breaker)
    assert breaker.force_close(source="health", reason="probes pass")
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert not breaker.force_close(source="health")  # already closed: nothing to do


def test_unknown_source_is_refused(store: MemoryStateStore) -> None:
    with pytest.raises(ValueError, match="source"):
        env(store).get("a").force_open("x", source="someone")


def test_disabled_breaker_allows_everything_and_counts_nothing(store: MemoryStateStore) -> None:
    breaker = env(store).get("a")
    assert breaker.disable()
    fail(breaker, 50)
    breaker.flush(force=True)
    snap = breaker.snapshot(refresh=True)
    assert (snap.state, snap.window_calls) == (BreakerState.DISABLED, 0)
    assert breaker.reset()
    trip(breaker)


def test_transitions_go_to_history_and_to_the_hook(store: MemoryStateStore, clock: FakeClock) -> None:
    seen: list[Transition] = []
    breaker = env(store, on_transition=seen.append).get("a")
    trip(breaker)
    clock.advance(30)
    succeed(breaker, 2)
    breaker.force_open("maintenance")
    expected = [
        (BreakerState.CLOSED, BreakerState.OPEN, "fleet"),
        (BreakerState.OPEN, BreakerState.HALF_OPEN, "fleet"),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED, "probe"),
        (BreakerState.CLOSED, BreakerState.FORCED_OPEN, "operator"),
    ]
    assert [(t.from_state, t.to_state, t.source) for t in seen] == expected
    assert [(t.from_state, t.to_state, t.source) for t in store.history("a")] == expected[::-1]
    assert all(t.writer == breaker.writer for t in seen)


def test_a_failing_hook_never_breaks_the_call(store: MemoryStateStore, caplog: pytest.LogCaptureFixture) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("hook bug")

    breaker = env(store, on_transition=explode, metrics_hook=explode).get("a")
    trip(breaker)
    assert "on_transition hook failed" in caplog.text


def test_metrics_hook_counts_opens_and_rejections(store: MemoryStateStore) -> None:
    metrics: list[str] = []
    breaker = env(store, metrics_hook=lambda name, value: metrics.append(name)).get("a")
    trip(breaker)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            breaker.allow()
    assert metrics.count("BreakerOpened") == 1
    assert metrics.count("BreakerRejected") == 3


# ---------------------------------------------------------------- store outage: fail open


class FlakyStore(MemoryStateStore):
    """A memory store that raises StateStoreError while ``down``."""

    down = False

    def _check(self) -> None:
        if self.down:
            self.requests += 1
            raise StateStoreError("connection refused")

    def load(self, names: Sequence[str], *, consistent: bool = False) -> dict[str, BreakerRecord]:
        self._check()
        return super().load(names, consistent=consistent)

    def add_outcomes(self, name: str, delta: OutcomeDelta) -> BreakerRecord:
        self._check()
        return super().add_outcomes(name, delta)


def test_unreachable_store_fails_open_logs_once_and_counts(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(clock=clock, cache_ttl_s=10)
    metrics: list[str] = []
    registry = env(store, metrics_hook=lambda name, value: metrics.append(name))
    breaker = registry.get("a")
    trip(breaker)
    store.down = True
    clock.advance(10)
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            breaker.allow().record_failure()  # acts closed: the outage must not become our outage
            clock.advance(0.1)
    assert caplog.text.count("unreachable") == 1
    assert metrics.count("BreakerStoreErrors") == 1  # one attempt: the next is after store_retry_s
    assert registry.store_health.errors == 1
    clock.advance(5)
    breaker.allow()
    assert registry.store_health.errors == 2
    store.down = False
    clock.advance(5)
    with caplog.at_level(logging.WARNING), pytest.raises(CircuitOpenError):
        breaker.allow()  # the store answers again: buffered failures go out and its open state counts again
    assert "reachable again" in caplog.text


def test_a_fresh_cached_record_is_still_honoured_during_an_outage(clock: FakeClock) -> None:
    store = FlakyStore(clock=clock, cache_ttl_s=10)
    breaker = env(store).get("a")
    trip(breaker)
    store.down = True
    clock.advance(5)
    with pytest.raises(CircuitOpenError):
        breaker.allow()  # cached 5 s ago: still open, no need to ask the store
    clock.advance(5)
    assert breaker.allow().probe_id is None  # stale and the store is down: act closed


def test_prefetch_failure_fails_open_too(clock: FakeClock) -> None:
    store = FlakyStore(clock=clock, cache_ttl_s=10)
    registry = env(store)
    store.down = True
    registry.prefetch(["a", "b"])
    assert registry.store_health.errors == 1
    assert registry.get("a").allow().probe_id is None


def test_manual_changes_report_store_errors_to_the_operator(clock: FakeClock) -> None:
    store = FlakyStore(clock=clock)
    store.down = True
    with pytest.raises(StateStoreError):
        env(store).get("a").force_open("x")


# ---------------------------------------------------------------- wrappers


def test_context_manager_records_outcomes_and_measures_latency(store: MemoryStateStore) -> None:
    ticks = iter([0.0, 0.5, 1.0, 4.0])
    config = BreakerConfig(min_calls=100, consecutive_failures=1, slow_call_s=2.0)
    breaker = env(store, config, timer=lambda: next(ticks)).get("a")
    with breaker:
        pass  # 0.5 s: a success
    with breaker:
        pass  # 3 s: slower than slow_call_s, a failure
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN


def test_exceptions_are_failures_unless_the_predicate_says_otherwise(store: MemoryStateStore) -> None:
    config = BreakerConfig(
        min_calls=100, consecutive_failures=2, is_failure=lambda error: not isinstance(error, KeyError)
    )
    breaker = env(store, config).get("a")
    for _ in range(3):
        with pytest.raises(KeyError), breaker:
            raise KeyError("client error: the target answered")
    breaker.flush(force=True)
    assert breaker.snapshot().state is BreakerState.CLOSED
    for _ in range(2):
        with pytest.raises(TimeoutError), breaker:
            raise TimeoutError
    breaker.flush()
    assert breaker.snapshot().state is BreakerState.OPEN


def test_call_and_decorator_forms(store: MemoryStateStore) -> None:
    breaker = env(store, BreakerConfig(min_calls=100, consecutive_failures=2, failure_flush_s=0)).get("a")

    @breaker
    def double(value: int) -> int:
        return value * 2

    def broken() -> None:
        raise ConnectionError

    assert double(21) == 42
    assert breaker.call(double, 2) == 4
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(broken)
    with pytest.raises(CircuitOpenError):
        double(1)
    assert double.__name__ == "double"


async def test_async_forms(store: MemoryStateStore) -> None:
    breaker = env(store, BreakerConfig(min_calls=100, consecutive_failures=2, failure_flush_s=0)).get("a")

    @breaker
    async def fetch(value: int) -> int:
        return value + 1

    async def broken() -> None:
        raise ConnectionError

    assert await fetch(1) == 2
    assert await breaker.call_async(fetch, 2) == 3
    async with breaker as permit:
        assert permit.probe_id is None
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call_async(broken)
    with pytest.raises(CircuitOpenError):
        await fetch(1)


# ---------------------------------------------------------------- configuration and default registry


@pytest.mark.parametrize(
    "changes",
    [
        {"min_calls": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"bucket_s": 2.5},
        {"bucket_s": 120},
        {"open_backoff": 0.5},
        {"max_open_s": 10},
        {"half_open_probes": 0},
        {"slow_call_s": 0},
        {"consecutive_failures": -1},
    ],
)
def test_invalid_configuration_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        BreakerConfig(**changes)  # type: ignore[arg-type]


def test_registry_hands_out_one_breaker_per_name_with_per_name_config(store: MemoryStateStore) -> None:
    special = BreakerConfig(min_calls=3)
    registry = BreakerRegistry(store, config=FAST, configs={"special": special})
    assert registry.get("a") is registry.get("a")
    assert registry.get("special").config is special
    assert registry.get("a").config is FAST
    assert {breaker.name for breaker in registry.breakers()} == {"a", "special"}


def test_default_registry_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from resilience.breaker import DynamoDBStateStore, get_circuit_breaker, set_default_registry

    monkeypatch.delenv("BREAKER_TABLE", raising=False)
    set_default_registry(None)
    try:
        breaker = get_circuit_breaker("seed")
        assert isinstance(breaker.store, MemoryStateStore)
        assert get_circuit_breaker("seed") is breaker
        monkeypatch.setenv("BREAKER_TABLE", "breakers")
        set_default_registry(None)
        store = get_circuit_breaker("seed").store
        assert isinstance(store, DynamoDBStateStore)
        assert store.table_name == "breakers"
    finally:
        set_default_registry(None)
