"""The root context of the `hookline` CLI: the global options every command can read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["CONTEXT_KEY", "CliContext", "get_context"]

CONTEXT_KEY = "hookline_cli.context"


@dataclass(frozen=True)
class CliContext:
    """Global options: which stack to talk to and how to print."""

    endpoint_url: str | None = None
    stack_name: str | None = None
    region: str | None = None
    json: bool = False


def get_context(ctx: typer.Context) -> CliContext:
    """The global options of this invocation (also when a test injected its own root ``obj``)."""
    root = ctx.find_root()
    stored = root.meta.get(CONTEXT_KEY)
    if isinstance(stored, CliContext):
        return stored
    if isinstance(root.obj, CliContext):
        return root.obj
    return CliContext()
