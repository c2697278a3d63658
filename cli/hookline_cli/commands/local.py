"""``hookline local``: the embedded local stack (moto + template.yaml + function emulators), no AWS account.

The stack itself is the ``hookline_local`` package, which needs the `local` extra; it is imported only here, inside
the command, so every other command works without it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hookline_cli.context import get_context
from hookline_cli.output import report_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hookline_local import LocalStack, MotoOptions, RunOptions, TemplateOptions

__all__ = ["app", "parse_assignments", "parse_scoped", "up"]

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


def parse_scoped[T](values: list[str], option: str, convert: Callable[[str], T]) -> tuple[T | None, dict[str, T]]:
    """Repeatable ``VALUE`` (for all) or ``ID=VALUE`` (for one logical id): (the value for all, the ones by id)."""
    every: T | None = None
    by_id: dict[str, T] = {}
    for value in values:
        key, sep, item = value.rpartition("=")
        try:
            converted = convert(item.strip())
        except ValueError as error:
            raise typer.BadParameter(f"{value!r}: {error}", param_hint=option) from None
        if not sep:
            every = converted
        elif not key.strip():
            raise typer.BadParameter(f"expected VALUE or ID=VALUE, got {value!r}", param_hint=option)
        else:
            by_id[key.strip()] = converted
    return every, by_id


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not value > 0:
        raise ValueError("seconds must be above 0")
    return value


def _quota(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not a whole number") from None
    if value < 1:
        raise ValueError("a quota is at least 1")
    return value


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
        grid.add_row("schedule", f"{runner.spec.function_logical_id} {runner.describe()}")
    for logical_id, queue in sorted(stack.queues().items()):
        grid.add_row("in-flight quota", f"{logical_id} {queue.quota:,}")
    if stack.state_file is not None:
        grid.add_row("state", str(stack.state_file))
    if stack.log.path is not None:
        grid.add_row("log", str(stack.log.path))
    return grid


def _project(root: Path | None) -> Path:
    """The project directory, once the extra is known to be there and no other stack runs in it; else exit 1."""
    from hookline_local import LocalStackError, find_root, read_state, require_local_extra, state_path

    try:
        require_local_extra()
        project = (root or find_root()).resolve()
    except LocalStackError as error:
        report_error(str(error))
        raise typer.Exit(1) from None
    running = read_state(state_path(project))
    if running is not None:
        report_error(f"a local stack is already running (pid {running.get('pid')}, {running.get('endpoint_url')})")
        raise typer.Exit(1)
    return project


def _start(project: Path, options: tuple[TemplateOptions, MotoOptions, RunOptions], *, verbose: bool) -> LocalStack:
    from hookline_local import LocalStack, LocalStackError, ReportOptions, state_path

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = ReportOptions(
        log_path=project / ".hookline" / "logs" / f"local-{stamp}.log",
        console=sys.stderr if verbose else None,
        state_file=state_path(project),
    )
    template, moto, run = options
    try:
        return LocalStack.start(project, template=template, moto=moto, run=run, report=report)
    except LocalStackError as error:
        report_error(str(error))
        raise typer.Exit(1) from None


@contextlib.contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM while the block runs (the previous handlers come back after it)."""
    stop = threading.Event()
    previous: dict[int, Any] = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_ScheduleIntervals = Annotated[
    list[str] | None,
    typer.Option(
        "--schedule-interval",
        metavar="[ID=]S",
        help="Run every schedule every S seconds (S), or one schedule (ID=S); repeatable.",
    ),
]
_InflightQuotas = Annotated[
    list[str] | None,
    typer.Option(
        "--inflight-quota",
        metavar="[QUEUE=]N",
        help="In-flight messages per queue before receives come back empty, for every queue (N) or one "
        "(QUEUE=N); repeatable. Default: SQS's 120,000.",
    ),
]


@app.command("up")
def up(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="moto port on 127.0.0.1 (0: a free one).")] = 0,
    schedule_interval: _ScheduleIntervals = None,
    inflight_quota: _InflightQuotas = None,
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
    from hookline_local import SQS_INFLIGHT_QUOTA, MotoOptions, RunOptions, TemplateOptions

    every_s, intervals = parse_scoped(schedule_interval or [], "--schedule-interval", _seconds)
    quota, quotas = parse_scoped(inflight_quota or [], "--inflight-quota", _quota)
    template = TemplateOptions(
        parameters=parse_assignments(parameter or [], "--parameter"),
        environment=parse_assignments(env or [], "--env"),
    )
    region = get_context(ctx).region or "us-east-1"
    moto = MotoOptions(port, region, stack_name, inflight_quota=quota or SQS_INFLIGHT_QUOTA, inflight_quotas=quotas)
    run = RunOptions(max_pollers=max_pollers, schedule_interval_s=every_s, schedule_intervals=intervals)
    project = _project(root)
    console = Console()
    with _until_signalled() as stop:
        with console.status("starting moto, creating template.yaml in it ..."):
            stack = _start(project, (template, moto, run), verbose=verbose)
        with stack:
            if get_context(ctx).json:
                typer.echo(json.dumps(stack.state(), indent=2, sort_keys=True))
            else:
                console.print(_summary(stack))
                console.print("running; Ctrl-C to stop")
            stop.wait()
            console.print("stopping ...")
    console.print("stopped")
