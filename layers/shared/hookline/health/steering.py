"""Steer delivery's circuit breakers from health results (rules in docs/health.md, "Steering the breakers").

- An integration that turns unhealthy forces the breaker of its primary URL's origin open with source "health":
  delivery skips that origin and goes straight to the fallbacks. Fallback origins are not touched: nothing probed
  them, and they are what delivery needs while the primary is down.
- An origin none of whose integrations is unhealthy has a health-forced open lifted (force_close, source "health"),
  so fallback traffic fails back to the primary without waiting for user traffic in half-open. This is checked on
  every run, not only on the recovery edge, so a close lost to a crash is repaired on the next run.
- Health never touches an operator's forced open, a disabled breaker, or an open/half-open breaker that delivery's
  passive counting tripped: those recover by the operator or by the breaker's own half-open probes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hookline.delivery.targets import origin_of
from resilience.breaker import BreakerState
from resilience.exceptions import StateStoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hookline.health.model import CheckOutcome
    from hookline.registry import Endpoint
    from resilience.breaker import BreakerRegistry, BreakerSnapshot

__all__ = ["HEALTH_SOURCE", "BreakerSteering", "SteeringResult", "target_origin"]

HEALTH_SOURCE = "health"
_LOGGER = logging.getLogger(__name__)


def target_origin(url: str) -> str:
    """The breaker name of a target, exactly as delivery names it: scheme://host[:port] (default port left out)."""
    return origin_of(url)


@dataclass(frozen=True)
class SteeringResult:
    """Breakers steered in one run, by integration, plus the ones left alone and why."""

    opened: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    closed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    left_alone: Mapping[str, str] = field(default_factory=dict)
    errors: int = 0

    def for_integration(self, name: str) -> tuple[str, ...]:
        """The breakers opened or closed on behalf of one integration in this run."""
        return (*self.opened.get(name, ()), *self.closed.get(name, ()))


class BreakerSteering:
    """Applies the steering rules for one run's results to a breaker registry."""

    def __init__(self, registry: BreakerRegistry, *, logger: logging.Logger | None = None) -> None:
        self._registry = registry
        self._logger = logger or _LOGGER

    def apply(self, results: Iterable[tuple[Endpoint, CheckOutcome]]) -> SteeringResult:
        """Force open the origins of integrations that turned unhealthy; lift health-forced opens of healthy ones."""
        by_origin: dict[str, list[tuple[Endpoint, CheckOutcome]]] = defaultdict(list)
        for endpoint, outcome in results:
            by_origin[target_origin(endpoint.url)].append((endpoint, outcome))
        if not by_origin:
            return SteeringResult()
        self._registry.prefetch(by_origin)  # one batched read for every breaker of the run
        opened: dict[str, tuple[str, ...]] = {}
        closed: dict[str, tuple[str, ...]] = {}
        left_alone: dict[str, str] = {}
        errors = 0
        for origin, members in sorted(by_origin.items()):
            unhealthy = [outcome for _, outcome in members if outcome.state == "unhealthy"]
            turned = [outcome for outcome in unhealthy if outcome.change is not None]
            try:
                if turned:
                    reason = f"integration {turned[0].integration} unhealthy: {turned[0].reason or 'checks failed'}"
                    verdict = self._open(origin, reason)
                    if verdict is None:
                        for outcome in turned:
                            opened[outcome.integration] = (origin,)
                    else:
                        left_alone[origin] = verdict
                elif not unhealthy and self._close(origin):
                    recovered = [outcome.integration for _, outcome in members if outcome.change is not None]
                    for name in recovered or [members[0][1].integration]:
                        closed[name] = (origin,)
            except StateStoreError as error:
                errors += 1
                self._logger.warning("breaker steering failed", extra={"breaker": origin, "error": str(error)})
        return SteeringResult(opened=opened, closed=closed, left_alone=left_alone, errors=errors)

    def _open(self, origin: str, reason: str) -> str | None:
        """Force one breaker open; return None when it is (now) held open by health, else why it was left alone."""
        breaker = self._registry.get(origin)
        snapshot = breaker.snapshot()
        skip = _leave_alone(snapshot)
        if skip is not None:
            self._logger.info("breaker left alone", extra={"breaker": origin, "why": skip})
            return skip
        if snapshot.state is BreakerState.FORCED_OPEN and snapshot.forced_by == HEALTH_SOURCE:
            return None
        if breaker.force_open(reason[:512], source=HEALTH_SOURCE):
            return None
        # force_open declines only when someone else holds it (an operator won a race with us).
        return _leave_alone(breaker.snapshot(refresh=True)) or "declined by the breaker"

    def _close(self, origin: str) -> bool:
        """Lift a health-forced open; True if this call closed it."""
        breaker = self._registry.get(origin)
        snapshot = breaker.snapshot()
        if snapshot.state is not BreakerState.FORCED_OPEN or snapshot.forced_by != HEALTH_SOURCE:
            return False
        # Re-read right before closing: force_close would also close a passive open, which health must not do.
        snapshot = breaker.snapshot(refresh=True)
        if snapshot.state is not BreakerState.FORCED_OPEN or snapshot.forced_by != HEALTH_SOURCE:
            return False
        return breaker.force_close(source=HEALTH_SOURCE, reason="integration healthy again (health check)")


def _leave_alone(snapshot: BreakerSnapshot) -> str | None:
    """Why health must not force this breaker open, or None."""
    if snapshot.state is BreakerState.DISABLED:
        return "disabled by an operator"
    if snapshot.state is BreakerState.FORCED_OPEN and snapshot.forced_by not in (None, HEALTH_SOURCE):
        return f"forced open by {snapshot.forced_by}"
    return None
