"""The Pacer over the memory store: unpaced keys cost nothing, rate and in-flight limits hold, 429s slow a key
fleet-wide, leases survive crashes and a store outage fails open."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest

from hookline.pacing import (
    Admission,
    MemoryPaceStore,
    PaceLimits,
    Pacer,
    PacerConfig,
    PaceRecord,
    PacingConfigError,
    PacingStoreError,
    Throttle,
    endpoint_key,
    origin_key,
)
from tests.support.pacing import Scenario, TokenBucketReceiver, peak_concurrency, peak_in_window, simulate_fleet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookline.pacing.model import Take
    from tests.support.timefakes import FakeClock

KEY = endpoint_key("acme")


@pytest.fixture
def store(clock: FakeClock) -> MemoryPaceStore:
    return MemoryPaceStore(clock=clock)


def test_keys_name_endpoints_and_origins_apart() -> None:
    assert endpoint_key("acme") == "endpoint:acme"
    assert origin_key("https://hooks.acme.com") == "origin:https://hooks.acme.com"


def test_count_must_be_a_positive_integer(store: MemoryPaceStore) -> None:
    with pytest.raises(PacingConfigError):
        Pacer(store).acquire(KEY, count=0)


def test_unpaced_keys_cost_one_read_per_cache_period_and_no_write(store: MemoryPaceStore, clock: FakeClock) -> None:
    pacer = Pacer(store)
    keys = [origin_key(f"https://t{index}.example") for index in range(20)]
    for _ in range(50):  # a batch every 0.2 s for 10 s
        pacer.prefetch(keys)
        for key in keys:
            admission = pacer.acquire(key, count=10)
            assert (admission.granted, admission.paced) == (10, False)
            assert all(lease.start_in_s == 0 and lease.bucket is None for lease in admission.leases)
            for lease in admission.leases:
                pacer.release(lease, status=200)
        clock.advance(0.2)
    assert store.requests == 2  # one BatchGetItem per cache_ttl_s (5 s) for all 20 keys; 10,000 requests granted
    assert store.load(keys) == {}  # nothing written


def test_granted_requests_start_one_period_apart_and_the_rest_wait_spread_out(store: MemoryPaceStore) -> None:
    pacer = Pacer(store)
    admission = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=5), count=10)
    assert admission.paced
    assert admission.granted == 6
    assert [lease.start_in_s for lease in admission.leases] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0], abs=1e-6)
    assert admission.denied == 4
    assert admission.delays == pytest.approx((1.2, 1.4, 1.6, 1.8), abs=1e-6)
    assert admission.wait_s == admission.delay_for(0)
    assert store.requests == 1  # one write granted six and booked four
    with pytest.raises(IndexError):
        admission.delay_for(4)


def test_requests_deferred_by_one_environment_push_the_next_bookings_back(store: MemoryPaceStore) -> None:
    first, second = Pacer(store), Pacer(store)
    first.acquire(KEY, PaceLimits(rate_limit_per_s=5), count=10)
    later = second.acquire(KEY, PaceLimits(rate_limit_per_s=5), count=3)
    assert later.granted == 0
    assert later.delays == pytest.approx((2.0, 2.2, 2.4), abs=1e-6)


@pytest.mark.parametrize("rate", [0.5, 1, 5, 12.5, 100])
def test_one_environment_never_exceeds_the_rate_in_any_window(
    store: MemoryPaceStore, clock: FakeClock, rate: float
) -> None:
    result = simulate_fleet(
        [Pacer(store)],
        clock,
        Scenario(
            messages=int(rate * 40),
            key_of=lambda number: KEY,
            limits=PaceLimits(rate_limit_per_s=rate),
            latency_s=lambda number: 0.05,
        ),
    )
    assert len(result.spans) == result.delivered == int(rate * 40)  # every message delivered, none twice
    for window in (1, 5, 10):
        allowed = window * rate + PacerConfig().burst_s * rate + 1
        assert peak_in_window(result.starts, window) <= allowed


def test_in_flight_slots_hold_and_a_release_frees_one(store: MemoryPaceStore) -> None:
    pacer = Pacer(store)
    limits = PaceLimits(max_in_flight=3)
    first = pacer.acquire(KEY, limits, count=5)
    assert first.granted == 3
    # No latency seen yet: the default, 0.25 s, for the first wave of requests to end (three slots, two waiters).
    assert first.delays == pytest.approx((0.25, 0.25))
    assert pacer.acquire(KEY, limits).granted == 0
    pacer.release(first.leases[0], status=200)
    assert pacer.acquire(KEY, limits).granted == 1
    assert store.load([KEY])[KEY].in_flight == 3


def test_slots_another_environment_gave_back_are_seen(store: MemoryPaceStore) -> None:
    holder, waiter = Pacer(store), Pacer(store)
    limits = PaceLimits(max_in_flight=2)
    leases = holder.acquire(KEY, limits, count=2).leases
    assert waiter.acquire(KEY, limits).granted == 0
    for lease in leases:
        holder.release(lease, status=200)
    assert waiter.acquire(KEY, limits, count=2).granted == 2  # its cached count was stale: it looked again


def test_slot_wait_follows_the_latency_seen(store: MemoryPaceStore, clock: FakeClock) -> None:
    pacer = Pacer(store)
    limits = PaceLimits(max_in_flight=2)
    leases = pacer.acquire(KEY, limits, count=2).leases
    clock.advance(2.0)
    for lease in leases:
        pacer.release(lease, status=200)
    pacer.acquire(KEY, limits, count=2)
    denied = pacer.acquire(KEY, limits, count=3)
    # Requests take 2 s, longer than the start delay allowed: the waiters are booked after the first wave ends,
    # a slot gap (latency / slots) and a quarter apart.
    assert denied.delays == pytest.approx((2.0, 3.25, 4.5))


def test_a_crashed_holders_slots_come_back_after_the_lease(store: MemoryPaceStore, clock: FakeClock) -> None:
    config = PacerConfig()
    limits = PaceLimits(max_in_flight=2)
    assert Pacer(store).acquire(KEY, limits, count=2).granted == 2  # this environment dies holding both
    survivor = Pacer(store)
    clock.advance(config.lease_s - 1)
    assert survivor.acquire(KEY, limits).granted == 0
    clock.advance(config.bucket_s + 1)
    admission = survivor.acquire(KEY, limits, count=2)
    assert admission.granted == 2
    record = store.load([KEY])[KEY]
    assert record.in_flight == 2
    assert list(record.slots.values()) == [2]  # the dead bucket was reaped, not kept


def test_a_release_after_its_bucket_was_reaped_gives_nothing_back_twice(
    store: MemoryPaceStore, clock: FakeClock
) -> None:
    config = PacerConfig()
    slow, other = Pacer(store), Pacer(store)
    limits = PaceLimits(max_in_flight=1)
    late = slow.acquire(KEY, limits).leases[0]
    clock.advance(config.lease_s + config.bucket_s)
    fresh = other.acquire(KEY, limits).leases[0]  # reaps the expired lease
    slow.release(late, status=200)  # far too late: must not free the slot ``fresh`` holds
    assert other.acquire(KEY, limits).granted == 0
    other.release(fresh, status=200)
    assert other.acquire(KEY, limits).granted == 1


def test_a_429_halves_the_pace_fleet_wide_and_it_climbs_back(store: MemoryPaceStore, clock: FakeClock) -> None:
    limits = PaceLimits(rate_limit_per_s=10)
    first, second = Pacer(store), Pacer(store)
    lease = first.acquire(KEY, limits).leases[0]
    first.release(lease, status=429)
    clock.advance(2)
    slowed = second.acquire(KEY, limits, count=50)
    gaps = [b.start_in_s - a.start_in_s for a, b in zip(slowed.leases, slowed.leases[1:], strict=False)]
    pace = 5 * (1 + 0.1 * 2)  # halved at the 429, plus 10 % of that back per second since
    # ``second`` never read the key: its take, planned at the limit, failed on the throttle and was planned again.
    assert gaps == pytest.approx([1 / pace] * len(gaps), rel=1e-3)
    clock.advance(30)
    assert store.load([KEY])[KEY].throttle is not None
    recovered = second.acquire(KEY, limits, count=50)
    gaps = [b.start_in_s - a.start_in_s for a, b in zip(recovered.leases, recovered.leases[1:], strict=False)]
    assert gaps[0] == 0  # the burst: 0.2 s of pace may start at once
    assert gaps[1:] == pytest.approx([1 / 10] * (len(gaps) - 1), rel=1e-3)  # back at the limit, never above it


def test_one_overload_seen_by_many_environments_decreases_once(store: MemoryPaceStore, clock: FakeClock) -> None:
    limits = PaceLimits(rate_limit_per_s=8)
    fleet = [Pacer(store) for _ in range(5)]
    leases = [pacer.acquire(KEY, limits).leases[0] for pacer in fleet]
    for pacer, lease in zip(fleet, leases, strict=True):
        clock.advance(0.1)
        pacer.release(lease, status=429)
    throttle = store.load([KEY])[KEY].throttle
    assert throttle is not None
    assert throttle.rate_per_s == 4


def test_retry_after_holds_every_request_of_the_key(store: MemoryPaceStore, clock: FakeClock) -> None:
    pacer, other = Pacer(store), Pacer(store)
    lease = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=10)).leases[0]
    pacer.release(lease, status=429, retry_after_s=30)
    held = other.acquire(KEY, PaceLimits(rate_limit_per_s=10), count=4)
    assert held.granted == 0
    assert held.wait_s == pytest.approx(30)
    clock.advance(30)
    assert other.acquire(KEY, PaceLimits(rate_limit_per_s=10)).granted == 1


def test_an_unlimited_key_is_paced_only_after_a_429_and_for_a_while(store: MemoryPaceStore, clock: FakeClock) -> None:
    config = PacerConfig()
    key = origin_key("https://hooks.example")
    pacer, other = Pacer(store), Pacer(store)
    leases = pacer.acquire(key, count=40).leases  # 40 requests in the last second: 40/s seen here
    other_leases = other.acquire(key, count=30).leases  # and 30/s in another environment
    assert store.requests == 2  # one read each, no write
    pacer.release(leases[0], status=429)
    throttle = store.load([key])[key].throttle
    assert throttle is not None
    assert throttle.estimated
    assert throttle.rate_per_s == pytest.approx(20)
    clock.advance(0.5)
    other.release(other_leases[0], status=429)  # its own 429 adds its share (30/s) instead of halving again
    assert store.load([key])[key].throttle.rate_per_s == pytest.approx(35)  # type: ignore[union-attr]
    clock.advance(config.cache_ttl_s)
    assert other.acquire(key, count=100).paced
    clock.advance(config.hold_s)
    assert not other.acquire(key, count=100).paced


def test_a_429_reported_by_key_slows_an_inline_origin(store: MemoryPaceStore) -> None:
    key = origin_key("https://fallback.example")
    pacer = Pacer(store)
    pacer.release(key, status=429, retry_after_s=5)
    assert pacer.acquire(key, count=2).wait_s == pytest.approx(5)


def test_other_answers_change_nothing_in_the_store(store: MemoryPaceStore) -> None:
    pacer = Pacer(store)
    lease = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=10)).leases[0]
    before = store.load([KEY])[KEY]
    for status in (200, 500, 408, None):
        pacer.release(lease, status=status)
    assert store.load([KEY])[KEY] == before


def test_metrics_count_deferred_requests_and_decreases(store: MemoryPaceStore) -> None:
    seen: list[tuple[str, float]] = []
    pacer = Pacer(store, metrics_hook=lambda name, value: seen.append((name, value)))
    admission = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=1), count=4)
    assert admission.granted == 2  # at once and 1 s later
    pacer.release(admission.leases[0], status=429)
    assert seen == [("PacingDeferred", 2), ("PacingSlowedDown", 1)]


# ---------------------------------------------------------------- store outage: fail open


class FlakyStore(MemoryPaceStore):
    """A memory store that raises PacingStoreError while ``down``."""

    down = False

    def _check(self) -> None:
        if self.down:
            self.requests += 1
            raise PacingStoreError("connection refused")

    def load(self, keys: Sequence[str], *, consistent: bool = False) -> dict[str, PaceRecord]:
        self._check()
        return super().load(keys, consistent=consistent)

    def take(self, key: str, take: Take) -> tuple[bool, PaceRecord]:
        self._check()
        return super().take(key, take)

    def release(self, key: str, bucket: int, count: int, *, latency_s: float | None = None) -> PaceRecord | None:
        self._check()
        return super().release(key, bucket, count, latency_s=latency_s)

    def throttle(self, key: str, throttle: Throttle, *, expected: Throttle | None) -> tuple[bool, PaceRecord]:
        self._check()
        return super().throttle(key, throttle, expected=expected)


def test_an_unreachable_store_fails_open_logs_once_and_counts(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(clock=clock)
    metrics: list[str] = []
    pacer = Pacer(store, metrics_hook=lambda name, value: metrics.append(name))
    limits = PaceLimits(rate_limit_per_s=1, max_in_flight=1)
    store.down = True
    with caplog.at_level(logging.WARNING):
        admissions: list[Admission] = []
        for _ in range(10):
            admissions.append(pacer.acquire(KEY, limits, count=10))
            clock.advance(0.1)
    assert all(admission.granted == 10 and not admission.paced for admission in admissions)
    assert caplog.text.count("unreachable") == 1
    assert metrics == ["PacingStoreErrors"]  # one attempt: the next is after store_retry_s
    assert pacer.store_errors == 1
    store.down = False
    clock.advance(PacerConfig().store_retry_s)
    with caplog.at_level(logging.WARNING):
        assert pacer.acquire(KEY, limits, count=10).granted == 1
    assert "reachable again" in caplog.text


def test_slots_whose_release_failed_go_back_at_flush(clock: FakeClock) -> None:
    store = FlakyStore(clock=clock)
    pacer = Pacer(store)
    limits = PaceLimits(max_in_flight=2)
    leases = pacer.acquire(KEY, limits, count=2).leases
    store.down = True
    for lease in leases:
        pacer.release(lease, status=200)
    store.down = False
    pacer.flush()  # still within store_retry_s: nothing tried yet
    assert store.load([KEY])[KEY].in_flight == 2
    clock.advance(PacerConfig().store_retry_s)
    pacer.flush()
    assert store.load([KEY])[KEY].in_flight == 0


# ---------------------------------------------------------------- fleet


def test_four_environments_share_one_rate_and_one_in_flight_limit(store: MemoryPaceStore, clock: FakeClock) -> None:
    result = simulate_fleet(
        [Pacer(store) for _ in range(4)],
        clock,
        Scenario(
            messages=200,
            key_of=lambda number: KEY,
            limits=PaceLimits(rate_limit_per_s=5, max_in_flight=2),
            latency_s=lambda number: 0.3 if number % 3 else 0.05,
        ),
    )
    assert len(result.spans) == result.delivered == 200
    assert peak_in_window(result.starts, 5) <= 1.2 * 5 * 5
    assert peak_concurrency(result.spans) <= 2
    assert result.finished_at - 1_800_000_000.0 <= 200 / 5 * 1.25  # the limit is also used, not just respected


@pytest.mark.parametrize("limits", [PaceLimits(), PaceLimits(rate_limit_per_s=40)], ids=["unlimited", "limit-too-high"])
def test_aimd_finds_a_receivers_own_limit_from_its_429s(
    store: MemoryPaceStore, clock: FakeClock, limits: PaceLimits
) -> None:
    receiver = TokenBucketReceiver(rate=20, burst=20)  # takes 20/s, answers 429 beyond, no Retry-After
    result = simulate_fleet(
        [Pacer(store) for _ in range(4)],
        clock,
        Scenario(
            messages=600,
            key_of=lambda number: origin_key("https://hooks.example"),
            limits=limits,
            latency_s=lambda number: 0.1,
            receiver=receiver,
        ),
    )
    assert result.delivered == 600
    assert receiver.refused <= 0.12 * len(result.spans)  # 429s are the exception, not the way it runs
    assert result.finished_at - 1_800_000_000.0 <= 600 / 20 * 1.3  # and the receiver's capacity is used
    if limits.rate_limit_per_s is not None:
        assert peak_in_window(result.starts, 5) <= 1.2 * limits.rate_limit_per_s * 5


class _TakeBlocks(MemoryPaceStore):
    """A store whose take waits until the test lets it go (a slow DynamoDB call made by a worker thread)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.entered, self.proceed = threading.Event(), threading.Event()

    def take(self, key: str, take: Take) -> tuple[bool, PaceRecord]:
        self.entered.set()
        self.proceed.wait(timeout=30)
        return super().take(key, take)


def test_a_release_with_nothing_to_write_never_waits_for_a_store_call_on_the_key(clock: FakeClock) -> None:
    # Delivery releases such leases on the event loop: waiting there for another thread's DynamoDB call on the same
    # key would stall every request of the batch for as long as that call takes.
    store = _TakeBlocks(clock)
    store.proceed.set()
    pacer = Pacer(store)
    limits = PaceLimits(rate_limit_per_s=100)
    lease = pacer.acquire(KEY, limits).leases[0]
    assert lease.bucket is None
    store.proceed.clear()
    store.entered.clear()
    clock.advance(1)
    acquiring = threading.Thread(target=pacer.acquire, args=(KEY, limits))
    acquiring.start()
    try:
        assert store.entered.wait(timeout=30)
        releasing = threading.Thread(target=pacer.release, args=(lease,), kwargs={"status": 200})
        releasing.start()
        releasing.join(timeout=5)  # a bound, not a pause: the release returns at once
        assert not releasing.is_alive()
    finally:
        store.proceed.set()
        acquiring.join()
