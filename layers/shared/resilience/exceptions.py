"""Errors raised by the resilience toolkit.

ResilienceError
 +-- RetryError                  every attempt failed, or the budget/deadline ran out; wraps the last error
 +-- FallbackExhaustedError      every alternative of a fallback chain was skipped or failed; carries ``outcomes``
 +-- NoCachedValueError          a cached-value fallback has no value for these arguments, or it is older than max age
 +-- CircuitOpenError            the breaker refused the call; carries ``retry_after`` (seconds) and ``name``
 +-- StateStoreError             the breaker's state store failed (callers normally never see it: the breaker
                                 fails open and counts it)
 +-- ConfigurationError          an invalid policy or breaker configuration
"""

from __future__ import annotations

__all__ = [
    "CircuitOpenError",
    "ConfigurationError",
    "FallbackExhaustedError",
    "NoCachedValueError",
    "ResilienceError",
    "RetryError",
    "StateStoreError",
]


class ResilienceError(Exception):
    """Base class of every error the resilience toolkit raises."""


class ConfigurationError(ResilienceError, ValueError):
    """An invalid retry policy, fallback chain or breaker configuration."""


class RetryError(ResilienceError):
    """All attempts failed or the retry budget ran out."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_exception: BaseException | None = None,
        reason: str = "max_attempts",
        last_result: object = None,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_exception = last_exception
        # Why retrying stopped: "max_attempts", "max_elapsed" or "deadline".
        self.reason = reason
        # Set when the last attempt returned a value the policy's result predicate rejected.
        self.last_result = last_result


class FallbackExhaustedError(ResilienceError):
    """Every alternative of a fallback chain was skipped or failed."""

    def __init__(self, message: str, *, outcomes: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.outcomes = outcomes


class NoCachedValueError(ResilienceError):
    """A cached-value fallback has nothing fresh enough to serve."""


class CircuitOpenError(ResilienceError):
    """The circuit breaker refused the call."""

    def __init__(self, name: str, *, retry_after: float, state: str = "open") -> None:
        super().__init__(f"circuit {name!r} is {state}; retry after {retry_after:.1f}s")
        self.name = name
        self.retry_after = retry_after
        self.state = state


class StateStoreError(ResilienceError):
    """The breaker's state store could not be read or written."""
