"""The local stack runs whatever a template declares: two lanes (queue + function each), rules, Scheduler schedules
(rate and one-time ``at``), and a per-queue in-flight quota that the event source mapping meets like SQS's.

The template is written here, not hookline's: no function, queue or schedule name is known to the local stack.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest

from hookline_local import (
    SQS_INFLIGHT_QUOTA,
    CallableInvoker,
    FunctionSpec,
    Invoker,
    LocalStack,
    MotoOptions,
    RunOptions,
    TemplateError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hookline_local.invoke import LambdaContext

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Handler: app.handler, Runtime: python3.13, Timeout: 5}
Resources:
  FastQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 30}
  SlowQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 30}
  FastFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fast
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt FastQueue.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/slow
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt SlowQueue.Arn, BatchSize: 5, ScalingConfig: {MaximumConcurrency: 3}}
        Tick:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 hour)}
  SweepFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sweep
      Events:
        Daily:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
  SchedulerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{Effect: Allow, Principal: {Service: scheduler.amazonaws.com}, Action: sts:AssumeRole}]
  OnceAlready:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at(2020-01-01T00:00:00)
      ScheduleExpressionTimezone: Europe/Paris
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt SweepFunction.Arn, RoleArn: !GetAtt SchedulerRole.Arn, Input: '{"once": "past"}'}
  OnceLater:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: at(2999-01-01T00:00:00)
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt SweepFunction.Arn, RoleArn: !GetAtt SchedulerRole.Arn, Input: '{"once": "future"}'}
"""


class Functions:
    """In-process stand-ins for the template's functions: each records its events; SlowFunction waits for a gate."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, list[Any]] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()

    def _handler(self, logical_id: str) -> Any:
        def handle(event: dict[str, Any], context: LambdaContext) -> None:
            with self.lock:
                self.events.setdefault(logical_id, []).append(event)
            if "Records" in event and logical_id == "SlowFunction":
                self.arrived.set()
                self.gate.wait(4)  # below the function's 5 s timeout

        return handle

    def factory(self, spec: FunctionSpec) -> Invoker:
        return CallableInvoker(self._handler(spec.logical_id), function_name=spec.name, timeout_s=spec.timeout_s)

    def batches(self, logical_id: str) -> list[list[str]]:
        """The bodies of each SQS batch the function got."""
        with self.lock:
            events = list(self.events.get(logical_id, []))
        return [[record["body"] for record in event["Records"]] for event in events if "Records" in event]

    def scheduled(self, logical_id: str) -> list[Any]:
        """The scheduled events (or target inputs) the function got."""
        with self.lock:
            return [event for event in self.events.get(logical_id, []) if "Records" not in event]


@pytest.fixture(scope="module")
def functions() -> Functions:
    return Functions()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, functions: Functions) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("generic")
    (root / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    with LocalStack.start(
        root,
        moto=MotoOptions(inflight_quotas={"SlowQueue": 2}),
        run=RunOptions(invoker_factory=functions.factory),
    ) as started:
        yield started


def _send(stack: LocalStack, queue: str, count: int) -> None:
    url = stack.physical_id(queue)
    for index in range(count):
        stack.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"n": index, "queue": queue}))


def test_every_queue_feeds_its_own_function(stack: LocalStack, functions: Functions) -> None:
    lanes = {(m.spec.queue_url, m.spec.function_logical_id, m.spec.maximum_concurrency) for m in stack.mappings}
    assert lanes == {
        (stack.physical_id("FastQueue"), "FastFunction", 2),
        (stack.physical_id("SlowQueue"), "SlowFunction", 3),
    }
    _send(stack, "FastQueue", 7)
    _send(stack, "SlowQueue", 3)
    assert stack.wait_idle(timeout_s=20)
    fast = [json.loads(body) for batch in functions.batches("FastFunction") for body in batch]
    slow = [json.loads(body) for batch in functions.batches("SlowFunction") for body in batch]
    assert sorted(item["n"] for item in fast) == list(range(7)) and {item["queue"] for item in fast} == {"FastQueue"}
    assert sorted(item["n"] for item in slow) == list(range(3)) and {item["queue"] for item in slow} == {"SlowQueue"}


def test_every_schedule_runs_its_own_function(stack: LocalStack, functions: Functions) -> None:
    runners = {runner.spec.logical_id: runner for runner in stack.schedules}
    assert {(r.spec.function_logical_id, r.spec.kind) for r in runners.values()} == {
        ("SlowFunction", "scheduler"),
        ("SweepFunction", "events"),
        ("SweepFunction", "scheduler"),
    } and len(runners) == 4
    assert runners["OnceLater"].describe() == "once at 2999-01-01T00:00:00+00:00"
    assert runners["OnceAlready"].run_at is not None and str(runners["OnceAlready"].run_at.tzinfo) == "Europe/Paris"
    # A one-time schedule whose moment has passed runs at once; the later one and the rates wait.
    assert stack.wait_idle(timeout_s=10)
    assert {"once": "past"} in functions.scheduled("SweepFunction")
    assert {"once": "future"} not in functions.scheduled("SweepFunction")
    results = stack.run_schedules()
    assert set(results) == set(runners) and all(result.ok for result in results.values())
    assert {"once": "future"} in functions.scheduled("SweepFunction")
    assert any(event.get("source") == "aws.events" for event in functions.scheduled("SweepFunction"))
    assert any(event.get("source") == "aws.scheduler" for event in functions.scheduled("SlowFunction"))


def test_the_mapping_never_holds_more_than_the_queue_quota_in_flight(stack: LocalStack, functions: Functions) -> None:
    queues = stack.queues()
    assert queues["SlowQueue"].quota == 2 and queues["FastQueue"].quota == SQS_INFLIGHT_QUOTA
    before = len(functions.batches("SlowFunction"))
    functions.gate.clear()
    functions.arrived.clear()
    try:
        _send(stack, "SlowQueue", 6)
        assert functions.arrived.wait(10)
        # Three pollers, two messages in flight at most: a poller without a batch long-polls on, and at the quota its
        # receives come back empty, however many messages wait.
        assert _eventually(lambda: stack.queues()["SlowQueue"].receives_refused > 0)
        state = stack.queues()["SlowQueue"]
        assert state.in_flight == 2 and state.visible >= 4
    finally:
        functions.gate.set()
    assert stack.wait_idle(timeout_s=30)
    batches = functions.batches("SlowFunction")[before:]
    assert sorted(json.loads(body)["n"] for batch in batches for body in batch) == list(range(6))
    assert max(len(batch) for batch in batches) <= 2  # BatchSize 5, but never more than the quota in flight
    assert stack.queues()["SlowQueue"].peak_in_flight == 2
    assert stack.state()["queues"]["SlowQueue"]["inflight_quota"] == 2


def _eventually(condition: Any, timeout_s: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.1)):
        if condition():
            return True
        done.wait(0.1)
    return bool(condition())


def test_a_quota_for_a_queue_the_template_lacks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE, encoding="utf-8")
    with pytest.raises(TemplateError, match="in-flight quota for NoSuchQueue: no such queue"):
        LocalStack.start(
            tmp_path, moto=MotoOptions(inflight_quotas={"NoSuchQueue": 3}), run=RunOptions(run_functions=False)
        )


def _create_schedule(stack: LocalStack, name: str, when: str, target: dict[str, str], **options: Any) -> None:
    stack.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=f"at({when})",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"RoleArn": "arn:aws:iam::123456789012:role/scheduler", **target},
        **options,
    )


def test_one_time_schedules_created_at_run_time_fire_once_when_due(stack: LocalStack, functions: Functions) -> None:
    body = '{"id": "msg_parked",  "kept": "byte for byte"}'
    queue = {"Arn": stack.state()["queues"]["FastQueue"]["arn"], "Input": body}
    _create_schedule(stack, "park-1", "2020-01-01T00:00:00", queue, ActionAfterCompletion="DELETE")
    function = {"Arn": stack.functions["SweepFunction"].arn, "Input": '{"runtime": 1}'}
    _create_schedule(stack, "call-1", "2020-01-01T00:00:00", function)
    assert stack.wait_idle(timeout_s=20)
    assert body in [body for batch in functions.batches("FastFunction") for body in batch]
    assert functions.scheduled("SweepFunction").count({"runtime": 1}) == 1
    names = {item["Name"] for item in stack.client("scheduler").list_schedules()["Schedules"]}
    assert "park-1" not in names and "call-1" in names  # ActionAfterCompletion DELETE, or kept after its one run
    runtime = stack.emulators.runtime_schedules if stack.emulators else None
    assert runtime is not None and runtime.poll_once() == 0  # fired once, never again


def test_a_one_time_schedule_still_to_come_keeps_the_stack_busy(stack: LocalStack) -> None:
    queue = {"Arn": stack.state()["queues"]["FastQueue"]["arn"], "Input": "later"}
    _create_schedule(stack, "park-later", "2999-01-01T00:00:00", queue)
    assert not stack.wait_idle(timeout_s=1)
    stack.client("scheduler").delete_schedule(Name="park-later")
    assert stack.wait_idle(timeout_s=10)
