"""The endpoint registry's data model: what one EndpointsTable item means (docs/contracts.md), without I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from hookline.signing import SCHEMES, Scheme

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_SECRET_PREFIX",
    "DEFAULT_SERVICE_TYPE",
    "DEFAULT_TIMEOUT_S",
    "HEALTH_STATES",
    "MAX_TIMEOUT_S",
    "SCHEMES",
    "Endpoint",
    "HealthCheck",
    "HealthState",
    "HealthStatus",
    "Scheme",
]

HealthState = Literal["healthy", "unhealthy", "unknown"]
HEALTH_STATES: tuple[HealthState, ...] = ("healthy", "unhealthy", "unknown")
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 30.0
# Secrets Manager name prefix of signing secrets when the stack does not say (its SigningSecretPrefix output).
DEFAULT_SECRET_PREFIX = "hookline/"
# The label of an integration whose item has no ``service_type`` (every item written by the CLI or other tools).
DEFAULT_SERVICE_TYPE = "webhook"


@dataclass(frozen=True)
class HealthCheck:
    """How the health function probes an integration (registry attribute ``health``)."""

    url: str | None = None
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: tuple[int, ...] = ()  # empty = any 2xx
    max_latency_ms: int | None = None
    body_contains: str | None = None
    min_cert_days: int | None = None
    failure_threshold: int = 3
    success_threshold: int = 2

    def status_ok(self, status: int) -> bool:
        """Whether a probe's HTTP status meets the expectation."""
        return status in self.expect_status if self.expect_status else 200 <= status < 300


@dataclass(frozen=True)
class HealthStatus:
    """Health as last recorded by the health function."""

    state: HealthState = "unknown"
    last_checked_at: str | None = None
    last_latency_ms: int | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One registered endpoint (the EndpointsTable item contract)."""

    name: str
    url: str
    secret_id: str
    fallback_urls: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    scheme: Scheme = "standard"
    timeout_s: float = DEFAULT_TIMEOUT_S
    headers: Mapping[str, str] = field(default_factory=dict)
    event_types: tuple[str, ...] = ()
    health: HealthCheck = field(default_factory=HealthCheck)
    status: HealthStatus = field(default_factory=HealthStatus)
    # Fleet-wide flow control (docs/contracts.md): requests per second and concurrent requests; None = no limit.
    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None
    # A free-form label (IntegrationService's ``service_type``); items without one read as DEFAULT_SERVICE_TYPE.
    service_type: str = DEFAULT_SERVICE_TYPE

    @property
    def targets(self) -> tuple[str, ...]:
        """The primary URL followed by the fallbacks, in the order they are tried."""
        return (self.url, *self.fallback_urls)

    def accepts(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type`` (no filter = every type)."""
        return not self.event_types or event_type in self.event_types
