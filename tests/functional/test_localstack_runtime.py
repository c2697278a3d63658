"""Functions in worker processes (env before import, context, timeouts, crashes) and EMF lines -> CloudWatch."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from hookline_local import FunctionSpec, SubprocessInvoker
from hookline_local.emf import MetricForwarder, parse_emf
from hookline_local.resolve import local_environment
from tests.support.aws import client

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HANDLER = textwrap.dedent(
    """
    import json, os, sys, time

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    # Read at import time: the local stack must have the environment in place before the first import.
    TABLE_AT_IMPORT = os.environ["ENDPOINTS_TABLE"]
    metrics = Metrics()


    @metrics.log_metrics
    def lambda_handler(event, context):
        action = event.get("action")
        if action == "raise":
            raise ValueError("bad input")
        if action == "sleep":
            time.sleep(event["seconds"])
        if action == "exit":
            sys.stdout.flush()
            os._exit(3)
        if action == "unserializable":
            return {"when": object()}
        metrics.add_dimension(name="Reason", value="test")
        metrics.add_metric(name="LocalStackProbe", unit=MetricUnit.Count, value=event.get("count", 1))
        print("plain log line from", context.function_name)
        return {
            "table": TABLE_AT_IMPORT,
            "endpoint": os.environ["AWS_ENDPOINT_URL"],
            "private": os.environ["ALLOW_PRIVATE_TARGETS"],
            "remaining_ms": context.get_remaining_time_in_millis(),
            "name": context.function_name,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "request_id": context.aws_request_id,
            "pid": os.getpid(),
        }
    """
)


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"HooklineTest{int(time.time() * 1000)}"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, namespace: str) -> FunctionSpec:
    code = tmp_path_factory.mktemp("function")
    (code / "app.py").write_text(HANDLER, encoding="utf-8")
    template_env = {
        "ENDPOINTS_TABLE": "endpoints-table",
        "POWERTOOLS_SERVICE_NAME": "hookline-test",
        "POWERTOOLS_METRICS_NAMESPACE": namespace,
        "POWERTOOLS_DEV": "true",  # would silence or pretty-print EMF: the local stack removes it
    }
    return FunctionSpec(
        logical_id="ProbeFunction",
        name="hookline-local-ProbeFunction",
        arn="arn:aws:lambda:us-east-1:123456789012:function:hookline-local-ProbeFunction",
        handler="app.lambda_handler",
        code_dir=code,
        timeout_s=4.0,
        memory_mb=256,
        template_environment=template_env,
        environment=local_environment(
            template_env,
            name="hookline-local-ProbeFunction",
            memory_mb=256,
            code_dir=code,
            endpoint_url=moto_endpoint,
            region="us-east-1",
        ),
    )


class Output:
    def __init__(self, forwarder: MetricForwarder) -> None:
        self.forwarder = forwarder
        self.lines: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        if stream == "stdout" and self.forwarder.forward_line(line):
            return
        self.lines.append((stream, line))


@pytest.fixture(scope="module")
def output(moto_endpoint: str) -> Output:
    return Output(MetricForwarder(client("cloudwatch", moto_endpoint)))


@pytest.fixture(scope="module")
def invoker(spec: FunctionSpec, output: Output) -> Iterator[SubprocessInvoker]:
    worker = SubprocessInvoker(spec, on_output=output)
    yield worker
    worker.close()


def test_the_function_runs_with_its_environment_and_a_lambda_context(
    invoker: SubprocessInvoker, spec: FunctionSpec, moto_endpoint: str, output: Output
) -> None:
    result = invoker.invoke({"action": "ok"}, request_id="req-1")
    assert result.ok, result
    payload = result.payload
    assert payload["table"] == "endpoints-table"
    assert payload["endpoint"] == moto_endpoint
    assert payload["private"] == "true"
    assert payload["name"] == spec.name
    assert payload["arn"] == spec.arn
    assert payload["memory"] == "256"
    assert payload["request_id"] == "req-1"
    assert 0 < payload["remaining_ms"] <= 4000
    assert ("stdout", f"plain log line from {spec.name}") in output.lines


def test_emf_metrics_reach_moto_cloudwatch_before_the_invocation_returns(
    invoker: SubprocessInvoker, moto_endpoint: str, namespace: str
) -> None:
    assert invoker.invoke({"action": "ok", "count": 5}).ok
    cloudwatch = client("cloudwatch", moto_endpoint)
    listed = cloudwatch.list_metrics(Namespace=namespace, MetricName="LocalStackProbe")["Metrics"]
    assert listed
    dimensions = {d["Name"]: d["Value"] for d in listed[0]["Dimensions"]}
    assert dimensions == {"service": "hookline-test", "Reason": "test"}
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="LocalStackProbe",
        Dimensions=listed[0]["Dimensions"],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(point["Sum"] for point in stats) >= 5


def test_an_exception_is_the_invocations_error_and_is_logged(invoker: SubprocessInvoker, output: Output) -> None:
    result = invoker.invoke({"action": "raise"})
    assert not result.ok and not result.crashed
    assert (result.error_type, result.error_message) == ("ValueError", "bad input")
    assert ("stderr", "[ERROR] ValueError: bad input") in output.lines
    assert invoker.invoke({"action": "ok"}).ok  # the environment survives a handled error


def test_an_unserializable_result_is_a_marshal_error(invoker: SubprocessInvoker) -> None:
    result = invoker.invoke({"action": "unserializable"})
    assert not result.ok
    assert result.error_type == "Runtime.MarshalError"


def test_a_timeout_kills_the_environment_and_the_next_invocation_cold_starts(
    spec: FunctionSpec, output: Output
) -> None:
    short = FunctionSpec(**{**spec.__dict__, "timeout_s": 1.0})
    worker = SubprocessInvoker(short, on_output=output)
    try:
        first = worker.invoke({"action": "ok"})
        assert first.ok
        timed_out = worker.invoke({"action": "sleep", "seconds": 5})
        assert timed_out.timed_out and not timed_out.ok
        assert timed_out.error_message == "Task timed out after 1.00 seconds"
        again = worker.invoke({"action": "ok"})
        assert again.ok
        assert again.payload["pid"] != first.payload["pid"]
        assert worker.cold_starts == 2
    finally:
        worker.close()


def test_a_crash_mid_invocation_fails_it_and_the_next_one_gets_a_fresh_environment(
    spec: FunctionSpec, output: Output
) -> None:
    worker = SubprocessInvoker(spec, on_output=output)
    try:
        crashed = worker.invoke({"action": "exit"})
        assert crashed.crashed and not crashed.ok
        assert "status 3" in (crashed.error_message or "")
        assert worker.invoke({"action": "ok"}).ok
    finally:
        worker.close()


def test_an_import_error_is_reported_as_an_init_failure(tmp_path: Path, spec: FunctionSpec, output: Output) -> None:
    (tmp_path / "app.py").write_text("raise ImportError('missing dependency')\n", encoding="utf-8")
    broken = FunctionSpec(**{**spec.__dict__, "code_dir": tmp_path})
    worker = SubprocessInvoker(broken, on_output=output)
    try:
        result = worker.invoke({})
        assert not result.ok and result.error_type == "Runtime.ImportModuleError"
        assert "missing dependency" in (result.error_message or "")
    finally:
        worker.close()


def _emf(**document: Any) -> str:
    return json.dumps(document)


def test_parse_emf_reads_every_dimension_set_and_value_list() -> None:
    line = _emf(
        _aws={
            "Timestamp": 1795860000000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Hookline",
                    "Dimensions": [["service"], ["service", "Reason"]],
                    "Metrics": [{"Name": "DeliveryDeadLettered", "Unit": "Count"}, {"Name": "Missing"}],
                }
            ],
        },
        service="hookline-delivery",
        Reason="endpoint_gone",
        DeliveryDeadLettered=[1.0, 2.0],
    )
    (put,) = parse_emf(line) or []
    assert put.namespace == "Hookline"
    assert [datum["Dimensions"] for datum in put.data] == [
        [{"Name": "service", "Value": "hookline-delivery"}],
        [{"Name": "service", "Value": "hookline-delivery"}, {"Name": "Reason", "Value": "endpoint_gone"}],
    ]
    assert all(datum["Values"] == [1.0, 2.0] and datum["Unit"] == "Count" for datum in put.data)
    assert put.data[0]["Timestamp"] == datetime.fromtimestamp(1795860000, tz=UTC)


@pytest.mark.parametrize("line", ["plain text", '{"level": "INFO", "message": "x"}', "{not json", '{"_aws": 3}'])
def test_ordinary_log_lines_are_not_emf(line: str) -> None:
    assert parse_emf(line) is None


def test_killing_a_busy_environment_fails_the_invocation_as_a_crash(spec: FunctionSpec, output: Output) -> None:
    worker = SubprocessInvoker(spec, on_output=output)
    results: list[Any] = []
    try:
        assert worker.invoke({"action": "ok"}).ok  # warm
        thread = threading.Thread(target=lambda: results.append(worker.invoke({"action": "sleep", "seconds": 3})))
        thread.start()
        deadline = time.monotonic() + 3
        while not worker.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.kill()
        thread.join(3)
        (result,) = results
        assert result.crashed and not result.ok and result.duration_ms < 2500
        assert worker.invoke({"action": "ok"}).ok
    finally:
        worker.close()
