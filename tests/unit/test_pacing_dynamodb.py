"""DynamoDB pace store specifics the contract suite cannot see: the table, raw items, batching, errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from hookline.pacing import PaceLimits, Pacer, PacingStoreError, build_pacer, endpoint_key, origin_key
from hookline.pacing.dynamodb import DynamoDBPaceStore
from tests.support.aws import OneKeyPerBatchGet, unreachable_client
from tests.support.template import create_table, policy_statements, resource

if TYPE_CHECKING:
    from tests.support.timefakes import FakeClock

KEY = endpoint_key("acme")


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_table(dynamodb, "PacingTable")


def test_the_table_is_on_demand_encrypted_with_ttl_and_deleted_with_the_stack() -> None:
    table = resource("PacingTable")
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    # It holds no message: only paces and leases that rebuild themselves in seconds.
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_only_the_delivery_function_may_use_the_table_and_only_as_the_pacer_does() -> None:
    delivery = resource("DeliveryFunction")["Properties"]
    assert delivery["Environment"]["Variables"]["PACING_TABLE"] == {"Ref": "PacingTable"}
    table_arn = {"Fn::GetAtt": ["PacingTable", "Arn"]}
    for function, actions in (
        ("DeliveryFunction", {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}),
        ("HealthFunction", set()),
    ):
        statements = policy_statements(function)
        granted = {
            action for statement in statements if statement["Resource"] == table_arn for action in statement["Action"]
        }
        assert granted == actions


def test_a_busy_key_stays_one_small_item_with_its_ttl(dynamodb: Any, table: str, clock: FakeClock) -> None:
    pacer = Pacer(DynamoDBPaceStore(table, client=dynamodb, clock=clock))
    limits = PaceLimits(rate_limit_per_s=50, max_in_flight=20)
    held = []
    for _ in range(120):  # two minutes of traffic, leases left unreleased in every bucket along the way
        admission = pacer.acquire(KEY, limits, count=10)
        held.extend(admission.leases[:1])
        for lease in admission.leases[1:]:
            pacer.release(lease, status=200)
        clock.advance(1)
    pacer.release(held[-1], status=429, retry_after_s=5)
    [item] = dynamodb.scan(TableName=table)["Items"]
    assert item["pk"] == {"S": KEY}
    assert int(item["expires_at"]["N"]) == int(clock.now + 24 * 3600)
    slot_buckets = [name for name in item if name.startswith("s_")]
    assert len(slot_buckets) <= 45 / 5 + 2  # expired buckets were reaped along the way
    assert len(json.dumps(item)) < 1024  # one write unit per update


def test_load_retries_unprocessed_keys(clock: FakeClock) -> None:
    fake = OneKeyPerBatchGet("t", lambda key: {"tat": {"N": "1"}})
    assert sorted(DynamoDBPaceStore("t", client=fake, clock=clock).load(["a", "b", "c"])) == ["a", "b", "c"]
    assert fake.calls == [["a", "b", "c"], ["b", "c"], ["c"]]


def test_an_unreachable_table_raises_pacing_store_error_and_the_pacer_fails_open(clock: FakeClock) -> None:
    unreachable = unreachable_client("dynamodb")
    dead = DynamoDBPaceStore("t", client=unreachable, clock=clock)
    with pytest.raises(PacingStoreError, match="batch_get_item"):
        dead.load([KEY])
    pacer = Pacer(dead)
    admission = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=1, max_in_flight=1), count=5)
    assert (admission.granted, admission.paced) == (5, False)
    assert pacer.store_errors == 1


def test_build_pacer_picks_dynamodb_for_a_table_and_memory_without(dynamodb: Any, table: str) -> None:
    assert isinstance(build_pacer(table, client=dynamodb).store, DynamoDBPaceStore)
    assert type(build_pacer(None).store).__name__ == "MemoryPaceStore"


@pytest.mark.parametrize(
    "limits", [PaceLimits(rate_limit_per_s=1e-130), PaceLimits(rate_limit_per_s=1e-9, max_in_flight=10**40)]
)
def test_extreme_registry_limits_stay_paced_through_a_429(
    dynamodb: Any, table: str, clock: FakeClock, limits: PaceLimits
) -> None:
    # Valid registry numbers (any N above 0) must neither crash a batch nor make the environment fail open.
    pacer = Pacer(DynamoDBPaceStore(table, client=dynamodb, clock=clock))
    first = pacer.acquire(KEY, limits, count=3)
    assert first.granted >= 1
    pacer.release(first.leases[0], status=429)
    clock.advance(2)
    after = pacer.acquire(KEY, limits, count=3)
    assert (after.granted, after.paced, pacer.store_errors) == (0, True, 0)
    assert 0 < after.wait_s <= 43200 * 3  # one request per 12 h at the slowest: waits a store and SQS can hold


def test_an_inline_origin_too_long_for_a_dynamodb_key_does_not_make_the_pacer_fail_open(
    dynamodb: Any, table: str, clock: FakeClock
) -> None:
    # A producer's inline URL may be 2,048 characters, all host: its key would pass DynamoDB's 2,048-byte limit and
    # the batch's one BatchGetItem would fail, leaving every endpoint of the batch unpaced.
    long_origin = "https://" + "a" * 2034 + ":8443"
    pacer = Pacer(DynamoDBPaceStore(table, client=dynamodb, clock=clock))
    pacer.prefetch([KEY, origin_key(long_origin)])
    throttled = pacer.acquire(origin_key(long_origin), count=1)
    pacer.release(throttled.leases[0], status=429, retry_after_s=30)
    limited = pacer.acquire(KEY, PaceLimits(rate_limit_per_s=1), count=3)
    assert (limited.granted, limited.paced, pacer.store_errors) == (2, True, 0)
    assert pacer.acquire(origin_key(long_origin), count=1).granted == 0  # its 429 pacing still works
    assert len(origin_key(long_origin).encode()) <= 1024
