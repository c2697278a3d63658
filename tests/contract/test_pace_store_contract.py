"""One contract, every PaceStore: the Pacer relies on exactly these behaviours of MemoryPaceStore and
DynamoDBPaceStore (moto, table created from template.yaml's PacingTable), so both must pass the same tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hookline.pacing import MemoryPaceStore, PaceRecord, Throttle
from hookline.pacing.dynamodb import DynamoDBPaceStore
from hookline.pacing.model import ClockStep, SlotStep, Take
from tests.support.aws import client
from tests.support.template import create_table
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hookline.pacing import PaceStore

STATE_TTL_S = 3600.0
NOW = 1_800_000_000.0
BUCKET = 1_800_000_000
KEY = "endpoint:acme"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=NOW)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[PaceStore]:
    if request.param == "memory":
        yield MemoryPaceStore(clock=clock, state_ttl_s=STATE_TTL_S)
        return
    request.getfixturevalue("aws")  # moto in-process for this test
    dynamodb = client("dynamodb")
    table = create_table(dynamodb, "PacingTable")
    yield DynamoDBPaceStore(table, client=dynamodb, clock=clock, state_ttl_s=STATE_TTL_S)


def behind(add_s: float, base: float = NOW) -> ClockStep:
    return ClockStep(base=base, add_s=add_s, behind=True)


def ahead(add_s: float, base: float = NOW, at_most: float | None = None) -> ClockStep:
    return ClockStep(base=base, add_s=add_s, behind=False, at_most=at_most)


def slots(count: int, at_most: int, reap: dict[int, int] | None = None, bucket: int = BUCKET) -> SlotStep:
    return SlotStep(count=count, bucket=bucket, at_most=at_most, reap=reap or {})


def test_load_of_keys_never_written_is_empty(store: PaceStore) -> None:
    assert store.load(["nobody", "nothing"]) == {}


def test_a_first_take_creates_the_record_with_a_ttl(store: PaceStore) -> None:
    applied, record = store.take(KEY, Take(tat=behind(0.6), due=behind(1.4, base=NOW + 0.6)))
    assert applied
    assert record == PaceRecord(KEY, tat=NOW + 0.6, due=NOW + 2.0, expires_at=int(NOW + STATE_TTL_S))
    assert store.load([KEY], consistent=True) == {KEY: record}


def test_a_clock_ahead_of_the_base_is_pushed_by_the_step(store: PaceStore) -> None:
    store.take(KEY, Take(tat=behind(2.0)))
    applied, record = store.take(KEY, Take(tat=ahead(0.5, at_most=NOW + 2.0)))
    assert applied
    assert record.tat == pytest.approx(NOW + 2.5)
    applied, record = store.take(KEY, Take(tat=ahead(0.5, at_most=NOW + 2.5)))
    assert applied
    assert record.tat == pytest.approx(NOW + 3.0)  # two adds, none lost


@pytest.mark.parametrize(
    "step",
    [
        behind(1.0),  # the clock is ahead of the base: another environment granted meanwhile
        ahead(1.0, at_most=NOW + 1.5),  # ahead, but past the last start the planner allowed
        ahead(1.0, base=NOW + 5),  # expected ahead of a later base, but the clock is behind it
    ],
)
def test_a_clock_step_whose_condition_fails_changes_nothing_and_returns_the_record(
    store: PaceStore, step: ClockStep
) -> None:
    _, before = store.take(KEY, Take(tat=behind(2.0)))
    applied, current = store.take(KEY, Take(tat=step))
    assert not applied
    assert current == before
    assert store.load([KEY], consistent=True)[KEY] == before


def test_an_ahead_step_on_a_key_never_written_fails_with_an_empty_record(store: PaceStore) -> None:
    assert store.take(KEY, Take(tat=ahead(1.0))) == (False, PaceRecord(KEY))


def test_a_take_is_all_or_nothing(store: PaceStore) -> None:
    _, before = store.take(KEY, Take(tat=behind(1.0), due=behind(3.0)))
    applied, current = store.take(KEY, Take(tat=ahead(1.0, at_most=NOW + 2), due=behind(1.0)))
    assert not applied  # the tat step would hold, the due step does not: neither happens
    assert current == before


def test_slots_are_counted_per_bucket_and_limited_by_at_most(store: PaceStore) -> None:
    applied, record = store.take(KEY, Take(slots=slots(2, at_most=1)))
    assert applied
    assert (record.in_flight, dict(record.slots)) == (2, {BUCKET: 2})
    applied, record = store.take(KEY, Take(slots=slots(1, at_most=2, bucket=BUCKET + 5)))
    assert applied
    assert (record.in_flight, dict(record.slots)) == (3, {BUCKET: 2, BUCKET + 5: 1})
    applied, current = store.take(KEY, Take(slots=slots(1, at_most=2)))
    assert not applied
    assert current == record


def test_expired_buckets_are_reaped_only_with_their_exact_count(store: PaceStore) -> None:
    old = BUCKET - 60
    store.take(KEY, Take(slots=slots(3, at_most=0, bucket=old)))
    store.take(KEY, Take(slots=slots(1, at_most=3)))
    applied, current = store.take(KEY, Take(slots=slots(2, at_most=4, reap={old: 2})))
    assert not applied  # a release changed the old bucket since the planner read it
    assert current.in_flight == 4
    applied, record = store.take(KEY, Take(slots=slots(2, at_most=4, reap={old: 3})))
    assert applied
    assert (record.in_flight, dict(record.slots)) == (3, {BUCKET: 3})


def test_release_gives_back_slots_notes_latency_and_keeps_the_ttl(store: PaceStore, clock: FakeClock) -> None:
    store.take(KEY, Take(slots=slots(2, at_most=0)))
    clock.advance(100)
    released = store.release(KEY, BUCKET, 1, latency_s=0.25)
    assert released is not None
    assert (released.in_flight, dict(released.slots), released.latency_s) == (1, {BUCKET: 1}, 0.25)
    assert released.expires_at == int(NOW + STATE_TTL_S)  # only takes and throttles renew it
    again = store.release(KEY, BUCKET, 1)
    assert again is not None
    assert (again.in_flight, again.latency_s) == (0, 0.25)


def test_a_release_to_a_reaped_bucket_gives_nothing_back(store: PaceStore) -> None:
    old = BUCKET - 60
    store.take(KEY, Take(slots=slots(1, at_most=0, bucket=old)))
    store.take(KEY, Take(slots=slots(1, at_most=1, reap={old: 1})))
    assert store.release(KEY, old, 1) is None
    assert store.release("never-written", BUCKET, 1) is None
    record = store.load([KEY], consistent=True)[KEY]
    assert (record.in_flight, dict(record.slots)) == (1, {BUCKET: 1})


def throttle(rate: float, since: float = NOW, **changes: object) -> Throttle:
    fields: dict[str, object] = {"rate_per_s": rate, "since": since, "until": since + 60}
    fields.update(changes)
    return Throttle(**fields)  # type: ignore[arg-type]


def test_throttle_round_trips_every_field_with_a_ttl(store: PaceStore) -> None:
    wanted = throttle(2.5, estimated=True, not_before=NOW + 30)
    applied, record = store.throttle(KEY, wanted, expected=None)
    assert applied
    assert record.throttle == wanted
    assert record.expires_at == int(NOW + STATE_TTL_S)
    assert store.load([KEY], consistent=True)[KEY].throttle == wanted


def test_throttle_is_compare_and_set_on_every_field(store: PaceStore) -> None:
    first = throttle(5, not_before=NOW + 30)
    store.throttle(KEY, first, expected=None)
    for stale in (None, throttle(5), throttle(5, not_before=NOW + 31), throttle(4, not_before=NOW + 30)):
        applied, current = store.throttle(KEY, throttle(1, since=NOW + 9), expected=stale)
        assert not applied
        assert current.throttle == first
    applied, record = store.throttle(KEY, throttle(2.5, since=NOW + 9), expected=first)
    assert applied
    assert record.throttle == throttle(2.5, since=NOW + 9)  # not_before removed


def test_exactly_one_of_two_writers_of_the_same_throttle_wins(store: PaceStore) -> None:
    base = throttle(10, estimated=True)
    store.throttle(KEY, base, expected=None)
    results = [store.throttle(KEY, throttle(10 + share, estimated=True), expected=base)[0] for share in (3, 4)]
    assert results == [True, False]
    record = store.load([KEY], consistent=True)[KEY]
    assert record.throttle is not None
    assert record.throttle.rate_per_s == 13


def test_a_take_planned_with_a_stale_throttle_fails(store: PaceStore) -> None:
    store.take(KEY, Take(tat=behind(0.2)))
    slowed = throttle(2)
    store.throttle(KEY, slowed, expected=None)
    applied, current = store.take(KEY, Take(tat=ahead(0.2, at_most=NOW + 1)))
    assert not applied  # planned without the throttle: the pace it used is no longer the key's
    assert current.throttle == slowed
    applied, _ = store.take(KEY, Take(throttle=slowed, tat=ahead(0.5, at_most=NOW + 1)))
    assert applied


def test_throttle_and_take_leave_each_others_fields_alone(store: PaceStore) -> None:
    store.take(KEY, Take(tat=behind(1.0), slots=slots(1, at_most=0)))
    applied, record = store.throttle(KEY, throttle(3), expected=None)
    assert applied
    assert (record.tat, record.in_flight) == (NOW + 1.0, 1)


def test_load_reads_many_keys_at_once(store: PaceStore) -> None:
    keys = [f"origin:https://t{index}.example" for index in range(130)]
    for key in keys:
        store.take(key, Take(tat=behind(1.0)))
    loaded = store.load([*keys, "never-written", keys[0]])
    assert sorted(loaded) == sorted(keys)
    assert all(record.tat == NOW + 1.0 for record in loaded.values())
