"""History queries over any log source: ``show`` one message, ``list`` messages by endpoint, status, type and time.

A :class:`LogSource` returns attempts (parsed delivery log lines) matching a :class:`RecordFilter` in a time window;
CloudWatch Logs Insights (deployed stacks) and FilterLogEvents (the local stack) are the two sources, and one
contract test suite runs against both. :class:`HistoryReader` builds the answers on top, the same way for each.

A message's status is its latest attempt's outcome. Listing by status therefore takes two steps: find the ids
that have an attempt with that outcome, then read those ids' attempts (an indexed ``webhook_id IN [...]`` query)
and keep the ones whose latest attempt still has it (a dead message redriven and delivered is no longer dead).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hookline.history.exceptions import HistoryOffError, TimeRangeError
from hookline.history.model import Attempt, Found, MessageHistory, RecordFilter, Status, fold
from hookline.history.timerange import TimeRange
from hookline.messages import ENDPOINT_PATTERN, EVENT_TYPE_PATTERN, ID_PATTERN

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["DAY_S", "MAX_LINES", "HistoryReader", "LogSource", "MessageList", "check_id"]

DAY_S = 86400
MAX_LINES = 10_000
"""Lines one query returns at most (Logs Insights' own cap)."""
_IDS_PER_QUERY = 50
_ID_RE = re.compile(ID_PATTERN)
_ENDPOINT_RE = re.compile(ENDPOINT_PATTERN)
_EVENT_TYPE_RE = re.compile(EVENT_TYPE_PATTERN)
# An inline-URL message's endpoint label is its host: allow hostnames too.
_HOST_RE = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,255}$")


class LogSource(Protocol):
    """Where delivery log lines are read from."""

    def attempts(self, where: RecordFilter, window: TimeRange, *, limit: int) -> Found:
        """Attempts matching ``where`` logged within ``window``, newest first, at most ``limit``; ``capped`` when the
        source stopped at ``limit`` lines."""
        ...


@dataclass(frozen=True)
class MessageList:
    """The answer of ``list``: messages newest first; ``complete`` is False when a query hit its line cap."""

    messages: list[MessageHistory]
    complete: bool
    window: TimeRange


def check_id(message_id: str) -> str:
    """A webhook-id as the contract allows it (ValueError otherwise)."""
    if not _ID_RE.match(message_id):
        raise ValueError(f"{message_id!r} is not a webhook id (1-255 characters of A-Z a-z 0-9 . _ : -)")
    return message_id


def _check_endpoint(endpoint: str | None) -> str | None:
    if endpoint is not None and not (_ENDPOINT_RE.match(endpoint) or _HOST_RE.match(endpoint)):
        raise ValueError(f"{endpoint!r} is not an endpoint name or host")
    return endpoint


def _check_event_type(event_type: str | None) -> str | None:
    if event_type is not None and not _EVENT_TYPE_RE.match(event_type):
        raise ValueError(f"{event_type!r} is not an event type (1-128 characters of A-Z a-z 0-9 . _ : -)")
    return event_type


class HistoryReader:
    """Answers history questions from a log source, within the stack's retention."""

    def __init__(
        self,
        source: LogSource,
        *,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        max_lines: int = MAX_LINES,
    ) -> None:
        if retention_days <= 0:
            raise HistoryOffError("this stack keeps no delivery history (HistoryRetentionDays=0)")
        self.source = source
        self.retention_days = retention_days
        self._clock = clock
        self._max_lines = max_lines

    def window(
        self, since: str | None = None, until: str | None = None, *, default_since_s: float | None = None
    ) -> TimeRange:
        """The range of --since/--until, within retention (default: the whole retention, or ``default_since_s``)."""
        now = self._clock()
        retained_s = self.retention_days * DAY_S
        requested = TimeRange.parse(since, until, now=now, default_since_s=default_since_s or retained_s)
        window = requested.clamp(now - retained_s)
        if window.start >= window.end:
            raise TimeRangeError(f"the time range ends before the {self.retention_days} days history keeps")
        return window

    def show(self, message_id: str, *, since: str | None = None) -> MessageHistory | None:
        """A message's attempts in order (None when history has none), searched from ``since`` (default: all)."""
        check_id(message_id)
        window = self.window(since)
        found = self.source.attempts(RecordFilter(message_ids=frozenset({message_id})), window, limit=self._max_lines)
        histories = fold(found.attempts)
        return histories[0] if histories else None

    def list(  # noqa: PLR0913 - the `messages list` filters, each a keyword
        self,
        *,
        endpoint: str | None = None,
        status: Status | None = None,
        event_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        default_since_s: float = 3600.0,
    ) -> MessageList:
        """Messages with an attempt in the window, newest first, by their latest status; at most ``limit``."""
        window = self.window(since, until, default_since_s=default_since_s)
        endpoint, event_type = _check_endpoint(endpoint), _check_event_type(event_type)
        where = RecordFilter.for_status(status, endpoint=endpoint, event_type=event_type)
        lines = self.source.attempts(where, window, limit=self._max_lines)
        complete = not lines.capped
        if status is None:
            return MessageList(fold(lines.attempts)[:limit], complete, window)
        candidates = _ids_newest_first(lines.attempts)
        kept: list[MessageHistory] = []
        for start in range(0, len(candidates), _IDS_PER_QUERY):
            chunk = candidates[start : start + _IDS_PER_QUERY]
            attempts = self.source.attempts(RecordFilter(message_ids=frozenset(chunk)), window, limit=self._max_lines)
            complete = complete and not attempts.capped
            by_id = {history.message_id: history for history in fold(attempts.attempts)}
            kept.extend(by_id[mid] for mid in chunk if mid in by_id and by_id[mid].status is status)
            if len(kept) >= limit:
                break
        return MessageList(kept[:limit], complete, window)


def _ids_newest_first(attempts: Sequence[Attempt]) -> list[str]:
    seen: dict[str, None] = {}
    for attempt in sorted(attempts, key=lambda a: a.time, reverse=True):
        seen.setdefault(attempt.message_id, None)
    return list(seen)
