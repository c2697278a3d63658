"""`hookline breakers ...` and `hookline health ...` against moto, with a real loopback receiver for health probes."""

from __future__ import annotations

import io
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from resilience.breaker import BreakerRegistry, DynamoDBStateStore
from tests.support.cli import NOW, CliHarness
from tests.support.loopback import Reply, loopback_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.loopback import LoopbackServer
    from tests.support.template import StackResources


@pytest.fixture
def cli(stack: StackResources, moto_endpoint: str, tmp_path: Path) -> CliHarness:
    return CliHarness(stack=stack, endpoint_url=moto_endpoint, tmp_path=tmp_path)


@pytest.fixture
def receiver() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        yield server


@pytest.fixture
def ep(cli: CliHarness, receiver: LoopbackServer) -> str:
    """A registered endpoint on the loopback receiver, probed at /health."""
    name = f"acme-{uuid.uuid4().hex[:8]}"
    result = cli.invoke(
        "endpoints", "add", name, "--url", receiver.url("/hooks"), "--generate-secret",
        "--health-url", receiver.url("/health"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return name


def _origin(receiver: LoopbackServer) -> str:
    return receiver.base_url.rstrip("/")


def _breakers(cli: CliHarness) -> BreakerRegistry:
    store = DynamoDBStateStore(cli.stack.breaker_table, client=cli.aws("dynamodb"), clock=NOW.timestamp)
    return BreakerRegistry(store, writer="test")


# --- breakers -----------------------------------------------------------------------------------------------------
def test_breakers_list_empty(cli: CliHarness) -> None:
    assert cli.json("breakers", "list") == []
    assert "no breakers yet" in cli.invoke("breakers", "list").stdout


def test_open_by_endpoint_name_then_list_and_history(cli: CliHarness, ep: str, receiver: LoopbackServer) -> None:
    opened = cli.invoke("breakers", "open", ep, "--reason", "receiver migration")

    assert opened.exit_code == 0, opened.stderr
    assert "forced_open (forced by operator)" in opened.stdout
    [snapshot] = cli.json("breakers", "list")
    assert snapshot["name"] == _origin(receiver)
    assert (snapshot["state"], snapshot["forced_by"], snapshot["reason"]) == (
        "forced_open",
        "operator",
        "receiver migration",
    )
    assert snapshot["opened_at"] == "2026-11-28T08:00:00Z"
    assert set(snapshot) == {
        "name", "state", "forced_by", "reason", "opened_at", "open_until", "reopen_count", "window_calls",
        "window_failures", "failure_rate", "consecutive_failures", "updated_at",
    }  # fmt: skip
    history = cli.json("breakers", "history", ep)
    assert history["name"] == _origin(receiver)
    assert [(t["from_state"], t["to_state"], t["source"]) for t in history["transitions"]] == [
        ("closed", "forced_open", "operator")
    ]
    assert "receiver migration" in cli.invoke("breakers", "history", _origin(receiver)).stdout


def test_close_lifts_the_operator_hold_and_reset_lifts_a_health_hold(cli: CliHarness) -> None:
    origin = "https://hooks.example.com"
    assert cli.invoke("breakers", "open", "https://Hooks.Example.com/some/path").exit_code == 0
    assert cli.json("breakers", "list")[0]["name"] == origin

    closed = cli.invoke("breakers", "close", origin)
    assert closed.exit_code == 0 and "now closed" in closed.stdout

    _breakers(cli).get(origin).force_open("probe failing", source="health")
    unchanged = cli.invoke("breakers", "close", origin)
    assert unchanged.exit_code == 0
    assert "unchanged: forced_open (forced by health)" in unchanged.stdout
    reset = cli.invoke("breakers", "reset", origin)
    assert reset.exit_code == 0 and "now closed" in reset.stdout
    sources = [t["source"] for t in cli.json("breakers", "history", origin)["transitions"]]
    assert sources == ["operator", "health", "operator", "operator"]


def test_breakers_list_shows_fleet_counts(cli: CliHarness) -> None:
    breaker = _breakers(cli).get("https://counted.example.com")
    for _ in range(3):
        breaker.record_failure(0.01, error="timeout")
    breaker.record_success(0.01)
    _breakers(cli).flush(force=True)
    breaker.flush(force=True)

    [snapshot] = cli.json("breakers", "list")

    assert (snapshot["window_calls"], snapshot["window_failures"]) == (4, 3)
    assert snapshot["failure_rate"] == 0.75


@pytest.mark.parametrize("command", ["reset", "close"])
def test_clearing_an_unknown_breaker_is_refused_and_creates_no_row(cli: CliHarness, command: str) -> None:
    result = cli.invoke("breakers", command, "https://never-seen.example.com/hook")

    assert result.exit_code == 2
    assert "no breaker named 'https://never-seen.example.com'" in result.stderr
    assert "hookline breakers list" in result.stderr
    assert cli.json("breakers", "list") == []
    assert cli.aws("dynamodb").scan(TableName=cli.stack.breaker_table)["Items"] == []


def test_an_endpoints_breaker_that_delivery_never_used_is_unknown(cli: CliHarness, ep: str) -> None:
    result = cli.invoke("breakers", "reset", ep)

    assert result.exit_code == 2
    assert "no breaker named 'http://127.0.0.1:" in result.stderr
    assert cli.json("breakers", "list") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["open", "ghost"], "unknown endpoint 'ghost'"),
        (["history", "ghost"], "unknown endpoint 'ghost'"),
        (["reset", "http://[bad"], "is not an http(s) URL"),
        (["open", "ftp://files.example.com"], "is not an http(s) URL"),
    ],
)
def test_breakers_bad_input(cli: CliHarness, args: list[str], message: str) -> None:
    result = cli.invoke("breakers", *args)

    assert result.exit_code == 2
    assert message in result.stderr


# --- health -------------------------------------------------------------------------------------------------------
def test_health_overview_before_any_check(cli: CliHarness, ep: str, receiver: LoopbackServer) -> None:
    [row] = cli.json("health")

    assert row == {
        "name": ep,
        "enabled": True,
        "probe_url": receiver.url("/health"),
        "state": "unknown",
        "last_checked_at": None,
        "last_latency_ms": None,
        "consecutive_failures": 0,
        "consecutive_successes": 0,
        "last_error": None,
    }
    assert ep in cli.invoke("health").stdout


def test_health_run_in_process_records_checks_and_history(cli: CliHarness, ep: str, receiver: LoopbackServer) -> None:
    receiver.route("/health", Reply(status=200, body=b"ok"))

    first = cli.json("health", "run")
    second = cli.invoke("health", "run")

    assert first["checked"] == 1 and first["errors"] == 0
    assert second.exit_code == 0 and "checked 1 integration(s) (in-process)" in second.stdout
    assert len(receiver.requests_for("/health")) == 2
    shown = cli.json("health", ep)
    assert shown["state"] == "healthy"
    assert shown["consecutive_successes"] == 2
    assert [entry["passed"] for entry in shown["history"]] == [True, True]
    assert shown["history"][0]["changed_from"] == "unknown"
    assert shown["history"][0]["status_code"] == 200
    table = cli.invoke("health", ep)
    assert "Recent checks" in table.stdout and "healthy (was unknown)" in table.stdout


def test_failing_probes_turn_unhealthy_and_steer_the_breaker(
    cli: CliHarness, ep: str, receiver: LoopbackServer
) -> None:
    receiver.route("/health", Reply(status=503))

    for _ in range(3):
        assert cli.invoke("health", "run").exit_code == 0

    shown = cli.json("health", ep, "--limit", "2")
    assert shown["state"] == "unhealthy"
    assert shown["consecutive_failures"] == 3
    assert "503" in (shown["last_error"] or "")
    assert len(shown["history"]) == 2
    [breaker] = cli.json("breakers", "list")
    assert (breaker["name"], breaker["state"], breaker["forced_by"]) == (_origin(receiver), "forced_open", "health")


def test_health_unknown_integration_is_bad_input(cli: CliHarness) -> None:
    result = cli.invoke("health", "ghost")

    assert result.exit_code == 2
    assert "unknown endpoint 'ghost'" in result.stderr


def test_health_run_through_lambda_needs_the_function_name(cli: CliHarness) -> None:
    result = cli.invoke("health", "run", "--lambda")

    assert result.exit_code == 1
    assert "health function is not known" in result.stderr
    assert "HOOKLINE_HEALTH_FUNCTION" in result.stderr


class _FakeLambda:
    """A Lambda client answering Invoke as a deployed HealthFunction would (moto would need Docker to run it)."""

    def __init__(self, payload: Any, function_error: str | None = None) -> None:
        self._payload = payload
        self._function_error = function_error
        self.invocations: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invocations.append(kwargs)
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self._payload).encode())}
        if self._function_error:
            response["FunctionError"] = self._function_error
        return response


def _with_lambda(cli: CliHarness, fake: _FakeLambda) -> None:
    cli.extra_env["HOOKLINE_HEALTH_FUNCTION"] = "hookline-prod-HealthFunction-1A2B"
    cli.client_factory = lambda service: fake if service == "lambda" else cli.aws(service)


def test_health_run_invokes_the_deployed_function(cli: CliHarness) -> None:
    summary = {"checked": 4, "healthy": 3, "unhealthy": 1, "unknown": 0, "errors": 0, "duration_ms": 812,
               "changes": [{"integration": "billing", "old_state": "healthy", "new_state": "unhealthy",
                            "reason": "status 503"}], "breakers_opened": ["https://billing.example.com"]}  # fmt: skip
    fake = _FakeLambda(summary)
    _with_lambda(cli, fake)

    result = cli.invoke("health", "run", "--lambda")
    data = cli.json("health", "run", "--lambda")

    assert result.exit_code == 0, result.stderr
    assert "checked 4 integration(s) (HealthFunction): 3 healthy, 1 unhealthy" in result.stdout
    assert "billing: healthy -> unhealthy (status 503)" in result.stdout
    assert "breakers opened: https://billing.example.com" in result.stdout
    assert data == summary
    assert fake.invocations[0]["FunctionName"] == "hookline-prod-HealthFunction-1A2B"
    assert fake.invocations[0]["InvocationType"] == "RequestResponse"


def test_health_run_reports_a_function_error(cli: CliHarness) -> None:
    _with_lambda(cli, _FakeLambda({"errorMessage": "Task timed out after 60.00 seconds"}, function_error="Unhandled"))

    result = cli.invoke("health", "run", "--lambda")

    assert result.exit_code == 1
    assert "failed: Task timed out after 60.00 seconds" in result.stderr
