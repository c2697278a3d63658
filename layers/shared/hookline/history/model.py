"""What history knows about a message: its attempts (one per delivery log line) and the status they add up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Attempt", "Found", "MessageHistory", "Outcome", "RecordFilter", "Status", "fold"]


class Outcome(StrEnum):
    """How one attempt (one delivery log line) ended."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    DEAD = "dead"
    FILTERED = "filtered"


class Status(StrEnum):
    """Where a message stands: its last attempt's outcome (``failed`` = the last attempt failed, a retry is pending)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    FILTERED = "filtered"


_STATUS_OF = {
    Outcome.DELIVERED: Status.DELIVERED,
    Outcome.RETRYING: Status.FAILED,
    Outcome.DEAD: Status.DEAD,
    Outcome.FILTERED: Status.FILTERED,
}
_OUTCOME_OF = {status: outcome for outcome, status in _STATUS_OF.items()}


@dataclass(frozen=True)
class Attempt:
    """One attempt of one message, as its delivery log line told it."""

    message_id: str
    time: float
    """Unix seconds (the log event's timestamp)."""
    outcome: Outcome
    endpoint: str | None = None
    event_type: str | None = None
    attempt: int | None = None
    target: int | None = None
    """0 = the primary URL, n = fallback n; None when no target was reached (breaker skip, refused, filtered)."""
    http_status: int | None = None
    latency_ms: float | None = None
    reason: str | None = None
    """The dead-letter reason (outcome ``dead``)."""
    error: str | None = None
    lane: str | None = None
    replay: bool = False

    @property
    def status(self) -> Status:
        """The message status this attempt leaves behind."""
        return _STATUS_OF[self.outcome]

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys) of one attempt in ``hookline messages show --json``."""
        return {
            "time": self.time,
            "attempt": self.attempt,
            "outcome": str(self.outcome),
            "target": self.target,
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "reason": self.reason,
            "error": self.error,
            "lane": self.lane,
            "replay": self.replay,
        }


@dataclass(frozen=True)
class RecordFilter:
    """Which attempts a log source returns (None = any). ``message_ids`` empty = any id."""

    message_ids: frozenset[str] = frozenset()
    endpoint: str | None = None
    event_type: str | None = None
    outcome: Outcome | None = None

    @classmethod
    def for_status(cls, status: Status | None, **fields: Any) -> RecordFilter:
        """A filter whose ``outcome`` is the one that leaves ``status`` behind."""
        return cls(outcome=_OUTCOME_OF[status] if status is not None else None, **fields)

    def matches(self, attempt: Attempt) -> bool:
        """Whether ``attempt`` passes (sources apply it again to whatever the server sent back)."""
        if self.message_ids and attempt.message_id not in self.message_ids:
            return False
        if self.endpoint is not None and attempt.endpoint != self.endpoint:
            return False
        if self.event_type is not None and attempt.event_type != self.event_type:
            return False
        return self.outcome is None or attempt.outcome is self.outcome


@dataclass(frozen=True)
class Found:
    """What a log source read: the matching attempts, newest first, and whether it stopped at its line cap.

    ``capped`` counts the lines the query returned, not the attempts kept: lines dropped after the query (not
    history, or not matching) still filled the cap, and what lay beyond it was never read.
    """

    attempts: list[Attempt]
    capped: bool = False


@dataclass(frozen=True)
class MessageHistory:
    """A message's attempts in order and the status they add up to."""

    message_id: str
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)

    @property
    def last(self) -> Attempt:
        """The latest attempt."""
        return self.attempts[-1]

    @property
    def status(self) -> Status:
        """The status the latest attempt left behind."""
        return self.last.status

    @property
    def endpoint(self) -> str | None:
        """The endpoint (or inline URL host) the message went to."""
        return next((a.endpoint for a in reversed(self.attempts) if a.endpoint), None)

    @property
    def event_type(self) -> str | None:
        """The message's event type."""
        return next((a.event_type for a in reversed(self.attempts) if a.event_type), None)

    @property
    def reason(self) -> str | None:
        """The dead-letter reason, when the message is dead."""
        return self.last.reason if self.status is Status.DEAD else None

    def summary(self) -> dict[str, Any]:
        """The JSON form (stable keys) of one row of ``hookline messages list --json``."""
        last = self.last
        return {
            "id": self.message_id,
            "status": str(self.status),
            "endpoint": self.endpoint,
            "event_type": self.event_type,
            "attempts": len(self.attempts),
            "last_attempt": last.attempt,
            "last_http_status": last.http_status,
            "reason": self.reason,
            "first_seen": self.attempts[0].time,
            "last_seen": last.time,
        }

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys) of ``hookline messages show --json``."""
        return {**self.summary(), "history": [attempt.view() for attempt in self.attempts]}


def _order(attempt: Attempt) -> tuple[float, int]:
    return (attempt.time, attempt.attempt or 0)


def fold(attempts: Iterable[Attempt]) -> list[MessageHistory]:
    """Group attempts by message, each message's attempts in time order; newest message first."""
    by_id: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_id.setdefault(attempt.message_id, []).append(attempt)
    histories = [MessageHistory(mid, tuple(sorted(items, key=_order))) for mid, items in by_id.items()]
    histories.sort(key=lambda history: (history.last.time, history.message_id), reverse=True)
    return histories
