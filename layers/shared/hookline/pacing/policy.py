"""Pacing decisions without I/O: what to ask the store for, and what a 429 changes (the Pacer runs the I/O).

Rate: GCRA (the generic cell rate algorithm) on one clock per key, ``tat``. A request conforms at time t when
``tat - tolerance <= t``; each one granted pushes ``tat`` by one period (1 / rate). One take may grant several requests
at once, each with its own start time, as long as the last starts within ``max_start_delay_s``. In any window of W
seconds at most ``W * rate + burst`` requests start (docs/pacing.md has the proof and the figures).

In flight: leases counted per grant bucket; a bucket older than the lease is reaped by the next take.

429: multiplicative decrease of the pace that drew it, then a straight-line climb back (additive increase), capped by
the configured limit; a Retry-After holds the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hookline.pacing.model import ClockStep, SlotStep, Take, Throttle

if TYPE_CHECKING:
    from hookline.pacing.config import PacerConfig
    from hookline.pacing.model import PaceLimits, PaceRecord

__all__ = [
    "MAX_SLOTS",
    "Plan",
    "bucket_of",
    "burst_size",
    "current_rate",
    "expired_slots",
    "plan_take",
    "rate_limit",
    "slot_limit",
    "slow_down",
]

_EPSILON = 1e-6
"""Slack on clock comparisons: DynamoDB keeps numbers as decimals, the pacer computes in binary floats."""
_SLOT_MARGIN = 1.25
"""Slot waiters are booked a quarter further apart than slots free up, so that one back on time finds its slot."""
MAX_SLOTS = 2**31 - 1
"""A larger ``max_in_flight`` (another tool may write any N) is this many: DynamoDB keeps 38 digits at most."""


def rate_limit(limits: PaceLimits, config: PacerConfig) -> float | None:
    """The configured rate as paced: at least one request per ``max_retry_after_s`` (12 h).

    The registry accepts any N above 0, down to DynamoDB's 1E-130; a pace slower than the longest hold the pacer
    honours would only book waits and clocks beyond what the store and SQS can hold (one failing key would make the
    whole environment fail open), for a limit nobody means.
    """
    limit = limits.rate_limit_per_s
    return None if limit is None else max(limit, 1.0 / config.max_retry_after_s)


def slot_limit(limits: PaceLimits) -> int | None:
    """The configured in-flight limit as paced (at most ``MAX_SLOTS``)."""
    slots = limits.max_in_flight
    return None if slots is None else min(slots, MAX_SLOTS)


def burst_size(rate: float, config: PacerConfig) -> int:
    """How many requests a paced key may run ahead of its pace."""
    return max(1, math.floor(rate * config.burst_s + _EPSILON))


def current_rate(limits: PaceLimits, throttle: Throttle | None, now: float, config: PacerConfig) -> float | None:
    """The key's pace at ``now`` (requests/s), or None when nothing paces its rate."""
    limit = rate_limit(limits, config)
    if throttle is None or not throttle.active(now):
        return limit
    # The climb starts when requests may resume: after a Retry-After hold, not during it.
    resumed = max(throttle.since, throttle.not_before or throttle.since)
    climbed = throttle.rate_per_s * (1.0 + config.increase_per_s * max(0.0, now - resumed))
    return climbed if limit is None else min(limit, climbed)


def bucket_of(now: float, config: PacerConfig) -> int:
    """The grant bucket a lease taken at ``now`` is counted in."""
    return int(now // config.bucket_s * config.bucket_s)


def expired_slots(record: PaceRecord, now: float, config: PacerConfig) -> dict[int, int]:
    """Buckets whose every lease has expired (their holders crashed or never released), with their counts."""
    return {bucket: count for bucket, count in record.slots.items() if bucket + config.bucket_s + config.lease_s <= now}


@dataclass(frozen=True)
class Plan:
    """What one acquire asks of the store (``take``; None = no write) and how to read its answer."""

    requested: int
    granted: int
    take: Take | None = None
    paced: bool = True
    period_s: float | None = None
    """1 / pace, when the rate is paced."""
    tolerance_s: float = 0.0
    soon: int = 0
    """Of the requests not granted, the first ``soon`` wait in-process for a wave of requests to end (within
    ``max_start_delay_s``); the others are booked on the ``due`` clock, ``booking_s`` apart."""
    wave_s: float = 0.0
    """How long a request to the key takes: each wave of ``max_in_flight`` slot waiters waits this much more."""
    booking_s: float = 0.0
    """Gap between bookings: the key's capacity gap (1 / pace, or latency / slots with a margin, whichever is
    longer)."""
    slots_full: bool = False
    """Fewer granted than the rate allowed because every in-flight slot was taken."""
    hold_until: float | None = None
    """A Retry-After holds the key until then: nothing granted."""


@dataclass(frozen=True)
class _RateView:
    """The GCRA clock of a rate-paced key as last read."""

    period: float
    tolerance: float
    behind: bool
    """The clock is absent or not after now: the next request may start at once."""
    start: float
    """When the next request granted would be scheduled (the clock, or now when it is behind)."""

    @classmethod
    def of(cls, record: PaceRecord, rate: float, now: float, config: PacerConfig) -> _RateView:
        period = 1.0 / rate
        behind = record.tat is None or record.tat <= now
        start = now if record.tat is None or behind else record.tat
        return cls(period, (burst_size(rate, config) - 1) * period, behind, start)

    def room(self, count: int, now: float, config: PacerConfig) -> int:
        """How many of ``count`` requests can be scheduled to start within ``max_start_delay_s``."""
        room = now + config.max_start_delay_s + self.tolerance - self.start
        return min(count, max(0, math.floor((room + _EPSILON) / self.period) + 1))

    def tat_step(self, granted: int, now: float, config: PacerConfig) -> ClockStep:
        """Push the clock by ``granted`` periods; ahead, only while the last of them still starts in time."""
        last_start = now + config.max_start_delay_s + self.tolerance - (granted - 1) * self.period + _EPSILON
        at_most = None if self.behind else last_start
        return ClockStep(base=now, add_s=granted * self.period, behind=self.behind, at_most=at_most)

    def next_free(self, granted: int, now: float) -> float:
        """When a request after the ``granted`` ones could start."""
        return max(now, self.start + granted * self.period - self.tolerance)


def _slot_step(record: PaceRecord, slots: int, wanted: int, now: float, config: PacerConfig) -> SlotStep | None:
    """Take up to ``wanted`` of ``slots`` in-flight slots (None: none free), reaping expired buckets on the way."""
    reap = expired_slots(record, now, config)
    reaped = sum(reap.values())
    granted = min(wanted, max(0, slots - (record.in_flight - reaped)))
    if not granted:
        return None
    return SlotStep(count=granted, bucket=bucket_of(now, config), at_most=slots - granted + reaped, reap=reap)


def plan_take(  # noqa: PLR0913 - a pure rule over the record, limits, config and time
    record: PaceRecord, limits: PaceLimits, count: int, now: float, config: PacerConfig, *, latency_s: float
) -> Plan:
    """Up to ``count`` requests for the key, as the record read says; the take's conditions check it still holds.

    ``latency_s`` is how long a request to the key takes lately: with ``max_in_flight``, a slot frees up about every
    ``latency_s / max_in_flight`` seconds.
    """
    throttle = record.throttle
    rate = current_rate(limits, throttle, now, config)
    period = 1.0 / rate if rate is not None else None
    slots = slot_limit(limits)
    booking = max(period or 0.0, latency_s / slots * _SLOT_MARGIN if slots is not None else 0.0)
    if throttle is not None and throttle.holds(now):
        return Plan(requested=count, granted=0, period_s=period, booking_s=booking, hold_until=throttle.not_before)
    if rate is None and slots is None:
        return Plan(requested=count, granted=count, paced=False)
    view = _RateView.of(record, rate, now, config) if rate is not None else None
    in_time = view.room(count, now, config) if view is not None else count
    granted, slot_step = in_time, None
    if slots is not None:
        slot_step = _slot_step(record, slots, in_time, now, config)
        granted = slot_step.count if slot_step is not None else 0
    tat_step = view.tat_step(granted, now, config) if view is not None and granted else None
    # Slot waiters whose wave of requests ends within the start delay allowed wait for it in-process; the others,
    # and requests lacking a rate token, are booked one capacity gap apart on the ``due`` clock, after the next free
    # start, so that they come back spread out about when their turn comes (each deferred about once). Booking a
    # short slot wait instead would push every later booking back whenever a request back on time met a busy slot.
    waves = math.floor((config.max_start_delay_s + _EPSILON) / latency_s) if slots is not None else 0
    soon = min(in_time - granted, (slots or 0) * waves)
    due_step = None
    if granted + soon < count:
        next_free = view.next_free(granted + soon, now) if view is not None else now
        if slots is not None and granted < in_time:
            next_free = max(next_free, now + latency_s * (waves + 1))
        behind = record.due is None or record.due <= next_free
        due_step = ClockStep(base=next_free, add_s=(count - granted - soon) * booking, behind=behind)
    steps = tat_step or due_step or slot_step
    return Plan(
        requested=count,
        granted=granted,
        take=Take(throttle, tat_step, due_step, slot_step) if steps else None,
        period_s=period,
        tolerance_s=view.tolerance if view is not None else 0.0,
        soon=soon,
        wave_s=latency_s,
        booking_s=booking,
        slots_full=granted < in_time,
    )


def slow_down(  # noqa: PLR0913 - a pure rule: every input of the AIMD decrease, as keywords
    throttle: Throttle | None,
    *,
    limits: PaceLimits,
    now: float,
    granted_at: float,
    retry_after_s: float | None,
    local_rate: float,
    contributed: bool,
    config: PacerConfig,
) -> Throttle | None:
    """The key's throttle after a 429 to a request granted at ``granted_at``; None when this 429 changes nothing.

    ``local_rate`` is this environment's own request rate to the key lately; ``contributed`` says whether it already
    added it to the current (estimated) throttle.
    """
    not_before = throttle.not_before if throttle is not None else None
    if retry_after_s is not None and retry_after_s > 0:
        asked = now + min(retry_after_s, config.max_retry_after_s)
        not_before = asked if not_before is None else max(not_before, asked)
    limit = rate_limit(limits, config)
    if throttle is not None and throttle.active(now):
        same_overload = now < throttle.since + config.cooldown_s
        if same_overload and throttle.estimated and not contributed:
            # An unlimited key's first decrease started from one environment's rate: each other environment that
            # sees the same overload adds its own share, so the pace approximates a fraction of the fleet's rate.
            rate = throttle.rate_per_s + config.decrease_factor * local_rate
            return replace(throttle, rate_per_s=rate if limit is None else min(limit, rate), not_before=not_before)
        if same_overload or granted_at < throttle.since:
            # Drawn by the pace before the last decrease: that decrease already answered it.
            if not_before == throttle.not_before:
                return None
            return replace(throttle, not_before=not_before, until=_until(now, not_before, config))
        base = current_rate(limits, throttle, now, config)
        assert base is not None  # an active throttle always paces
        estimated = False
    elif limit is not None:
        base, estimated = limit, False
    else:
        base, estimated = local_rate, True
    floor = config.min_rate_per_s if limit is None else min(config.min_rate_per_s, limit)
    rate = max(floor, config.decrease_factor * base)
    if limit is not None:
        rate = min(rate, limit)
    if not_before is not None and not_before <= now:
        not_before = None  # an old hold that is over: not carried into the new throttle
    return Throttle(
        rate_per_s=rate, since=now, until=_until(now, not_before, config), estimated=estimated, not_before=not_before
    )


def _until(now: float, not_before: float | None, config: PacerConfig) -> float:
    """A throttle lasts ``hold_s`` after its 429, or after the Retry-After hold when that ends later."""
    return max(now, not_before or now) + config.hold_s
