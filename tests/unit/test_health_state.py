"""The flap-damping state machine (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hookline.health.state import advance
from hookline.registry import HealthCheck, HealthState, HealthStatus

CHECK = HealthCheck()  # failure_threshold=3, success_threshold=2


def run(results: str, *, state: HealthState = "unknown", check: HealthCheck = CHECK) -> list[HealthState]:
    """Apply a string of results ("F" fail, "P" pass) and return the state after each."""
    status = HealthStatus(state=state)
    states: list[HealthState] = []
    for outcome in results:
        step = advance(status, outcome == "P", check)
        status = replace(
            status,
            state=step.new_state,
            consecutive_failures=step.consecutive_failures,
            consecutive_successes=step.consecutive_successes,
        )
        states.append(step.new_state)
    return states


def test_unknown_becomes_unhealthy_only_after_the_failure_threshold() -> None:
    assert run("FFF") == ["unknown", "unknown", "unhealthy"]


def test_unknown_becomes_healthy_only_after_the_success_threshold() -> None:
    assert run("PP") == ["unknown", "healthy"]


def test_healthy_needs_three_consecutive_failures() -> None:
    assert run("FFPFFPFF", state="healthy") == ["healthy"] * 8
    assert run("FFF", state="healthy")[-1] == "unhealthy"


def test_unhealthy_needs_two_consecutive_successes() -> None:
    assert run("PFPFPF", state="unhealthy") == ["unhealthy"] * 6
    assert run("PP", state="unhealthy") == ["unhealthy", "healthy"]


def test_flapping_target_never_changes_state() -> None:
    assert set(run("PFPFFPFPPFFPF" * 3, state="healthy")) == {"healthy"}


def test_counters_reset_on_the_opposite_result() -> None:
    step = advance(HealthStatus(state="healthy", consecutive_failures=2, consecutive_successes=0), True, CHECK)
    assert (step.consecutive_failures, step.consecutive_successes) == (0, 1)
    step = advance(HealthStatus(state="healthy", consecutive_failures=0, consecutive_successes=9), False, CHECK)
    assert (step.consecutive_failures, step.consecutive_successes) == (1, 0)


def test_changed_is_true_exactly_on_the_transition() -> None:
    status = HealthStatus(state="healthy", consecutive_failures=2)
    step = advance(status, False, CHECK)
    assert step.changed
    assert (step.old_state, step.new_state) == ("healthy", "unhealthy")
    again = advance(replace(status, state="unhealthy", consecutive_failures=3), False, CHECK)
    assert not again.changed
    assert again.consecutive_failures == 4


@pytest.mark.parametrize(("failures", "successes"), [(1, 1), (5, 4)])
def test_custom_thresholds(failures: int, successes: int) -> None:
    check = HealthCheck(failure_threshold=failures, success_threshold=successes)
    fails = run("F" * failures, state="healthy", check=check)
    assert fails[-1] == "unhealthy"
    assert "unhealthy" not in fails[:-1]
    passes = run("P" * successes, state="unhealthy", check=check)
    assert passes[-1] == "healthy"
    assert "healthy" not in passes[:-1]
