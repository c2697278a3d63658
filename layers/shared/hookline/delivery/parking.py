"""Parking: a wait longer than ``PARK_AFTER_S`` becomes one EventBridge Scheduler one-time schedule.

SQS delays a message by at most 900 s. A longer wait either hops (the message comes back every 900 s and is sent
again, a receive, a send, a delete and a share of an invocation each time) or is parked: one ``CreateSchedule`` with
``at(<due time>)`` whose universal target (``aws-sdk:sqs:sendMessage``) puts the message, body and attributes
unchanged, back on its lane's queue when it is due, then deletes itself (``ActionAfterCompletion: DELETE``).
bench/cost.py prices both: a park costs one scheduled invocation ($1 per million) plus the SendMessage, against about
$0.16 per million per hop when hops are batched, so waits of an hour and more are parked (docs/delivery.md
"Long waits").

The schedule's name is derived from the webhook-id and the message's retry state, so a record parked twice (a crash
after the park, before the delete) creates the same schedule once (``ConflictException`` means parked already).
A park that fails (throttled, too large for the target's input, not configured) falls back to hopping: nothing is
ever lost, it only costs more. Scheduler retries its target for 24 h and then sends the input to the DLQ.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hookline.delivery.requeue import Entry

__all__ = ["MAX_TARGET_INPUT_BYTES", "SQS_SEND_MESSAGE_TARGET", "Parking", "ParkingConfig", "schedule_name"]

SQS_SEND_MESSAGE_TARGET = "arn:aws:scheduler:::aws-sdk:sqs:sendMessage"
MAX_TARGET_INPUT_BYTES = 256 * 1024
"""EventBridge Scheduler's limit on a target's input; a larger message hops instead."""
_RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
_logger = logging.getLogger("hookline.delivery")


@dataclass(frozen=True)
class ParkingConfig:
    """Where and how to park: the schedule group, the role Scheduler assumes, the DLQ for targets that kept failing."""

    group: str
    role_arn: str
    park_after_s: float
    dead_letter_arn: str = ""


def schedule_name(webhook_id: str, state_text: str) -> str:
    """A schedule name (64 characters of ``[0-9a-zA-Z-_.]``) unique to one wait of one message."""
    digest = hashlib.sha256(f"{webhook_id}\n{state_text}".encode()).hexdigest()
    return f"hookline-{digest[:48]}"


def _input(queue_url: str, entry: Entry) -> str:
    attributes: dict[str, Any] = {}
    for name, value in entry.attributes.items():
        item: dict[str, Any] = {"DataType": value["DataType"]}
        binary = value.get("BinaryValue")
        if binary is not None:
            raw = binary if isinstance(binary, bytes) else str(binary).encode()
            item["BinaryValue"] = base64.b64encode(raw).decode("ascii")
        else:
            item["StringValue"] = value.get("StringValue", "")
        attributes[name] = item
    request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": entry.body}
    if attributes:
        request["MessageAttributes"] = attributes
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False)


def _at(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("at(%Y-%m-%dT%H:%M:%S)")


class Parking:
    """Parks messages on EventBridge Scheduler (blocking calls: run them in a worker thread)."""

    def __init__(self, scheduler: Any, config: ParkingConfig) -> None:
        self._scheduler = scheduler
        self.config = config
        self.requests = 0
        """CreateSchedule calls made (for benchmarks)."""

    def should_park(self, delay_s: float) -> bool:
        """Whether a wait of ``delay_s`` is parked rather than hopped."""
        return delay_s > self.config.park_after_s

    def park(self, queue_url: str, entry: Entry, *, due_at: float, name: str) -> bool:
        """Schedule ``entry`` onto ``queue_url`` at ``due_at``; False when it must hop instead (never raises)."""
        text = _input(queue_url, entry)
        if len(text.encode("utf-8")) > MAX_TARGET_INPUT_BYTES:
            return False
        target: dict[str, Any] = {
            "Arn": SQS_SEND_MESSAGE_TARGET,
            "RoleArn": self.config.role_arn,
            "Input": text,
            "RetryPolicy": _RETRY_POLICY,
        }
        if self.config.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.config.dead_letter_arn}
        self.requests += 1
        try:
            self._scheduler.create_schedule(
                Name=name,
                GroupName=self.config.group,
                ScheduleExpression=_at(due_at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target=target,
            )
        except Exception as error:  # noqa: BLE001 - a failed park hops instead: it costs more, it loses nothing
            if _code(error) == "ConflictException":
                return True  # this very wait was parked already (a crash before the delete)
            _logger.warning("parking failed, hopping instead: %s", _code(error) or type(error).__name__)
            return False
        return True


def _code(error: Exception) -> str:
    response: Mapping[str, Any] = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
