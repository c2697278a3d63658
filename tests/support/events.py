"""The one loader of events/ for tests, plus SQS events built the way Lambda builds them, and a fake LambdaContext."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookline_local.events import sqs_event

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
DEFAULT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:hookline-DeliveryQueue"

__all__ = [
    "DEFAULT_QUEUE_ARN",
    "EVENTS_DIR",
    "FakeLambdaContext",
    "event_from_queue",
    "load_event",
    "make_record",
    "make_sqs_event",
]


@cache
def _load(name: str) -> dict[str, Any]:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
        return data


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json`` (safe to modify)."""
    return copy.deepcopy(_load(name))


def make_record(  # noqa: PLR0913 - a test builder: every field optional
    body: str | dict[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    receipt_handle: str | None = None,
    message_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One synthetic SQS record (for unit tests that never touch a queue); attributes in Lambda's camelCase shape."""
    text = body if isinstance(body, str) else json.dumps(body)
    message_id = message_id or str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle or f"rh-{message_id}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795852800000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795852800000",
        },
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def make_sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """An SQS event of the given records."""
    return {"Records": list(records)}


def event_from_queue(
    sqs: Any, queue_url: str, *, max_messages: int = 10, wait_s: int = 0, visibility_timeout: int | None = None
) -> dict[str, Any]:
    """Receive up to ``max_messages`` from a (moto) queue and build the event Lambda would hand the function."""
    kwargs: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_s,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    messages = sqs.receive_message(**kwargs).get("Messages", [])
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs_event(messages, queue_arn=arn, region=arn.split(":")[3])


@dataclass
class FakeLambdaContext:
    """The LambdaContext fields Powertools reads, with an injectable remaining-time clock."""

    remaining_ms: Callable[[], int] = lambda: 60_000
    function_name: str = "hookline-DeliveryFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:hookline-DeliveryFunction"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name: str = "/aws/lambda/hookline-DeliveryFunction"
    log_stream_name: str = "2026/11/28/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left in this invocation."""
        return self.remaining_ms()
