"""DeliveryFunction: deliver one SQS batch of webhook messages (see docs/delivery.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import async_process_partial_response

from hookline.delivery.factory import get_delivery_environment
from hookline.tracing import build_tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# Only botocore: X-Ray keeps subsegments on a per-thread stack, and concurrent httpx requests of one batch share a
# thread (asyncio), so patched httpx calls would nest under each other. Requests are logged and measured instead.
tracer = build_tracer(patch_modules=["botocore"])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Deliver every record; the ones to try again later are returned as batchItemFailures."""
    environment = get_delivery_environment(logger=logger, metrics=metrics)
    with environment.service.batch(event.get("Records", []), context) as batch:
        return async_process_partial_response(
            event=event, record_handler=batch.deliver, processor=environment.processor, context=context
        )
