"""The CLI's way to the stack's delivery history and kept payloads (docs/history.md).

A deployed stack is read with Logs Insights; the local stack (moto runs no real Logs Insights) with FilterLogEvents
over the same log group, which the local stack fills with the functions' log lines. Both give the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

from hookline.history import HistoryOffError, HistoryReader, InsightsSource, LogEventsSource, PayloadStore
from hookline_cli.output import OperationalError, UsageError, format_time, table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.table import Table

    from hookline.history import LogSource, MessageHistory
    from hookline_cli.resources import Resources

__all__ = [
    "attempts_table",
    "check_value",
    "history_reader",
    "now_of",
    "payload_store",
    "plain_row",
    "rate_limit_lookup",
    "retention_days",
]

_OFF_HINT = "deploy with HistoryRetentionDays set (e.g. 30) to keep delivery history"


def now_of(resources: Resources) -> Callable[[], float]:
    """The CLI's clock as unix seconds."""
    return lambda: resources.clock().timestamp()


def retention_days(resources: Resources) -> int:
    """The stack's HistoryRetentionDays; OperationalError when history is off."""
    raw = resources.require("history_retention_days")
    try:
        days = int(float(raw))
    except ValueError:
        raise OperationalError(f"the stack's HistoryRetentionDays output is not a number: {raw!r}") from None
    if days <= 0:
        raise OperationalError("this stack keeps no delivery history (HistoryRetentionDays=0)", hint=_OFF_HINT)
    return days


def history_reader(resources: Resources) -> HistoryReader:
    """The stack's history: Logs Insights for a deployed stack, FilterLogEvents on the local stack."""
    days = retention_days(resources)
    groups = [group.strip() for group in resources.require("history_log_groups").split(",") if group.strip()]
    logs = resources.client("logs")
    source: LogSource = LogEventsSource(logs, groups) if resources.local else InsightsSource(logs, groups)
    try:
        return HistoryReader(source, retention_days=days, clock=now_of(resources))
    except HistoryOffError as error:
        raise OperationalError(str(error), hint=_OFF_HINT) from None


def payload_store(resources: Resources) -> PayloadStore:
    """The stack's payload table; OperationalError when payloads are not kept."""
    days = retention_days(resources)
    if not resources.names.payload_table:
        raise OperationalError(
            "this stack keeps no payloads (RetainPayloads=false)",
            hint="deploy with RetainPayloads=true to keep payloads for replay from then on",
        )
    return PayloadStore(
        resources.names.payload_table, client=resources.client("dynamodb"), retention_days=days, clock=now_of(resources)
    )


def rate_limit_lookup(resources: Resources) -> Callable[[str], float | None]:
    """An endpoint's rate_limit_per_s from the registry (None: no limit, or no such endpoint any more)."""
    registry = resources.registry()

    def rate_limit_of(name: str) -> float | None:
        endpoint = registry.get(name)
        return endpoint.rate_limit_per_s if endpoint is not None else None

    return rate_limit_of


def check_value(check: Callable[[], object]) -> None:
    """Run an input check; its ValueError becomes a usage error (exit 2)."""
    try:
        check()
    except ValueError as error:
        raise UsageError(str(error)) from None


def plain_row(cells: Sequence[Any]) -> tuple[Any, ...]:
    """A table row whose texts show as they are: log lines are anyone's text, never rich markup ("[/]" would crash)."""
    return tuple(escape(cell) if isinstance(cell, str) else cell for cell in cells)


def _target(index: int | None) -> str | None:
    if index is None:
        return None
    return "primary" if index == 0 else f"fallback {index}"


def attempts_table(history: MessageHistory) -> Table:
    """A message's attempts as a table (``messages show`` and the demo's last panel)."""
    rows = [
        plain_row(
            (
                format_time(attempt.time),
                attempt.attempt,
                f"{attempt.outcome}{' (replay)' if attempt.replay else ''}",
                _target(attempt.target),
                attempt.http_status,
                f"{attempt.latency_ms:.0f} ms" if attempt.latency_ms is not None else None,
                attempt.reason or attempt.error,
            )
        )
        for attempt in history.attempts
    ]
    columns = ["time", "attempt", "outcome", "target", "http status", "latency", "reason / error"]
    return table(f"Attempts ({len(rows)})", columns, rows)
