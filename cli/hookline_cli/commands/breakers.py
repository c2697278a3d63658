"""``hookline breakers``: the fleet-wide circuit breakers (one per target origin), their history and manual control."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

from hookline.delivery.targets import origin_of
from hookline.exceptions import TargetRefusedError
from hookline.netguard import check_url
from hookline_cli.commands.endpoints import require_endpoint
from hookline_cli.output import JsonFlag, OperationalError, UsageError, cli_errors, emit, format_time, iso_time, table
from hookline_cli.resources import Resources, get_resources
from resilience import StateStoreError
from resilience.breaker import BreakerRegistry, DynamoDBStateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from resilience.breaker import BreakerSnapshot, CircuitBreaker, Transition

__all__ = ["app", "breaker_name", "snapshot_view", "transition_view"]

app = typer.Typer(help="Inspect and steer the circuit breakers (named by target origin).", no_args_is_help=True)

NameArg = Annotated[
    str, typer.Argument(help="A target origin or URL (https://hooks.acme.com) or an endpoint name (its primary URL).")
]


def snapshot_view(snapshot: BreakerSnapshot) -> dict[str, Any]:
    """The JSON form of a breaker snapshot (stable keys; times in ISO-8601 UTC)."""
    return {
        "name": snapshot.name,
        "state": snapshot.state.value,
        "forced_by": snapshot.forced_by,
        "reason": snapshot.reason,
        "opened_at": iso_time(snapshot.opened_at),
        "open_until": iso_time(snapshot.open_until),
        "reopen_count": snapshot.reopen_count,
        "window_calls": snapshot.window_calls,
        "window_failures": snapshot.window_failures,
        "failure_rate": round(snapshot.failure_rate, 4),
        "consecutive_failures": snapshot.consecutive_failures,
        "updated_at": iso_time(snapshot.updated_at),
    }


def transition_view(transition: Transition) -> dict[str, Any]:
    """The JSON form of one breaker transition."""
    return {
        "at": iso_time(transition.at),
        "from_state": transition.from_state.value,
        "to_state": transition.to_state.value,
        "source": transition.source,
        "reason": transition.reason,
    }


def breaker_name(resources: Resources, name: str) -> str:
    """The breaker a user means: an origin as given (normalized), or the origin of an endpoint's primary URL."""
    if "://" in name:
        try:
            # The guard's parser judges the syntax; where the address points does not matter for a name.
            check_url(name, allow_private=True)
        except TargetRefusedError as error:
            if error.reason != "private_address":
                raise UsageError(f"{name!r} is not an http(s) URL: {error}") from None
        try:
            return origin_of(name)
        except (httpx.InvalidURL, ValueError):
            raise UsageError(f"{name!r} is not an http(s) URL") from None
    return origin_of(require_endpoint(resources.registry(), name).url)


def _store(resources: Resources) -> DynamoDBStateStore:
    return DynamoDBStateStore(
        resources.require("breaker_table"),
        client=resources.client("dynamodb"),
        clock=lambda: resources.clock().timestamp(),
        cache_ttl_s=0.0,
    )


def _registry(resources: Resources) -> BreakerRegistry:
    return BreakerRegistry(_store(resources), writer="cli")


def _require_breaker(resources: Resources, target: str) -> None:
    """UsageError unless the store has a breaker called ``target``: clearing one must not create it."""
    store = _store(resources)
    found = _run("cannot read the breaker", lambda: store.load([target], consistent=True))
    if target not in found:
        raise UsageError(
            f"no breaker named {target!r}",
            hint="`hookline breakers list` shows them; delivery creates one when it first records an outcome",
        )


def _run[T](action: str, call: Callable[[], T]) -> T:
    try:
        result = call()
    except StateStoreError as error:
        raise OperationalError(f"{action}: {error}") from None
    return result


@app.command("list")
@cli_errors
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """Every breaker with its state, window counts and forced holds."""
    snapshots: list[BreakerSnapshot] = _run("cannot list breakers", _store(get_resources(ctx)).list_breakers)
    data = [snapshot_view(snapshot) for snapshot in snapshots]

    def render(console: Console) -> None:
        if not data:
            console.print("no breakers yet (one appears when delivery first records an outcome for a target)")
            return
        rows = [
            (
                view["name"],
                view["state"] + (f" by {view['forced_by']}" if view["forced_by"] else ""),
                f"{view['window_failures']}/{view['window_calls']}",
                view["consecutive_failures"],
                format_time(snapshot.opened_at) if view["state"] != "closed" else None,
                format_time(snapshot.open_until),
                view["reason"],
            )
            for view, snapshot in zip(data, snapshots, strict=True)
        ]
        columns = ["breaker", "state", "failed/calls", "run", "opened", "open until", "reason"]
        console.print(table("Circuit breakers", columns, rows))

    emit(ctx, data, render, json_flag=json_flag)


@app.command("history")
@cli_errors
def history(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", help="How many transitions, newest first.", min=1, max=500)] = 20,
    json_flag: JsonFlag = False,
) -> None:
    """The newest state transitions of one breaker (kept with a TTL)."""
    resources = get_resources(ctx)
    target = breaker_name(resources, name)
    store = _store(resources)
    transitions: list[Transition] = _run("cannot read history", lambda: store.history(target, limit=limit))
    data = {"name": target, "transitions": [transition_view(transition) for transition in transitions]}

    def render(console: Console) -> None:
        if not transitions:
            console.print(f"no transitions recorded for {target}", markup=False)
            return
        rows = [
            (format_time(item.at), item.from_state.value, item.to_state.value, item.source, item.reason)
            for item in transitions
        ]
        console.print(table(f"Breaker {target}", ["at", "from", "to", "by", "reason"], rows))

    emit(ctx, data, render, json_flag=json_flag)


def _steered(ctx: typer.Context, name: str, *, existing: bool) -> tuple[Resources, str, CircuitBreaker]:
    """The breaker a manual change is for (``existing``: it must be in the store, so the change cannot create it)."""
    resources = get_resources(ctx)
    target = breaker_name(resources, name)
    if existing:
        _require_breaker(resources, target)
    return resources, target, _registry(resources).get(target)


def _show_state(resources: Resources, target: str, changed: bool, verb: str) -> None:
    snapshot: BreakerSnapshot = _run(
        "cannot read the breaker", lambda: _registry(resources).get(target).snapshot(refresh=True)
    )
    state = snapshot.state.value + (f" (forced by {snapshot.forced_by})" if snapshot.forced_by else "")
    if changed:
        typer.echo(f"{verb} breaker {target}: now {state}")
    else:
        typer.echo(f"breaker {target} unchanged: {state}")


@app.command("open")
@cli_errors
def open_(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; shown in list and history.")] = "opened by operator",
) -> None:
    """Hold a breaker open (forced by operator) until `breakers close` or `breakers reset`."""
    resources, target, breaker = _steered(ctx, name, existing=False)
    changed: bool = _run("cannot open the breaker", lambda: breaker.force_open(reason, source="operator"))
    _show_state(resources, target, changed, "opened")


@app.command("close")
@cli_errors
def close(ctx: typer.Context, name: NameArg) -> None:
    """Lift an operator's forced open (or close an open breaker); a health-forced open stays until health lifts it."""
    resources, target, breaker = _steered(ctx, name, existing=True)
    changed: bool = _run("cannot close the breaker", lambda: breaker.force_close(source="operator"))
    _show_state(resources, target, changed, "closed")


@app.command("reset")
@cli_errors
def reset(ctx: typer.Context, name: NameArg) -> None:
    """Close a breaker whatever its state (also a health-forced open), clearing its counters."""
    resources, target, breaker = _steered(ctx, name, existing=True)
    changed: bool = _run("cannot reset the breaker", breaker.reset)
    _show_state(resources, target, changed, "reset")
