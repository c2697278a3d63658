"""Gates of an attempt: the endpoint's pace (leases waited for, refusals with their waits), breakers, the chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hookline.delivery.attempt import Refusal, Target, TargetOutcome
from hookline.delivery.gates import BreakerGate, GateChain, PacingGate, pace_key, pace_limits
from hookline.delivery.targets import DeliveryPlan
from hookline.pacing import MemoryPaceStore, PaceLimits, Pacer
from resilience.breaker import BreakerRegistry, MemoryStateStore
from tests.support.timefakes import FakeClock

WALL = 1_800_000_000.0


@dataclass(frozen=True)
class _Limited:
    """An endpoint as the registry reads it, with the flow-control fields."""

    name: str
    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None


def _plan(endpoint: Any = None, *urls: str) -> DeliveryPlan:
    targets = urls or ("https://hooks.acme.example/x",)
    return DeliveryPlan("msg_1", "a", "acme", targets, "s", endpoint=endpoint)


async def _no_offload(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _gate(pacer: Pacer, clock: FakeClock) -> PacingGate:
    return PacingGate(pacer, offload=_no_offload, sleep=clock.async_sleep, monotonic=clock)


def _served(target: Target, status: int = 200) -> TargetOutcome:
    return TargetOutcome(target.index, target.origin, "served", http_status=status, latency_ms=5.0)


def test_keys_and_limits() -> None:
    inline = _plan(None, "https://a.example/x", "https://b.example/y")
    assert pace_key(inline, "https://b.example") == "origin:https://b.example"
    assert pace_limits(inline) is None
    limited = _plan(_Limited("acme", rate_limit_per_s=5))
    assert pace_key(limited, "https://anything.example") == "endpoint:acme"
    assert pace_limits(limited) == PaceLimits(rate_limit_per_s=5)
    assert pace_limits(_plan(_Limited("free"))) is None


async def test_a_batch_takes_its_leases_at_once_and_waits_for_each_start() -> None:
    clock = FakeClock()
    pacer = Pacer(MemoryPaceStore(clock=lambda: WALL))
    gate = _gate(pacer, clock)
    plan = _plan(_Limited("acme", rate_limit_per_s=5))
    await gate.reserve([plan] * 10)
    target = Target(0, plan.targets[0], plan.origins[0], plan)
    tickets = [await gate.enter(target) for _ in range(10)]
    granted = [ticket for ticket in tickets if not isinstance(ticket, Refusal)]
    refused = [ticket for ticket in tickets if isinstance(ticket, Refusal)]
    # 5/s: six start within the second (0, 0.2 ... 1.0 s), each waited for in-process; four wait 1.2, 1.4 ... s.
    assert len(granted) == 6
    assert [round(s, 3) for s in clock.sleeps] == [0.2] * 5
    assert [round(refusal.retry_after_s or 0, 3) for refusal in refused] == [1.2, 1.4, 1.6, 1.8]
    assert {refusal.status for refusal in refused} == {"paced"}
    for ticket in granted:
        await gate.leave(target, ticket, _served(target))


async def test_unused_leases_and_slots_are_given_back_when_the_batch_closes() -> None:
    pacer = Pacer(MemoryPaceStore(clock=lambda: WALL))
    plan = _plan(_Limited("acme", max_in_flight=2))
    gate = _gate(pacer, FakeClock())
    await gate.reserve([plan, plan])
    gate.close()  # neither record reached its request (say both were filtered)
    again = _gate(pacer, FakeClock())
    await again.reserve([plan, plan])
    target = Target(0, plan.targets[0], plan.origins[0], plan)
    tickets = [await again.enter(target) for _ in range(2)]
    assert not any(isinstance(ticket, Refusal) for ticket in tickets)


async def test_a_refusal_later_in_the_chain_gives_back_the_pace_slot() -> None:
    pacer = Pacer(MemoryPaceStore(clock=lambda: WALL))
    breakers = BreakerRegistry(MemoryStateStore(clock=lambda: WALL))
    plan = _plan(_Limited("acme", max_in_flight=1))
    breakers.get(plan.origins[0]).force_open("maintenance")
    target = Target(0, plan.targets[0], plan.origins[0], plan)
    chain = GateChain([_gate(pacer, FakeClock()), BreakerGate(breakers)])
    refusal = await chain.enter(target)
    assert isinstance(refusal, Refusal) and refusal.status == "skipped"
    breakers.get(plan.origins[0]).reset()
    # The one in-flight slot was released when the breaker refused: the next request gets it.
    tickets = await chain.enter(target)
    assert not isinstance(tickets, Refusal)
    await chain.leave(target, tickets, _served(target))


async def test_a_429_slows_the_endpoint_and_is_no_breaker_failure() -> None:
    pacer = Pacer(MemoryPaceStore(clock=lambda: WALL))
    breakers = BreakerRegistry(MemoryStateStore(clock=lambda: WALL))
    plan = _plan(None)
    target = Target(0, plan.targets[0], plan.origins[0], plan)
    chain = GateChain([_gate(pacer, FakeClock()), BreakerGate(breakers)])
    for _ in range(10):
        tickets = await chain.enter(target)
        throttled = TargetOutcome(0, target.origin, "failed", http_status=429, latency_ms=3.0, retry_after_s=60.0)
        await chain.leave(target, tickets, throttled)
        if isinstance(await chain.enter(target), Refusal):
            break
    refusal = await chain.enter(target)
    assert isinstance(refusal, Refusal) and refusal.status == "paced"
    assert 0 < (refusal.retry_after_s or 0) <= 60
    breakers.flush(force=True)
    assert breakers.get(target.origin).snapshot(refresh=True).state.value == "closed"
