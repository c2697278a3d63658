"""Value types the health check passes between its steps: a probe's observation, its verdict and a state change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from hookline.registry import HealthState

__all__ = ["CheckOutcome", "ProbeResult", "StateChange", "Verdict"]


@dataclass(frozen=True)
class ProbeResult:
    """What one probe observed: a response (status, latency, body prefix, certificate expiry) or an error."""

    url: str
    method: str
    latency_ms: int
    status_code: int | None = None
    body: bytes = b""
    certificate_not_after: datetime | None = None
    error: str | None = None
    error_reason: str | None = None

    @property
    def responded(self) -> bool:
        """Whether the target produced an HTTP response."""
        return self.status_code is not None


@dataclass(frozen=True)
class Verdict:
    """The evaluation of one probe against an integration's conditions."""

    passed: bool
    reason: str | None = None
    certificate_days_left: float | None = None


@dataclass(frozen=True)
class StateChange:
    """A health state transition that was recorded (exactly one writer sees each one)."""

    integration: str
    old_state: HealthState
    new_state: HealthState
    reason: str | None
    latency_ms: int | None
    checked_at: str
    consecutive_failures: int
    consecutive_successes: int


@dataclass(frozen=True)
class CheckOutcome:
    """The result of checking one integration in one run."""

    integration: str
    state: HealthState
    passed: bool
    reason: str | None
    latency_ms: int | None
    certificate_days_left: float | None = None
    change: StateChange | None = None
    applied: bool = True
    skipped: str | None = None
