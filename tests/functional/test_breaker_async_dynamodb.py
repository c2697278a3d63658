"""Async callers over a real DynamoDB (a single-threaded moto server on loopback): a fleet of environments racing
from one event loop gets at most the configured probes, and no DynamoDB request is ever made on the loop's thread."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from resilience import CircuitOpenError
from resilience.breaker import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    DynamoDBStateStore,
    Permit,
)
from tests.support.aws import client
from tests.support.breaker import serial_moto_server
from tests.support.template import create_table
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ENVIRONMENTS = 20
NAME = "https://hooks.example"
PROBES = 3
CONFIG = BreakerConfig(
    min_calls=10_000, consecutive_failures=1, open_s=10, max_open_s=10, half_open_probes=PROBES, success_threshold=1
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serial_moto_server() as url:
        yield url


def noting_client(endpoint: str, threads: list[int]) -> Any:
    """A DynamoDB client that notes the thread of every request it sends."""
    dynamodb = client("dynamodb", endpoint)
    dynamodb.meta.events.register("before-call.dynamodb", lambda **_: threads.append(threading.get_ident()))
    return dynamodb


async def test_a_fleet_of_async_callers_probes_within_the_limit_without_dynamodb_on_the_loop(endpoint: str) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    clock = FakeClock(start=1_800_000_000.0)
    table = create_table(client("dynamodb", endpoint), "BreakerTable")
    stores = [
        DynamoDBStateStore(table, client=noting_client(endpoint, threads), clock=clock) for _ in range(ENVIRONMENTS)
    ]
    fleet = [BreakerRegistry(store, config=CONFIG).get(NAME) for store in stores]
    observer = DynamoDBStateStore(table, client=client("dynamodb", endpoint), clock=clock)  # the test's own reads

    with pytest.raises(ConnectionError):
        async with fleet[0]:
            raise ConnectionError("reset by peer")
    await fleet[0].flush_async()  # consecutive_failures=1: this write trips the breaker
    clock.advance(CONFIG.open_s)

    async def try_probe(breaker: CircuitBreaker) -> Permit | None:
        try:
            permit = await breaker.allow_async()
        except CircuitOpenError:
            return None
        return permit if permit.probe_id is not None else None

    probes = [permit for permit in await asyncio.gather(*map(try_probe, fleet)) if permit is not None]
    live = observer.load([NAME], consistent=True)[NAME].live_probes(clock.now)
    assert 1 <= len(probes) <= PROBES
    assert {permit.probe_id for permit in probes} == set(live)
    await asyncio.gather(*(permit.record_success_async(0.05) for permit in probes))

    assert len(threads) > ENVIRONMENTS
    assert loop_thread not in threads
    assert observer.load([NAME], consistent=True)[NAME].state is BreakerState.CLOSED
    assert [(item.from_state, item.to_state) for item in observer.history(NAME)] == [
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.CLOSED, BreakerState.OPEN),
    ]
