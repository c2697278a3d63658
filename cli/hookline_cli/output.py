"""Output of the CLI: rich tables for people, ``--json`` with stable keys for scripts, errors on stderr.

Exit codes: 0 success, 1 operational failure (AWS error, unreachable stack, a signature that does not verify),
2 bad input (unknown endpoint, malformed payload, URL refused by the network guard, missing secret ...).
"""

from __future__ import annotations

import functools
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from rich.console import Console
from rich.table import Table

from hookline.exceptions import HooklineError
from hookline_cli.context import get_context
from hookline_cli.resources import ResourceError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CliError",
    "JsonFlag",
    "OperationalError",
    "UsageError",
    "cli_errors",
    "emit",
    "format_time",
    "iso_time",
    "table",
    "wants_json",
]

_PIPE_WIDTH = 200
_NO_REGION_HINT = "pass --region or set AWS_REGION, or start the local stack (`hookline local up`)"
EXIT_FAILURE = 1
EXIT_USAGE = 2

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys) instead of a table.")]
"""A command's ``--json`` option, for commands whose text output is a table."""


class CliError(Exception):
    """An error the CLI reports as one line on stderr and a non-zero exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CliError):
    """Bad input: unknown names, malformed values, refused URLs, missing secrets (exit 2)."""

    exit_code = EXIT_USAGE


class OperationalError(CliError):
    """The command was valid but could not be carried out (exit 1)."""

    exit_code = EXIT_FAILURE


def _stderr() -> Console:
    # Built per use: CliRunner swaps sys.stderr per invocation, and rich binds the stream at construction.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout() -> Console:
    """A console on the current stdout; piped output gets wide tables (grep-able rows) instead of rich's 80 columns."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = _PIPE_WIDTH
    return console


def report_error(message: str, *, hint: str | None = None) -> None:
    """Print ``error: message`` (and an optional hint) on stderr, without markup interpretation."""
    console = _stderr()
    console.print(f"error: {message}", markup=False)
    if hint:
        console.print(f"hint: {hint}", markup=False)


def _aws_error(error: ClientError) -> str:
    detail = error.response.get("Error", {})
    operation = getattr(error, "operation_name", "request")
    return f"AWS {operation} failed: {detail.get('Code', 'Error')}: {detail.get('Message', '')}".rstrip(": ")


def cli_errors[**P, R](command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a command can meet into one stderr line and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            report_error(error.message, hint=error.hint)
            raise typer.Exit(error.exit_code) from None
        except ResourceError as error:
            report_error(str(error))
            raise typer.Exit(EXIT_FAILURE) from None
        except NoCredentialsError:
            report_error("no AWS credentials found", hint="configure a profile, or use the local stack")
            raise typer.Exit(EXIT_FAILURE) from None
        except NoRegionError:
            report_error("no AWS region configured", hint=_NO_REGION_HINT)
            raise typer.Exit(EXIT_FAILURE) from None
        except ClientError as error:
            report_error(_aws_error(error))
            raise typer.Exit(EXIT_FAILURE) from None
        except BotoCoreError as error:
            report_error(f"AWS request failed: {error}")
            raise typer.Exit(EXIT_FAILURE) from None
        except HooklineError as error:
            # A layer error the command did not turn into bad input (e.g. the registry unreachable): operational.
            report_error(str(error))
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper


def wants_json(ctx: typer.Context, local_flag: bool = False) -> bool:
    """Whether to print JSON: the command's own ``--json`` or the global one on the root context."""
    return local_flag or get_context(ctx).json


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def emit(ctx: typer.Context, data: Any, render: Callable[[Console], None], *, json_flag: bool = False) -> None:
    """Print ``data`` as JSON (sorted keys, stable) when asked to, else let ``render`` draw it for people."""
    if wants_json(ctx, json_flag):
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=_default, ensure_ascii=False))
    else:
        render(stdout())


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table; None and empty cells show as a dash."""
    grid = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        # The first column is the key people grep for: never wrapped; the others fold to fit the terminal.
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*("-" if cell is None or cell == "" else str(cell) for cell in row))
    return grid


def format_time(value: float | str | None) -> str | None:
    """Unix seconds or an ISO string as ``YYYY-MM-DD HH:MM:SSZ`` (UTC); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
        return parsed.strftime("%Y-%m-%d %H:%M:%SZ")
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso_time(seconds: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC (``2026-11-28T08:00:00Z``) for JSON output; None stays None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
