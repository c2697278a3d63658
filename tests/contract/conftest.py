"""The store contract suite runs every test against each StateStore implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from resilience.breaker import DynamoDBStateStore, MemoryStateStore
from tests.support.aws import client
from tests.support.template import create_table
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from resilience.breaker import StateStore

STATE_TTL_S = 3600.0
HISTORY_TTL_S = 7200.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore(clock=clock, state_ttl_s=STATE_TTL_S, history_ttl_s=HISTORY_TTL_S)
        return
    request.getfixturevalue("aws")  # moto in-process for this test
    dynamodb = client("dynamodb")
    table = create_table(dynamodb, "BreakerTable")
    yield DynamoDBStateStore(table, client=dynamodb, clock=clock, state_ttl_s=STATE_TTL_S, history_ttl_s=HISTORY_TTL_S)
