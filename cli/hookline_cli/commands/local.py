"""``hookline local``: the embedded local stack (moto + template.yaml + function emulators), no AWS account."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hookline_cli.context import get_context
from hookline_cli.output import report_error

if TYPE_CHECKING:
    from types import FrameType

    from hookline_local import LocalStack

__all__ = ["app", "parse_assignments", "up"]

app = typer.Typer(help="Run hookline offline: moto + template.yaml + the functions, on loopback.", no_args_is_help=True)


def parse_assignments(values: list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs (repeatable options) as a dict; BadParameter on anything else."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[key.strip()] = item
    return pairs


def _summary(stack: LocalStack) -> Table:
    grid = Table(title="hookline local stack", title_justify="left", show_header=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("endpoint", stack.endpoint_url)
    grid.add_row("stack", f"{stack.stack_name} ({stack.region})")
    for key, value in sorted(stack.outputs.items()):
        grid.add_row(key, value)
    for mapping in stack.mappings:
        spec = mapping.spec
        grid.add_row(
            "event source",
            f"{spec.queue_url.rsplit('/', 1)[-1]} -> {spec.function_logical_id} "
            f"(batch {spec.batch_size}, window {spec.maximum_batching_window_s:g}s, "
            f"concurrency {spec.maximum_concurrency})",
        )
    for runner in stack.schedules:
        every = f"every {runner.interval_s:g}s" if runner.interval_s else f"{runner.spec.expression} (not emulated)"
        grid.add_row("schedule", f"{runner.spec.function_logical_id} {every}")
    if stack.state_file is not None:
        grid.add_row("state", str(stack.state_file))
    if stack.log.path is not None:
        grid.add_row("log", str(stack.log.path))
    return grid


def _start(*args: Any, **options: Any) -> LocalStack:
    from hookline_local import LocalStack, LocalStackError

    try:
        return LocalStack.start(*args, **options)
    except LocalStackError as error:
        report_error(str(error))
        raise typer.Exit(1) from None


@app.command("up")
def up(
    ctx: typer.Context,
    *,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="moto port on 127.0.0.1 (0: a free one).")] = 0,
    health_interval: Annotated[
        float | None,
        typer.Option("--health-interval", min=1.0, help="Run HealthFunction every S seconds instead of its schedule."),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="Template parameter override KEY=VALUE (repeatable)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Extra function environment variable KEY=VALUE (repeatable)."),
    ] = None,
    stack_name: Annotated[str, typer.Option("--name", help="Stack name inside moto.")] = "hookline-local",
    root: Annotated[
        Path | None, typer.Option("--root", help="Project directory (default: nearest with template.yaml).")
    ] = None,
    max_pollers: Annotated[
        int | None,
        typer.Option("--max-pollers", min=1, help="Cap each queue's concurrent batches (default: the template's)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Echo function logs to the console.")] = False,
) -> None:
    """Start the local stack and run until Ctrl-C (writes .hookline/local.json while running)."""
    from datetime import UTC, datetime

    from hookline_local import LocalStackError, find_root, read_state, require_local_extra, state_path

    options = get_context(ctx)
    console = Console(stderr=False)
    try:
        require_local_extra()
        project = (root or find_root()).resolve()
    except LocalStackError as error:
        report_error(str(error))
        raise typer.Exit(1) from None
    state_file = state_path(project)
    running = read_state(state_file)
    if running is not None:
        report_error(f"a local stack is already running (pid {running.get('pid')}, {running.get('endpoint_url')})")
        raise typer.Exit(1)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    intervals = {"HealthFunction": health_interval} if health_interval else {}
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with console.status("starting moto, creating template.yaml in it ..."):
            stack = _start(
                project,
                port=port,
                stack_name=stack_name,
                region=options.region or "us-east-1",
                parameters=parse_assignments(parameter or [], "--parameter"),
                environment=parse_assignments(env or [], "--env"),
                schedule_intervals=intervals,
                log_path=project / ".hookline" / "logs" / f"local-{stamp}.log",
                console=sys.stderr if verbose else None,
                state_file=state_file,
                max_pollers=max_pollers,
            )
        with stack:
            if options.json:
                import json

                typer.echo(json.dumps(stack.state(), indent=2, sort_keys=True))
            else:
                console.print(_summary(stack))
                console.print("running; Ctrl-C to stop")
            stop.wait()
            console.print("stopping ...")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped")
