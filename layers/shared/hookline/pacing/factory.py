"""build_pacer: the production Pacer (DynamoDB) when a table is named, else one in memory (tests, local runs)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hookline.pacing.memory import MemoryPaceStore
from hookline.pacing.pacer import Pacer

if TYPE_CHECKING:
    from hookline.pacing.config import PacerConfig
    from hookline.pacing.pacer import MetricsHook
    from hookline.pacing.store import PaceStore
    from resilience._clock import Clock

__all__ = ["build_pacer"]


def build_pacer(
    table_name: str | None,
    *,
    client: Any = None,
    clock: Clock = time.time,
    config: PacerConfig | None = None,
    metrics_hook: MetricsHook | None = None,
) -> Pacer:
    """A Pacer over the DynamoDB table ``table_name`` (the template's PacingTable, env PACING_TABLE), or in memory."""
    if table_name:
        from hookline.pacing.dynamodb import DynamoDBPaceStore

        store: PaceStore = DynamoDBPaceStore(table_name, client=client, clock=clock)
    else:
        store = MemoryPaceStore(clock=clock)
    return Pacer(store, config=config, metrics_hook=metrics_hook)
