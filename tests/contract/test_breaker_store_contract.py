"""One contract, every StateStore: the breaker relies on exactly these behaviours of MemoryStateStore and
DynamoDBStateStore (moto), so both must pass the same tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from resilience.breaker import BreakerRecord, BreakerState, Counts, OutcomeDelta, Transition
from tests.contract.conftest import STATE_TTL_S

if TYPE_CHECKING:
    from resilience.breaker import StateStore
    from tests.support.timefakes import FakeClock


def delta(  # noqa: PLR0913 - test builder: one keyword per OutcomeDelta field
    epoch: int,
    at: float,
    buckets: dict[int, tuple[int, int]],
    *,
    trailing: int = 0,
    success_at: float | None = 0.0,
    run_started_at: float | None = None,
    keep_after: float = 0.0,
) -> OutcomeDelta:
    return OutcomeDelta(
        epoch=epoch,
        at=at,
        buckets={start: Counts(*counts) for start, counts in buckets.items()},
        trailing_failures=trailing,
        last_success_at=success_at,
        run_started_at=run_started_at if run_started_at is not None else (at if trailing else None),
        keep_after=keep_after,
    )


def open_record(name: str, clock: FakeClock, **changes: object) -> BreakerRecord:
    record = BreakerRecord(
        name,
        state=BreakerState.OPEN,
        opened_at=clock.now,
        open_until=clock.now + 30,
        reopen_count=2,
        reason="5/6 calls failed",
        updated_at=clock.now,
        updated_by="env-a",
    )
    return record.evolve(**changes)


def test_load_of_names_never_written_is_empty(store: StateStore) -> None:
    assert store.load(["nobody", "nothing"]) == {}


def test_first_write_creates_version_one_and_round_trips_every_state_field(store: StateStore, clock: FakeClock) -> None:
    wanted = open_record("a", clock, probes={"env-b-1": clock.now + 30.5}, half_open_successes=1, forced_by="health")
    stored = store.compare_and_set(wanted, expected_version=0)
    assert stored is not None
    assert stored.version == 1
    loaded = store.load(["a"], consistent=True)["a"]
    for record in (stored, loaded):
        assert record.state is BreakerState.OPEN
        assert record.opened_at == pytest.approx(clock.now)
        assert record.open_until == pytest.approx(clock.now + 30)
        assert record.reopen_count == 2
        assert record.reason == "5/6 calls failed"
        assert record.forced_by == "health"
        assert record.probes == {"env-b-1": pytest.approx(clock.now + 30.5)}
        assert record.half_open_successes == 1
        assert record.updated_by == "env-a"
        assert record.version == 1


def test_compare_and_set_refuses_a_stale_version(store: StateStore, clock: FakeClock) -> None:
    first = store.compare_and_set(open_record("a", clock), expected_version=0)
    assert first is not None
    assert store.compare_and_set(open_record("a", clock, reason="late"), expected_version=0) is None
    assert store.compare_and_set(open_record("a", clock, reason="future"), expected_version=7) is None
    second = store.compare_and_set(first.evolve(state=BreakerState.HALF_OPEN), expected_version=1)
    assert second is not None
    assert second.version == 2
    assert second.state is BreakerState.HALF_OPEN
    assert store.load(["a"])["a"].reason == "5/6 calls failed"


def test_compare_and_set_removes_fields_set_to_none(store: StateStore, clock: FakeClock) -> None:
    first = store.compare_and_set(open_record("a", clock, forced_by="operator"), expected_version=0)
    assert first is not None
    closed = first.evolve(state=BreakerState.CLOSED, opened_at=None, open_until=None, forced_by=None, reason=None)
    assert store.compare_and_set(closed, expected_version=1) is not None
    loaded = store.load(["a"], consistent=True)["a"]
    assert (loaded.opened_at, loaded.open_until, loaded.forced_by, loaded.reason) == (None, None, None, None)
    assert loaded.state is BreakerState.CLOSED


def test_exactly_one_of_two_writers_of_the_same_version_wins(store: StateStore, clock: FakeClock) -> None:
    base = store.compare_and_set(BreakerRecord("a"), expected_version=0)
    assert base is not None
    winners = [
        store.compare_and_set(base.evolve(probes={probe: clock.now + 10}), expected_version=base.version)
        for probe in ("p1", "p2")
    ]
    assert [winner is not None for winner in winners] == [True, False]
    assert set(store.load(["a"], consistent=True)["a"].probes) == {"p1"}


def test_adds_accumulate_and_return_the_whole_record(store: StateStore, clock: FakeClock) -> None:
    bucket = 1_800_000_000
    first = store.add_outcomes("a", delta(0, clock.now, {bucket: (3, 1)}))
    assert first.buckets == {(0, bucket): Counts(3, 1)}
    assert first.version == 0
    assert first.state is BreakerState.CLOSED
    second = store.add_outcomes("a", delta(0, clock.now, {bucket: (2, 2), bucket + 10: (1, 0)}))
    assert second.buckets == {(0, bucket): Counts(5, 3), (0, bucket + 10): Counts(1, 0)}
    assert second.window(bucket + 10, 60).calls == 6


def test_adds_leave_the_state_fields_and_version_alone(store: StateStore, clock: FakeClock) -> None:
    stored = store.compare_and_set(open_record("a", clock), expected_version=0)
    assert stored is not None
    after = store.add_outcomes("a", delta(0, clock.now, {1_800_000_000: (4, 4)}, success_at=None, trailing=4))
    assert after.version == 1
    assert after.state is BreakerState.OPEN
    assert after.reason == "5/6 calls failed"


def test_consecutive_failures_add_up_until_a_newer_success_resets_them(store: StateStore, clock: FakeClock) -> None:
    bucket, t = 1_800_000_000, clock.now
    assert store.add_outcomes("a", delta(0, t, {bucket: (2, 2)}, trailing=2, success_at=None)).run == 2
    assert store.add_outcomes("a", delta(0, t + 1, {bucket: (3, 3)}, trailing=3, success_at=None)).run == 5
    newer = store.add_outcomes("a", delta(0, t + 2, {bucket: (3, 1)}, trailing=1, success_at=t + 1.5))
    assert newer.run == 1
    assert newer.run_started == {0: t + 2}


def test_a_success_older_than_the_run_does_not_reset_it(store: StateStore, clock: FakeClock) -> None:
    # Environment A wrote failures from t; environment B flushes a success from before t, then one failure.
    bucket, t = 1_800_000_000, clock.now
    store.add_outcomes("a", delta(0, t, {bucket: (4, 4)}, trailing=4, success_at=None))
    late = store.add_outcomes("a", delta(0, t + 1, {bucket: (6, 1)}, trailing=1, success_at=t - 1))
    assert late.run == 5
    assert late.run_started == {0: t}
    assert late.window(t + 1, 60) == Counts(10, 5)  # the counters were added either way


def test_reset_counters_starts_a_new_epoch_and_late_old_epoch_adds_do_not_count(
    store: StateStore, clock: FakeClock
) -> None:
    bucket = 1_800_000_000
    store.add_outcomes("a", delta(0, clock.now, {bucket: (10, 9)}, trailing=5, success_at=None))
    reset = store.compare_and_set(open_record("a", clock), expected_version=0, reset_counters=True)
    assert reset is not None
    assert reset.epoch == reset.version == 1
    assert reset.window(clock.now, 60) == Counts()
    assert reset.run == 0
    # An environment that had not seen the reset flushes into the old epoch: kept apart, never counted.
    late = store.add_outcomes("a", delta(0, clock.now, {bucket: (4, 4)}, trailing=4, success_at=None))
    assert late.window(clock.now, 60) == Counts()
    assert late.run == 0
    current = store.add_outcomes("a", delta(1, clock.now, {bucket: (2, 1)}))
    assert current.window(clock.now, 60) == Counts(2, 1)
    assert (0, bucket) not in current.buckets  # the old epoch's counters are dropped by a current writer


def test_a_writer_behind_a_reset_cannot_erase_newer_counters(store: StateStore, clock: FakeClock) -> None:
    bucket = 1_800_000_000
    store.compare_and_set(BreakerRecord("a"), expected_version=0, reset_counters=True)
    store.add_outcomes("a", delta(1, clock.now, {bucket: (6, 3)}))
    after = store.add_outcomes("a", delta(0, clock.now, {bucket: (1, 1)}, keep_after=clock.now))
    assert after.window(clock.now, 60) == Counts(6, 3)


def test_buckets_that_left_the_window_are_dropped(store: StateStore, clock: FakeClock) -> None:
    old, new = 1_800_000_000, 1_800_000_100
    store.add_outcomes("a", delta(0, clock.now, {old: (5, 5)}))
    store.load(["a"])
    after = store.add_outcomes("a", delta(0, clock.now + 100, {new: (1, 0)}, keep_after=old))
    assert after.buckets == {(0, new): Counts(1, 0)}


def test_every_state_write_carries_a_ttl(store: StateStore, clock: FakeClock) -> None:
    added = store.add_outcomes("a", delta(0, clock.now, {1_800_000_000: (1, 0)}))
    assert added.expires_at == int(clock.now + STATE_TTL_S)
    clock.advance(50)
    written = store.compare_and_set(added.evolve(state=BreakerState.OPEN), expected_version=0)
    assert written is not None
    assert written.expires_at == int(clock.now + STATE_TTL_S)


def test_load_reads_many_breakers_at_once(store: StateStore, clock: FakeClock) -> None:
    names = [f"https://t{index}.example" for index in range(130)]
    for name in names:
        store.add_outcomes(name, delta(0, clock.now, {1_800_000_000: (1, 0)}))
    loaded = store.load([*names, "never-written", names[0]])
    assert sorted(loaded) == sorted(names)
    assert all(record.window(clock.now, 60) == Counts(1, 0) for record in loaded.values())


def transition(name: str, at: float, to_state: BreakerState, version: int) -> Transition:
    return Transition(
        name=name,
        from_state=BreakerState.CLOSED,
        to_state=to_state,
        at=at,
        reason=f"reason {version}",
        source="fleet",
        writer="env-a",
        version=version,
    )


def test_history_is_newest_first_limited_and_per_breaker(store: StateStore, clock: FakeClock) -> None:
    for version in range(1, 6):
        store.append_history(transition("a", clock.now + version, BreakerState.OPEN, version))
    store.append_history(transition("b", clock.now, BreakerState.FORCED_OPEN, 1))
    history = store.history("a", limit=3)
    assert [item.version for item in history] == [5, 4, 3]
    assert history[0] == transition("a", clock.now + 5, BreakerState.OPEN, 5)
    assert [item.to_state for item in store.history("b")] == [BreakerState.FORCED_OPEN]
    assert store.history("nobody") == []


def test_history_of_two_transitions_in_the_same_instant_keeps_both(store: StateStore, clock: FakeClock) -> None:
    store.append_history(transition("a", clock.now, BreakerState.OPEN, 1))
    store.append_history(transition("a", clock.now, BreakerState.HALF_OPEN, 2))
    assert [item.version for item in store.history("a")] == [2, 1]


def test_list_breakers_shows_every_breaker_sorted_without_history_items(store: StateStore, clock: FakeClock) -> None:
    store.compare_and_set(open_record("zeta", clock), expected_version=0)
    store.add_outcomes("alpha", delta(0, clock.now, {int(clock.now): (4, 3)}))
    store.append_history(transition("zeta", clock.now, BreakerState.OPEN, 1))
    snapshots = store.list_breakers(window_s=60)
    assert [snap.name for snap in snapshots] == ["alpha", "zeta"]
    alpha, zeta = snapshots
    assert (alpha.state, alpha.window_calls, alpha.window_failures) == (BreakerState.CLOSED, 4, 3)
    assert alpha.failure_rate == pytest.approx(0.75)
    assert (zeta.state, zeta.open_until, zeta.reopen_count) == (BreakerState.OPEN, clock.now + 30, 2)
