"""The retry schedule: attempt numbers from receive counts, the next visibility delay (docs/contracts.md "Outcomes")."""

from __future__ import annotations

import math
import random as _random
from typing import TYPE_CHECKING

from hookline.settings import MAX_RETRY_DELAY_S

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["JITTER", "attempt_number", "is_last_attempt", "next_delay"]

JITTER = 0.2


def attempt_number(approximate_receive_count: str | int | None) -> int:
    """This attempt's number (1-based) from the record's ApproximateReceiveCount; 1 if it is missing or garbled."""
    try:
        count = int(approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1
    return max(count, 1)


def is_last_attempt(attempt: int, max_attempts: int) -> bool:
    """Whether no attempt follows ``attempt`` (after it fails the message is dead-lettered)."""
    return attempt >= max_attempts


def next_delay(
    attempt: int,
    schedule: Sequence[float],
    *,
    retry_after_s: float | None = None,
    breaker_retry_after_s: float | None = None,
    random: Callable[[], float] = _random.random,
    max_delay_s: float = MAX_RETRY_DELAY_S,
) -> int:
    """Whole seconds before attempt ``attempt + 1``: the schedule entry +-20% jitter, raised to at least the
    receiver's Retry-After and, when every target was skipped by an open breaker, to the breaker's retry_after;
    never over ``max_delay_s`` (12 h, the most ChangeMessageVisibility allows)."""
    base = float(schedule[min(max(attempt, 1), len(schedule)) - 1]) if schedule else 0.0
    delay = base * (1 + JITTER * (2 * random() - 1))
    for hint in (retry_after_s, breaker_retry_after_s):
        if hint is not None and math.isfinite(hint):
            delay = max(delay, hint)
    # Round up so a Retry-After of 2.5 s is never answered with 2 s (the epsilon absorbs float noise like 300.0000001).
    return int(min(max(math.ceil(delay - 1e-9), 0), max_delay_s))
