"""DynamoDB store specifics the contract suite cannot see: raw items, TTLs, batching, errors (moto in-process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from resilience import StateStoreError
from resilience.breaker import (
    BreakerConfig,
    BreakerRecord,
    BreakerRegistry,
    BreakerState,
    Counts,
    DynamoDBStateStore,
    OutcomeDelta,
    Transition,
)
from tests.support.aws import OneKeyPerBatchGet, unreachable_client
from tests.support.template import create_table

if TYPE_CHECKING:
    from tests.support.timefakes import FakeClock


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_table(dynamodb, "BreakerTable")


@pytest.fixture
def store(dynamodb: Any, table: str, clock: FakeClock) -> DynamoDBStateStore:
    return DynamoDBStateStore(table, client=dynamodb, clock=clock, state_ttl_s=600, history_ttl_s=900)


def raw_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = dynamodb.scan(TableName=table)["Items"]
    return items


def one_delta(epoch: int, start: int, calls: int, failures: int, keep_after: float) -> OutcomeDelta:
    return OutcomeDelta(
        epoch=epoch,
        at=start,
        buckets={start: Counts(calls, failures)},
        trailing_failures=failures,
        last_success_at=start if failures < calls else None,
        run_started_at=start if failures else None,
        keep_after=keep_after,
    )


def test_items_use_the_template_key_schema_and_carry_expires_at(
    store: DynamoDBStateStore, dynamodb: Any, table: str, clock: FakeClock
) -> None:
    store.add_outcomes("https://a.example", one_delta(0, int(clock.now), 3, 1, 0))
    store.append_history(
        Transition("https://a.example", BreakerState.CLOSED, BreakerState.OPEN, at=clock.now, version=1)
    )
    items = {item["sk"]["S"].split("#")[0]: item for item in raw_items(dynamodb, table)}
    assert set(items) == {"state", "history"}
    assert items["state"]["pk"] == {"S": "breaker#https://a.example"}
    assert items["state"]["expires_at"] == {"N": str(int(clock.now + 600))}
    assert items["history"]["expires_at"] == {"N": str(int(clock.now + 900))}
    assert items["state"]["c_0_1800000000"] == {"N": "3"}
    assert items["state"]["f_0_1800000000"] == {"N": "1"}


def test_stale_counter_attributes_are_removed_from_the_item(
    store: DynamoDBStateStore, dynamodb: Any, table: str, clock: FakeClock
) -> None:
    start = int(clock.now)
    store.add_outcomes("a", one_delta(0, start, 5, 5, 0))
    record = store.compare_and_set(BreakerRecord("a"), expected_version=0, reset_counters=True)
    assert record is not None
    store.add_outcomes("a", one_delta(1, start + 100, 1, 0, start + 30))
    counters = sorted(key for key in raw_items(dynamodb, table)[0] if key[:2] in {"c_", "f_", "k_"})
    assert counters == ["c_1_1800000100", "f_1_1800000100", "k_1"]


def test_batch_reads_retry_unprocessed_keys(clock: FakeClock) -> None:
    fake = OneKeyPerBatchGet("t", lambda key: {"name": {"S": key["pk"]["S"].removeprefix("breaker#")}})
    store = DynamoDBStateStore("t", client=fake, clock=clock)
    assert sorted(store.load(["a", "b", "c"])) == ["a", "b", "c"]
    assert fake.calls == [["breaker#a", "breaker#b", "breaker#c"], ["breaker#b", "breaker#c"], ["breaker#c"]]


def test_unreachable_dynamodb_raises_state_store_error_and_the_breaker_fails_open(clock: FakeClock) -> None:
    unreachable = unreachable_client("dynamodb")
    dead = DynamoDBStateStore("t", client=unreachable, clock=clock)
    with pytest.raises(StateStoreError, match="batch_get_item"):
        dead.load(["a"])
    registry = BreakerRegistry(dead, config=BreakerConfig())
    permit = registry.get("a").allow()
    assert permit.probe_id is None
    assert registry.store_health.errors == 1


def test_a_whole_cycle_over_dynamodb(store: DynamoDBStateStore, clock: FakeClock) -> None:
    config = BreakerConfig(min_calls=4, consecutive_failures=0, open_s=10, max_open_s=10, success_threshold=1)
    first, second = (BreakerRegistry(store, config=config).get("a") for _ in range(2))
    for _ in range(4):
        first.allow().record_failure()
    first.flush()
    assert second.snapshot(refresh=True).state is BreakerState.OPEN
    clock.advance(10)
    second.allow().record_success(0.1)
    assert first.snapshot(refresh=True).state is BreakerState.CLOSED
    assert [item.to_state for item in store.history("a")] == [
        BreakerState.CLOSED,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
    ]
    assert [snap.name for snap in store.list_breakers()] == ["a"]
