"""The retry schedule and the retry policy (docs/contracts.md "Outcomes"): decisions without I/O.

``RetryPolicy`` turns an attempt that delivered nowhere into the next step: wait and try again (``Retry``), or give up
(``GiveUp``: ``retries_exhausted`` when the real attempts are used up, ``expired`` when the next try would come after
the message's bounded age). The batch performs the step; nothing here sends or sleeps.
"""

from __future__ import annotations

import math
import random as _random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hookline.metrics import Reason
from hookline.settings import MAX_RETRY_DELAY_S

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hookline.delivery.retrystate import RetryState

__all__ = ["JITTER", "Failure", "GiveUp", "Retry", "RetryPolicy", "attempt_number", "is_last_attempt", "next_delay"]

JITTER = 0.2


def attempt_number(approximate_receive_count: str | int | None) -> int:
    """This attempt's number (1-based) from the record's ApproximateReceiveCount; 1 if it is missing or garbled."""
    try:
        count = int(approximate_receive_count or 1)
    except (TypeError, ValueError):
        return 1
    return max(count, 1)


def _no_jitter() -> float:
    return 0.5  # the middle of the jitter's range: the schedule's entry itself


def is_last_attempt(attempt: int, max_attempts: int) -> bool:
    """Whether no attempt follows ``attempt`` (after it fails the message is dead-lettered)."""
    return attempt >= max_attempts


def next_delay(  # noqa: PLR0913 - a pure rule: the schedule, the receivers' and breakers' hints, its seams
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
    never over ``max_delay_s`` (12 h, the cap docs/contracts.md promises)."""
    base = float(schedule[min(max(attempt, 1), len(schedule)) - 1]) if schedule else 0.0
    delay = base * (1 + JITTER * (2 * random() - 1))
    for hint in (retry_after_s, breaker_retry_after_s):
        if hint is not None and math.isfinite(hint):
            delay = max(delay, hint)
    # Round up so a Retry-After of 2.5 s is never answered with 2 s (the epsilon absorbs float noise like 300.0000001).
    return int(min(max(math.ceil(delay - 1e-9), 0), max_delay_s))


@dataclass(frozen=True)
class Failure:
    """What an attempt that delivered nowhere says: whether a receiver was tried for real, its last answer and
    the waits the receivers and breakers asked for."""

    real: bool
    status: int | None = None
    error: str = ""
    retry_after_s: float | None = None
    breaker_retry_after_s: float | None = None


@dataclass(frozen=True)
class Retry:
    """Try again after ``delay_s`` with ``state`` (its ``due_at`` set)."""

    state: RetryState
    delay_s: int


@dataclass(frozen=True)
class GiveUp:
    """Dead-letter with ``reason``; ``state`` carries the last real status and error."""

    state: RetryState
    reason: Reason


@dataclass(frozen=True)
class RetryPolicy:
    """The retry schedule, the budget of real attempts and the bounded age of a failing message."""

    schedule: tuple[float, ...]
    expiry_slack_s: float = 3600.0
    max_delay_s: float = MAX_RETRY_DELAY_S

    @property
    def max_attempts(self) -> int:
        """Real attempts before ``retries_exhausted``: the first one plus one per schedule entry."""
        return len(self.schedule) + 1

    @property
    def max_age_s(self) -> float:
        """The longest a message may keep failing: every delay at +20% jitter, plus the slack."""
        return sum(self.schedule) * (1 + JITTER) + self.expiry_slack_s

    def expired(self, state: RetryState, now: float) -> bool:
        """Whether ``state`` is past its bounded age (pace waits never count)."""
        return state.age_s(now) > self.max_age_s

    def after_failure(
        self, state: RetryState, failure: Failure, *, now: float, random: Callable[[], float] = _random.random
    ) -> Retry | GiveUp:
        """The step after an attempt that delivered nowhere (``failure.real``: a receiver was tried, else every target
        was skipped by its breaker: no attempt is consumed, but the wait is the schedule's next entry all the same)."""
        failed = state.failed(now, real=failure.real, status=failure.status, error=failure.error)
        if failure.real and failed.attempts >= self.max_attempts:
            return GiveUp(failed, Reason.RETRIES_EXHAUSTED)
        delay = next_delay(
            failed.position,
            self.schedule,
            retry_after_s=failure.retry_after_s,
            breaker_retry_after_s=failure.breaker_retry_after_s,
            random=random,
            max_delay_s=self.max_delay_s,
        )
        if not failure.real:
            # A skip waits at least the schedule's next entry: its jitter may lengthen the wait, never shorten it.
            entry = next_delay(failed.position, self.schedule, random=_no_jitter, max_delay_s=self.max_delay_s)
            delay = max(delay, entry)
        if failed.age_s(now + delay) > self.max_age_s:
            return GiveUp(failed, Reason.EXPIRED)
        return Retry(replace(failed, due_at=now + delay), delay)
