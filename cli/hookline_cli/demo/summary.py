"""The demo's closing summary: what happened to every webhook, read back from the receivers and the stack.

Delivered / retried / served by fallback come from what the receivers saw (verified signatures only); dead letters
and their reasons from the DLQ's message attributes; breaker states from the breaker table; integration health from
the registry; metric totals from CloudWatch (the functions' EMF lines, forwarded by the local stack); peak in-flight
messages per queue from the local SQS model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hookline import metrics as names
from hookline_cli.deadletters import NO_REASON, DeadLetter, DeadLetterFilter, peek

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from rich.console import RenderableType

    from hookline.history import MessageHistory
    from hookline.registry import EndpointRegistry
    from hookline_cli.demo.receivers import RequestRecord
    from hookline_local.sqs_control import QueueState
    from resilience.breaker import StateStore

__all__ = [
    "DELIVERY_METRICS",
    "BreakerRow",
    "DemoSummary",
    "HealthRow",
    "QueueRow",
    "build_summary",
    "breaker_rows",
    "dead_letters",
    "health_rows",
    "metric_totals",
    "queue_rows",
    "render_summary",
]

# The delivery metrics the summary reads back, in the order it shows them.
DELIVERY_METRICS: tuple[str, ...] = (
    names.DELIVERY_ATTEMPTS,
    names.DELIVERY_SUCCEEDED,
    names.DELIVERY_FAILED,
    names.DELIVERY_RETRIED,
    names.FALLBACK_USED,
    names.DELIVERY_DEAD_LETTERED,
    names.BREAKER_REJECTED,
    names.BREAKER_OPENED,
)
_MAX_DEAD_LETTERS = 100_000


@dataclass(frozen=True)
class BreakerRow:
    """One circuit breaker: which target it guards, its state and why."""

    target: str
    origin: str
    state: str
    reason: str | None
    opened: int
    """How many times it went to open (from its transition history)."""


@dataclass(frozen=True)
class HealthRow:
    """One integration's recorded health."""

    name: str
    enabled: bool
    state: str
    last_error: str | None


@dataclass(frozen=True)
class QueueRow:
    """One queue of the stack: the most messages it held in flight at once, and its in-flight quota."""

    name: str
    peak_in_flight: int
    quota: int
    receives_refused: int
    """Receives answered empty because the queue was at its quota (0 unless the quota was reached)."""


@dataclass(frozen=True)
class DemoSummary:
    """Everything the summary shows."""

    sent: int
    delivered: int
    retried: int
    served_by_fallback: int
    dead_lettered: dict[str, int]
    unverified_requests: int
    duplicates: int
    elapsed_s: float
    breakers: list[BreakerRow] = field(default_factory=list)
    health: list[HealthRow] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    queues: list[QueueRow] = field(default_factory=list)
    timed_out: bool = False
    dead_example: MessageHistory | None = None
    """One dead-lettered message's attempts, from delivery history (docs/history.md)."""

    @property
    def dead_lettered_total(self) -> int:
        """Messages in the DLQ."""
        return sum(self.dead_lettered.values())

    @property
    def unaccounted(self) -> int:
        """Messages neither delivered nor dead-lettered (must be 0 once the demo settles)."""
        return max(0, self.sent - self.delivered - self.dead_lettered_total)

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys)."""
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "retried": self.retried,
            "served_by_fallback": self.served_by_fallback,
            "dead_lettered": dict(sorted(self.dead_lettered.items())),
            "unaccounted": self.unaccounted,
            "unverified_requests": self.unverified_requests,
            "duplicates": self.duplicates,
            "elapsed_s": round(self.elapsed_s, 1),
            "timed_out": self.timed_out,
            "breakers": [row.__dict__ for row in self.breakers],
            "health": [row.__dict__ for row in self.health],
            "metrics": dict(self.metrics),
            "queues": {row.name: {k: v for k, v in row.__dict__.items() if k != "name"} for row in self.queues},
            "dead_example": self.dead_example.view() if self.dead_example is not None else None,
        }


# --- reading the stack ------------------------------------------------------------------------------------------
def dead_letters(sqs: Any, queue_url: str) -> list[DeadLetter]:
    """Every message in the DLQ, read without consuming any (they are released at once)."""
    letters, _errors = peek(sqs, queue_url, where=DeadLetterFilter(), limit=_MAX_DEAD_LETTERS, visibility_s=30)
    return letters


def metric_totals(
    cloudwatch: Any,
    *,
    namespace: str = names.NAMESPACE,
    metric_names: Sequence[str] = DELIVERY_METRICS,
    since: datetime,
    until: datetime,
) -> dict[str, float]:
    """The Sum of each metric over every dimension set it was published with, between ``since`` and ``until``."""
    totals: dict[str, float] = {}
    # Statistics are per whole period: widen to whole minutes so no datapoint falls outside the window.
    start = since.replace(second=0, microsecond=0) - timedelta(minutes=1)
    end = until.replace(second=0, microsecond=0) + timedelta(minutes=2)
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    for metric_name in metric_names:
        total = 0.0
        paginator = cloudwatch.get_paginator("list_metrics")
        seen: set[frozenset[tuple[str, str]]] = set()
        for page in paginator.paginate(Namespace=namespace, MetricName=metric_name):
            for metric in page.get("Metrics", []):
                # A metric may be listed more than once (moto lists one entry per put); sum each series once.
                key = frozenset((item["Name"], item["Value"]) for item in metric.get("Dimensions", []))
                if key in seen:
                    continue
                seen.add(key)
                response = cloudwatch.get_metric_statistics(
                    Namespace=namespace,
                    MetricName=metric_name,
                    Dimensions=metric.get("Dimensions", []),
                    StartTime=start,
                    EndTime=end,
                    Period=period,
                    Statistics=["Sum"],
                )
                total += sum(float(point.get("Sum", 0.0)) for point in response.get("Datapoints", []))
        totals[metric_name] = total
    return totals


def breaker_rows(store: StateStore, labels: Mapping[str, str]) -> list[BreakerRow]:
    """Every breaker in the store, labelled with the receiver behind its origin."""
    rows: list[BreakerRow] = []
    for snapshot in store.list_breakers():
        opened = sum(1 for item in store.history(snapshot.name, limit=50) if str(item.to_state) == "open")
        rows.append(
            BreakerRow(
                target=labels.get(snapshot.name, snapshot.name),
                origin=snapshot.name,
                state=str(snapshot.state),
                reason=snapshot.reason,
                opened=opened,
            )
        )
    return sorted(rows, key=lambda row: row.target)


def health_rows(registry: EndpointRegistry) -> list[HealthRow]:
    """The recorded health of every registered endpoint."""
    return [
        HealthRow(
            name=endpoint.name,
            enabled=endpoint.enabled,
            state=endpoint.status.state,
            last_error=endpoint.status.last_error or endpoint.disabled_reason,
        )
        for endpoint in registry.list_endpoints()
    ]


def queue_rows(states: Mapping[str, QueueState]) -> list[QueueRow]:
    """Every queue of the stack by logical id, sorted by name."""
    return [
        QueueRow(name, state.peak_in_flight, state.quota, state.receives_refused)
        for name, state in sorted(states.items())
    ]


def build_summary(
    *,
    sent: Iterable[str],
    records: Iterable[RequestRecord],
    fallback_receivers: Iterable[str],
    letters: Iterable[DeadLetter],
    elapsed_s: float,
) -> DemoSummary:
    """Count outcomes per webhook id: only ids the demo sent, only requests whose signature verified.

    The stack's state (breakers, health, metrics, queues) is for the caller to add (``dataclasses.replace``).
    """
    sent_ids = set(sent)
    fallbacks = set(fallback_receivers)
    requests = list(records)
    ok = [r for r in requests if r.verified and 200 <= r.status < 300 and r.webhook_id in sent_ids]
    deliveries = Counter(r.webhook_id for r in ok)
    failed_once = {r.webhook_id for r in requests if not 200 <= r.status < 300}
    reasons = Counter((letter.reason or NO_REASON) for letter in letters if letter.webhook_id in sent_ids)
    return DemoSummary(
        sent=len(sent_ids),
        delivered=len(deliveries),
        retried=len(set(deliveries) & failed_once),
        served_by_fallback=len({r.webhook_id for r in ok if r.receiver in fallbacks}),
        dead_lettered=dict(reasons),
        unverified_requests=sum(1 for r in requests if not r.verified),
        duplicates=sum(count - 1 for count in deliveries.values()),
        elapsed_s=elapsed_s,
    )


# --- rendering --------------------------------------------------------------------------------------------------
_STATE_STYLE = {
    "closed": "green",
    "healthy": "green",
    "half_open": "yellow",
    "unknown": "dim",
    "open": "red",
    "forced_open": "red",
    "unhealthy": "red",
    "disabled": "dim",
}


def _styled(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _outcomes(summary: DemoSummary) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column()
    grid.add_row(str(summary.sent), "webhooks sent")
    grid.add_row(Text(str(summary.delivered), style="green"), "delivered, every signature verified by its receiver")
    grid.add_row(str(summary.retried), "  of them after a failed attempt (5xx or 429 + Retry-After)")
    grid.add_row(str(summary.served_by_fallback), "  of them by the fallback URL (primary refused connections)")
    letters = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.dead_lettered.items())) or "none"
    grid.add_row(Text(str(summary.dead_lettered_total), style="yellow"), f"dead-lettered: {letters}")
    lost = summary.unaccounted
    grid.add_row(Text(str(lost), style="red" if lost else "green"), "unaccounted (neither delivered nor dead-lettered)")
    if summary.duplicates:
        grid.add_row(str(summary.duplicates), "duplicate deliveries (same webhook-id)")
    if summary.unverified_requests:
        grid.add_row(Text(str(summary.unverified_requests), style="red"), "requests whose signature did not verify")
    return grid


def _state_table(title: str, rows: Sequence[tuple[str, str, str]]) -> RenderableType:
    lines: list[RenderableType] = [Text(title, style="bold")]
    width = max(len(name) for name, _, _ in rows)
    for name, state, why in rows:
        # One line per row whatever the terminal width: the reason is cut, not wrapped.
        line = Text(f"  {name:<{width}}  ", no_wrap=True, overflow="ellipsis")
        line.append(f"{state:<12}", style=_STATE_STYLE.get(state, ""))
        line.append(why, style="dim")
        lines.append(line)
    return Group(*lines)


def _metrics_line(summary: DemoSummary) -> Text:
    parts = [f"{name} {summary.metrics[name]:g}" for name in DELIVERY_METRICS if name in summary.metrics]
    return Text("CloudWatch (Hookline, from EMF): " + ("  ".join(parts) if parts else "no datapoints"))


def _queues_line(summary: DemoSummary) -> Text:
    parts = []
    for row in summary.queues:
        refused = f", {row.receives_refused} receives refused at the quota" if row.receives_refused else ""
        parts.append(f"{row.name} {row.peak_in_flight:,} of {row.quota:,}{refused}")
    return Text("SQS peak in flight (of the quota): " + ("  ".join(parts) if parts else "no queues"))


def render_summary(summary: DemoSummary) -> RenderableType:
    """The summary as one rich panel (readable in ten seconds)."""
    breakers = [
        (
            row.target,
            row.state,
            "; ".join(filter(None, [f"opened {row.opened}x" if row.opened else "", row.reason or ""])),
        )
        for row in summary.breakers
    ]
    health = [(row.name, row.state if row.enabled else "disabled", row.last_error or "") for row in summary.health]
    parts: list[RenderableType] = [_outcomes(summary), Text("")]
    parts.append(_state_table("Circuit breakers", breakers) if breakers else Text("Circuit breakers: none recorded"))
    parts.append(Text(""))
    parts.append(_state_table("Integration health", health) if health else Text("Integration health: none"))
    parts.extend([Text(""), _metrics_line(summary), _queues_line(summary)])
    if summary.dead_example is not None:
        from hookline_cli.demo.history import render_dead_message

        parts.extend([Text(""), render_dead_message(summary.dead_example)])
    status = "timed out before every webhook settled" if summary.timed_out else "settled"
    title = f"hookline demo: {status} in {summary.elapsed_s:.0f} s"
    return Panel(Group(*parts), title=title, title_align="left", border_style="red" if summary.unaccounted else "green")
