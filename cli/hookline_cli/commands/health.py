"""``hookline health [NAME]`` and ``hookline health run``: integration health as the health function recorded it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from hookline.health.store import HealthStore
from hookline_cli.commands.endpoints import health_status_view, require_endpoint
from hookline_cli.output import JsonFlag, OperationalError, cli_errors, emit, format_time, table
from hookline_cli.resources import Resources, get_resources

if TYPE_CHECKING:
    from rich.console import Console
    from typer._click.core import Context as ClickContext

    from hookline.health.store import HistoryEntry
    from hookline.registry import Endpoint

__all__ = ["app", "status_view"]


class _HealthGroup(TyperGroup):
    """``health NAME`` means ``health show NAME``: a first word that is not a subcommand is an integration name."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        for index, arg in enumerate(args):
            if arg.startswith("-"):
                continue
            if arg not in self.commands:
                args = [*args[:index], "show", *args[index:]]
            break
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_HealthGroup,
    help="Integration health: `health` lists, `health NAME` shows one with its history, `health run` checks now.",
    invoke_without_command=True,
)


def status_view(endpoint: Endpoint) -> dict[str, Any]:
    """The JSON form of one integration's recorded health (stable keys)."""
    return {
        "name": endpoint.name,
        "enabled": endpoint.enabled,
        "probe_url": endpoint.health.url or endpoint.url,
        **health_status_view(endpoint.status),
    }


def _history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "checked_at": entry.checked_at,
        "passed": entry.passed,
        "state": entry.state,
        "changed_from": entry.changed_from,
        "latency_ms": entry.latency_ms,
        "status_code": entry.status_code,
        "reason": entry.reason,
    }


def _store(resources: Resources) -> HealthStore:
    return HealthStore(
        resources.require("endpoints_table"),
        resources.require("health_history_table"),
        client=resources.client("dynamodb"),
    )


def _status_rows(views: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            view["name"] + ("" if view["enabled"] else " (disabled)"),
            view["state"],
            format_time(view["last_checked_at"]),
            view["last_latency_ms"] is not None and f"{view['last_latency_ms']} ms" or None,
            view["consecutive_failures"],
            view["consecutive_successes"],
            view["last_error"],
        )
        for view in views
    ]


_STATUS_COLUMNS = ["integration", "state", "last check", "latency", "failures", "successes", "last error"]


@app.callback()
@cli_errors
def overview(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Every integration with its state, last check, latency, consecutive counters and last error."""
    if ctx.invoked_subcommand is not None:
        return
    endpoints = get_resources(ctx).registry().list_endpoints()
    data = [status_view(endpoint) for endpoint in endpoints]

    def render(console: Console) -> None:
        if not data:
            console.print("no integrations registered", markup=False)
            return
        console.print(table("Integration health", _STATUS_COLUMNS, _status_rows(data)))

    emit(ctx, data, render, json_flag=json_flag)


@app.command("show")
@cli_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The integration (endpoint) name.")],
    limit: Annotated[int, typer.Option("--limit", help="How many recent checks.", min=1, max=500)] = 20,
    json_flag: JsonFlag = False,
) -> None:
    """One integration's health and its recent checks (newest first)."""
    resources = get_resources(ctx)
    endpoint = require_endpoint(resources.registry(), name)
    entries = _store(resources).history(name, limit=limit)
    data = {**status_view(endpoint), "history": [_history_view(entry) for entry in entries]}

    def render(console: Console) -> None:
        console.print(table(f"Integration {name}", _STATUS_COLUMNS, _status_rows([data])))
        if not entries:
            console.print("no checks recorded yet", markup=False)
            return
        rows = [
            (
                format_time(entry.checked_at),
                "pass" if entry.passed else "fail",
                entry.state + (f" (was {entry.changed_from})" if entry.changed_from else ""),
                entry.status_code,
                entry.latency_ms is not None and f"{entry.latency_ms} ms" or None,
                entry.reason,
            )
            for entry in entries
        ]
        console.print(table("Recent checks", ["checked at", "result", "state", "status", "latency", "reason"], rows))

    emit(ctx, data, render, json_flag=json_flag)


def _run_in_process(resources: Resources) -> dict[str, Any]:
    from hookline.health.factory import build_health_service
    from hookline.settings import Settings, SettingsError

    environment = resources.function_environment("HealthFunction")
    if environment is not None:
        # The local stack resolved the function's environment from the template: run exactly that.
        try:
            settings = Settings.from_env(environment)
        except SettingsError as error:
            raise OperationalError(f"the local stack's HealthFunction environment is unusable: {error}") from None
    else:
        names = resources.names
        settings = Settings(
            endpoints_table=resources.require("endpoints_table"),
            breaker_table=names.breaker_table or "",
            health_history_table=resources.require("health_history_table"),
            alert_topic_arn=names.alert_topic_arn or "",
            allow_private_targets=resources.allow_private_targets,
        )
    service = build_health_service(settings, dynamodb=resources.client("dynamodb"), sns=resources.client("sns"))
    summary: dict[str, Any] = service.run().as_dict()
    return summary


def _run_in_lambda(resources: Resources) -> dict[str, Any]:
    function = resources.require("health_function")
    event = {"source": "hookline.cli", "detail-type": "Scheduled Event", "detail": {}}
    response = resources.client("lambda").invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = None
    if response.get("FunctionError"):
        detail = payload.get("errorMessage") if isinstance(payload, dict) else None
        raise OperationalError(f"the health function {function} failed: {detail or response['FunctionError']}")
    if not isinstance(payload, dict):
        raise OperationalError(f"the health function {function} returned no summary")
    return payload


@app.command("run")
@cli_errors
def run(
    ctx: typer.Context,
    in_process: Annotated[
        bool | None,
        typer.Option(
            "--in-process/--lambda",
            help="Run the check here instead of invoking HealthFunction (default: here for the local stack only).",
            show_default=False,
        ),
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Check every integration once now (HealthFunction on a deployed stack; in-process on the local stack)."""
    resources = get_resources(ctx)
    local = resources.local if in_process is None else in_process
    summary = _run_in_process(resources) if local else _run_in_lambda(resources)

    def render(console: Console) -> None:
        where = "in-process" if local else "HealthFunction"
        console.print(
            f"checked {summary.get('checked', 0)} integration(s) ({where}): {summary.get('healthy', 0)} healthy, "
            f"{summary.get('unhealthy', 0)} unhealthy, {summary.get('unknown', 0)} unknown; "
            f"{summary.get('errors', 0)} error(s), {summary.get('duration_ms', 0)} ms",
            markup=False,
        )
        for change in summary.get("changes") or []:
            console.print(
                f"  {change.get('integration')}: {change.get('old_state')} -> {change.get('new_state')}"
                + (f" ({change['reason']})" if change.get("reason") else ""),
                markup=False,
            )
        for label in ("breakers_opened", "breakers_closed"):
            if summary.get(label):
                console.print(f"  {label.replace('_', ' ')}: {', '.join(summary[label])}", markup=False)

    emit(ctx, summary, render, json_flag=json_flag)
