"""Values of pacing: a key's limits, its shared record, and the conditional steps a take asks the store to apply."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from hookline.pacing.exceptions import PacingConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ClockStep",
    "PaceLimits",
    "PaceRecord",
    "SlotStep",
    "Take",
    "Throttle",
    "endpoint_key",
    "origin_key",
]

_MAX_ORIGIN_BYTES = 1000


def endpoint_key(name: str) -> str:
    """The pacing key of a registered endpoint: its limits and its 429s apply to every one of its URLs."""
    return f"endpoint:{name}"


def origin_key(origin: str) -> str:
    """The pacing key of an inline target, by origin (``scheme://host[:port]``): only 429 pacing applies to it.

    An origin longer than ``_MAX_ORIGIN_BYTES`` (a producer's URL may be 2,048 characters, all host) is keyed by
    its SHA-256: DynamoDB refuses partition keys over 2,048 bytes, and one refused key fails the batch's read.
    """
    if len(origin.encode("utf-8", "surrogatepass")) > _MAX_ORIGIN_BYTES:
        origin = "sha256:" + hashlib.sha256(origin.encode("utf-8", "surrogatepass")).hexdigest()
    return f"origin:{origin}"


@dataclass(frozen=True)
class PaceLimits:
    """A key's configured limits (the registry fields ``rate_limit_per_s``, ``max_in_flight``); None = no limit."""

    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        rate = self.rate_limit_per_s
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= sys.float_info.max
        ):
            raise PacingConfigError(f"rate_limit_per_s must be a number > 0, got {rate!r}")
        slots = self.max_in_flight
        if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int) or slots < 1):
            raise PacingConfigError(f"max_in_flight must be an integer >= 1, got {slots!r}")

    @property
    def is_limited(self) -> bool:
        """Whether any limit is configured."""
        return self.rate_limit_per_s is not None or self.max_in_flight is not None


@dataclass(frozen=True)
class Throttle:
    """A key slowed down by 429s: its pace right after the last decrease, and how it climbs back.

    The pace at time t is ``rate_per_s * (1 + increase * (t - since))`` (additive increase, a straight line, computed
    by every reader without a write), never above the key's configured limit, until ``until``: then the throttle is
    over (an unlimited key is unpaced again). ``not_before`` holds every request of the key (a Retry-After).
    """

    rate_per_s: float
    since: float
    until: float
    estimated: bool = False
    """True when ``rate_per_s`` started from this fleet's own estimate (an unlimited key's first 429): environments
    that see 429s within the cooldown add their share instead of decreasing again."""
    not_before: float | None = None

    def active(self, now: float) -> bool:
        """Whether the throttle still paces the key."""
        return now < self.until

    def holds(self, now: float) -> bool:
        """Whether a Retry-After still holds every request of the key."""
        return self.not_before is not None and now < self.not_before


@dataclass(frozen=True)
class PaceRecord:
    """The shared state of one key, as the store holds it.

    ``tat`` is the GCRA clock (theoretical arrival time of the next request granted), ``due`` the clock on which
    deferred requests are booked to come back. ``slots`` counts leases still held per grant bucket (start of the
    bucket, seconds); ``in_flight`` is their sum, expired buckets included until a take reaps them.
    """

    key: str
    tat: float | None = None
    due: float | None = None
    in_flight: int = 0
    slots: Mapping[int, int] = field(default_factory=dict)
    throttle: Throttle | None = None
    latency_s: float | None = None
    """How long a request to the key took lately, as the last environment to give back a slot saw it."""
    expires_at: int | None = None

    def evolve(self, **changes: object) -> PaceRecord:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClockStep:
    """Move a scheduling clock (``tat`` or ``due``) by ``add_s`` seconds.

    Behind branch (``behind``): the stored clock must be absent or at most ``base``; it becomes ``base + add_s``.
    Ahead branch: the stored clock must be above ``base`` (and at most ``at_most`` when set); ``add_s`` is added to it.
    The caller picks the branch from what it last read; the other one makes the take fail, with the current record.
    """

    base: float
    add_s: float
    behind: bool
    at_most: float | None = None


@dataclass(frozen=True)
class SlotStep:
    """Take ``count`` in-flight slots in grant bucket ``bucket`` and reap expired buckets.

    Holds only if the stored ``in_flight`` is at most ``at_most`` and each bucket in ``reap`` still holds exactly the
    count given (so a release racing the reap is never subtracted twice); reaped buckets are removed and their
    counts subtracted from ``in_flight``.
    """

    count: int
    bucket: int
    at_most: int
    reap: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Take:
    """One conditional update of a key's record: every step holds, or nothing changes.

    It also holds only if the key's throttle is still ``throttle`` (None: none), the one the grant was planned with,
    so that no environment grants at a pace a 429 elsewhere has just lowered.
    """

    throttle: Throttle | None = None
    tat: ClockStep | None = None
    due: ClockStep | None = None
    slots: SlotStep | None = None
