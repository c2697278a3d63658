"""Gates for ``attempt_delivery``: who may send a request to a target now, and who hears how it went.

``BreakerGate`` asks the target origin's circuit breaker. The breaker may read or compare-and-set its DynamoDB item
inside ``allow()`` (a stale cache, due failures, a half-open probe) and when a probe's outcome is reported; those
calls run in a worker thread (``offload``), so no store call ever blocks the event loop that the batch's other
requests share. The fleet-wide probe limit still holds: the breaker's own lock and conditional writes are unchanged.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from hookline.delivery.attempt import Refusal, Verdict, verdict_of
from resilience import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hookline.delivery.attempt import Target, TargetOutcome
    from resilience.breaker import BreakerRegistry, Permit

__all__ = ["BreakerGate", "Offload"]

type Offload = Callable[..., Awaitable[Any]]
"""Runs a blocking callable off the event loop (``asyncio.to_thread`` or a test double)."""


class BreakerGate:
    """Admits a target when its origin's breaker allows a call; reports the verdict to the permit."""

    def __init__(
        self, breakers: BreakerRegistry, *, throttled_is_failure: bool = True, offload: Offload = asyncio.to_thread
    ) -> None:
        self.breakers = breakers
        self.throttled_is_failure = throttled_is_failure
        self._offload = offload

    async def enter(self, target: Target) -> Permit | Refusal:
        """The breaker's permit, or a ``skipped`` refusal carrying the breaker's retry_after."""
        breaker = self.breakers.get(target.origin)
        try:
            permit: Permit = await self._offload(breaker.allow)
        except CircuitOpenError as error:
            return Refusal("skipped", str(error), error.retry_after)
        return permit

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """Tell the permit: failures and healthy answers count, neutral outcomes do not."""
        del target
        permit: Permit = ticket  # type: ignore[assignment]
        verdict = verdict_of(outcome)
        if verdict is Verdict.THROTTLED:
            verdict = Verdict.FAILURE if self.throttled_is_failure else Verdict.NEUTRAL
        latency_s = (outcome.latency_ms or 0.0) / 1000
        if verdict is Verdict.FAILURE:
            report = functools.partial(permit.record_failure, latency_s, error=outcome.error or "error")
        elif verdict is Verdict.HEALTHY:
            report = functools.partial(permit.record_success, latency_s)
        else:
            return
        if permit.probe_id is not None:
            await self._offload(report)  # a probe's outcome is a compare-and-set on the store
        else:
            report()  # buffered in memory; written at a later allow() (off the loop) or the batch's flush
