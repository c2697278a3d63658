"""A log source over CloudWatch Logs Insights (StartQuery + GetQueryResults): the deployed stacks' history.

The query selects the raw lines (``@timestamp, @message``) with the filters applied server-side, so the bytes that
come back stay small; every line is parsed and filtered here again (a server that ignores filters, like moto's
partial Logs Insights, still gives the right answer). Filters on ``webhook_id`` use the log groups' field index
(template FieldIndexPolicies), so looking one message up scans only that message's events, not the whole retention.
Logs Insights bills the bytes it scans ($0.005 per GB); ``bytes_scanned`` adds up what this source's queries scanned.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookline.history.exceptions import HistoryQueryError
from hookline.history.logline import ID_FIELD, parse_line
from hookline.history.model import Found, Outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hookline.history.model import Attempt, RecordFilter
    from hookline.history.timerange import TimeRange

__all__ = ["InsightsSource", "build_query"]


def _quote(value: str) -> str:
    # Ids, endpoint names and event types are validated to [A-Za-z0-9._:-]; escape anyway, never trust input.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The line schema's outcome names, and the older lines' message texts that mean the same (hookline.history.logline).
_OUTCOME_NAMES: dict[Outcome, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Outcome.DELIVERED: (("delivered",), ("delivered",)),
    Outcome.RETRYING: (("retrying", "retry"), ("retry scheduled",)),
    Outcome.DEAD: (("dead", "dead_lettered"), ("dead-lettered",)),
    Outcome.FILTERED: (("filtered",), ()),
}
# Only the outcomes that are attempts: the contract's other outcomes (deferred, slow_lane, waiting, paced) would
# fill the 10,000-line cap with lines that are dropped here anyway.
_HISTORY_LINES = (
    f"outcome in [{', '.join(_quote(name) for names, _ in _OUTCOME_NAMES.values() for name in names)}]"
    ' or message in ["delivered", "retry scheduled", "dead-lettered"] or message like /^filtered/'
)
_DONE = {"Complete"}
_FAILED = {"Failed", "Cancelled", "Timeout", "Unknown"}


def _outcome_filter(outcome: Outcome) -> str:
    names, messages = _OUTCOME_NAMES[outcome]
    parts = [f"outcome in [{', '.join(_quote(name) for name in names)}]"]
    if messages:
        parts.append(f"message in [{', '.join(_quote(text) for text in messages)}]")
    if outcome is Outcome.FILTERED:
        parts.append("message like /^filtered/")
    return " or ".join(parts)


def build_query(where: RecordFilter, *, limit: int) -> str:
    """The Logs Insights query for ``where``: raw lines, newest first. The id filter comes first (field index)."""
    filters: list[str] = []
    ids = sorted(where.message_ids)
    if len(ids) == 1:
        filters.append(f"{ID_FIELD} = {_quote(ids[0])}")
    elif ids:
        filters.append(f"{ID_FIELD} in [{', '.join(_quote(mid) for mid in ids)}]")
    filters.append(_HISTORY_LINES)
    if where.endpoint is not None:
        filters.append(f"endpoint = {_quote(where.endpoint)}")
    if where.event_type is not None:
        filters.append(f"event_type = {_quote(where.event_type)}")
    if where.outcome is not None:
        filters.append(_outcome_filter(where.outcome))
    lines = ["fields @timestamp, @message", *(f"| filter {text}" for text in filters)]
    lines += ["| sort @timestamp desc", f"| limit {limit}"]
    return "\n".join(lines)


def _timestamp(value: str) -> float:
    """Logs Insights prints ``2026-11-28 08:00:00.123`` (UTC); some emulators print epoch milliseconds."""
    if value.isdigit():
        return int(value) / 1000
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


class InsightsSource:
    """Reads delivery attempts with Logs Insights queries (polling GetQueryResults until the query completes)."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        client: Any,
        log_groups: Sequence[str],
        *,
        poll_s: float = 0.5,
        timeout_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.log_groups = tuple(log_groups)
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._monotonic = monotonic
        self.bytes_scanned = 0.0
        self.queries = 0

    def attempts(self, where: RecordFilter, window: TimeRange, *, limit: int) -> Found:
        """Attempts matching ``where`` in ``window``, newest first, at most ``limit`` (Logs Insights caps at 10,000)."""
        query = build_query(where, limit=limit)
        started = self._client.start_query(
            logGroupNames=list(self.log_groups),
            startTime=int(window.start),
            endTime=int(window.end) + 1,
            queryString=query,
            limit=limit,
        )
        query_id = started["queryId"]
        self.queries += 1
        response = self._wait(query_id)
        statistics = response.get("statistics") or {}
        self.bytes_scanned += float(statistics.get("bytesScanned", 0) or 0)
        found: list[Attempt] = []
        rows = response.get("results", [])
        for row in rows:
            cells = {cell.get("field"): cell.get("value") for cell in row}
            message, stamp = cells.get("@message"), cells.get("@timestamp")
            if not isinstance(message, str) or not isinstance(stamp, str):
                continue
            attempt = parse_line(message, _timestamp(stamp))
            if attempt is not None and where.matches(attempt) and window.start <= attempt.time <= window.end + 1:
                found.append(attempt)
        found.sort(key=lambda attempt: attempt.time, reverse=True)
        return Found(found[:limit], capped=len(rows) >= limit)

    def _wait(self, query_id: str) -> dict[str, Any]:
        deadline = self._monotonic() + self._timeout_s
        while True:
            response: dict[str, Any] = self._client.get_query_results(queryId=query_id)
            status = response.get("status")
            if status in _DONE:
                return response
            if status in _FAILED:
                raise HistoryQueryError(f"the Logs Insights query {query_id} ended {status}")
            if self._monotonic() >= deadline:
                self._cancel(query_id)
                raise HistoryQueryError(f"the Logs Insights query {query_id} did not finish in {self._timeout_s:.0f}s")
            self._sleep(self._poll_s)

    def _cancel(self, query_id: str) -> None:
        # A query that cannot be stopped ends by itself; the timeout is what gets reported.
        with contextlib.suppress(Exception):
            self._client.stop_query(queryId=query_id)
