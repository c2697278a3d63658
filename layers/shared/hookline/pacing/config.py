"""PacerConfig: the tunables of pacing, with defaults chosen for webhook receivers (docs/pacing.md explains each)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from hookline.pacing.exceptions import PacingConfigError

__all__ = ["PacerConfig"]

_FRACTIONS = ("decrease_factor",)
_ZERO_OR_MORE = ("max_start_delay_s", "burst_s")


@dataclass(frozen=True)
class PacerConfig:
    """How a Pacer paces; every duration in seconds, every rate in requests per second."""

    cache_ttl_s: float = 5.0
    """How long a key read as unpaced is trusted before it is read again (the unpaced path's only cost)."""
    burst_s: float = 0.2
    """Burst tolerance: a paced key may run ahead of its pace by ``max(1, rate * burst_s)`` requests."""
    max_start_delay_s: float = 1.0
    """How far ahead one take may schedule request starts: one write grants up to ``1 + rate * (burst_s +
    max_start_delay_s)`` requests, each with its own start time."""
    lease_s: float = 45.0
    """An in-flight slot's lease: longest request (30 s) + start delay + margin. A crashed holder's slots come back
    after ``lease_s`` to ``lease_s + bucket_s``."""
    bucket_s: float = 5.0
    """Leases are counted per grant bucket of this length (the record keeps at most ``lease_s / bucket_s + 2``)."""
    decrease_factor: float = 0.5
    """Multiplicative decrease: a 429 sets the pace to this fraction of the pace that drew it."""
    increase_per_s: float = 0.1
    """Additive increase: each second after a decrease adds this fraction of the decreased pace back."""
    min_rate_per_s: float = 0.5
    """Decreases never go below this pace (nor below the configured limit, when that is lower)."""
    hold_s: float = 60.0
    """A throttle ends this long after the 429 that set it; an unlimited key is then unpaced again."""
    cooldown_s: float = 1.0
    """At most one decrease per key per cooldown (the 429s of one overload arrive together, fleet-wide)."""
    estimate_window_s: float = 5.0
    """An unlimited key's first 429 starts from the request rates the environments saw over this window."""
    default_latency_s: float = 0.25
    """A request's latency before any was seen for the key (optimistic: a request deferred too briefly is booked
    again when it comes back, one deferred too long is throughput lost)."""
    max_retry_after_s: float = 43200.0
    """A Retry-After is honoured up to this long (12 h, as the retry schedule does)."""
    max_races: int = 3
    """Conditional writes retried after a lost race before the request is deferred briefly."""
    store_retry_s: float = 5.0
    """After a store error, the pacer stays unpaced (fails open) this long before asking the store again."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PacingConfigError(f"PacerConfig.{item.name} must be a finite number, got {value!r}")
            if item.name in _FRACTIONS:
                if not 0 < value < 1:
                    raise PacingConfigError(f"PacerConfig.{item.name} must be between 0 and 1, got {value!r}")
            elif item.name in _ZERO_OR_MORE or item.name == "max_races":
                if value < 0:
                    raise PacingConfigError(f"PacerConfig.{item.name} must be >= 0, got {value!r}")
            elif value <= 0:
                raise PacingConfigError(f"PacerConfig.{item.name} must be > 0, got {value!r}")
        if not isinstance(self.max_races, int):
            raise PacingConfigError(f"PacerConfig.max_races must be an integer, got {self.max_races!r}")
