"""Resilience toolkit for AWS Lambda: retry, fallback chains and a circuit breaker with shared DynamoDB state."""

from __future__ import annotations

from resilience.exceptions import (
    CircuitOpenError,
    ConfigurationError,
    FallbackExhaustedError,
    NoCachedValueError,
    ResilienceError,
    RetryError,
    StateStoreError,
)
from resilience.fallback import (
    Alternative,
    AlternativeOutcome,
    FallbackChain,
    FallbackRegistry,
    FallbackResult,
    LastGood,
    alternate,
    cached_value,
    default_value,
    degrade,
    register_fallback,
    with_fallback,
)
from resilience.retry import (
    AttemptInfo,
    RetryConfig,
    RetryPolicy,
    compute_delay,
    lambda_deadline,
    retry,
    retry_with_fallback,
)

__all__ = [
    "Alternative",
    "AlternativeOutcome",
    "AttemptInfo",
    "CircuitOpenError",
    "ConfigurationError",
    "FallbackChain",
    "FallbackExhaustedError",
    "FallbackRegistry",
    "FallbackResult",
    "LastGood",
    "NoCachedValueError",
    "ResilienceError",
    "RetryConfig",
    "RetryError",
    "RetryPolicy",
    "StateStoreError",
    "alternate",
    "cached_value",
    "compute_delay",
    "default_value",
    "degrade",
    "lambda_deadline",
    "register_fallback",
    "retry",
    "retry_with_fallback",
    "with_fallback",
]
