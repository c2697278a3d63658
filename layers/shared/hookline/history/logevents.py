"""A log source over FilterLogEvents: the local stack's (moto keeps the functions' log lines) and a small fallback.

FilterLogEvents pages through every event of the window that matches its pattern, so it suits small windows and the
local stack; deployed stacks use Logs Insights (hookline.history.insights). The pattern is only a pre-filter (a
quoted term: the id, endpoint or event type): every event that comes back is parsed and filtered here again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hookline.history.logline import parse_line
from hookline.history.model import Found

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookline.history.model import Attempt, RecordFilter
    from hookline.history.timerange import TimeRange

__all__ = ["LogEventsSource", "quoted_term"]


def quoted_term(where: RecordFilter) -> str:
    """The most selective quoted-term filter pattern for ``where`` ("" = every event)."""
    if len(where.message_ids) == 1:
        return f'"{next(iter(where.message_ids))}"'
    for value in (where.endpoint, where.event_type):
        if value:
            return f'"{value}"'
    return ""


class LogEventsSource:
    """Reads delivery attempts from log groups with FilterLogEvents."""

    def __init__(self, client: Any, log_groups: Sequence[str]) -> None:
        self._client = client
        self.log_groups = tuple(log_groups)

    def attempts(self, where: RecordFilter, window: TimeRange, *, limit: int) -> Found:
        """Attempts matching ``where`` in ``window``, newest first, at most ``limit``."""
        found: list[Attempt] = []
        pattern = quoted_term(where)
        for group in self.log_groups:
            request: dict[str, Any] = {
                "logGroupName": group,
                "startTime": int(window.start * 1000),
                "endTime": int(window.end * 1000),
            }
            if pattern:
                request["filterPattern"] = pattern
            paginator = self._client.get_paginator("filter_log_events")
            for page in paginator.paginate(**request):
                for event in page.get("events", []):
                    attempt = parse_line(str(event.get("message", "")), float(event.get("timestamp", 0)) / 1000)
                    if attempt is not None and where.matches(attempt):
                        found.append(attempt)
        found.sort(key=lambda attempt: attempt.time, reverse=True)
        return Found(found[:limit], capped=len(found) > limit)
