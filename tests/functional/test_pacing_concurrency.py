"""Several environments pacing one endpoint through one DynamoDB (a single-threaded moto server, so the store is
linearizable): the receiver never sees more than its rate in any window nor more than max_in_flight at once, nothing
is dropped, and a 429 seen by one environment slows the others.

Each environment has its own boto3 client, store and Pacer; they act in the same instants of fake time (threads
released together), as Lambda environments polling one queue do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hookline.pacing import PaceLimits, Pacer, endpoint_key, origin_key
from hookline.pacing.dynamodb import DynamoDBPaceStore
from tests.support.aws import client
from tests.support.breaker import serial_moto_server
from tests.support.pacing import Scenario, peak_concurrency, peak_in_window, simulate_fleet
from tests.support.template import create_table
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ENVIRONMENTS = 4
START = 1_800_000_000.0


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serial_moto_server() as url:
        yield url


@pytest.fixture
def fleet(endpoint: str) -> tuple[list[Pacer], FakeClock, list[DynamoDBPaceStore]]:
    clock = FakeClock(start=START)
    table = create_table(client("dynamodb", endpoint), "PacingTable")
    stores = [DynamoDBPaceStore(table, client=client("dynamodb", endpoint), clock=clock) for _ in range(ENVIRONMENTS)]
    return [Pacer(store) for store in stores], clock, stores


def test_a_burst_of_500_at_five_per_second_never_exceeds_the_limit_in_any_window(
    fleet: tuple[list[Pacer], FakeClock, list[DynamoDBPaceStore]],
) -> None:
    pacers, clock, stores = fleet
    result = simulate_fleet(
        pacers,
        clock,
        Scenario(
            messages=500,
            key_of=lambda number: endpoint_key("burst"),
            limits=PaceLimits(rate_limit_per_s=5),
            latency_s=lambda number: 0.05,
        ),
    )
    assert len(result.spans) == result.delivered == 500  # nothing dropped, nothing twice
    assert peak_in_window(result.starts, 5) <= 1.2 * 5 * 5
    assert peak_in_window(result.starts, 1) <= 5 + 1
    assert result.finished_at - START <= 500 / 5 * 1.05  # the limit is used, not only respected
    assert result.deferrals <= 500  # about once per message: the first acquire books each one its turn
    # One write per batch's acquire, plus one per race lost to another environment's write (measured: about 0.6).
    assert sum(store.requests for store in stores) <= 0.75 * 500


def test_rate_and_in_flight_limits_hold_together(
    fleet: tuple[list[Pacer], FakeClock, list[DynamoDBPaceStore]],
) -> None:
    pacers, clock, _ = fleet
    result = simulate_fleet(
        pacers,
        clock,
        Scenario(
            messages=60,
            key_of=lambda number: endpoint_key("slow"),
            limits=PaceLimits(rate_limit_per_s=10, max_in_flight=3),
            latency_s=lambda number: 0.6 if number % 4 else 0.1,
        ),
    )
    assert len(result.spans) == result.delivered == 60
    assert peak_concurrency(result.spans) <= 3
    assert peak_in_window(result.starts, 5) <= 1.2 * 10 * 5


def test_a_429_seen_by_one_environment_slows_the_whole_fleet(
    fleet: tuple[list[Pacer], FakeClock, list[DynamoDBPaceStore]],
) -> None:
    pacers, clock, _ = fleet
    key = origin_key("https://hooks.example")
    first, *others = pacers
    leases = [lease for pacer in pacers for lease in pacer.acquire(key, count=25).leases]  # 100 requests at once
    first.release(leases[0], status=429, retry_after_s=2)
    clock.advance(5)  # every environment's cached read is stale now
    admissions = [pacer.acquire(key, count=25) for pacer in others]
    assert all(admission.paced for admission in admissions)
    granted = sum(admission.granted for admission in admissions)
    assert granted < 75  # paced at about half the 25/s the first environment saw, no longer everything
    assert all(admission.denied and admission.delay_for(0) > 0 for admission in admissions)
