"""The store contract suite runs every test against each StateStore implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from resilience.breaker import DynamoDBStateStore, MemoryStateStore
from tests.support.aws import client
from tests.support.template import create_table

if TYPE_CHECKING:
    from collections.abc import Iterator

    from resilience.breaker import StateStore
    from tests.support.timefakes import FakeClock

STATE_TTL_S = 3600.0
HISTORY_TTL_S = 7200.0


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore(clock=clock, state_ttl_s=STATE_TTL_S, history_ttl_s=HISTORY_TTL_S)
        return
    request.getfixturevalue("aws")  # moto in-process for this test
    dynamodb = client("dynamodb")
    table = create_table(dynamodb, "BreakerTable")
    yield DynamoDBStateStore(table, client=dynamodb, clock=clock, state_ttl_s=STATE_TTL_S, history_ttl_s=HISTORY_TTL_S)
