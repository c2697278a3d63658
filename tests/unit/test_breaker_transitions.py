"""The breaker's rules as pure functions: records in, decisions and records out, with no store, clock or breaker."""

from __future__ import annotations

import pytest

from resilience.breaker import BreakerConfig, BreakerRecord, BreakerState, Counts
from resilience.breaker.transitions import (
    Admit,
    Change,
    Probe,
    Refuse,
    admission,
    close,
    disable,
    finish_probe,
    force_close,
    force_open,
    grant_probe,
    reopen,
    reset,
    trip,
    trip_reason,
)

NOW = 1_800_000_000.0
CONFIG = BreakerConfig(
    window_s=60,
    bucket_s=10,
    min_calls=10,
    failure_rate=0.5,
    consecutive_failures=5,
    open_s=30,
    open_backoff=2.0,
    max_open_s=100,
    half_open_probes=2,
    probe_lease_s=20,
    success_threshold=2,
)


def record(state: BreakerState = BreakerState.CLOSED, **fields: object) -> BreakerRecord:
    return BreakerRecord("https://a.example", version=7, epoch=3).evolve(state=state, **fields)


def opened(**fields: object) -> BreakerRecord:
    values: dict[str, object] = {"opened_at": NOW - 30, "open_until": NOW, "reason": "10/10 calls failed in 60s"}
    return record(BreakerState.OPEN, **(values | fields))


def half_open(probes: dict[str, float], successes: int = 0, **fields: object) -> BreakerRecord:
    return opened(**fields).evolve(state=BreakerState.HALF_OPEN, probes=probes, half_open_successes=successes)


def counted(calls: int, failures: int, run: int = 0, at: float = NOW) -> BreakerRecord:
    """A closed record whose current epoch holds ``calls``/``failures`` in one bucket and a run of ``run``."""
    bucket = int(at // 10 * 10)
    return record(buckets={(3, bucket): Counts(calls, failures)}, consecutive={3: run})


def assert_half_open_cleared(new: BreakerRecord) -> None:
    assert (dict(new.probes), new.half_open_successes) == ({}, 0)


# ---------------------------------------------------------------- admission


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (record(BreakerState.CLOSED), Admit()),
        (record(BreakerState.DISABLED), Admit(tracked=False)),
        (record(BreakerState.FORCED_OPEN, forced_by="operator"), Refuse(30, BreakerState.FORCED_OPEN)),
        (opened(open_until=NOW + 12), Refuse(12, BreakerState.OPEN)),
        (opened(open_until=NOW), Probe()),
        (half_open({"a-1": NOW + 5}), Probe()),
        (half_open({"a-1": NOW + 5, "b-1": NOW + 15}), Refuse(5, BreakerState.HALF_OPEN)),
        (half_open({"a-1": NOW + 5, "b-1": NOW - 1}), Probe()),  # an expired lease frees its slot
    ],
    ids=["closed", "disabled", "forced-open", "open", "open-period-over", "half-open-slot", "half-open-full", "lease"],
)
def test_admission_decides_from_the_record_alone(current: BreakerRecord, expected: object) -> None:
    assert admission(current, NOW, CONFIG) == expected


# ---------------------------------------------------------------- grant_probe


def test_grant_probe_from_open_enters_half_open_with_one_lease() -> None:
    change = grant_probe(opened(), NOW, CONFIG, "env-a-1")
    new = change.record
    assert new.state is BreakerState.HALF_OPEN
    assert dict(new.probes) == {"env-a-1": NOW + 20}
    assert (new.half_open_successes, new.reason, new.version) == (0, "10/10 calls failed in 60s", 7)
    assert (change.source, change.reason) == ("fleet", "open period over, probing")
    assert change.announced and not change.reset_counters


def test_grant_probe_in_half_open_adds_a_lease_prunes_expired_ones_and_keeps_the_successes() -> None:
    current = half_open({"a-1": NOW + 5, "b-1": NOW - 1}, successes=1)
    change = grant_probe(current, NOW, CONFIG, "c-1")
    assert dict(change.record.probes) == {"a-1": NOW + 5, "c-1": NOW + 20}
    assert change.record.half_open_successes == 1
    assert not change.announced  # half-open -> half-open is bookkeeping, not a transition
    assert not change.reset_counters


# ---------------------------------------------------------------- trip


def test_trip_on_the_failure_rate_once_min_calls_is_reached() -> None:
    assert trip(counted(9, 9), NOW, CONFIG) is None  # below min_calls
    assert trip(counted(10, 4), NOW, CONFIG) is None  # below the rate
    change = trip(counted(10, 5), NOW, CONFIG)
    assert change is not None
    new = change.record
    assert (new.state, new.opened_at, new.open_until, new.reopen_count) == (BreakerState.OPEN, NOW, NOW + 30, 0)
    assert new.reason == change.reason == "5/10 calls failed in 60s"
    assert (change.source, change.reset_counters, change.announced) == ("fleet", True, True)
    assert_half_open_cleared(new)


def test_trip_on_a_run_of_consecutive_failures() -> None:
    assert trip(counted(4, 4, run=4), NOW, CONFIG) is None
    change = trip(counted(5, 5, run=5), NOW, CONFIG)
    assert change is not None
    assert change.reason == "5 consecutive failures"
    assert trip_reason(counted(5, 5, run=5), NOW, BreakerConfig(min_calls=10, consecutive_failures=0)) is None


def test_trip_ignores_buckets_outside_the_window_and_other_epochs() -> None:
    old = counted(10, 10, at=NOW - 70)
    assert trip(old, NOW, CONFIG) is None
    other_epoch = record(buckets={(2, int(NOW // 10 * 10)): Counts(10, 10)})
    assert trip(other_epoch, NOW, CONFIG) is None


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.FORCED_OPEN])
def test_trip_applies_to_a_closed_breaker_only(state: BreakerState) -> None:
    assert trip(counted(10, 10, run=10).evolve(state=state), NOW, CONFIG) is None


# ---------------------------------------------------------------- finish_probe, reopen, close


def test_a_failed_probe_reopens_for_a_period_that_grows_up_to_the_cap() -> None:
    durations = []
    current = half_open({"a-1": NOW + 5})
    for _ in range(4):
        change = finish_probe(current, NOW, CONFIG, "a-1", failed=True, error="timeout")
        assert change is not None
        new = change.record
        assert new.state is BreakerState.OPEN and new.opened_at == NOW
        assert (change.source, change.reason, change.reset_counters) == ("probe", "probe failed: timeout", True)
        assert_half_open_cleared(new)
        durations.append(new.open_until - NOW)  # type: ignore[operator]
        current = new.evolve(state=BreakerState.HALF_OPEN, probes={"a-1": NOW + 5})
    assert durations == [30, 60, 100, 100]
    assert current.reopen_count == 4


def test_a_probe_success_below_the_threshold_is_counted_and_frees_its_lease() -> None:
    change = finish_probe(half_open({"a-1": NOW + 5, "b-1": NOW + 9}), NOW, CONFIG, "a-1", failed=False, error=None)
    assert change is not None
    new = change.record
    assert (new.state, new.half_open_successes, dict(new.probes)) == (BreakerState.HALF_OPEN, 1, {"b-1": NOW + 9})
    assert not change.announced and not change.reset_counters


def test_the_threshold_th_probe_success_closes_and_starts_the_open_periods_over() -> None:
    current = half_open({"b-1": NOW + 9}, successes=1, reopen_count=3)
    change = finish_probe(current, NOW, CONFIG, "b-1", failed=False, error=None)
    assert change is not None
    new = change.record
    assert (new.state, new.opened_at, new.open_until, new.reopen_count) == (BreakerState.CLOSED, None, None, 0)
    assert (change.source, change.reason, change.reset_counters) == ("probe", "2 probes succeeded", True)
    assert_half_open_cleared(new)


@pytest.mark.parametrize("state", [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.FORCED_OPEN])
def test_a_probe_that_answers_after_the_breaker_left_half_open_changes_nothing(state: BreakerState) -> None:
    assert finish_probe(half_open({}).evolve(state=state), NOW, CONFIG, "a-1", failed=True, error=None) is None


def test_reopen_and_close_are_the_two_ways_out_of_half_open() -> None:
    current = half_open({"a-1": NOW + 5}, reopen_count=1)
    assert reopen(current, NOW, CONFIG, "x").record.open_until == NOW + 60  # the second re-open doubles
    assert close(current, "y").record.state is BreakerState.CLOSED


# ---------------------------------------------------------------- manual control


@pytest.mark.parametrize("source", ["operator", "health"])
def test_force_open_holds_the_breaker_open_for_its_source(source: str) -> None:
    change = force_open(opened(reopen_count=2), NOW, reason="incident 42", source=source)
    assert change is not None
    new = change.record
    assert (new.state, new.forced_by, new.reason) == (BreakerState.FORCED_OPEN, source, "incident 42")
    assert (new.opened_at, new.open_until, new.reopen_count) == (NOW, None, 2)
    assert (change.source, change.reset_counters, change.announced) == (source, True, True)
    assert_half_open_cleared(new)


def test_an_operator_hold_outranks_health_but_not_the_operator() -> None:
    held = record(BreakerState.FORCED_OPEN, forced_by="operator", reason="incident 42")
    assert force_open(held, NOW, reason="probe failing", source="health") is None
    assert force_open(held, NOW, reason="incident 43", source="operator") is not None
    health_hold = held.evolve(forced_by="health")
    assert force_open(health_hold, NOW, reason="incident 44", source="operator") is not None


def test_force_close_lifts_a_hold_only_for_the_source_that_set_it() -> None:
    held = record(BreakerState.FORCED_OPEN, forced_by="health", reason="probe failing")
    assert force_close(held, source="operator") is None
    change = force_close(held, source="health")
    assert change is not None
    assert (change.record.state, change.record.forced_by, change.reason) == (
        BreakerState.CLOSED,
        None,
        "closed by health",
    )


@pytest.mark.parametrize("state", [BreakerState.OPEN, BreakerState.HALF_OPEN])
def test_force_close_closes_what_the_fleet_opened(state: BreakerState) -> None:
    change = force_close(half_open({"a-1": NOW + 5}).evolve(state=state), source="health", reason="probes pass")
    assert change is not None
    assert (change.record.state, change.reason, change.source) == (BreakerState.CLOSED, "probes pass", "health")
    assert_half_open_cleared(change.record)


@pytest.mark.parametrize("state", [BreakerState.CLOSED, BreakerState.DISABLED])
def test_force_close_has_nothing_to_do_when_closed_or_disabled(state: BreakerState) -> None:
    assert force_close(record(state), source="operator") is None


@pytest.mark.parametrize("state", list(BreakerState))
def test_reset_closes_from_any_state(state: BreakerState) -> None:
    current = half_open({"a-1": NOW + 5}, successes=1, reopen_count=3, forced_by="operator").evolve(state=state)
    change = reset(current)
    new = change.record
    assert (new.state, new.forced_by, new.opened_at, new.open_until) == (BreakerState.CLOSED, None, None, None)
    assert (new.reopen_count, change.reason, change.source, change.reset_counters) == (
        0,
        "reset by operator",
        "operator",
        True,
    )
    assert_half_open_cleared(new)


def test_disable_turns_the_breaker_off_once() -> None:
    change = disable(opened())
    assert change is not None
    assert (change.record.state, change.record.reason, change.source) == (
        BreakerState.DISABLED,
        "disabled by operator",
        "operator",
    )
    assert disable(change.record) is None


def test_transitions_never_touch_counters_or_the_version() -> None:
    """Counters change only by atomic adds and the version only by the store: a Change carries neither anew."""
    current = counted(10, 10, run=10).evolve(state=BreakerState.HALF_OPEN, probes={"a-1": NOW + 5})
    changes: list[Change | None] = [
        trip(current.evolve(state=BreakerState.CLOSED), NOW, CONFIG),
        grant_probe(current, NOW, CONFIG, "b-1"),
        finish_probe(current, NOW, CONFIG, "a-1", failed=True, error=None),
        force_open(current, NOW, reason="x", source="operator"),
        force_close(current, source="operator"),
        reset(current),
        disable(current),
    ]
    for change in changes:
        assert change is not None
        new = change.record
        assert (new.version, new.epoch, new.buckets, new.consecutive) == (7, 3, current.buckets, current.consecutive)
