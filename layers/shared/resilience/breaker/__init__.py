"""Circuit breaker with fleet-wide state: rate and run tripping, growing open periods, leased half-open probes.

State lives in a StateStore (``MemoryStateStore`` or ``DynamoDBStateStore``); each environment keeps a short cache and
buffers outcomes, so the healthy path writes nothing per call. See docs/breaker.md.
"""

from __future__ import annotations

from resilience.breaker.breaker import CircuitBreaker, MetricsHook, Permit, TransitionHook
from resilience.breaker.config import BreakerConfig, counts_every_exception
from resilience.breaker.dynamodb import DynamoDBStateStore
from resilience.breaker.memory import MemoryStateStore
from resilience.breaker.model import BreakerRecord, BreakerSnapshot, BreakerState, Counts, OutcomeDelta, Transition
from resilience.breaker.registry import BreakerRegistry, default_registry, get_circuit_breaker, set_default_registry
from resilience.breaker.store import StateStore

__all__ = [
    "BreakerConfig",
    "BreakerRecord",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "Counts",
    "DynamoDBStateStore",
    "MemoryStateStore",
    "MetricsHook",
    "OutcomeDelta",
    "Permit",
    "StateStore",
    "Transition",
    "TransitionHook",
    "counts_every_exception",
    "default_registry",
    "get_circuit_breaker",
    "set_default_registry",
]
