"""Gates for ``attempt_delivery``: who may send a request to a target now, and who hears how it went.

* ``PacingGate``: the endpoint's fleet-wide pace (``hookline.pacing``): a lease, waited for until its start time, or
  a ``paced`` refusal carrying how long to wait. Leases for a batch's records are taken together when the batch
  opens (one store write per paced endpoint and batch), the rest on demand.
* ``BreakerGate``: the target origin's circuit breaker: a permit, or a ``skipped`` refusal.
* ``GateChain``: several gates in order; a later refusal gives back what the earlier ones granted.

No store call runs on the event loop: the pacer's acquire and release (when it writes) run in a worker thread
(``offload``), and the breaker answers from its cache on the loop and uses a thread for its store calls
(``allow_async``, ``record_*_async``), so the fleet-wide probe limit still holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hookline.delivery.attempt import Refusal, TargetOutcome, Verdict, verdict_of
from hookline.pacing import PaceLimits, endpoint_key, origin_key
from resilience import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from hookline.delivery.attempt import Gate, Target
    from hookline.delivery.targets import DeliveryPlan
    from hookline.pacing import Admission, Lease, Pacer
    from resilience.breaker import BreakerRegistry, Permit

__all__ = ["BreakerGate", "GateChain", "Offload", "PacingGate", "pace_key", "pace_limits"]

type Offload = Callable[..., Awaitable[Any]]
"""Runs a blocking callable off the event loop (``asyncio.to_thread`` or a test double)."""

_TOO_MANY = 429


class BreakerGate:
    """Admits a target when its origin's breaker allows a call; reports the verdict to the permit."""

    def __init__(self, breakers: BreakerRegistry, *, throttled_is_failure: bool = False) -> None:
        self.breakers = breakers
        self.throttled_is_failure = throttled_is_failure
        """A 429 says the receiver is alive: with pacing it slows the endpoint down instead of tripping its breaker."""

    async def enter(self, target: Target) -> Permit | Refusal:
        """The breaker's permit, or a ``skipped`` refusal carrying the breaker's retry_after."""
        try:
            return await self.breakers.get(target.origin).allow_async()
        except CircuitOpenError as error:
            return Refusal("skipped", str(error), error.retry_after)

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """Tell the permit: failures and healthy answers count, neutral outcomes do not."""
        del target
        permit: Permit = ticket  # type: ignore[assignment]
        verdict = verdict_of(outcome)
        if verdict is Verdict.THROTTLED:
            verdict = Verdict.FAILURE if self.throttled_is_failure else Verdict.NEUTRAL
        latency_s = (outcome.latency_ms or 0.0) / 1000
        if verdict is Verdict.FAILURE:
            await permit.record_failure_async(latency_s, error=outcome.error or "error")
        elif verdict is Verdict.HEALTHY:
            await permit.record_success_async(latency_s)


def pace_key(plan: DeliveryPlan, origin: str) -> str:
    """The pacing key of a request: the registered endpoint (all its URLs together), else the target's origin."""
    return endpoint_key(plan.endpoint.name) if plan.endpoint is not None else origin_key(origin)


def pace_limits(plan: DeliveryPlan) -> PaceLimits | None:
    """The endpoint's configured limits (registry ``rate_limit_per_s`` / ``max_in_flight``); None for inline URLs."""
    endpoint = plan.endpoint
    if endpoint is None:
        return None
    rate = getattr(endpoint, "rate_limit_per_s", None)
    in_flight = getattr(endpoint, "max_in_flight", None)
    return PaceLimits(rate_limit_per_s=rate, max_in_flight=in_flight) if rate or in_flight else None


@dataclass
class _Pool:
    """Leases taken for a key in advance: granted ones in start order, then the waits of the denied."""

    leases: deque[tuple[Lease, float]] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)


class PacingGate:
    """Admits a request when the endpoint's pace allows it (waiting in-process for the lease's start time)."""

    def __init__(
        self,
        pacer: Pacer,
        *,
        offload: Offload = asyncio.to_thread,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pacer = pacer
        self._offload = offload
        self._sleep = sleep
        self._monotonic = monotonic
        self._pools: dict[str, _Pool] = {}

    async def reserve(self, plans: Sequence[DeliveryPlan]) -> None:
        """Take leases for every plan's first request at once (one acquire per key): call when the batch opens."""
        by_key: dict[str, tuple[PaceLimits | None, int]] = {}
        for plan in plans:
            if plan.targets:
                key = pace_key(plan, plan.origins[0])
                limits, count = by_key.get(key, (pace_limits(plan), 0))
                by_key[key] = (limits, count + 1)
        if not by_key:
            return
        await self._offload(self.pacer.prefetch, list(by_key))
        keys = list(by_key)
        admissions = await asyncio.gather(
            *(self._offload(self.pacer.acquire, key, by_key[key][0], count=by_key[key][1]) for key in keys)
        )
        for key, admission in zip(keys, admissions, strict=True):
            self._pools[key] = self._pool(admission)

    def _pool(self, admission: Admission) -> _Pool:
        taken_at = self._monotonic()
        return _Pool(deque((lease, taken_at) for lease in admission.leases), deque(admission.delays))

    async def enter(self, target: Target) -> tuple[Lease, float] | Refusal:
        """A lease (after waiting for its start), or a ``paced`` refusal with how long to wait."""
        key = pace_key(target.plan, target.origin)
        pool = self._pools.get(key)
        if pool is None or not (pool.leases or pool.delays):
            # Not reserved at open (a fallback, or more requests than records): one acquire for this request.
            pool = self._pool(await self._offload(self.pacer.acquire, key, pace_limits(target.plan), count=1))
        if not pool.leases:
            wait = pool.delays.popleft()
            return Refusal("paced", f"over the pace of {key}: wait {wait:.1f}s", wait)
        lease, taken_at = pool.leases.popleft()
        wait = taken_at + lease.start_in_s - self._monotonic()
        if wait > 0:
            await self._sleep(wait)
        return lease, taken_at

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """Release the lease with the answer: a 429 slows the endpoint down fleet-wide."""
        del target
        lease: Lease = ticket[0]  # type: ignore[index]
        status = outcome.http_status
        if lease.bucket is None and status != _TOO_MANY:
            self.pacer.release(lease, status=status)  # nothing to write: no in-flight slot, no slow-down
            return
        await self._offload(self.pacer.release, lease, status=status, retry_after_s=outcome.retry_after_s)

    def unused(self) -> Iterable[Lease]:
        """Leases reserved and never used (to release when the batch closes)."""
        for pool in self._pools.values():
            while pool.leases:
                yield pool.leases.popleft()[0]

    def close(self) -> None:
        """Give back every unused lease and what the pacer could not give back yet (blocking: at batch close)."""
        for lease in list(self.unused()):
            self.pacer.release(lease, status=None)
        self.pacer.flush()


class GateChain:
    """Gates in order: each must admit; a refusal gives back what the gates before it granted."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        self.gates = tuple(gates)

    async def enter(self, target: Target) -> list[tuple[Gate, object]] | Refusal:
        """Every gate's ticket, or the first refusal."""
        tickets: list[tuple[Gate, object]] = []
        for gate in self.gates:
            ticket = await gate.enter(target)
            if isinstance(ticket, Refusal):
                not_sent = TargetOutcome(target.index, target.origin, ticket.status, error=ticket.reason)
                for earlier, earlier_ticket in reversed(tickets):
                    await earlier.leave(target, earlier_ticket, not_sent)
                return ticket
            tickets.append((gate, ticket))
        return tickets

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """Every gate hears the outcome, the last one first."""
        tickets: list[tuple[Gate, object]] = ticket  # type: ignore[assignment]
        for gate, gate_ticket in reversed(tickets):
            await gate.leave(target, gate_ticket, outcome)
