"""Powertools' AsyncBatchProcessor for SQS, bounded to MAX_CONCURRENCY and run on the environment's own event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["DeliveryBatchProcessor"]


class DeliveryBatchProcessor(AsyncBatchProcessor):
    """AsyncBatchProcessor with two changes that delivery needs.

    * At most ``max_concurrency`` records are in flight (Powertools gathers every record at once).
    * The batch runs on ``run`` (the environment's long-lived loop) rather than on a loop Powertools picks, so the
      shared httpx client's pooled connections are always used on the loop that opened them.

    ``raise_on_entire_batch_failure`` is off: a batch whose every record is scheduled for retry is a normal
    outcome and must return its batchItemFailures, not raise.
    """

    def __init__(self, *, run: Callable[[Coroutine[Any, Any, Any]], Any], max_concurrency: int) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._run = run

    def async_process(self) -> list[tuple[Any, ...]]:
        """Process every record, at most ``max_concurrency`` at a time, on the environment's loop."""
        records = list(self.records)

        async def process_all() -> list[tuple[Any, ...]]:
            # Created inside the loop that uses it.
            slots = asyncio.Semaphore(self.max_concurrency)

            async def one(record: dict[str, Any]) -> tuple[Any, ...]:
                async with slots:
                    result: tuple[Any, ...] = await self._async_process_record(record)
                    return result

            return list(await asyncio.gather(*(one(record) for record in records)))

        result: list[tuple[Any, ...]] = self._run(process_all())
        return result
