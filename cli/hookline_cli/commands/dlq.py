"""``hookline dlq``: look at dead letters without consuming them, and redrive them selectively."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hookline_cli.deadletters import REASONS, DeadLetterFilter, RedriveResult, peek, redrive
from hookline_cli.output import EXIT_FAILURE, JsonFlag, UsageError, cli_errors, emit, format_time, report_error, table
from hookline_cli.resources import get_resources

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app"]

app = typer.Typer(help="Inspect and redrive the dead-letter queue.", no_args_is_help=True)

ReasonOption = Annotated[
    str | None,
    typer.Option("--reason", help=f"Only this reason: {', '.join(REASONS)} (none = moved by the queue's redrive)."),
]
EndpointOption = Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint (or inline URL host).")]


def _filter(reason: str | None, endpoint: str | None) -> DeadLetterFilter:
    try:
        return DeadLetterFilter(reason=reason, endpoint=endpoint)
    except ValueError as error:
        raise UsageError(str(error)) from None


@app.command("list")
@cli_errors
def list_(
    ctx: typer.Context,
    reason: ReasonOption = None,
    endpoint: EndpointOption = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many messages.", min=1, max=10000)] = 50,
    json_flag: JsonFlag = False,
) -> None:
    """Show dead letters (reason, endpoint, attempts, last status and error) without consuming them."""
    where = _filter(reason, endpoint)
    resources = get_resources(ctx)
    # Names before clients: without a stack the user gets the hint on how to name one, not a bare boto3 error.
    dead_letter_queue_url = resources.require("dead_letter_queue_url")
    letters, errors = peek(
        resources.client("sqs"),
        dead_letter_queue_url,
        where=where,
        limit=limit,
        wait_s=resources.sqs_wait_s,
    )
    for error in errors:
        report_error(error)
    data = [letter.view() for letter in letters]

    def render(console: Console) -> None:
        if not letters:
            console.print("no dead letters" + (" match" if reason or endpoint else ""), markup=False)
            return
        rows = [
            (
                letter.webhook_id,
                letter.reason or "none (queue redrive)",
                letter.endpoint,
                letter.event_type,
                letter.attempts,
                letter.last_status or None,
                letter.last_error,
                format_time(letter.failed_at),
            )
            for letter in letters
        ]
        columns = ["webhook id", "reason", "endpoint", "event", "attempts", "last status", "last error", "failed at"]
        console.print(table(f"Dead letters ({len(letters)})", columns, rows))

    emit(ctx, data, render, json_flag=json_flag)


@app.command("redrive")
@cli_errors
def redrive_(
    ctx: typer.Context,
    reason: ReasonOption = None,
    endpoint: EndpointOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="At most this many messages (default: all that match).", min=1)
    ] = None,
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON counts instead of text.")] = False,
) -> None:
    """Move matching dead letters back to the delivery queue (same webhook id); others stay untouched."""
    where = _filter(reason, endpoint)
    resources = get_resources(ctx)
    dead_letter_queue_url = resources.require("dead_letter_queue_url")
    delivery_queue_url = resources.require("delivery_queue_url")
    result = redrive(
        resources.client("sqs"),
        dead_letter_queue_url,
        delivery_queue_url,
        where=where,
        limit=limit,
        wait_s=resources.sqs_wait_s,
    )

    def render(console: Console) -> None:
        console.print(_summary(result, limit), markup=False)
        if result.returned:
            console.print(
                f"{result.returned} redriven message(s) failed again at once and are back in the DLQ", markup=False
            )
        if result.send_failed:
            console.print(f"{result.send_failed} message(s) could not be sent and stay in the DLQ", markup=False)
        if result.duplicated:
            console.print(
                f"{result.duplicated} message(s) were sent but could not be deleted from the DLQ: they will be "
                "delivered and also stay in the DLQ (same webhook id); do not redrive them again",
                markup=False,
            )

    emit(ctx, result.view(), render, json_flag=json_flag)
    for error in result.errors:
        report_error(error)
    if result.send_failed or result.duplicated:
        raise typer.Exit(EXIT_FAILURE)


def _summary(result: RedriveResult, limit: int | None) -> str:
    done = f"redriven {result.redriven} of {result.matched} matching message(s)"
    if result.scan_complete:
        return f"{done}; {result.skipped} other message(s) left in the DLQ"
    why = f"stopped at --limit {limit}" if limit is not None and result.matched >= limit else "stopped early"
    return f"{done}; {why}: {result.skipped} other message(s) seen and left in the DLQ, the rest not scanned"
