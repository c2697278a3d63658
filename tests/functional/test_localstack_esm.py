"""The SQS event source mapping emulator against a real moto server, with small in-process handlers."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from hookline_local import CallableInvoker, SqsEventSourceMapping, SqsMappingSpec, failed_item_ids
from tests.support.aws import REGION, client
from tests.support.template import create_queues

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hookline_local.invoke import LambdaContext


@dataclass
class Queues:
    sqs: Any
    url: str
    arn: str
    dlq_url: str

    def send(self, *bodies: str, **kwargs: Any) -> list[str]:
        return [self.sqs.send_message(QueueUrl=self.url, MessageBody=body, **kwargs)["MessageId"] for body in bodies]

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


@pytest.fixture
def queues(moto_endpoint: str) -> Queues:
    """DeliveryQueue and its DLQ from template.yaml's properties; visibility 1 s and maxReceiveCount 2 for speed."""
    sqs = client("sqs", moto_endpoint)
    created = create_queues(sqs, "DeliveryQueue")
    delivery, dlq = created["DeliveryQueue"], created["DeadLetterQueue"]
    redrive = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 2})
    sqs.set_queue_attributes(QueueUrl=delivery.url, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive})
    return Queues(sqs, delivery.url, delivery.arn, dlq.url)


def _mapping(queues: Queues, **options: Any) -> SqsEventSourceMapping:
    spec = SqsMappingSpec(
        logical_id="DeliveryFunctionDeliveries",
        function_logical_id="DeliveryFunction",
        queue_arn=queues.arn,
        queue_url=queues.url,
        batch_size=options.pop("batch_size", 10),
        maximum_batching_window_s=options.pop("window", 0.0),
        report_batch_item_failures=options.pop("report", True),
        maximum_concurrency=options.pop("concurrency", 2),
    )
    factory = options.pop("invoker_factory", lambda: CallableInvoker(lambda event, context: None))
    return SqsEventSourceMapping(spec, sqs=queues.sqs, invoker_factory=factory, region=REGION, **options)


class Recorder:
    """A handler that records events and answers with ``respond(event, context)``."""

    def __init__(self, respond: Callable[[dict[str, Any], LambdaContext], Any] = lambda event, context: None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[LambdaContext] = []
        self._respond = respond

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self._respond(event, context)

    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]


def _failing(queues: Queues, predicate: Callable[[dict[str, Any]], bool]) -> Callable[..., Any]:
    """Report matching records as failed and make them visible again at once (as the delivery function schedules)."""

    def respond(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        failed = [record for record in event["Records"] if predicate(record)]
        for record in failed:
            queues.sqs.change_message_visibility(
                QueueUrl=queues.url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in failed]}

    return respond


def test_a_successful_batch_is_deleted_and_carries_lambdas_sqs_event_shape(queues: Queues) -> None:
    ids = queues.send("one", "two")
    attributes = {
        "reason": {"DataType": "String", "StringValue": "timeout"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    ids += queues.send("three", MessageAttributes=attributes)
    handler = Recorder()
    outcome = _mapping(queues).poll_once(CallableInvoker(handler, timeout_s=5))
    assert outcome is not None
    assert sorted(outcome.deleted) == sorted(ids)
    assert not outcome.batch_failed
    assert queues.depth() == 0
    records = {record["messageId"]: record for record in handler.records()}
    assert set(records) == set(ids)
    for record in records.values():
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queues.arn
        assert record["awsRegion"] == REGION
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324 - SQS's digest
        assert record["receiptHandle"]
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert set(record["attributes"]) >= {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    with_attributes = records[ids[2]]
    assert with_attributes["messageAttributes"]["reason"] == {
        "stringValue": "timeout",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert with_attributes["messageAttributes"]["blob"]["binaryValue"] == base64.b64encode(b"\x00\x01").decode()
    assert "md5OfMessageAttributes" in with_attributes
    context = handler.contexts[0]
    assert context.get_remaining_time_in_millis() <= 5000
    assert context.aws_request_id == outcome.request_id


def test_partial_failures_keep_only_the_listed_messages_which_return_with_receive_count_2(queues: Queues) -> None:
    ids = queues.send("ok-1", "fail-1", "ok-2", "fail-2")
    mapping = _mapping(queues)
    outcome = mapping.poll_once(CallableInvoker(Recorder(_failing(queues, lambda r: r["body"].startswith("fail")))))
    assert outcome is not None
    assert sorted(outcome.deleted) == sorted([ids[0], ids[2]])
    assert sorted(outcome.kept) == sorted([ids[1], ids[3]])
    again = Recorder()
    mapping.poll_once(CallableInvoker(again))
    assert sorted(r["messageId"] for r in again.records()) == sorted([ids[1], ids[3]])
    assert {r["attributes"]["ApproximateReceiveCount"] for r in again.records()} == {"2"}
    assert queues.depth() == 0
    assert mapping.stats.item_failures == 2 and mapping.stats.deleted == 4


def test_a_raised_exception_fails_the_whole_batch_until_the_visibility_timeout(queues: Queues) -> None:
    ids = queues.send("a", "b")

    def boom(event: dict[str, Any], context: LambdaContext) -> Any:
        raise RuntimeError("receiver exploded")

    mapping = _mapping(queues)
    outcome = mapping.poll_once(CallableInvoker(boom))
    assert outcome is not None and outcome.batch_failed
    assert outcome.deleted == ()
    assert "RuntimeError: receiver exploded" in (outcome.error or "")
    assert queues.depth() == 2
    time.sleep(1.1)  # the queue's own visibility timeout (1 s here) brings them back
    again = Recorder()
    mapping.poll_once(CallableInvoker(again))
    assert sorted(r["messageId"] for r in again.records()) == sorted(ids)
    assert {r["attributes"]["ApproximateReceiveCount"] for r in again.records()} == {"2"}


def test_a_timeout_fails_the_whole_batch(queues: Queues) -> None:
    queues.send("slow")
    release = threading.Event()

    def slow(event: dict[str, Any], context: LambdaContext) -> Any:
        release.wait(5)

    mapping = _mapping(queues)
    outcome = mapping.poll_once(CallableInvoker(slow, timeout_s=0.3))
    release.set()
    assert outcome is not None and outcome.batch_failed and outcome.deleted == ()
    assert "timed out" in (outcome.error or "")
    assert mapping.stats.timeouts == 1
    assert queues.depth() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "wrong-key"}]},
        {"batchItemFailures": "nope"},
        "done",
        ["a"],
    ],
)
def test_invalid_responses_fail_the_whole_batch(payload: Any) -> None:
    assert failed_item_ids(payload, {"m1", "m2"}) is None


@pytest.mark.parametrize("payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_responses_are_complete_success(payload: Any) -> None:
    assert failed_item_ids(payload, {"m1"}) == set()


def test_an_invalid_response_leaves_the_whole_batch_in_the_queue(queues: Queues) -> None:
    queues.send("x", "y")
    reply = {"batchItemFailures": [{"itemIdentifier": "unknown"}]}
    outcome = _mapping(queues).poll_once(CallableInvoker(lambda event, context: reply))
    assert outcome is not None and outcome.batch_failed and outcome.deleted == ()
    assert queues.depth() == 2


def test_without_report_batch_item_failures_the_response_is_ignored(queues: Queues) -> None:
    queues.send("x", "y")
    outcome = _mapping(queues, report=False).poll_once(CallableInvoker(Recorder(_failing(queues, lambda record: True))))
    assert outcome is not None and len(outcome.deleted) == 2
    assert queues.depth() == 0


def test_the_queues_redrive_moves_a_message_to_the_dlq_after_max_receive_count(queues: Queues) -> None:
    (message_id,) = queues.send("poison")
    mapping = _mapping(queues)
    handler = Recorder(_failing(queues, lambda record: True))
    for _ in range(2):  # maxReceiveCount 2: two failed attempts
        mapping.poll_once(CallableInvoker(handler))
    assert [r["attributes"]["ApproximateReceiveCount"] for r in handler.records()] == ["1", "2"]
    assert mapping.poll_once(CallableInvoker(handler)) is None  # the third receive moves it instead
    moved = queues.sqs.receive_message(QueueUrl=queues.dlq_url, MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["MessageId"] for m in moved] == [message_id]
    assert queues.depth() == 0


def test_batch_size_caps_a_batch(queues: Queues) -> None:
    queues.send(*[f"m{i}" for i in range(7)])
    mapping = _mapping(queues, batch_size=3)
    sizes = []
    while queues.depth():
        handler = Recorder()
        mapping.poll_once(CallableInvoker(handler))
        sizes.append(len(handler.records()))
    assert sizes == [3, 3, 1]


def test_a_batch_over_ten_fills_from_receives_made_at_once_each_message_once(queues: Queues) -> None:
    queues.sqs.set_queue_attributes(QueueUrl=queues.url, Attributes={"VisibilityTimeout": "30"})
    sent = queues.send(*[f"m{i}" for i in range(35)])
    handler = Recorder()
    outcome = _mapping(queues, batch_size=25, window=1.0).poll_once(CallableInvoker(handler))
    assert outcome is not None
    ids = [record["messageId"] for record in handler.records()]
    assert len(ids) == len(set(ids)) == 25 and set(ids) <= set(sent)
    assert sorted(outcome.deleted) == sorted(ids)  # settled by parallel DeleteMessageBatch calls, every one
    assert queues.depth() == 10


def test_the_batching_window_gathers_messages_sent_after_the_first(queues: Queues) -> None:
    # The visibility timeout must outlast the window (Lambda refuses a shorter one), else "first" comes back.
    queues.sqs.set_queue_attributes(QueueUrl=queues.url, Attributes={"VisibilityTimeout": "10"})
    queues.send("first")
    timer = threading.Timer(0.4, lambda: queues.send("second", "third"))
    timer.start()
    handler = Recorder()
    started = time.monotonic()
    _mapping(queues, window=1.5).poll_once(CallableInvoker(handler))
    elapsed = time.monotonic() - started
    timer.join()
    assert [r["body"] for r in handler.records()] == ["first", "second", "third"]
    assert 1.0 <= elapsed < 4.0


def test_without_a_window_the_first_receive_is_invoked_at_once(queues: Queues) -> None:
    queues.send("first")
    timer = threading.Timer(0.6, lambda: queues.send("late"))
    timer.start()
    handler = Recorder()
    _mapping(queues, window=0.0).poll_once(CallableInvoker(handler))
    timer.join()
    assert [r["body"] for r in handler.records()] == ["first"]


@pytest.fixture
def running(queues: Queues) -> Iterator[tuple[SqsEventSourceMapping, list[tuple[float, float]]]]:
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        started = time.monotonic()
        time.sleep(0.3)
        with lock:
            spans.append((started, time.monotonic()))

    mapping = _mapping(queues, batch_size=5, concurrency=2, invoker_factory=lambda: CallableInvoker(handler))
    mapping.start()
    yield mapping, spans
    mapping.stop()


def test_pollers_invoke_concurrently_and_wait_idle_sees_the_queue_drained(
    queues: Queues, running: tuple[SqsEventSourceMapping, list[tuple[float, float]]]
) -> None:
    mapping, spans = running
    queues.send(*[f"m{i}" for i in range(20)])
    assert mapping.wait_idle(timeout_s=8)
    assert mapping.stats.records == 20 and mapping.stats.deleted == 20
    assert queues.depth() == 0
    overlapping = any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])
    assert overlapping, "two pollers run batches at the same time"


def test_a_message_received_twice_while_gathering_appears_once_with_its_latest_receipt(queues: Queues) -> None:
    (message_id,) = queues.send("twice")
    first = queues.sqs.receive_message(QueueUrl=queues.url, VisibilityTimeout=0)["Messages"][0]
    second = queues.sqs.receive_message(QueueUrl=queues.url)["Messages"][0]
    handler = Recorder()
    outcome = _mapping(queues).process_batch([first, second], CallableInvoker(handler))
    (record,) = handler.records()
    assert record["messageId"] == message_id
    assert record["receiptHandle"] == second["ReceiptHandle"]
    assert outcome.deleted == (message_id,)
    assert queues.depth() == 0
