"""Delivery's own settings (queues to re-enqueue to, lane, budgets, expiry), read once from the environment.

They complement ``hookline.settings.Settings`` (what every function shares) with what only the delivery functions
read; docs/delivery.md lists the variables and the template parameters behind them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hookline.delivery.parking import ParkingConfig
from hookline.settings import SettingsError, parse_seconds

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_EXPIRY_SLACK_S", "DeliveryConfig"]

DEFAULT_EXPIRY_SLACK_S = 3600.0
"""Added to the retry schedule's longest total (every delay +20%) to bound a failing message's age."""


def _seconds(name: str, value: str, *, default: float, low: float = 0.0) -> float:
    number = parse_seconds(name, value, low=low)
    return default if number is None else number


@dataclass(frozen=True)
class DeliveryConfig:
    """What the delivery functions read beyond ``Settings``."""

    lane: str = "fast"
    """DELIVERY_LANE: ``fast`` (DeliveryFunction) or ``slow`` (SlowDeliveryFunction); it names the lane in logs."""
    retry_queue_url: str = ""
    """Where retries are re-enqueued (RETRY_QUEUE_URL); empty: back to the queue the record came from."""
    slow_queue_url: str = ""
    """SLOW_QUEUE_URL: the slow lane's queue; empty: no slow lane (nothing is cut or moved)."""
    request_budget_s: float = 3.0
    """REQUEST_BUDGET_S: a fast-lane request over this is cut and its record moved to the slow lane; in the slow lane,
    an answer within it lifts the origin's slow mark."""
    slow_mark_s: float = 300.0
    """SLOW_MARK_S: how long an origin stays marked slow after it was last seen slow."""
    park_after_s: float = 3600.0
    """PARK_AFTER_S: waits longer than this are parked on EventBridge Scheduler (PARK_GROUP) instead of hopping."""
    park_group: str = ""
    """PARK_GROUP: the schedule group parked messages go to; empty: long waits hop (900 s at a time)."""
    park_role_arn: str = ""
    """PARK_ROLE_ARN: the role EventBridge Scheduler assumes to send a parked message back."""
    park_dead_letter_arn: str = ""
    """PARK_DLQ_ARN: where Scheduler sends a parked message whose send kept failing for 24 h."""
    pacing_table: str = ""
    """PACING_TABLE: the pacer's DynamoDB table; empty: pacing in memory (one environment, tests, local runs)."""
    expiry_slack_s: float = DEFAULT_EXPIRY_SLACK_S
    """RETRY_EXPIRY_SLACK_S: a failing message ends (``expired``) once its age passes the schedule plus this."""

    @property
    def parking(self) -> ParkingConfig | None:
        """Where long waits are parked, or None (they hop)."""
        if not (self.park_group and self.park_role_arn):
            return None
        return ParkingConfig(self.park_group, self.park_role_arn, self.park_after_s, self.park_dead_letter_arn)

    @property
    def budget_s(self) -> float | None:
        """The request budget that cuts requests: the fast lane's when there is a slow lane to move records to."""
        return self.request_budget_s if self.lane == "fast" and self.slow_queue_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeliveryConfig:
        """Read and validate the environment (os.environ by default)."""
        env = os.environ if environ is None else environ
        lane = env.get("DELIVERY_LANE", "fast") or "fast"
        if lane not in ("fast", "slow"):
            raise SettingsError(f"DELIVERY_LANE must be fast or slow, got {lane!r}")
        return cls(
            lane=lane,
            retry_queue_url=env.get("RETRY_QUEUE_URL", ""),
            slow_queue_url=env.get("SLOW_QUEUE_URL", ""),
            request_budget_s=_seconds("REQUEST_BUDGET_S", env.get("REQUEST_BUDGET_S", ""), default=3.0, low=0.1),
            slow_mark_s=_seconds("SLOW_MARK_S", env.get("SLOW_MARK_S", ""), default=300.0, low=1.0),
            pacing_table=env.get("PACING_TABLE", ""),
            park_after_s=_seconds("PARK_AFTER_S", env.get("PARK_AFTER_S", ""), default=3600.0, low=1.0),
            park_group=env.get("PARK_GROUP", ""),
            park_role_arn=env.get("PARK_ROLE_ARN", ""),
            park_dead_letter_arn=env.get("PARK_DLQ_ARN", ""),
            expiry_slack_s=_seconds(
                "RETRY_EXPIRY_SLACK_S", env.get("RETRY_EXPIRY_SLACK_S", ""), default=DEFAULT_EXPIRY_SLACK_S
            ),
        )
