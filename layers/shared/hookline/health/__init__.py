"""Integration health: probe every registered integration, record its health, alert, and steer the breakers.

See docs/health.md. Modules: probe (one request), conditions (pass/fail), state (flap damping), store (conditional
writes + history), alerts (SNS), steering (breakers), telemetry (metrics), service (one run), factory (wiring).
The service and factory (which need the HTTP client) are imported from their modules:
``from hookline.health.service import HealthService``.
"""

from __future__ import annotations

from hookline.health.alerts import AlertPublisher, format_alert, is_alert_worthy
from hookline.health.conditions import certificate_days_left, describe_statuses, evaluate
from hookline.health.model import CheckOutcome, ProbeResult, StateChange, Verdict
from hookline.health.state import Step, advance
from hookline.health.steering import HEALTH_SOURCE, BreakerSteering, SteeringResult, target_origin
from hookline.health.store import HealthRecord, HealthStore, HistoryEntry, LoadedEndpoint, format_timestamp
from hookline.health.telemetry import MetricsSink, PowertoolsMetricsSink, RecordingMetricsSink

__all__ = [
    "HEALTH_SOURCE",
    "AlertPublisher",
    "BreakerSteering",
    "CheckOutcome",
    "HealthRecord",
    "HealthStore",
    "HistoryEntry",
    "LoadedEndpoint",
    "MetricsSink",
    "PowertoolsMetricsSink",
    "ProbeResult",
    "RecordingMetricsSink",
    "StateChange",
    "SteeringResult",
    "Step",
    "Verdict",
    "advance",
    "certificate_days_left",
    "describe_statuses",
    "evaluate",
    "format_alert",
    "format_timestamp",
    "is_alert_worthy",
    "target_origin",
]
