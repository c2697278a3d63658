"""Steering rules against the real breaker over one in-memory store shared with a "delivery" registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hookline.health.model import CheckOutcome, StateChange
from hookline.health.steering import HEALTH_SOURCE, BreakerSteering, target_origin
from hookline.registry import Endpoint
from resilience.breaker import BreakerConfig, BreakerRegistry, BreakerState, MemoryStateStore
from resilience.exceptions import CircuitOpenError
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from hookline.registry import HealthState

PRIMARY = "https://hooks.acme.example/in"
ORIGIN = "https://hooks.acme.example"
FALLBACK = "https://backup.acme.example/in"


class World:
    """One breaker store, seen by delivery (passive outcomes) and by health (steering)."""

    def __init__(self) -> None:
        self.clock = FakeClock(1_800_000_000.0)
        self.store = MemoryStateStore(clock=self.clock)
        config = BreakerConfig(consecutive_failures=3, open_s=30.0)
        self.delivery = BreakerRegistry(self.store, config=config, writer="delivery")
        self.health = BreakerRegistry(self.store, config=config, writer="health")
        self.steering = BreakerSteering(self.health)

    def state(self, origin: str = ORIGIN) -> tuple[BreakerState, str | None]:
        snapshot = self.delivery.get(origin).snapshot(refresh=True)
        return snapshot.state, snapshot.forced_by

    def trip_passively(self, origin: str = ORIGIN) -> None:
        breaker = self.delivery.get(origin)
        for _ in range(3):
            breaker.allow()
            breaker.record_failure(0.01, error="connection_refused")
        self.delivery.flush(force=True)
        assert breaker.snapshot(refresh=True).state is BreakerState.OPEN


def endpoint(name: str = "acme", url: str = PRIMARY) -> Endpoint:
    return Endpoint(name=name, url=url, secret_id="s", fallback_urls=(FALLBACK,))


def outcome(name: str, state: HealthState, *, changed_from: HealthState | None = None) -> CheckOutcome:
    change = None
    if changed_from is not None:
        change = StateChange(name, changed_from, state, "status 503, expected 2xx", 12, "2026-11-28T12:00:00Z", 3, 0)
    return CheckOutcome(
        integration=name, state=state, passed=state == "healthy", reason=None, latency_ms=12, change=change
    )


@pytest.fixture
def world() -> World:
    return World()


def test_breaker_names_are_the_primary_origin() -> None:
    assert target_origin("https://Hooks.Acme.example:443/in?token=x") == ORIGIN
    assert target_origin("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"


def test_turning_unhealthy_forces_the_primary_origin_open_and_delivery_is_refused(world: World) -> None:
    result = world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    assert result.opened == {"acme": (ORIGIN,)}
    assert world.state() == (BreakerState.FORCED_OPEN, HEALTH_SOURCE)
    with pytest.raises(CircuitOpenError):
        world.delivery.get(ORIGIN).allow()
    # The fallback's breaker is untouched: delivery goes straight there.
    world.delivery.get(target_origin(FALLBACK)).allow()
    assert world.state(target_origin(FALLBACK))[0] is BreakerState.CLOSED


def test_recovery_lifts_the_health_forced_open(world: World) -> None:
    world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    result = world.steering.apply([(endpoint(), outcome("acme", "healthy", changed_from="unhealthy"))])
    assert result.closed == {"acme": (ORIGIN,)}
    assert world.state() == (BreakerState.CLOSED, None)
    world.delivery.get(ORIGIN).allow()  # no half-open probing needed: traffic returns to the primary at once


def test_still_unhealthy_does_nothing_more(world: World) -> None:
    world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    version = world.delivery.get(ORIGIN).snapshot(refresh=True).version
    result = world.steering.apply([(endpoint(), outcome("acme", "unhealthy"))])
    assert result.opened == {}
    assert result.closed == {}
    assert world.delivery.get(ORIGIN).snapshot(refresh=True).version == version


def test_operator_forced_open_is_never_touched(world: World) -> None:
    world.delivery.get(ORIGIN).force_open("maintenance", source="operator")
    opened = world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    assert opened.left_alone == {ORIGIN: "forced open by operator"}
    closed = world.steering.apply([(endpoint(), outcome("acme", "healthy", changed_from="unhealthy"))])
    assert closed.closed == {}
    assert world.state() == (BreakerState.FORCED_OPEN, "operator")


def test_disabled_breaker_is_never_touched(world: World) -> None:
    world.delivery.get(ORIGIN).disable()
    result = world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    assert result.left_alone == {ORIGIN: "disabled by an operator"}
    assert world.state()[0] is BreakerState.DISABLED


def test_passive_open_is_left_to_delivery_while_the_integration_is_healthy(world: World) -> None:
    world.trip_passively()
    result = world.steering.apply([(endpoint(), outcome("acme", "healthy", changed_from="unhealthy"))])
    assert result.closed == {}
    assert world.state() == (BreakerState.OPEN, None)
    # Delivery's own half-open logic still recovers it after the open period.
    world.clock.advance(31)
    world.delivery.get(ORIGIN).allow()


def test_turning_unhealthy_takes_over_a_passive_open(world: World) -> None:
    world.trip_passively()
    world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    assert world.state() == (BreakerState.FORCED_OPEN, HEALTH_SOURCE)
    # ...so recovery is health's job now, and needs no user traffic.
    world.steering.apply([(endpoint(), outcome("acme", "healthy", changed_from="unhealthy"))])
    assert world.state() == (BreakerState.CLOSED, None)


def test_health_forced_open_left_behind_is_repaired_on_a_healthy_run(world: World) -> None:
    """A close lost to a crash: the next run without any state change still lifts it."""
    world.health.get(ORIGIN).force_open("left over", source=HEALTH_SOURCE)
    result = world.steering.apply([(endpoint(), outcome("acme", "healthy"))])
    assert result.closed == {"acme": (ORIGIN,)}
    assert world.state() == (BreakerState.CLOSED, None)


def test_operator_reset_while_unhealthy_is_respected(world: World) -> None:
    world.steering.apply([(endpoint(), outcome("acme", "unhealthy", changed_from="healthy"))])
    world.delivery.get(ORIGIN).reset()
    world.steering.apply([(endpoint(), outcome("acme", "unhealthy"))])
    assert world.state() == (BreakerState.CLOSED, None)


def test_shared_origin_stays_open_while_any_of_its_integrations_is_unhealthy(world: World) -> None:
    other = endpoint("acme-orders", "https://hooks.acme.example/orders")
    world.steering.apply(
        [
            (endpoint(), outcome("acme", "unhealthy", changed_from="healthy")),
            (other, outcome("acme-orders", "unhealthy")),
        ]
    )
    result = world.steering.apply(
        [
            (endpoint(), outcome("acme", "healthy", changed_from="unhealthy")),
            (other, outcome("acme-orders", "unhealthy")),
        ]
    )
    assert result.closed == {}
    assert world.state() == (BreakerState.FORCED_OPEN, HEALTH_SOURCE)
    world.steering.apply(
        [(endpoint(), outcome("acme", "healthy")), (other, outcome("acme-orders", "healthy", changed_from="unhealthy"))]
    )
    assert world.state() == (BreakerState.CLOSED, None)


def test_unknown_state_counts_as_not_unhealthy(world: World) -> None:
    """A re-registered integration starts unknown: a health-forced open from its previous life is lifted."""
    world.health.get(ORIGIN).force_open("old", source=HEALTH_SOURCE)
    world.steering.apply([(endpoint(), outcome("acme", "unknown"))])
    assert world.state()[0] is BreakerState.CLOSED
