"""The schedule emulator: rate expressions, EventBridge/Scheduler event shapes, ticking, run now."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from hookline_local import CallableInvoker, ScheduleSpec
from hookline_local.schedule import ScheduleRunner, parse_at, parse_rate

if TYPE_CHECKING:
    from hookline_local.invoke import LambdaContext

NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/HealthFunctionSchedule"


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60.0), ("rate(5 minutes)", 300.0), ("rate(2 hours)", 7200.0), ("rate(1 day)", 86400.0)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0/5 * * * ? *)", "at(2026-11-28T08:00:00)", "rate(five minutes)"])
def test_other_expressions_are_not_emulated(expression: str) -> None:
    assert parse_rate(expression) is None


def _spec(kind: str = "scheduler", payload: str | None = None, enabled: bool = True) -> ScheduleSpec:
    return ScheduleSpec(
        logical_id="HealthFunctionSchedule",
        function_logical_id="HealthFunction",
        kind=kind,  # type: ignore[arg-type]
        arn=ARN,
        expression="rate(1 minute)",
        input=payload,
        enabled=enabled,
    )


def _runner(spec: ScheduleSpec, handler: Any, interval_s: float | None = None) -> ScheduleRunner:
    return ScheduleRunner(
        spec,
        invoker=CallableInvoker(handler, timeout_s=5),
        region="us-east-1",
        account_id="123456789012",
        interval_s=interval_s,
        now=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("kind", "source", "detail"), [("scheduler", "aws.scheduler", "{}"), ("events", "aws.events", {})]
)
def test_run_now_delivers_the_scheduled_event(kind: str, source: str, detail: Any) -> None:
    events: list[Any] = []
    result = _runner(_spec(kind), lambda event, context: events.append(event) or {"checked": 0}).run_now()
    assert result.ok and result.payload == {"checked": 0}
    (event,) = events
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == source
    assert event["resources"] == [ARN]
    assert event["time"] == "2026-11-28T08:00:00Z"
    assert event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert event["detail"] == detail


def test_a_target_input_replaces_the_default_event() -> None:
    events: list[Any] = []
    _runner(_spec(payload='{"probe": "all"}'), lambda event, context: events.append(event)).run_now()
    assert events == [{"probe": "all"}]


def test_the_schedule_ticks_at_the_override_interval_until_stopped() -> None:
    ticked = threading.Event()
    runs: list[str] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        runs.append(event["id"])
        if len(runs) >= 3:
            ticked.set()

    runner = _runner(_spec(), handler, interval_s=0.1)
    assert runner.interval_s == 0.1
    assert runner.start()
    try:
        assert ticked.wait(5)
    finally:
        runner.stop()
    count = runner.runs
    assert count >= 3 and len(set(runs)) == len(runs)
    assert not runner.busy


def test_a_failing_run_is_counted_and_the_schedule_goes_on() -> None:
    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        raise RuntimeError("probe crashed")

    runner = _runner(_spec(), handler)
    result = runner.run_now()
    assert not result.ok and result.error_message == "probe crashed"
    assert runner.failures == 1 and runner.runs == 1


def test_disabled_or_unemulated_schedules_do_not_start() -> None:
    assert not _runner(_spec(enabled=False), lambda event, context: None).start()
    cron = ScheduleSpec("S", "F", "events", ARN, "cron(0 8 * * ? *)")
    runner = ScheduleRunner(cron, invoker=CallableInvoker(lambda e, c: None), region="us-east-1", account_id="1")
    assert runner.interval_s is None and not runner.start()


def test_at_expressions_are_moments_in_the_schedule_time_zone() -> None:
    assert parse_at("at(2026-11-28T09:00:00)") == datetime(2026, 11, 28, 9, tzinfo=UTC)
    paris = parse_at("at(2026-11-28T09:00:00)", "Europe/Paris")
    assert paris == datetime(2026, 11, 28, 9, tzinfo=ZoneInfo("Europe/Paris")) == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert parse_at("rate(1 minute)") is None
    assert parse_at("at(tomorrow)") is None


def _once(expression: str, handler: Any) -> ScheduleRunner:
    spec = ScheduleSpec("Once", "F", "scheduler", ARN, expression, input='{"job": 1}')
    return ScheduleRunner(
        spec, invoker=CallableInvoker(handler), region="us-east-1", account_id="123456789012", now=lambda: NOW
    )


def test_a_one_time_schedule_that_is_due_runs_once_at_start() -> None:
    ran = threading.Event()
    events: list[Any] = []
    runner = _once("at(2026-11-28T07:59:59)", lambda event, context: events.append(event) or ran.set())
    assert runner.describe() == "once at 2026-11-28T07:59:59+00:00"
    assert runner.start()
    try:
        assert ran.wait(5)
    finally:
        runner.stop()
    assert events == [{"job": 1}] and runner.runs == 1


def test_a_one_time_schedule_in_the_future_waits_for_its_moment() -> None:
    runner = _once("at(2026-11-28T09:00:00)", lambda event, context: None)
    assert runner.start()
    runner.stop()
    assert runner.runs == 0
