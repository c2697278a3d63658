"""``hookline replay``: send kept webhooks again (same webhook-id and body bytes), once per id, paced per endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hookline.history import HistoryError, Replayer, Status
from hookline.history.reader import check_id
from hookline_cli.history import check_value, history_reader, now_of, payload_store, rate_limit_lookup
from hookline_cli.output import EXIT_FAILURE, OperationalError, UsageError, cli_errors, emit, report_error
from hookline_cli.resources import get_resources

if TYPE_CHECKING:
    from rich.console import Console

    from hookline.history import ReplayResult

__all__ = ["replay"]

_MAX_MESSAGES = 100_000


def _status(status: str | None) -> Status | None:
    try:
        return Status(status) if status is not None else None
    except ValueError:
        raise UsageError(f"unknown status {status!r}; expected one of {', '.join(s.value for s in Status)}") from None


def _ids_from_history(
    ctx: typer.Context, endpoint: str, since: str, until: str | None, wanted: Status | None
) -> tuple[list[str], bool]:
    reader = history_reader(get_resources(ctx))
    try:
        found = reader.list(endpoint=endpoint, status=wanted, since=since, until=until, limit=_MAX_MESSAGES)
    except ValueError as error:
        raise UsageError(str(error)) from None
    # Oldest first: a receiver gets the replay in the order the messages were first sent.
    return [history.message_id for history in reversed(found.messages)], found.complete


@cli_errors
def replay(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    message_ids: Annotated[
        list[str] | None, typer.Option("--id", help="A webhook id to re-send (repeat for more).")
    ] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Re-send this endpoint's webhooks ...")] = None,
    since: Annotated[str | None, typer.Option("--since", help="... from here (1h, 2d, ISO-8601) ...")] = None,
    until: Annotated[str | None, typer.Option("--until", help="... until here (default now) ...")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="... only with this status (delivered, failed, dead, filtered).")
    ] = None,
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON (stable keys) instead of text.")] = False,
) -> None:
    """Re-send kept webhooks with their original webhook-id and exact body (each id at most once per run)."""
    ids = list(message_ids or [])
    if ids and (endpoint or since or until or status):
        raise UsageError("give either --id ... or --endpoint N --since T [--until T] [--status S], not both")
    if not ids and not (endpoint and since):
        raise UsageError("give --id ID (repeatable), or --endpoint N --since T [--until T] [--status S]")
    for message_id in ids:
        check_value(lambda message_id=message_id: check_id(message_id))  # type: ignore[misc]
    wanted = _status(status)
    resources = get_resources(ctx)
    store = payload_store(resources)  # payloads off: say so before paying for a history query
    complete = True
    if not ids:
        assert endpoint is not None and since is not None
        ids, complete = _ids_from_history(ctx, endpoint, since, until, wanted)
    replayer = Replayer(
        sqs=resources.client("sqs"),
        queue_url=resources.require("delivery_queue_url"),
        payloads=store,
        rate_limit_of=rate_limit_lookup(resources),
        clock=now_of(resources),
    )
    try:
        result = replayer.run(ids)
    except HistoryError as error:
        raise OperationalError(str(error)) from None
    _report(ctx, result, complete=complete, json_flag=json_flag)


def _report(ctx: typer.Context, result: ReplayResult, *, complete: bool, json_flag: bool) -> None:
    """What was re-sent and what not (and why); exit 1 unless every id was re-sent."""

    def render(console: Console) -> None:
        if not (result.resent or result.not_retained or result.refused or result.send_failed):
            console.print("no messages match: nothing to re-send", markup=False)
            return
        console.print(f"re-sent {len(result.resent)} message(s)", markup=False)
        for message_id in result.resent:
            console.print(f"  {message_id}", markup=False)
        if result.not_retained:
            console.print(
                f"not re-sent, payload not kept ({len(result.not_retained)}): payloads off then, expired or forgotten",
                markup=False,
            )
            for message_id in result.not_retained:
                console.print(f"  {message_id}", markup=False)
        for message_id, why in {**result.refused, **result.send_failed}.items():
            console.print(f"not re-sent: {message_id}: {why}", markup=False)
        if result.repeated:
            console.print(f"given more than once, sent once: {', '.join(result.repeated)}", markup=False)
        if not complete:
            console.print("the history query reached its line cap: narrow --since/--until to replay the rest")

    emit(ctx, {**result.view(), "complete": complete}, render, json_flag=json_flag)
    if result.send_failed:
        report_error(f"{len(result.send_failed)} message(s) could not be sent to the delivery queue")
    if result.not_retained or result.refused or result.send_failed:
        raise typer.Exit(EXIT_FAILURE)
