"""Metric names, dimension names and dimension values (docs/contracts.md "Metrics", namespace Hookline).

Dimensions are bounded on purpose: a dimension value is one of the constants here (or the service name),
never a URL, an endpoint name or a message id.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BREAKER_OPENED",
    "BREAKER_REJECTED",
    "CERTIFICATE_DAYS_LEFT",
    "DELIVERY_ATTEMPTS",
    "DELIVERY_DEAD_LETTERED",
    "DELIVERY_FAILED",
    "DELIVERY_LATENCY",
    "DELIVERY_RETRIED",
    "DELIVERY_SUCCEEDED",
    "FALLBACK_USED",
    "INTEGRATION_DIMENSION",
    "INTEGRATION_HEALTHY",
    "NAMESPACE",
    "PROBE_LATENCY",
    "REASON_DIMENSION",
    "Reason",
    "UNHEALTHY_INTEGRATIONS",
]

NAMESPACE = "Hookline"

# Delivery (see docs/delivery.md for exactly what each one counts).
DELIVERY_ATTEMPTS = "DeliveryAttempts"  # one per delivery attempt of a message (all its targets together)
DELIVERY_SUCCEEDED = "DeliverySucceeded"  # one per message delivered (2xx)
DELIVERY_FAILED = "DeliveryFailed"  # one per attempt that delivered nowhere (every target failed or was skipped)
DELIVERY_RETRIED = "DeliveryRetried"  # one per message scheduled for a later attempt
DELIVERY_DEAD_LETTERED = "DeliveryDeadLettered"  # one per message dead-lettered; dimension Reason
FALLBACK_USED = "FallbackUsed"  # one per message delivered by a fallback URL
BREAKER_REJECTED = "BreakerRejected"  # one per target skipped because its breaker was open
BREAKER_OPENED = "BreakerOpened"  # one per breaker transition into open seen by this environment
DELIVERY_LATENCY = "DeliveryLatency"  # milliseconds, one value per HTTP request

REASON_DIMENSION = "Reason"

# Health (see docs/health.md). The Integration dimension is the one exception to "never an endpoint name": its
# cardinality is bounded by the size of the registry, which operators control (one metric per integration).
INTEGRATION_HEALTHY = "IntegrationHealthy"  # 1 if the integration's recorded state is healthy, else 0; dim Integration
PROBE_LATENCY = "ProbeLatency"  # milliseconds, one value per probe that got a response (fleet-wide, no dimension)
UNHEALTHY_INTEGRATIONS = "UnhealthyIntegrations"  # integrations in state unhealthy after a run (fleet count)
CERTIFICATE_DAYS_LEFT = "CertificateDaysLeft"  # days until the TLS certificate expires; https only; dim Integration
INTEGRATION_DIMENSION = "Integration"


class Reason(StrEnum):
    """Why a message was dead-lettered: the DLQ ``reason`` attribute and the Reason metric dimension."""

    ENDPOINT_DISABLED = "endpoint_disabled"
    ENDPOINT_GONE = "endpoint_gone"
    ENDPOINT_INVALID = "endpoint_invalid"
    INVALID_JSON = "invalid_json"
    MESSAGE_TOO_LARGE = "message_too_large"
    RETRIES_EXHAUSTED = "retries_exhausted"
    SCHEMA_VIOLATION = "schema_violation"
    SECRET_INVALID = "secret_invalid"
    SECRET_MISSING = "secret_missing"
    TARGET_REFUSED = "target_refused"
    UNKNOWN_ENDPOINT = "unknown_endpoint"
