"""The health function's cached factory: builds the service from frozen Settings on first call."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from botocore.config import Config

from hookline.health.alerts import AlertPublisher
from hookline.health.service import DEFAULT_PROBE_CONCURRENCY, HealthService
from hookline.health.steering import BreakerSteering
from hookline.health.store import HealthStore
from hookline.health.telemetry import PowertoolsMetricsSink
from hookline.http import build_async_client
from hookline.registry import EndpointRegistry
from hookline.settings import Settings
from resilience.breaker import BreakerRegistry, DynamoDBStateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Metrics

    from hookline.health.telemetry import MetricsSink

__all__ = ["build_health_service", "get_health_service"]


def build_health_service(  # noqa: PLR0913 - wiring: every client injectable, each a keyword with a default
    settings: Settings,
    *,
    metrics: MetricsSink | None = None,
    dynamodb: Any = None,
    sns: Any = None,
    transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = DEFAULT_PROBE_CONCURRENCY,
    breaker_registry: BreakerRegistry | None = None,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
    now: Callable[[], datetime] | None = None,
) -> HealthService:
    """Wire a HealthService from settings; every client can be passed in (tests), else it is built here."""
    settings.require("endpoints_table", "health_history_table")
    # Probe results are written from worker threads; give botocore as many pooled connections as probes in flight.
    config = Config(max_pool_connections=concurrency, retries={"mode": "standard"})
    dynamodb = dynamodb or boto3.client("dynamodb", config=config)
    registry = EndpointRegistry(settings.endpoints_table, client=dynamodb)
    store = HealthStore(
        settings.endpoints_table,
        settings.health_history_table,
        client=dynamodb,
        write_concurrency=min(concurrency, 16),
    )
    steering = None
    if breaker_registry is not None:
        steering = BreakerSteering(breaker_registry)
    elif settings.breaker_table:
        steering = BreakerSteering(BreakerRegistry(DynamoDBStateStore(settings.breaker_table, client=dynamodb)))
    alerts = None
    if settings.alert_topic_arn:
        alerts = AlertPublisher(settings.alert_topic_arn, client=sns or boto3.client("sns"))
    if client_factory is None:
        # Each run builds a client in its own event loop; the TLS context (CA bundle load, ~100 ms) is built once.
        client_factory = partial(
            build_async_client,
            allow_private=settings.allow_private_targets,
            max_connections=concurrency,
            transport=transport,
            verify=httpx.create_ssl_context(verify=True, trust_env=False),
        )
    return HealthService(
        registry=registry,
        store=store,
        client_factory=client_factory,
        steering=steering,
        alerts=alerts,
        metrics=metrics,
        concurrency=concurrency,
        now=now or _utc_now,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def get_health_service(metrics: Metrics | None = None) -> HealthService:
    """The function's HealthService, built once per execution environment from the environment's Settings."""
    return build_health_service(
        Settings.from_env(), metrics=PowertoolsMetricsSink(metrics) if metrics is not None else None
    )
