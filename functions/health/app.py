"""HealthFunction: on each schedule tick, check every enabled integration once (see docs/health.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from hookline.health.factory import get_health_service
from hookline.tracing import build_tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
tracer = build_tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one health check of the registry and return its summary."""
    return get_health_service(metrics).run(context.get_remaining_time_in_millis).as_dict()
