"""The `hookline` console script: global options on the root, command groups assembled from hookline_cli.commands.

Each module of ``hookline_cli.commands`` (sorted, names starting with ``_`` skipped) contributes, first match wins:
1. ``register(app)``: the module adds whatever it needs;
2. ``app``, a ``typer.Typer``: a command group named after the module (``COMMAND_NAME`` overrides the name);
3. a function named like the module (``send.send``): a top-level command.
Adding a command module therefore needs no change here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any

import typer

from hookline_cli import commands
from hookline_cli.context import CONTEXT_KEY, CliContext

__all__ = ["app", "build_app", "main"]


def _root(
    ctx: typer.Context,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            envvar="HOOKLINE_ENDPOINT_URL",
            help="AWS endpoint to talk to (default: the local stack's, from .hookline/local.json, when running).",
        ),
    ] = None,
    stack_name: Annotated[
        str | None,
        typer.Option("--stack-name", envvar="HOOKLINE_STACK_NAME", help="A deployed stack: names from its outputs."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region (default: AWS_REGION).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """hookline: serverless webhook delivery and integration health."""
    options = CliContext(endpoint_url=endpoint_url, stack_name=stack_name, region=region, json=json_output)
    ctx.meta[CONTEXT_KEY] = options
    if ctx.obj is None:  # tests may inject their own root object; keep it
        ctx.obj = options


def _register(app: typer.Typer, module: Any, name: str) -> None:
    register = getattr(module, "register", None)
    if callable(register):
        register(app)
        return
    group = getattr(module, "app", None)
    if isinstance(group, typer.Typer):
        app.add_typer(group, name=getattr(module, "COMMAND_NAME", name.replace("_", "-")))
        return
    command = getattr(module, name, None)
    if callable(command):
        app.command(name.replace("_", "-"))(command)


def build_app() -> typer.Typer:
    """A fresh `hookline` app with every command module registered."""
    app = typer.Typer(
        name="hookline",
        help="Serverless webhook delivery and integration health.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda item: item.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        _register(app, module, info.name)
    return app


app = build_app()


def main() -> None:
    """Console-script entry point."""
    app()
