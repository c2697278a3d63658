"""Tunables of a circuit breaker, validated once at construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resilience.exceptions import CircuitOpenError, ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BreakerConfig", "counts_every_exception"]


def counts_every_exception(error: BaseException) -> bool:
    """Default failure predicate: every exception counts, except a refusal by another breaker."""
    return isinstance(error, Exception) and not isinstance(error, CircuitOpenError)


@dataclass(frozen=True)
class BreakerConfig:
    """How a breaker trips, how long it stays open and how it probes its way back to closed."""

    # Tripping on a fleet-wide failure RATE over a sliding window of time buckets.
    window_s: float = 60.0
    bucket_s: float = 10.0
    min_calls: int = 20
    failure_rate: float = 0.5
    # Tripping on a fleet-wide run of consecutive failures, for targets too quiet to reach min_calls (0 = off).
    consecutive_failures: int = 5
    # A call slower than this counts as a failure (None = latency never counts).
    slow_call_s: float | None = None
    # Open duration: open_s on the first trip and the first re-open, then times open_backoff on every further re-open
    # (a failed probe), capped. A short outage recovers as fast as with a fixed period; a long one is probed rarely.
    open_s: float = 30.0
    open_backoff: float = 2.0
    max_open_s: float = 300.0
    # Half-open: at most half_open_probes concurrent probes fleet-wide, each holding a lease that expires so a
    # crashed prober cannot leave the breaker stuck; closes after success_threshold fleet-wide probe successes.
    half_open_probes: int = 2
    probe_lease_s: float = 30.0
    success_threshold: int = 2
    # Pending failures are written at the next allow() once this long has passed since this environment last wrote
    # the breaker (0 = before every call): bounds the write rate of a failing target, the first failure goes at once.
    failure_flush_s: float = 0.5
    # A stale cached record is re-read at most this often while the fleet sees failures (healthy: the store's TTL).
    suspect_cache_ttl_s: float = 1.0
    # After the store failed, act closed without asking it again for this long (then try once more).
    store_retry_s: float = 5.0
    # Lost compare-and-set races retried (with a fresh consistent read) before giving up.
    cas_retries: int = 3
    is_failure: Callable[[BaseException], bool] = field(default=counts_every_exception, compare=False)

    def __post_init__(self) -> None:
        """Reject configurations that cannot work, with a message naming the field."""
        positive = {
            "window_s": self.window_s,
            "bucket_s": self.bucket_s,
            "open_s": self.open_s,
            "probe_lease_s": self.probe_lease_s,
            "min_calls": self.min_calls,
            "half_open_probes": self.half_open_probes,
            "success_threshold": self.success_threshold,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"BreakerConfig.{name} must be positive, got {value!r}")
        if self.bucket_s > self.window_s or self.bucket_s != int(self.bucket_s):
            # Buckets are named by their start in whole seconds, the same in every environment.
            raise ConfigurationError("BreakerConfig.bucket_s must be whole seconds and not exceed window_s")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ConfigurationError(f"BreakerConfig.failure_rate must be in (0, 1], got {self.failure_rate!r}")
        if self.consecutive_failures < 0 or self.cas_retries < 0:
            raise ConfigurationError("BreakerConfig.consecutive_failures and cas_retries must not be negative")
        if self.open_backoff < 1.0 or self.max_open_s < self.open_s:
            raise ConfigurationError("BreakerConfig needs open_backoff >= 1 and max_open_s >= open_s")
        if self.slow_call_s is not None and self.slow_call_s <= 0:
            raise ConfigurationError("BreakerConfig.slow_call_s must be positive or None")
        if min(self.suspect_cache_ttl_s, self.store_retry_s, self.failure_flush_s) < 0:
            raise ConfigurationError(
                "BreakerConfig.suspect_cache_ttl_s, store_retry_s and failure_flush_s must not be negative"
            )

    def open_duration(self, reopen_count: int) -> float:
        """Seconds to stay open after the given number of consecutive re-opens (0 = first trip)."""
        return float(min(self.max_open_s, self.open_s * self.open_backoff ** max(0, reopen_count - 1)))
