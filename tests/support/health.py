"""Health test support: a stepping datetime clock, endpoint builders and the health service wired to moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hookline.health.factory import build_health_service
from hookline.health.telemetry import RecordingMetricsSink
from hookline.http import build_async_client
from hookline.registry import Endpoint, EndpointRegistry, HealthCheck
from hookline.settings import Settings

if TYPE_CHECKING:
    import ssl

    import httpx

    from hookline.health.service import HealthService
    from resilience.breaker import BreakerRegistry
    from tests.support.template import StackResources

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class StepClock:
    """A UTC datetime clock that moves forward by ``step`` on every call (never the wall clock)."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.current = start
        self.step = step

    def __call__(self) -> datetime:
        self.current += self.step
        return self.current


def make_endpoint(name: str, target: str, **health: Any) -> Endpoint:
    """An endpoint delivering to ``target`` whose health check has the given fields."""
    return Endpoint(name=name, url=target, secret_id=f"hookline/{name}", health=HealthCheck(**health))


def settings_for(stack: StackResources, moto_endpoint: str) -> Settings:
    """The health function's settings for the moto stack, loopback targets allowed."""
    environment = {**stack.environment(), "ALLOW_PRIVATE_TARGETS": "true", "AWS_ENDPOINT_URL": moto_endpoint}
    return Settings.from_env(environment)


def tls_client_factory(context: ssl.SSLContext) -> Any:
    """A client factory like production's, trusting a test CA."""

    def factory() -> httpx.AsyncClient:
        return build_async_client(allow_private=True, verify=context)

    return factory


def health_service(  # noqa: PLR0913 - production wiring with each fake injectable
    stack: StackResources,
    dynamodb: Any,
    *,
    sns: Any = None,
    breakers: BreakerRegistry | None = None,
    now: StepClock | None = None,
    metrics: RecordingMetricsSink | None = None,
    ssl_context: ssl.SSLContext | None = None,
    concurrency: int = 50,
) -> HealthService:
    """The production wiring (build_health_service) against moto, with injected clock, breakers and metrics."""
    settings = Settings(
        endpoints_table=stack.endpoints_table,
        breaker_table=stack.breaker_table,
        health_history_table=stack.health_history_table,
        alert_topic_arn=stack.alert_topic_arn if sns is not None else "",
        allow_private_targets=True,
    )
    return build_health_service(
        settings,
        metrics=metrics if metrics is not None else RecordingMetricsSink(),
        dynamodb=dynamodb,
        sns=sns,
        breaker_registry=breakers,
        client_factory=tls_client_factory(ssl_context) if ssl_context is not None else None,
        now=now or StepClock(),
        concurrency=concurrency,
    )


def register(dynamodb: Any, table: str, *endpoints: Endpoint) -> EndpointRegistry:
    """Register endpoints in the moto registry table."""
    registry = EndpointRegistry(table, client=dynamodb)
    for endpoint in endpoints:
        registry.register(endpoint)
    return registry
