"""Delivery log lines for history tests, written into a CloudWatch Logs group (moto) the way Lambda would."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from hookline_local.deploy import StackTarget, deploy_stack
from hookline_local.template import translate
from tests.support.aws import REGION, client
from tests.support.template import ROOT, load_template

if TYPE_CHECKING:
    from hookline_local.template import TranslatedTemplate


@cache
def _with_payloads() -> TranslatedTemplate:
    # PayloadTable exists only with RetainPayloads=true (and history on).
    return translate(load_template(), base_dir=ROOT, region=REGION, parameters={"RetainPayloads": "true"})


def create_payload_table(dynamodb: Any) -> str:
    """PayloadTable, created from the template (RetainPayloads=true) in the moto ``dynamodb`` talks to."""
    url = str(dynamodb.meta.endpoint_url)
    endpoint_url = None if "amazonaws.com" in url else url
    target = StackTarget(f"t-{uuid.uuid4().hex[:10]}", region=REGION, endpoint_url=endpoint_url)
    stack = deploy_stack(
        _with_payloads(), target, client=lambda service: client(service, endpoint_url), only=["PayloadTable"]
    )
    return stack.physical_id("PayloadTable")


def attempt_line(  # noqa: PLR0913 - test builder: one keyword per log line field
    message_id: str,
    outcome: str,
    *,
    endpoint: str = "acme",
    event_type: str = "invoice.paid",
    attempt: int = 1,
    status: int | None = 200,
    target: int | None = 0,
    reason: str | None = None,
    error: str | None = None,
    replay: bool = False,
) -> str:
    """One delivery log line in the compact line schema (what Powertools Logger prints)."""
    line: dict[str, Any] = {
        "level": "INFO" if outcome in {"delivered", "retrying", "filtered"} else "WARNING",
        "message": outcome,
        "service": "hookline-delivery",
        "webhook_id": message_id,
        "endpoint": endpoint,
        "event_type": event_type,
        "attempt": attempt,
        "target": target,
        "status": status,
        "latency_ms": 12.5,
        "outcome": outcome,
    }
    if reason:
        line["reason"] = reason
    if error:
        line["error"] = error
    if replay:
        line["replay"] = True
    return json.dumps(line, separators=(",", ":"))


@dataclass
class LogGroupWriter:
    """Writes log lines into one log group (its own stream), in time order, as the function's log would."""

    client: Any
    group: str
    stream: str = field(default_factory=lambda: f"2026/11/28/[$LATEST]{uuid.uuid4().hex}")

    def __post_init__(self) -> None:
        existing = self.client.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"]
        if not any(group["logGroupName"] == self.group for group in existing):
            self.client.create_log_group(logGroupName=self.group)
        self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def server_now(self) -> float:
        """The log service's own clock (unix seconds): the group's creation time. moto refuses events far from it."""
        groups = self.client.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"]
        return float(next(g for g in groups if g["logGroupName"] == self.group)["creationTime"]) / 1000

    def write(self, *lines: tuple[float, str]) -> None:
        """Put (unix seconds, message) events."""
        events = [{"timestamp": int(at * 1000), "message": message} for at, message in sorted(lines)]
        self.client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)


def ship_output(writer: LogGroupWriter, output: str, *, start: float) -> int:
    """Put a function's captured stdout into its log group, one event per line, as Lambda does; returns the count.

    Lines get consecutive milliseconds from ``start`` (the order they were printed in).
    """
    lines = [line for line in output.splitlines() if line.strip()]
    if lines:
        writer.write(*((start + index / 1000, line) for index, line in enumerate(lines)))
    return len(lines)
