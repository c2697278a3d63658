"""Health state writes against moto: fields, history with TTL, lost races, overlapping runs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from hookline.health.model import ProbeResult, Verdict
from hookline.health.store import (
    DEFAULT_CHECK_TTL_S,
    DEFAULT_TRANSITION_TTL_S,
    VERSION_ATTRIBUTE,
    HealthStore,
    LoadedEndpoint,
    PendingCheck,
    format_timestamp,
)
from hookline.registry import EndpointRegistry
from tests.support.aws import client
from tests.support.breaker import serial_moto_server
from tests.support.health import START, make_endpoint, register
from tests.support.template import create_stack_resources

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources

FAIL = Verdict(passed=False, reason="status 503, expected 2xx")
PASS = Verdict(passed=True)


def probe(status: int = 503, latency_ms: int = 12) -> ProbeResult:
    return ProbeResult(url="https://hooks.example/x", method="GET", latency_ms=latency_ms, status_code=status)


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return client("dynamodb", moto_endpoint)


@pytest.fixture(scope="module")
def serial_endpoint() -> Iterator[str]:
    """moto serving one request at a time: DynamoDB's conditional writes are atomic, threaded moto's are not."""
    with serial_moto_server() as url:
        yield url


@pytest.fixture
def serial_stack(serial_endpoint: str) -> tuple[StackResources, Any]:
    dynamodb = client("dynamodb", serial_endpoint)
    resources = create_stack_resources(dynamodb, client("sqs", serial_endpoint), client("sns", serial_endpoint))
    return resources, dynamodb


@pytest.fixture
def store(stack: StackResources, dynamodb: Any) -> HealthStore:
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", "https://hooks.example/x"))
    return HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb)


def loaded(store: HealthStore, name: str = "acme") -> LoadedEndpoint:
    item = store.load(name)
    assert item is not None
    return item


def test_record_writes_state_fields_and_version(store: HealthStore, dynamodb: Any, stack: StackResources) -> None:
    record = store.record(loaded(store), probe(latency_ms=87), FAIL, checked_at=START)
    assert record.applied
    assert record.version == 1
    item = dynamodb.get_item(TableName=stack.endpoints_table, Key={"name": {"S": "acme"}})["Item"]
    assert item["health_state"] == {"S": "unknown"}
    assert item["last_checked_at"] == {"S": "2026-11-28T12:00:00.000000Z"}
    assert item["last_latency_ms"] == {"N": "87"}
    assert item["consecutive_failures"] == {"N": "1"}
    assert item["consecutive_successes"] == {"N": "0"}
    assert item["last_error"] == {"S": "status 503, expected 2xx"}
    assert item[VERSION_ATTRIBUTE] == {"N": "1"}


def test_state_changes_after_thresholds_and_pass_clears_last_error(store: HealthStore) -> None:
    states = []
    for index in range(3):
        states.append(store.record(loaded(store), probe(), FAIL, checked_at=START + timedelta(minutes=index)))
    assert [record.status.state for record in states] == ["unknown", "unknown", "unhealthy"]
    assert states[-1].step is not None
    assert states[-1].step.changed
    store.record(loaded(store), probe(200), PASS, checked_at=START + timedelta(minutes=3))
    after = store.record(loaded(store), probe(200), PASS, checked_at=START + timedelta(minutes=4))
    assert after.status.state == "healthy"
    endpoint = loaded(store).endpoint
    assert endpoint.status.last_error is None
    assert endpoint.status.consecutive_successes == 2


def test_history_is_newest_first_with_ttls(store: HealthStore) -> None:
    for index in range(3):
        store.record(loaded(store), probe(), FAIL, checked_at=START + timedelta(minutes=index))
    history = store.history("acme", limit=2)
    assert [entry.checked_at for entry in history] == [
        format_timestamp(START + timedelta(minutes=2)),
        format_timestamp(START + timedelta(minutes=1)),
    ]
    newest, older = history
    assert newest.state == "unhealthy"
    assert newest.changed_from == "unknown"
    assert newest.status_code == 503
    assert newest.reason == "status 503, expected 2xx"
    assert older.changed_from is None
    # State changes are kept longer than ordinary checks.
    assert newest.expires_at == int((START + timedelta(minutes=2)).timestamp()) + DEFAULT_TRANSITION_TTL_S
    assert older.expires_at == int((START + timedelta(minutes=1)).timestamp()) + DEFAULT_CHECK_TTL_S


def test_lost_race_is_reapplied_on_top_of_the_winner(store: HealthStore) -> None:
    stale_read = loaded(store)  # both "runs" read version 0
    winner = store.record(loaded(store), probe(), FAIL, checked_at=START)
    assert winner.version == 1
    late = store.record(stale_read, probe(), FAIL, checked_at=START + timedelta(seconds=5))
    assert late.applied
    assert late.attempts == 2
    assert late.version == 2
    assert loaded(store).endpoint.status.consecutive_failures == 2


def test_older_check_than_the_recorded_one_is_dropped(store: HealthStore) -> None:
    stale_read = loaded(store)
    store.record(loaded(store), probe(), FAIL, checked_at=START + timedelta(seconds=5))
    late = store.record(stale_read, probe(), FAIL, checked_at=START)
    assert not late.applied
    assert late.skipped == "stale"
    status = loaded(store).endpoint.status
    assert status.consecutive_failures == 1
    assert len(store.history("acme")) == 1


def test_removed_item_is_not_recreated(store: HealthStore, dynamodb: Any, stack: StackResources) -> None:
    stale_read = loaded(store)
    dynamodb.delete_item(TableName=stack.endpoints_table, Key={"name": {"S": "acme"}})
    record = store.record(stale_read, probe(), FAIL, checked_at=START)
    assert record.skipped == "gone"
    assert "Item" not in dynamodb.get_item(TableName=stack.endpoints_table, Key={"name": {"S": "acme"}})
    assert store.history("acme") == []


def test_reregistration_resets_version_and_the_next_write_still_applies(
    store: HealthStore, dynamodb: Any, stack: StackResources
) -> None:
    store.record(loaded(store), probe(), FAIL, checked_at=START)
    stale_read = loaded(store)
    register_again = make_endpoint("acme", "https://hooks.example/y")
    EndpointRegistry(stack.endpoints_table, client=dynamodb).register(register_again, replace_existing=True)
    record = store.record(stale_read, probe(), FAIL, checked_at=START + timedelta(minutes=1))
    assert record.applied
    assert record.version == 1  # the item was replaced: its version started again from nothing
    assert loaded(store).endpoint.status.consecutive_failures == 1


def test_overlapping_runs_interleaved_between_read_and_write(serial_stack: tuple[StackResources, Any]) -> None:
    """Two runs read the same version, then both write: the loser re-reads and applies on top; nothing is lost."""
    stack, dynamodb = serial_stack
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", "https://hooks.example/x"))
    both_read = threading.Barrier(2, timeout=10)

    def wait_for_the_other(batch: list[tuple[str, int]]) -> None:
        if batch[0][1] == 0:  # only the first attempt waits, so the retry after the lost race goes straight through
            both_read.wait()

    stores = [
        HealthStore(
            stack.endpoints_table,
            stack.health_history_table,
            client=dynamodb,
            before_write=wait_for_the_other,
        )
        for _ in range(2)
    ]
    initial = stores[0].load("acme")
    assert initial is not None
    results: list[Any] = [None, None]

    def run(index: int) -> None:
        results[index] = stores[index].record(initial, probe(), FAIL, checked_at=START + timedelta(seconds=index + 1))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    applied = [result for result in results if result.applied]
    final = stores[0].load("acme")
    assert final is not None
    assert sorted(result.attempts for result in results) == [1, 2]  # exactly one run lost the race
    assert final.version == len(applied)
    assert final.endpoint.status.consecutive_failures == len(applied)
    assert len(stores[0].history("acme")) == len(applied)
    # The newer check always lands; the older one lands only if it won the race.
    assert final.endpoint.status.last_checked_at == format_timestamp(START + timedelta(seconds=2))


def test_many_concurrent_writers_keep_counters_equal_to_applied_checks(
    serial_stack: tuple[StackResources, Any],
) -> None:
    stack, dynamodb = serial_stack
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", "https://hooks.example/x", failure_threshold=100))
    store = HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb, max_attempts=50)
    stale = store.load("acme")
    assert stale is not None
    results: list[Any] = []
    lock = threading.Lock()

    def writer(offset: int) -> None:
        for step in range(5):
            # Interleaved timestamps: writer k writes checks k, k+4, k+8, ... (some will be older than the stored one).
            record = store.record(stale, probe(), FAIL, checked_at=START + timedelta(seconds=offset + 4 * step))
            with lock:
                results.append(record)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    applied = sum(record.applied for record in results)
    final = store.load("acme")
    assert final is not None
    assert len(results) == 20
    assert applied >= 5  # at least one writer's run of strictly newer checks
    assert final.version == applied
    assert final.endpoint.status.consecutive_failures == applied
    history = store.history("acme", limit=100)
    assert len(history) == applied
    assert [entry.checked_at for entry in history] == sorted((entry.checked_at for entry in history), reverse=True)


def test_one_lost_race_in_a_batch_reapplies_only_that_check(stack: StackResources, dynamodb: Any) -> None:
    register(dynamodb, stack.endpoints_table, *(make_endpoint(name, f"https://{name}.example/x") for name in "abc"))
    store = HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb)
    reads = {name: store.load(name) for name in "abc"}
    store.record(reads["b"], probe(), FAIL, checked_at=START)  # another run wrote b meanwhile
    writes: list[list[tuple[str, int]]] = []
    batch_store = HealthStore(
        stack.endpoints_table, stack.health_history_table, client=dynamodb, before_write=writes.append
    )
    history: list[dict[str, Any]] = []
    later = START + timedelta(seconds=30)
    records = batch_store.record_many(
        [PendingCheck(reads[name], probe(), FAIL, later) for name in "abc"],  # type: ignore[arg-type]
        history=history,
    )
    # a and c land at once; only b, written meanwhile, is re-read and written again.
    assert writes == [[("a", 0), ("b", 0), ("c", 0)], [("b", 1)]]
    assert [(record.applied, record.version) for record in records] == [(True, 1), (True, 2), (True, 1)]
    assert [store.load(name).endpoint.status.consecutive_failures for name in "abc"] == [1, 2, 1]  # type: ignore[union-attr]
    assert len(history) == 3
    assert batch_store.write_history(history) == 0
    assert len(store.history("b")) == 2


class _ThrottlesOnce:
    """A DynamoDB client whose first UpdateItem of one integration is throttled (after botocore's own retries)."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name
        self.throttled = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def update_item(self, **kwargs: Any) -> Any:
        if kwargs["Key"]["name"]["S"] == self._name and not self.throttled:
            self.throttled += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")
        return self._inner.update_item(**kwargs)


def test_a_throttled_write_is_retried_alone_and_loses_nothing(stack: StackResources, dynamodb: Any) -> None:
    register(dynamodb, stack.endpoints_table, *(make_endpoint(name, f"https://{name}.example/x") for name in "abc"))
    throttling = _ThrottlesOnce(dynamodb, "b")
    writes: list[list[tuple[str, int]]] = []
    store = HealthStore(
        stack.endpoints_table, stack.health_history_table, client=throttling, before_write=writes.append
    )
    reads = [loaded(store, name) for name in "abc"]

    records = store.record_many([PendingCheck(read, probe(), FAIL, START) for read in reads])

    assert throttling.throttled == 1
    assert writes == [[("a", 0), ("b", 0), ("c", 0)], [("b", 0)]]  # b again, as it was: it lost no race
    assert [(record.applied, record.attempts) for record in records] == [(True, 1), (True, 2), (True, 1)]
    assert [loaded(store, name).version for name in "abc"] == [1, 1, 1]


def test_there_is_one_write_mode(stack: StackResources, dynamodb: Any) -> None:
    """The TransactWriteItems mode lost a whole run's results to one throttled request; it is gone, not selectable."""
    with pytest.raises(TypeError, match="write_mode"):
        HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb, write_mode="transaction")  # type: ignore[call-arg]
