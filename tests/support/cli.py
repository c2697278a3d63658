"""Running the ``hookline`` CLI in tests: typer's CliRunner against the moto server, with injected clock and clients."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import typer.main
from botocore.exceptions import EndpointConnectionError
from typer.testing import CliRunner, Result

from hookline_cli.resources import Resources
from tests.support.aws import FAKE_ENV, client
from tests.support.template import create_queues

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from tests.support.template import StackResources

__all__ = ["NOW", "CliHarness", "FailingClient", "app", "run", "stack_environ", "with_fresh_queues"]

NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)


def with_fresh_queues(stack: StackResources, sqs: Any) -> StackResources:
    """The same tables and topic with new, empty queues (creating tables is the slow part of a fresh stack)."""
    queues = create_queues(sqs, "DeliveryQueue")
    return replace(
        stack, delivery_queue_url=queues["DeliveryQueue"].url, dead_letter_queue_url=queues["DeadLetterQueue"].url
    )


def stack_environ(stack: StackResources) -> dict[str, str]:
    """``HOOKLINE_*`` variables naming the test stack's resources (the CLI's documented override)."""
    return {
        "HOOKLINE_ENDPOINTS_TABLE": stack.endpoints_table,
        "HOOKLINE_BREAKER_TABLE": stack.breaker_table,
        "HOOKLINE_HEALTH_HISTORY_TABLE": stack.health_history_table,
        "HOOKLINE_DELIVERY_QUEUE_URL": stack.delivery_queue_url,
        "HOOKLINE_DEAD_LETTER_QUEUE_URL": stack.dead_letter_queue_url,
        "HOOKLINE_ALERT_TOPIC_ARN": stack.alert_topic_arn,
    }


def app() -> Any:
    """The `hookline` typer app (the console script's)."""
    from hookline_cli.main import app as hookline

    return hookline


@cache
def _command() -> Any:
    return typer.main.get_command(app())


def run(
    args: Sequence[str], *, obj: Any = None, input: str | None = None, env: Mapping[str, str] | None = None
) -> Result:
    """``CliRunner().invoke(app(), args, obj=obj)`` without rebuilding the click command every time (~60 ms each).

    Same isolation and exit-code handling as typer's CliRunner.invoke; ``hookline`` is its program name.
    """
    runner = CliRunner()
    exit_code, exception, exc_info = 0, None, None
    with runner.isolation(input=input, env=env) as (stdout, stderr, output):
        try:
            _command().main(args=list(args), prog_name="hookline", obj=obj)
        except SystemExit as error:
            code = 0 if error.code is None else error.code
            if code != 0:
                exception, exc_info = error, sys.exc_info()
            exit_code = code if isinstance(code, int) else 1
        except Exception as error:
            exception, exc_info, exit_code = error, sys.exc_info(), 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return Result(
            runner=runner,
            stdout_bytes=stdout.getvalue(),
            stderr_bytes=stderr.getvalue(),
            output_bytes=output.getvalue(),
            return_value=None,
            exit_code=exit_code,
            exception=exception,
            exc_info=exc_info,  # type: ignore[arg-type]
        )


@dataclass
class CliHarness:
    """Invokes the real ``hookline`` app with a Resources object as the root context object."""

    stack: StackResources
    endpoint_url: str
    tmp_path: Path
    now: datetime = NOW
    extra_env: dict[str, str] = field(default_factory=dict)
    client_factory: Callable[[str], Any] | None = None
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def resources(self) -> Resources:
        """A fresh Resources per invocation, as the CLI builds one per process."""
        return Resources(
            endpoint_url=self.endpoint_url,
            region=FAKE_ENV["AWS_REGION"],
            config_path=self.tmp_path / "no-local.json",
            environ={**FAKE_ENV, **stack_environ(self.stack), **self.extra_env},
            client_factory=self.client_factory or self.aws,
            clock=lambda: self.now,
            sqs_wait_s=0,
        )

    def invoke(self, *args: str, input: str | None = None) -> Result:  # noqa: A002 - CliRunner's name
        """Run ``hookline ARGS``; the result has exit_code, stdout and stderr."""
        result = run(args, obj=self.resources(), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def json(self, *args: str) -> Any:
        """Run a read command with ``--json`` and parse its stdout (which must be JSON only)."""
        result = self.invoke(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def aws(self, service: str) -> Any:
        """A plain boto3 client on the moto server (one per service and test: building clients is slow)."""
        if service not in self._clients:
            self._clients[service] = client(service, self.endpoint_url)
        return self._clients[service]


class FailingClient:
    """Wraps a boto3 client; the named operation fails from its ``fail_from``-th call on (1-based)."""

    def __init__(self, inner: Any, operation: str, *, fail_from: int = 1, error: Exception | None = None) -> None:
        self._inner = inner
        self._operation = operation
        self._fail_from = fail_from
        # What botocore raises when the connection drops (after its own retries).
        self._error = error or EndpointConnectionError(endpoint_url="http://127.0.0.1:1/injected-failure")
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name != self._operation:
            return attribute

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls >= self._fail_from:
                raise self._error
            return attribute(*args, **kwargs)

        return wrapper
