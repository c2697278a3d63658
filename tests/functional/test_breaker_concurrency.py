"""Many environments racing on one DynamoDB (a single-threaded moto server, so the store itself is linearizable):
half-open never grants more than the configured probes, counters never lose an add, a transition happens once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config

from resilience import CircuitOpenError
from resilience.breaker import BreakerConfig, BreakerRegistry, BreakerState, CircuitBreaker, DynamoDBStateStore
from tests.support.aws import REGION
from tests.support.breaker import serial_moto_server
from tests.support.template import create_table
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CONTENDERS = 50
NAME = "https://hooks.example"
PROBES = 3
CONFIG = BreakerConfig(
    min_calls=10_000,
    consecutive_failures=0,
    open_s=10,
    max_open_s=10,
    half_open_probes=PROBES,
    probe_lease_s=30,
    success_threshold=PROBES,
    cas_retries=1,  # every lost race costs two requests to moto (~15 ms each); one retry keeps the test fast
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serial_moto_server() as url:
        yield url


def dynamodb(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 10, "mode": "standard"}),
    )


@pytest.fixture
def fleet(endpoint: str) -> tuple[list[CircuitBreaker], FakeClock, DynamoDBStateStore]:
    """One breaker per environment, each with its own client, store, cache and writer id."""
    clock = FakeClock(start=1_800_000_000.0)
    table = create_table(dynamodb(endpoint), "BreakerTable")
    stores = [DynamoDBStateStore(table, client=dynamodb(endpoint), clock=clock) for _ in range(CONTENDERS)]
    breakers = [BreakerRegistry(store, config=CONFIG).get(NAME) for store in stores]
    return breakers, clock, stores[0]


def trip(store: DynamoDBStateStore) -> None:
    """Open the breaker the ordinary way: one environment whose config trips on a single failure."""
    tripper = BreakerRegistry(store, config=BreakerConfig(min_calls=1, open_s=10, max_open_s=10)).get(NAME)
    tripper.allow().record_failure(error="down")
    tripper.flush()
    assert tripper.snapshot().state is BreakerState.OPEN


def race(breakers: list[CircuitBreaker], action: Callable[[CircuitBreaker], Any]) -> list[Any]:
    """Run ``action`` on every breaker at once (threads released together by a barrier)."""
    barrier = threading.Barrier(len(breakers))

    def run(breaker: CircuitBreaker) -> Any:
        barrier.wait()
        return action(breaker)

    with ThreadPoolExecutor(max_workers=len(breakers)) as pool:
        return list(pool.map(run, breakers))


def try_probe(breaker: CircuitBreaker) -> str | None:
    try:
        return breaker.allow().probe_id
    except CircuitOpenError:
        return None


def test_fifty_contenders_never_get_more_than_the_configured_probes(
    fleet: tuple[list[CircuitBreaker], FakeClock, DynamoDBStateStore],
) -> None:
    breakers, clock, store = fleet
    trip(store)
    clock.advance(10)
    for _ in range(2):
        granted = [probe for probe in race(breakers, try_probe) if probe is not None]
        live = store.load([NAME], consistent=True)[NAME].live_probes(clock.now)
        assert 1 <= len(granted) <= PROBES
        assert set(granted) <= set(live)
        assert len(live) <= PROBES
        # The probers crash: nobody reports. Their leases expire and the next round may probe again.
        clock.advance(CONFIG.probe_lease_s)


def test_probe_successes_close_the_breaker_exactly_once(
    fleet: tuple[list[CircuitBreaker], FakeClock, DynamoDBStateStore],
) -> None:
    breakers, clock, store = fleet
    trip(store)
    clock.advance(10)

    def probe_and_succeed(breaker: CircuitBreaker) -> bool:
        try:
            permit = breaker.allow()
        except CircuitOpenError:
            return False
        if permit.probe_id is None:
            return False  # already closed by the time this environment asked
        permit.record_success(0.05)
        return True

    granted = 0
    for _ in range(5):
        granted += sum(race(breakers, probe_and_succeed))
        if store.load([NAME], consistent=True)[NAME].state is BreakerState.CLOSED:
            break
    assert granted >= PROBES
    assert breakers[-1].snapshot(refresh=True).state is BreakerState.CLOSED
    transitions = [(item.from_state, item.to_state) for item in store.history(NAME)]
    assert transitions.count((BreakerState.HALF_OPEN, BreakerState.CLOSED)) == 1
    assert transitions.count((BreakerState.OPEN, BreakerState.HALF_OPEN)) == 1


def test_concurrent_flushes_never_lose_an_add(
    fleet: tuple[list[CircuitBreaker], FakeClock, DynamoDBStateStore],
) -> None:
    breakers, clock, store = fleet

    def fail_and_flush(breaker: CircuitBreaker) -> None:
        for _ in range(4):
            breaker.record_failure(error="down")
        breaker.flush()

    race(breakers, fail_and_flush)
    record = store.load([NAME], consistent=True)[NAME]
    assert record.window(clock.now, CONFIG.window_s).failures == CONTENDERS * 4
    assert record.run == CONTENDERS * 4
