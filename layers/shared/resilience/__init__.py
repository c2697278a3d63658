"""Resilience toolkit for AWS Lambda: retry, fallback chains and a circuit breaker with shared DynamoDB state."""

from __future__ import annotations

from resilience.exceptions import (
    CircuitOpenError,
    ConfigurationError,
    FallbackExhaustedError,
    ResilienceError,
    RetryError,
    StateStoreError,
)

__all__ = [
    "CircuitOpenError",
    "ConfigurationError",
    "FallbackExhaustedError",
    "ResilienceError",
    "RetryError",
    "StateStoreError",
]
