"""The whole local stack from the real template.yaml: in-process API with test handlers, and `hookline local up`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hookline_local import (
    SQS_INFLIGHT_QUOTA,
    CallableInvoker,
    FunctionSpec,
    Invoker,
    LocalStack,
    ReportOptions,
    RunOptions,
    TemplateOptions,
    read_state,
)
from hookline_local.template import sqs_event_sources
from hookline_local.workarounds import Handling, handling_for
from tests.support.aws import child_environ
from tests.support.template import ROOT, load_template, properties

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hookline_local.invoke import LambdaContext


class Handlers:
    """Stand-ins for the template's functions (their real code is tested by their own suites)."""

    def __init__(self) -> None:
        self.stack: LocalStack | None = None
        self.delivered: list[str] = []
        self.attempts: dict[str, int] = {}
        self.health_runs = threading.Event()
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.crash_receipt = ""
        self.lock = threading.Lock()

    def deliver(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        assert self.stack is not None
        sqs = self.stack.client("sqs")
        failures = []
        for record in event["Records"]:
            body = json.loads(record["body"])
            with self.lock:
                self.attempts[body["id"]] = int(record["attributes"]["ApproximateReceiveCount"])
            if body.get("block") and record["attributes"]["ApproximateReceiveCount"] == "1":
                self.crash_receipt = record["receiptHandle"]
                self.blocked.set()
                self.release.wait(10)  # the test crashes this environment meanwhile
                return {}  # what a killed environment does next never reaches the mapping
            if body.get("fail"):
                # Retry at once: the visibility the function sets is left alone by the mapping.
                url = self.stack.outputs["DeliveryQueueUrl"]
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                with self.lock:
                    self.delivered.append(body["id"])
        return {"batchItemFailures": failures}

    def health(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        assert event["detail-type"] == "Scheduled Event"
        self.health_runs.set()
        return {"checked": 0}

    def factory(self, spec: FunctionSpec) -> Invoker:
        # Any function an SQS queue feeds gets the delivery stand-in; any other (scheduled) the health stand-in.
        fed = {source.function for source in sqs_event_sources(load_template())}
        handler = self.deliver if spec.logical_id in fed else self.health
        return CallableInvoker(handler, function_name=spec.name, function_arn=spec.arn, timeout_s=spec.timeout_s)


@pytest.fixture(scope="module")
def handlers() -> Handlers:
    return Handlers()


PARAMETERS = {"MaxReceiveCount": "2", "RetrySchedule": "0,1"}


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("localstack") / "local.json"


@pytest.fixture(scope="module")
def stack(handlers: Handlers, state_file: Path) -> Iterator[LocalStack]:
    """One stack for this module: the real template in moto, the template's functions replaced by handlers."""
    with LocalStack.start(
        ROOT,
        template=TemplateOptions(parameters=PARAMETERS),
        run=RunOptions(schedule_intervals={"HealthFunction": 0.5}, invoker_factory=handlers.factory),
        report=ReportOptions(state_file=state_file),
    ) as started:
        handlers.stack = started
        yield started


def _resolved(value: Any, stack: LocalStack) -> Any:
    return stack.parameters[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value


def _resources_of(resource_type: str) -> list[str]:
    return [lid for lid, res in load_template()["Resources"].items() if res["Type"] == resource_type and _holds(res)]


def _holds(declared: dict[str, Any]) -> bool:
    """Whether a resource's or output's Condition holds for the stack's parameters (no Condition: it does)."""
    template = load_template()
    values = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()} | PARAMETERS

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return values.get(value, value)
            if key in {"Condition", "Fn::Condition"}:
                return evaluate(template["Conditions"][value])
            arguments = [evaluate(item) for item in value]
            operations = {
                "Fn::Equals": lambda: str(arguments[0]) == str(arguments[1]),
                "Fn::Not": lambda: not arguments[0],
                "Fn::And": lambda: all(arguments),
                "Fn::Or": lambda: any(arguments),
            }
            return operations[key]()
        return node

    condition = declared.get("Condition")
    return condition is None or bool(evaluate(template["Conditions"][condition]))


def test_every_table_exists_with_the_template_key_schema(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    tables = _resources_of("AWS::DynamoDB::Table")
    assert tables, "the template declares tables"
    for logical_id in tables:
        description = dynamodb.describe_table(TableName=stack.physical_id(logical_id))["Table"]
        assert description["KeySchema"] == properties(logical_id)["KeySchema"]
        assert description["TableStatus"] == "ACTIVE"


def test_queues_exist_with_the_template_redrive_and_parameter_overrides(stack: LocalStack) -> None:
    sqs = stack.client("sqs")
    queues = _resources_of("AWS::SQS::Queue")
    assert queues
    arns: dict[str, str] = {}
    for logical_id in queues:
        url = stack.physical_id(logical_id)
        assert url.startswith(stack.endpoint_url), "queue URLs point at the local endpoint"
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        arns[logical_id] = attributes["QueueArn"]
        props = properties(logical_id)
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                assert attributes[key] == str(props[key])
    for logical_id in queues:
        redrive = properties(logical_id).get("RedrivePolicy")
        if not redrive:
            continue
        url = stack.physical_id(logical_id)
        policy = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
        )
        assert policy["deadLetterTargetArn"] == arns[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        assert int(policy["maxReceiveCount"]) == int(PARAMETERS["MaxReceiveCount"])


def test_outputs_resolve_to_the_created_resources(stack: LocalStack) -> None:
    declared = {key: output for key, output in load_template()["Outputs"].items() if _holds(output)}
    assert set(declared) <= set(stack.outputs)
    for key, output in declared.items():
        value = output["Value"]
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in load_template()["Resources"]:
            assert stack.outputs[key] == stack.physical_id(value["Ref"]), key
    assert stack.outputs["DeliveryQueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert not any(key.startswith("HooklineLocal") for key in stack.outputs)


def test_alarms_and_topic_are_created_where_moto_cloudformation_cannot(stack: LocalStack) -> None:
    alarms = _resources_of("AWS::CloudWatch::Alarm")
    created = {a["AlarmName"]: a for a in stack.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    topic = stack.physical_id("AlertTopic")
    for logical_id in alarms:
        alarm = created[stack.physical_id(logical_id)]
        assert alarm["AlarmActions"] == [topic]
        assert alarm["EvaluationPeriods"] == int(properties(logical_id)["EvaluationPeriods"])
    assert stack.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic


def test_function_environments_resolve_refs_to_physical_names(stack: LocalStack) -> None:
    template = load_template()
    variables: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    functions = _resources_of("AWS::Serverless::Function")
    assert functions
    for function in functions:
        env = stack.env_for(function)
        for name, value in variables.items():
            if isinstance(value, dict) and "Ref" in value:
                target = value["Ref"]
                expected = PARAMETERS.get(target) or stack.parameters.get(target) or stack.physical_id(target)
                if name == "ALLOW_PRIVATE_TARGETS":
                    continue
                assert env[name] == expected, (function, name)
        assert env["ALLOW_PRIVATE_TARGETS"] == "true"
        assert env["AWS_ENDPOINT_URL"] == stack.endpoint_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
        own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in own.items():
            if isinstance(value, str):
                assert env[name] == value


def test_resources_kept_out_of_moto_follow_the_type_table(stack: LocalStack) -> None:
    in_moto = {
        item["LogicalResourceId"]
        for item in stack.client("cloudformation").describe_stack_resources(StackName=stack.stack_name)[
            "StackResources"
        ]
        if "LogicalResourceId" in item  # moto lists a resource its Conditions left out without one
    }
    for logical_id, resource in stack.state()["resources"].items():
        handling = Handling(resource["handling"])
        assert (logical_id in in_moto) == (handling is Handling.MOTO), logical_id
        if handling is not Handling.SUPPORT:
            assert handling is handling_for(resource["type"]), logical_id
    for function in _resources_of("AWS::Serverless::Function"):
        assert function not in in_moto
        assert stack.physical_id(function) == stack.functions[function].name


def test_state_file_describes_the_running_stack(stack: LocalStack, state_file: Path) -> None:
    state = read_state(state_file)
    assert state is not None
    assert state["version"] == 1
    assert state["endpoint_url"] == stack.endpoint_url
    assert state["outputs"] == stack.outputs
    assert state["queues"]["DeliveryQueue"]["url"] == stack.outputs["DeliveryQueueUrl"]
    assert state["queues"]["DeliveryQueue"]["arn"] == stack.outputs["DeliveryQueueArn"]
    assert state["tables"]["EndpointsTable"] == stack.outputs["EndpointsTableName"]
    assert state["topics"]["AlertTopic"] == stack.outputs["AlertTopicArn"]
    assert state["endpoints_table"] == stack.outputs["EndpointsTableName"]
    assert state["delivery_queue_url"] == stack.outputs["DeliveryQueueUrl"]
    assert state["allow_private_targets"] is True
    assert state["parameters"]["RetrySchedule"] == PARAMETERS["RetrySchedule"]
    assert {queue["inflight_quota"] for queue in state["queues"].values()} == {SQS_INFLIGHT_QUOTA}


def _delivery_mapping(stack: LocalStack) -> Any:
    # DeliveryFunction also reads RetryQueue: the mapping of the producers' queue.
    return next(m for m in stack.mappings if m.spec.queue_url == stack.outputs["DeliveryQueueUrl"])


def test_every_sqs_event_source_of_the_template_is_emulated(stack: LocalStack) -> None:
    declared = {
        (stack.outputs.get(f"{s.queue}Url") or stack.physical_id(s.queue), s.function)
        for s in sqs_event_sources(load_template())
    }
    assert declared == {(m.spec.queue_url, m.spec.function_logical_id) for m in stack.mappings}


def test_the_mapping_uses_the_templates_sqs_event_settings(stack: LocalStack) -> None:
    event = next(e["Properties"] for e in properties("DeliveryFunction")["Events"].values() if e["Type"] == "SQS")
    mapping = _delivery_mapping(stack)
    assert mapping.spec.queue_url == stack.outputs["DeliveryQueueUrl"]
    assert mapping.spec.batch_size == int(_resolved(event["BatchSize"], stack))
    assert mapping.spec.maximum_batching_window_s == float(_resolved(event["MaximumBatchingWindowInSeconds"], stack))
    assert mapping.spec.report_batch_item_failures
    scaling = event.get("ScalingConfig", {}).get("MaximumConcurrency")
    if scaling is not None:
        assert mapping.spec.maximum_concurrency == int(_resolved(scaling, stack))


def test_messages_flow_through_the_mapping_and_failures_end_in_the_dlq(stack: LocalStack, handlers: Handlers) -> None:
    sqs = stack.client("sqs")
    for index in range(15):
        body = {"id": f"m{index}", "fail": index % 5 == 0}
        sqs.send_message(QueueUrl=stack.outputs["DeliveryQueueUrl"], MessageBody=json.dumps(body))
    assert stack.wait_idle(timeout_s=20)
    assert sorted(handlers.delivered) == sorted(f"m{i}" for i in range(15) if i % 5)
    dead = sqs.receive_message(QueueUrl=stack.outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["id"] for m in dead) == ["m0", "m10", "m5"]
    assert all(handlers.attempts[f"m{i}"] == 2 for i in (0, 5, 10))  # maxReceiveCount=2, from the parameter
    totals = stack.stats()["mappings"][_delivery_mapping(stack).spec.logical_id]
    assert totals["deleted"] == 12 and totals["item_failures"] == 6


def test_a_crash_mid_batch_leaves_the_batch_to_the_visibility_timeout(stack: LocalStack, handlers: Handlers) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.outputs["DeliveryQueueUrl"], MessageBody=json.dumps({"id": "crash", "block": True}))
    assert handlers.blocked.wait(10)
    try:
        assert stack.kill_function("DeliveryFunction") == 1
    finally:
        handlers.release.set()
    time.sleep(0.5)
    assert (
        sqs.get_queue_attributes(
            QueueUrl=stack.outputs["DeliveryQueueUrl"], AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
        == "1"
    ), "the crashed batch is not deleted"
    # As if the queue's visibility timeout (360 s in the template) ran out now.
    sqs.change_message_visibility(
        QueueUrl=stack.outputs["DeliveryQueueUrl"], ReceiptHandle=handlers.crash_receipt, VisibilityTimeout=0
    )
    assert stack.wait_idle(timeout_s=15)
    assert handlers.attempts["crash"] == 2
    assert handlers.delivered.count("crash") == 1
    assert stack.stats()["mappings"][_delivery_mapping(stack).spec.logical_id]["crashes"] == 1


def test_the_schedule_runs_the_health_function(stack: LocalStack, handlers: Handlers) -> None:
    assert handlers.health_runs.wait(10)
    result = stack.run_schedule("HealthFunction")
    assert result.ok and result.payload == {"checked": 0}


def test_stop_removes_the_state_file_and_is_idempotent(stack: LocalStack, state_file: Path) -> None:
    """Runs last in this module (definition order): stops the shared stack."""
    assert state_file.is_file()
    stack.stop()
    assert not state_file.exists()
    assert read_state(state_file) is None
    stack.stop()


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with this repo's template and code (local.json and logs land in tmp, not the repo)."""
    for name in ("template.yaml", "functions", "layers"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def test_local_up_writes_local_json_serves_until_interrupted_and_cleans_up(project: Path) -> None:
    hookline = Path(sys.executable).with_name("hookline")
    env = child_environ()
    process = subprocess.Popen(
        [
            *(str(hookline), "local", "up", "--root", str(project), "--max-pollers", "2"),
            *("--schedule-interval", "3600", "--inflight-quota", "500", "--inflight-quota", "DeliveryQueue=200"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=project,
    )
    state_file = project / ".hookline" / "local.json"
    try:
        deadline = time.monotonic() + 45
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state_file.exists(), process.stdout.read().decode() if process.poll() is not None else "timeout"
        state = json.loads(state_file.read_text())
        assert state["pid"] == process.pid
        assert state["endpoint_url"].startswith("http://127.0.0.1:")
        assert state["stack_name"] == "hookline-local"
        assert set(state["outputs"]) >= {"DeliveryQueueUrl", "DeadLetterQueueUrl", "EndpointsTableName"}
        assert state["functions"]["DeliveryFunction"]["environment"]["ALLOW_PRIVATE_TARGETS"] == "true"
        assert {schedule["interval_s"] for schedule in state["schedules"]} == {3600}
        quotas = {name: queue["inflight_quota"] for name, queue in state["queues"].items()}
        assert quotas == {name: 200 if name == "DeliveryQueue" else 500 for name in quotas}
        stack_sqs = LocalStack.__new__(LocalStack)  # only for its client helper
        stack_sqs.endpoint_url, stack_sqs.region = state["endpoint_url"], state["region"]
        attributes = stack_sqs.client("sqs").get_queue_attributes(
            QueueUrl=state["queues"]["DeliveryQueue"]["url"], AttributeNames=["QueueArn"]
        )["Attributes"]
        assert attributes["QueueArn"] == state["queues"]["DeliveryQueue"]["arn"]
        assert Path(state["log_file"]).parent == project / ".hookline" / "logs"
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "stopped" in output
    assert not state_file.exists()
    assert not _port_open(state["endpoint_url"])


def test_local_up_reports_template_errors_without_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hookline_cli.main import app

    (tmp_path / "template.yaml").write_text("Resources: {Queue: {Type: AWS::SQS::Queue}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["local", "up", "--root", str(tmp_path), "-p", "Missing=1"])
    assert result.exit_code == 1
    assert "unknown template parameters: Missing" in result.output
    result = CliRunner().invoke(app, ["local", "up", "--root", str(tmp_path), "-p", "no-equals-sign"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output
    assert not (tmp_path / ".hookline" / "local.json").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--inflight-quota", "0", "at least 1"),
        ("--inflight-quota", "DeliveryQueue=many", "not a whole number"),
        ("--inflight-quota", "=5", "expected VALUE or ID=VALUE"),
        ("--schedule-interval", "-3", "above 0"),
        ("--schedule-interval", "HealthFunction=soon", "not a number of seconds"),
    ],
)
def test_local_up_refuses_bad_quotas_and_intervals_before_starting(
    project: Path, option: str, value: str, message: str
) -> None:
    from typer.testing import CliRunner

    from hookline_cli.main import app

    result = CliRunner().invoke(app, ["local", "up", "--root", str(project), option, value])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())  # rich wraps the usage error in a box
    assert not (project / ".hookline").exists()


def test_a_second_local_up_refuses_on_stderr_and_leaves_the_first_alone(project: Path) -> None:
    from typer.testing import CliRunner

    from hookline_cli.main import app
    from hookline_local.state import state_path, write_state

    first = {"pid": os.getpid(), "endpoint_url": "http://127.0.0.1:4566"}  # a live pid: this test process
    write_state(state_path(project), first)
    result = CliRunner().invoke(app, ["local", "up", "--root", str(project)])
    assert result.exit_code == 1
    assert "a local stack is already running" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr
    assert result.stdout == ""
    assert json.loads(state_path(project).read_text())["endpoint_url"] == first["endpoint_url"]
