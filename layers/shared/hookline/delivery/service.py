"""DeliveryService: the immutable dependencies of delivery; ``service.batch(records)`` opens one batch.

Everything that belongs to one SQS batch (the parsed records, what was read ahead, the metrics, the deadline, the
messages waiting to be sent) lives on ``DeliveryBatch`` (``hookline.delivery.batch``); the service only holds what
every batch of the execution environment shares.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hookline.delivery.batch import DEFAULT_DEADLINE_MARGIN_S, DeliveryBatch
from hookline.delivery.config import DeliveryConfig
from hookline.delivery.deps import Clocks, Telemetry

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from hookline.delivery.deps import Outbox, Stores, Transport
    from hookline.settings import Settings

__all__ = ["DeliveryService"]


class DeliveryService:
    """Delivers SQS records: sign, POST with fallbacks behind breakers, retry on schedule, dead-letter with reason."""

    def __init__(  # noqa: PLR0913 - already grouped: settings, then one parameter object per kind of dependency
        self,
        settings: Settings,
        *,
        config: DeliveryConfig | None = None,
        stores: Stores,
        outbox: Outbox,
        transport: Transport,
        telemetry: Telemetry | None = None,
        clocks: Clocks | None = None,
        deadline_margin_s: float = DEFAULT_DEADLINE_MARGIN_S,
        run: Callable[[Coroutine[Any, Any, Any]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or DeliveryConfig()
        self.stores = stores
        self.outbox = outbox
        self.transport = transport
        self.telemetry = telemetry or Telemetry()
        self.clocks = clocks or Clocks()
        self.deadline_margin_s = deadline_margin_s
        self._run = run or asyncio.Runner().run

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this environment's event loop (the one the shared HTTP client lives on)."""
        return self._run(coroutine)

    def batch(self, records: Sequence[Mapping[str, Any]], context: LambdaContext | None = None) -> DeliveryBatch:
        """A batch of raw SQS records; use as a context manager around the batch processor."""
        return DeliveryBatch(self, records, context)
