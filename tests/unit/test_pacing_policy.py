"""Pacing decisions without I/O: limits, GCRA plans, in-flight slots and the AIMD answer to a 429."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest
from boto3.dynamodb.types import DYNAMODB_CONTEXT

from hookline.pacing import PaceLimits, PacerConfig, PaceRecord, PacingConfigError, Throttle
from hookline.pacing.policy import burst_size, current_rate, expired_slots, plan_take, slow_down
from resilience._dynamodb import number

if TYPE_CHECKING:
    from hookline.pacing.model import Take

NOW = 1_800_000_000.0
CONFIG = PacerConfig()


@pytest.mark.parametrize(
    ("rate", "slots"),
    [
        *[(0, None), (-1, None), (math.inf, None), (math.nan, None), (True, None), ("5", None)],
        pytest.param(10**400, None, id="int-beyond-float"),
        *[(None, 0), (None, 1.5), (None, True), (None, "3")],
    ],
)
def test_limits_refuse_values_outside_the_registry_contract(rate: float | None, slots: int | None) -> None:
    with pytest.raises(PacingConfigError):
        PaceLimits(rate, slots)


def test_limits_accept_fractional_rates_and_report_whether_anything_is_limited() -> None:
    assert PaceLimits(0.25, 1).is_limited
    assert PaceLimits(max_in_flight=3).is_limited
    assert not PaceLimits().is_limited


@pytest.mark.parametrize(
    "changes", [{"decrease_factor": 1.0}, {"cache_ttl_s": 0}, {"burst_s": -1}, {"max_races": 1.5}, {"hold_s": "60"}]
)
def test_config_refuses_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(PacingConfigError):
        PacerConfig(**changes)  # type: ignore[arg-type]


def test_burst_is_a_fifth_of_a_second_of_pace_and_at_least_one_request() -> None:
    assert [burst_size(rate, CONFIG) for rate in (0.1, 1, 5, 9.99, 10, 100)] == [1, 1, 1, 1, 2, 20]


def test_rate_is_the_limit_until_a_throttle_and_climbs_back_in_a_straight_line() -> None:
    limited = PaceLimits(rate_limit_per_s=10)
    assert current_rate(PaceLimits(), None, NOW, CONFIG) is None
    assert current_rate(limited, None, NOW, CONFIG) == 10
    throttle = Throttle(rate_per_s=4, since=NOW, until=NOW + 60)
    assert current_rate(limited, throttle, NOW, CONFIG) == 4
    assert current_rate(limited, throttle, NOW + 1, CONFIG) == pytest.approx(4.4)
    assert current_rate(limited, throttle, NOW + 2, CONFIG) == pytest.approx(4.8)
    assert current_rate(limited, throttle, NOW + 30, CONFIG) == 10  # never above the configured limit
    assert current_rate(PaceLimits(), throttle, NOW + 30, CONFIG) == pytest.approx(16)
    assert current_rate(PaceLimits(), throttle, NOW + 60, CONFIG) is None  # over: unpaced again
    held = Throttle(rate_per_s=4, since=NOW, until=NOW + 90, not_before=NOW + 30)
    assert current_rate(limited, held, NOW + 31, CONFIG) == pytest.approx(4.4)  # the climb starts after the hold


def test_an_unlimited_key_with_no_throttle_is_not_paced() -> None:
    plan = plan_take(PaceRecord("k"), PaceLimits(), 100, NOW, CONFIG, latency_s=0.25)
    assert (plan.paced, plan.granted, plan.take) == (False, 100, None)


def test_one_take_grants_the_burst_plus_what_starts_within_the_delay_allowed() -> None:
    plan = plan_take(PaceRecord("k"), PaceLimits(rate_limit_per_s=5), 100, NOW, CONFIG, latency_s=0.25)
    assert plan.granted == 6  # 1 at once + 5 more, 0.2 s apart, within max_start_delay_s = 1 s
    assert plan.take is not None
    assert plan.take.tat is not None
    assert plan.take.tat.behind
    assert (plan.take.tat.base, plan.take.tat.add_s) == (NOW, pytest.approx(1.2))
    assert plan.take.due is not None  # the other 94 are booked from the next free start on
    assert plan.take.due.base == pytest.approx(NOW + 1.2)
    assert plan.take.due.add_s == pytest.approx(94 * 0.2)


def test_a_clock_ahead_of_now_grants_only_what_still_starts_in_time() -> None:
    record = PaceRecord("k", tat=NOW + 0.5)
    plan = plan_take(record, PaceLimits(rate_limit_per_s=5), 10, NOW, CONFIG, latency_s=0.25)
    assert plan.granted == 3  # starts at +0.5, +0.7, +0.9
    assert plan.take is not None
    assert plan.take.tat is not None
    assert not plan.take.tat.behind
    assert plan.take.tat.at_most == pytest.approx(NOW + 1.0 - 2 * 0.2)
    nothing = plan_take(PaceRecord("k", tat=NOW + 1.5), PaceLimits(rate_limit_per_s=5), 10, NOW, CONFIG, latency_s=0.25)
    assert nothing.granted == 0
    assert nothing.take is not None
    assert nothing.take.tat is None
    assert nothing.take.due is not None  # a write all the same: it books the deferred requests


def test_slots_limit_the_grant_and_expired_buckets_are_reaped() -> None:
    bucket = int(NOW)
    old = bucket - 60  # granted a minute ago: every lease of it has expired (lease 45 s + bucket 5 s)
    record = PaceRecord("k", in_flight=4, slots={bucket: 2, old: 2})
    assert expired_slots(record, NOW, CONFIG) == {old: 2}
    plan = plan_take(record, PaceLimits(max_in_flight=3), 5, NOW, CONFIG, latency_s=0.25)
    assert (plan.granted, plan.slots_full, plan.soon) == (1, True, 4)  # four waves of 0.25 s fit in 1 s
    assert plan.take is not None
    assert plan.take.slots is not None
    assert plan.take.slots.reap == {old: 2}
    assert plan.take.slots.at_most == 3 - 1 + 2
    full = plan_take(
        PaceRecord("k", in_flight=3, slots={bucket: 3}), PaceLimits(max_in_flight=3), 5, NOW, CONFIG, latency_s=0.25
    )
    assert (full.granted, full.soon, full.take) == (0, 5, None)


def test_slot_waiters_beyond_the_start_delay_are_booked_a_slot_gap_apart() -> None:
    full = PaceRecord("k", in_flight=2, slots={int(NOW): 2})
    plan = plan_take(full, PaceLimits(max_in_flight=2), 7, NOW, CONFIG, latency_s=0.4)
    assert (plan.granted, plan.soon) == (0, 4)  # two waves of two slots end within 1 s: waited in-process
    assert plan.take is not None
    assert plan.take.due is not None
    assert plan.take.due.base == pytest.approx(NOW + 3 * 0.4)  # after the third wave
    assert plan.take.due.add_s == pytest.approx(3 * 0.4 / 2 * 1.25)  # a quarter more than a slot frees up
    assert plan_take(full, PaceLimits(max_in_flight=2), 7, NOW, CONFIG, latency_s=2.0).soon == 0


def test_a_retry_after_hold_grants_nothing() -> None:
    record = PaceRecord("k", throttle=Throttle(rate_per_s=2, since=NOW, until=NOW + 90, not_before=NOW + 30))
    plan = plan_take(record, PaceLimits(rate_limit_per_s=5), 3, NOW + 1, CONFIG, latency_s=0.25)
    assert (plan.granted, plan.take, plan.hold_until) == (0, None, NOW + 30)


def decrease(throttle: Throttle | None, limits: PaceLimits, **changes: object) -> Throttle | None:
    arguments: dict[str, object] = {
        "limits": limits,
        "now": NOW,
        "granted_at": NOW,
        "retry_after_s": None,
        "local_rate": 0.0,
        "contributed": False,
        "config": CONFIG,
    }
    arguments.update(changes)
    return slow_down(throttle, **arguments)  # type: ignore[arg-type]


def test_a_first_429_halves_the_configured_limit() -> None:
    throttle = decrease(None, PaceLimits(rate_limit_per_s=10))
    assert throttle == Throttle(rate_per_s=5, since=NOW, until=NOW + CONFIG.hold_s)


def test_a_first_429_on_an_unlimited_key_starts_from_the_rate_seen_here() -> None:
    throttle = decrease(None, PaceLimits(), local_rate=40)
    assert throttle == Throttle(rate_per_s=20, since=NOW, until=NOW + CONFIG.hold_s, estimated=True)
    assert decrease(None, PaceLimits(), local_rate=0).rate_per_s == CONFIG.min_rate_per_s  # type: ignore[union-attr]


def test_other_environments_add_their_share_to_an_estimated_throttle_once() -> None:
    first = Throttle(rate_per_s=20, since=NOW, until=NOW + 60, estimated=True)
    added = decrease(first, PaceLimits(), now=NOW + 0.2, local_rate=30)
    assert added == Throttle(rate_per_s=35, since=NOW, until=NOW + 60, estimated=True)
    assert decrease(first, PaceLimits(), now=NOW + 0.2, local_rate=30, contributed=True) is None


def test_429s_of_the_same_overload_decrease_once() -> None:
    first = Throttle(rate_per_s=5, since=NOW, until=NOW + 60)
    assert decrease(first, PaceLimits(rate_limit_per_s=10), now=NOW + 0.5) is None  # within the cooldown
    stale = decrease(first, PaceLimits(rate_limit_per_s=10), now=NOW + 5, granted_at=NOW - 1)
    assert stale is None  # the request was granted at the old pace
    second = decrease(first, PaceLimits(rate_limit_per_s=10), now=NOW + 5, granted_at=NOW + 4)
    assert second is not None
    assert second.rate_per_s == pytest.approx(0.5 * 5 * 1.5)  # half of the pace it had climbed back to
    assert second.since == NOW + 5


def test_decreases_stop_at_the_floor_but_never_exceed_a_lower_limit() -> None:
    low = Throttle(rate_per_s=0.5, since=NOW - 10, until=NOW + 60)
    assert decrease(low, PaceLimits(rate_limit_per_s=10), granted_at=NOW).rate_per_s == 0.5  # type: ignore[union-attr]
    tiny = decrease(None, PaceLimits(rate_limit_per_s=0.1))
    assert tiny is not None
    assert tiny.rate_per_s == 0.1


def test_retry_after_holds_the_key_even_when_the_pace_does_not_change() -> None:
    first = Throttle(rate_per_s=5, since=NOW, until=NOW + 60)
    held = decrease(first, PaceLimits(rate_limit_per_s=10), now=NOW + 0.5, retry_after_s=120)
    assert held == Throttle(rate_per_s=5, since=NOW, until=NOW + 120.5 + CONFIG.hold_s, not_before=NOW + 120.5)
    shorter = decrease(held, PaceLimits(rate_limit_per_s=10), now=NOW + 0.6, retry_after_s=10)
    assert shorter is None  # a shorter Retry-After never shortens a hold
    capped = decrease(None, PaceLimits(), retry_after_s=10**9)
    assert capped is not None
    assert capped.not_before == NOW + CONFIG.max_retry_after_s


def _dynamodb_numbers(take: Take | None) -> list[float]:
    """Every number a take puts into its UpdateItem (as the DynamoDB store writes them)."""
    assert take is not None
    numbers: list[float] = []
    for step in (take.tat, take.due):
        if step is not None:
            numbers += [step.base, step.base + step.add_s, step.add_s]
            numbers += [step.at_most] if step.at_most is not None else []
    if take.slots is not None:
        numbers += [take.slots.at_most, take.slots.count]
    return numbers


@pytest.mark.parametrize(
    "limits",
    [PaceLimits(rate_limit_per_s=1e-130), PaceLimits(max_in_flight=10**40), PaceLimits(1e-20, 10**125)],
    ids=["tiny-rate", "huge-slots", "both"],
)
def test_extreme_registry_limits_ask_the_store_only_for_numbers_dynamodb_holds(limits: PaceLimits) -> None:
    # Other tools may write any N into the registry: 1E-130 and 1E+125 are valid DynamoDB numbers above 0. The take
    # must still be one DynamoDB can store (else every key of the environment fails open), and the waits bounded.
    for record in (PaceRecord("k"), PaceRecord("k", tat=NOW + 0.5, due=NOW + 5, in_flight=1, slots={int(NOW): 1})):
        plan = plan_take(record, limits, 3, NOW, CONFIG, latency_s=0.25)
        for value in _dynamodb_numbers(plan.take):
            DYNAMODB_CONTEXT.create_decimal(number(value)["N"])  # traps overflow, underflow and over 38 digits
        assert plan.booking_s <= CONFIG.max_retry_after_s
