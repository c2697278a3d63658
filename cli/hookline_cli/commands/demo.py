"""``hookline demo``: the whole product in about a minute on the embedded local stack (no AWS account, no Docker)."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import Annotated

import typer
from rich.console import Console

from hookline_cli.context import get_context
from hookline_cli.output import report_error

__all__ = ["demo"]


def demo(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    messages: Annotated[int, typer.Option("--messages", "-n", min=1, max=5000, help="Webhooks to send.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice (receivers, payloads).")] = 7,
    timeout: Annotated[
        float, typer.Option("--timeout", min=5.0, help="Seconds to wait for every webhook to settle.")
    ] = 75.0,
    root: Annotated[
        Path | None, typer.Option("--root", help="Project directory (default: nearest with template.yaml).")
    ] = None,
    inflight_quota: Annotated[
        int | None,
        typer.Option(
            "--inflight-quota",
            min=1,
            help="In-flight messages per queue before receives come back empty (default: SQS's 120,000).",
        ),
    ] = None,
    json_flag: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Start the local stack and loopback receivers, send webhooks through chaos, and summarize what happened.

    Receivers: one healthy, one flaky (5xx and 429 + Retry-After), one down with a fallback URL, one answering 410.
    Exits 1 if any webhook ended neither delivered nor dead-lettered.
    """
    from hookline_cli.demo.run import DemoOptions, run_demo
    from hookline_cli.demo.scenario import ScenarioConfig
    from hookline_cli.demo.summary import render_summary
    from hookline_local import SQS_INFLIGHT_QUOTA, LocalStackError, require_local_extra

    as_json = json_flag or get_context(ctx).json
    # With --json, stdout carries only the JSON document; progress goes to stderr.
    console = Console(stderr=as_json, highlight=False)
    scenario = ScenarioConfig(messages=messages, seed=seed, timeout_s=timeout)
    options = DemoOptions(scenario=scenario, root=root, inflight_quota=inflight_quota or SQS_INFLIGHT_QUOTA)
    try:
        require_local_extra()
        summary = run_demo(options, console=console)
    except LocalStackError as error:
        report_error(str(error))
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(summary.view(), indent=2, sort_keys=True))
    else:
        console.print(render_summary(summary))
    if summary.unaccounted or summary.timed_out:
        raise typer.Exit(1)
