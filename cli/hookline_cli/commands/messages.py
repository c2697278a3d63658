"""``hookline messages``: what happened to a webhook (show), which webhooks did what (list), forget a payload."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from hookline.history import HistoryError, Status, TimeRangeError
from hookline.history.reader import check_id
from hookline_cli.history import attempts_table, check_value, history_reader, payload_store, plain_row
from hookline_cli.output import JsonFlag, OperationalError, UsageError, cli_errors, emit, format_time, iso_time, table
from hookline_cli.resources import get_resources

if TYPE_CHECKING:
    from rich.console import Console

    from hookline.history import MessageHistory

__all__ = ["app"]

app = typer.Typer(help="Delivery history: every attempt of every webhook, kept for HistoryRetentionDays.")

_STATUSES = ", ".join(status.value for status in Status)


def _status(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        raise UsageError(f"unknown status {value!r}; expected one of {_STATUSES}") from None


def _payload_kept(ctx: typer.Context, message_id: str) -> bool | None:
    """Whether a payload is kept for replay (None: the stack keeps none)."""
    resources = get_resources(ctx)
    if not resources.names.payload_table:
        return None
    return payload_store(resources).get(message_id) is not None


@app.command("show")
@cli_errors
def show(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The webhook id.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Search from here (1h, 2d, ISO-8601; default: all retention).")
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """A webhook's attempts in order, its outcome, and its dead-letter reason if any."""
    check_value(lambda: check_id(message_id))
    reader = history_reader(get_resources(ctx))
    try:
        history = reader.show(message_id, since=since)
    except TimeRangeError as error:
        raise UsageError(str(error)) from None
    except HistoryError as error:
        raise OperationalError(str(error)) from None
    if history is None:
        scope = f"since {since}" if since else f"in the last {reader.retention_days} days"
        raise OperationalError(f"no delivery history for {message_id} {scope}")
    kept = _payload_kept(ctx, message_id)
    data: dict[str, Any] = {**history.view(), "payload_kept": kept}
    for key in ("first_seen", "last_seen"):
        data[key] = iso_time(data[key])
    for attempt in data["history"]:
        attempt["time"] = iso_time(attempt["time"])

    def render(console: Console) -> None:
        reason = f" ({history.reason})" if history.reason else ""
        console.print(f"{message_id}: {history.status}{reason}", markup=False)
        console.print(f"endpoint {history.endpoint or '-'}, event type {history.event_type or '-'}", markup=False)
        if kept is not None:
            console.print("payload kept for replay" if kept else "payload not kept (cannot be replayed)", markup=False)
        console.print(attempts_table(history))

    emit(ctx, data, render, json_flag=json_flag)


def _row(history: MessageHistory) -> tuple[Any, ...]:
    last = history.last
    return plain_row(
        (
            history.message_id,
            history.status,
            history.endpoint,
            history.event_type,
            len(history.attempts),
            last.http_status,
            history.reason or last.error,
            format_time(last.time),
        )
    )


@app.command("list")
@cli_errors
def list_(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint (or inline URL host).")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="delivered, failed (last attempt failed, a retry is pending), dead (dead-lettered) or filtered.",
        ),
    ] = None,
    event_type: Annotated[str | None, typer.Option("--event-type", help="Only this event type.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From (1h, 2d, ISO-8601; default 1h).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until (same forms; default now).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many messages.", min=1, max=10000)] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """Webhooks with an attempt in the time range, newest first, by their latest status."""
    wanted = _status(status)
    reader = history_reader(get_resources(ctx))
    try:
        found = reader.list(
            endpoint=endpoint, status=wanted, event_type=event_type, since=since, until=until, limit=limit
        )
    except ValueError as error:  # TimeRangeError included
        raise UsageError(str(error)) from None
    except HistoryError as error:
        raise OperationalError(str(error)) from None
    data = {
        "since": iso_time(found.window.start),
        "until": iso_time(found.window.end),
        "complete": found.complete,
        "messages": [
            {**m.summary(), "first_seen": iso_time(m.attempts[0].time), "last_seen": iso_time(m.last.time)}
            for m in found.messages
        ],
    }

    def render(console: Console) -> None:
        span = f"{format_time(found.window.start)} to {format_time(found.window.end)}"
        if not found.messages:
            console.print(f"no messages match ({span})", markup=False)
        else:
            columns = ["webhook id", "status", "endpoint", "event", "attempts", "last http", "reason / error", "last"]
            console.print(table(f"Messages ({len(found.messages)}), {span}", columns, map(_row, found.messages)))
        if not found.complete:
            console.print("the query reached its line cap: older messages may be missing (narrow the range)")

    emit(ctx, data, render, json_flag=json_flag)


@app.command("forget")
@cli_errors
def forget(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The webhook id.")],
    json_flag: JsonFlag = False,
) -> None:
    """Delete a webhook's kept payload now (its attempts stay in history, without payload)."""
    check_value(lambda: check_id(message_id))
    try:
        forgotten = payload_store(get_resources(ctx)).forget(message_id)
    except HistoryError as error:
        raise OperationalError(str(error)) from None

    def render(console: Console) -> None:
        text = "payload deleted" if forgotten else "no payload was kept"
        console.print(f"{message_id}: {text}", markup=False)

    emit(ctx, {"id": message_id, "forgotten": forgotten}, render, json_flag=json_flag)
