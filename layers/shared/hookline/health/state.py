"""Flap damping (pure): the state changes only after enough consecutive failures or successes.

``unknown`` (never checked, or just registered) moves to ``unhealthy`` after ``failure_threshold`` consecutive
failures and to ``healthy`` after ``success_threshold`` consecutive successes, exactly like the two settled states;
a single result never flips a state unless its threshold is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hookline.registry import HealthCheck, HealthState, HealthStatus

__all__ = ["Step", "advance"]


@dataclass(frozen=True)
class Step:
    """The counters and state after applying one probe result."""

    old_state: HealthState
    new_state: HealthState
    consecutive_failures: int
    consecutive_successes: int

    @property
    def changed(self) -> bool:
        """Whether this result moved the integration to another state."""
        return self.new_state != self.old_state


def advance(status: HealthStatus, passed: bool, check: HealthCheck) -> Step:
    """Apply one probe result to the recorded status; a pass resets the failure run and vice versa."""
    if passed:
        successes, failures = status.consecutive_successes + 1, 0
        new_state: HealthState = "healthy" if successes >= check.success_threshold else status.state
    else:
        successes, failures = 0, status.consecutive_failures + 1
        new_state = "unhealthy" if failures >= check.failure_threshold else status.state
    return Step(
        old_state=status.state,
        new_state=new_state,
        consecutive_failures=failures,
        consecutive_successes=successes,
    )
