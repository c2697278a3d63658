"""``hookline send``: validate one webhook message and put it on the delivery queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hookline.messages import MessageError
from hookline.producer import send_webhook
from hookline_cli.commands.endpoints import require_endpoint
from hookline_cli.inputs import read_json_value
from hookline_cli.output import UsageError, cli_errors, emit
from hookline_cli.resources import get_resources

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["send"]


@cli_errors
def send(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    endpoint: Annotated[str, typer.Option("--endpoint", help="A registered endpoint name.")],
    event_type: Annotated[str, typer.Option("--event-type", help="Event type, e.g. invoice.paid.")],
    payload: Annotated[str, typer.Option("--payload", help="The JSON payload, @FILE, or @- for stdin.")],
    webhook_id: Annotated[
        str | None, typer.Option("--id", help="Webhook id (default: a new time-ordered msg_ id).")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", help="Event time, ISO-8601 (e.g. 2026-11-28T08:00:00Z).")
    ] = None,
    delay: Annotated[
        int, typer.Option("--delay", help="Seconds before the first attempt (0-900).", min=0, max=900)
    ] = 0,
    json_flag: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Send one webhook to a registered endpoint; prints its webhook id."""
    resources = get_resources(ctx)
    value = read_json_value(payload, label="--payload")
    target = require_endpoint(resources.registry(), endpoint)
    if not target.enabled:
        raise UsageError(
            f"endpoint {endpoint!r} is disabled ({target.disabled_reason or 'no reason recorded'})",
            hint=f"`hookline endpoints enable {endpoint}` first; a message to it would be dead-lettered",
        )
    if not target.accepts(event_type):
        raise UsageError(
            f"endpoint {endpoint!r} does not subscribe to {event_type!r} (it takes: {', '.join(target.event_types)})"
        )
    try:
        message_id = send_webhook(
            resources.require("delivery_queue_url"),
            event_type=event_type,
            payload=value,
            endpoint=endpoint,
            id=webhook_id,
            timestamp=timestamp,
            delay_seconds=delay,
            sqs_client=resources.client("sqs"),
        )
    except MessageError as error:
        raise UsageError(f"invalid message ({error.reason}): {error.detail}") from None

    def render(console: Console) -> None:
        console.print(message_id, markup=False)

    emit(ctx, {"id": message_id, "endpoint": endpoint, "event_type": event_type}, render, json_flag=json_flag)
