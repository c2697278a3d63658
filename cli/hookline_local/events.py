"""The events Lambda hands a function: the SQS event of an event source mapping and EventBridge scheduled events."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["lambda_message_attributes", "scheduled_event", "sqs_event", "sqs_record"]

# The system attributes Lambda copies into each record (the rest of ReceiveMessage's "All" stays out).
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes (StringValue/BinaryValue/DataType) in the camelCase shape of Lambda's SQS event."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = _b64(value["BinaryValue"])
        item["stringListValues"] = list(value.get("StringListValues", []))
        item["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
        item["dataType"] = value["DataType"]
        converted[name] = item
    return converted


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One Records[] entry exactly as Lambda builds it from a ReceiveMessage result."""
    system = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: system[key] for key in _RECORD_ATTRIBUTES if key in system},
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event of one event-source-mapping invocation: {"Records": [...]} in receive order."""
    return {"Records": [sqs_record(message, queue_arn=queue_arn, region=region) for message in messages]}


def scheduled_event(  # noqa: PLR0913 - the fields of a scheduled event, each a keyword
    *,
    kind: Literal["events", "scheduler"],
    resource_arn: str,
    region: str,
    account_id: str,
    now: datetime,
    payload: str | None = None,
    event_id: str | None = None,
) -> Any:
    """What a schedule delivers: the target's Input when set, else the default "Scheduled Event" notification."""
    if payload is not None:
        return json.loads(payload)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if kind == "scheduler" else "aws.events",
        "account": account_id,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [resource_arn],
        # EventBridge rules send an empty object; Scheduler's default notification carries it as a JSON string.
        "detail": "{}" if kind == "scheduler" else {},
    }
