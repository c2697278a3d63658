"""One SNS message per health state change worth a human's attention.

Alert-worthy: healthy -> unhealthy, unknown -> unhealthy (a new integration that never worked) and
unhealthy -> healthy (recovery). Not alert-worthy: unknown -> healthy, the normal first result of every new
integration, which would otherwise page someone for each registration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from hookline.health.model import StateChange

__all__ = ["AlertPublisher", "format_alert", "is_alert_worthy"]

_SUBJECT_LIMIT = 100  # SNS rejects longer subjects (and any line break in them)


def is_alert_worthy(change: StateChange) -> bool:
    """Whether a state change should notify: every change except unknown -> healthy."""
    if change.old_state == change.new_state:
        return False
    return not (change.old_state == "unknown" and change.new_state == "healthy")


def format_alert(change: StateChange, *, steered: tuple[str, ...] = ()) -> tuple[str, str]:
    """The (subject, body) of the alert for one state change."""
    if change.new_state == "unhealthy":
        headline = f"hookline: {change.integration} is UNHEALTHY"
    else:
        headline = f"hookline: {change.integration} recovered (healthy)"
    subject = headline if len(headline) <= _SUBJECT_LIMIT else headline[: _SUBJECT_LIMIT - 3] + "..."
    latency = "n/a" if change.latency_ms is None else f"{change.latency_ms} ms"
    lines = [
        f"Integration: {change.integration}",
        f"State: {change.old_state} -> {change.new_state}",
        f"Reason: {change.reason or 'all conditions passed'}",
        f"Last latency: {latency}",
        f"Checked at: {change.checked_at}",
        f"Consecutive failures: {change.consecutive_failures}, successes: {change.consecutive_successes}",
    ]
    if steered:
        action = "forced open" if change.new_state == "unhealthy" else "closed"
        lines.append(f"Circuit breakers {action} by health: {', '.join(steered)}")
    lines.append(f"Details: hookline health {change.integration}")
    return subject, "\n".join(lines) + "\n"


class AlertPublisher:
    """Publishes alert-worthy state changes to the alert topic."""

    def __init__(self, topic_arn: str, *, client: SNSClient | None = None) -> None:
        self.topic_arn = topic_arn
        self._client: SNSClient = client or boto3.client("sns")

    def publish(self, change: StateChange, *, steered: tuple[str, ...] = ()) -> str | None:
        """Send the alert for ``change`` if it is alert-worthy; return the SNS message id (None if not sent)."""
        if not self.topic_arn or not is_alert_worthy(change):
            return None
        subject, body = format_alert(change, steered=steered)
        attributes: dict[str, Any] = {
            "integration": {"DataType": "String", "StringValue": change.integration},
            "new_state": {"DataType": "String", "StringValue": change.new_state},
            "old_state": {"DataType": "String", "StringValue": change.old_state},
        }
        response = self._client.publish(
            TopicArn=self.topic_arn, Subject=subject, Message=body, MessageAttributes=attributes
        )
        return response.get("MessageId")
