"""Which state changes alert, and what the alert says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hookline.health.alerts import AlertPublisher, format_alert, is_alert_worthy
from hookline.health.model import StateChange

if TYPE_CHECKING:
    from hookline.registry import HealthState


def change(old: HealthState, new: HealthState, *, name: str = "acme-billing", **extra: Any) -> StateChange:
    values: dict[str, Any] = {
        "integration": name,
        "old_state": old,
        "new_state": new,
        "reason": "status 503, expected 2xx",
        "latency_ms": 87,
        "checked_at": "2026-11-28T12:00:00.000000Z",
        "consecutive_failures": 3,
        "consecutive_successes": 0,
    }
    values.update(extra)
    return StateChange(**values)


@pytest.mark.parametrize(
    ("old", "new", "worthy"),
    [
        ("healthy", "unhealthy", True),
        ("unknown", "unhealthy", True),
        ("unhealthy", "healthy", True),
        ("unknown", "healthy", False),
        ("healthy", "healthy", False),
    ],
)
def test_alert_worthy_changes(old: HealthState, new: HealthState, worthy: bool) -> None:
    assert is_alert_worthy(change(old, new)) is worthy


def test_unhealthy_alert_names_integration_states_reason_latency_time_and_breakers() -> None:
    subject, body = format_alert(change("healthy", "unhealthy"), steered=("https://hooks.acme.com",))
    assert subject == "hookline: acme-billing is UNHEALTHY"
    assert "Integration: acme-billing" in body
    assert "State: healthy -> unhealthy" in body
    assert "Reason: status 503, expected 2xx" in body
    assert "Last latency: 87 ms" in body
    assert "Checked at: 2026-11-28T12:00:00.000000Z" in body
    assert "Circuit breakers forced open by health: https://hooks.acme.com" in body


def test_recovery_alert() -> None:
    subject, body = format_alert(change("unhealthy", "healthy", reason=None, latency_ms=None), steered=("https://a",))
    assert subject == "hookline: acme-billing recovered (healthy)"
    assert "Reason: all conditions passed" in body
    assert "Last latency: n/a" in body
    assert "Circuit breakers closed by health: https://a" in body


def test_subject_fits_sns_limit() -> None:
    subject, _ = format_alert(change("healthy", "unhealthy", name="n" * 128))
    assert len(subject) <= 100
    assert "\n" not in subject


class _FakeSns:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"MessageId": f"m-{len(self.calls)}"}


def test_publisher_sends_only_alert_worthy_changes() -> None:
    sns = _FakeSns()
    publisher = AlertPublisher("arn:aws:sns:us-east-1:123456789012:alerts", client=sns)  # type: ignore[arg-type]
    assert publisher.publish(change("unknown", "healthy")) is None
    assert publisher.publish(change("healthy", "unhealthy")) == "m-1"
    assert len(sns.calls) == 1
    call = sns.calls[0]
    assert call["TopicArn"].endswith(":alerts")
    assert call["Subject"] == "hookline: acme-billing is UNHEALTHY"
    assert call["MessageAttributes"]["new_state"] == {"DataType": "String", "StringValue": "unhealthy"}
