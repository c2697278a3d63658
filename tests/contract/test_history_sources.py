"""One contract for every history log source: Logs Insights and FilterLogEvents give the same answers (moto)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from hookline.history import HistoryReader, InsightsSource, LogEventsSource, Outcome, Status
from tests.support.aws import client
from tests.support.history import LogGroupWriter, attempt_line

if TYPE_CHECKING:
    from collections.abc import Callable

GROUP = "/aws/lambda/hookline-delivery"

type SourceFactory = Callable[[Any, list[str]], Any]


def _insights(logs: Any, groups: list[str]) -> InsightsSource:
    return InsightsSource(logs, groups, sleep=lambda _s: None)


@pytest.fixture(params=["insights", "log-events"])
def make_source(request: pytest.FixtureRequest, aws: None) -> SourceFactory:
    return _insights if request.param == "insights" else LogEventsSource  # type: ignore[return-value]


@pytest.fixture
def logs(aws: None) -> Any:
    return client("logs")


@pytest.fixture
def writer(logs: Any) -> LogGroupWriter:
    return LogGroupWriter(logs, GROUP)


def _reader(make_source: SourceFactory, logs: Any, now: float, days: int = 30) -> HistoryReader:
    return HistoryReader(make_source(logs, [GROUP]), retention_days=days, clock=lambda: now)


def test_show_gives_every_attempt_in_order_and_the_dead_reason(
    make_source: SourceFactory, logs: Any, writer: LogGroupWriter
) -> None:
    now = writer.server_now()
    writer.write(
        (now - 300, attempt_line("msg_a", "retrying", attempt=1, status=503, error="HTTP 503 from https://a")),
        (now - 200, attempt_line("msg_a", "retrying", attempt=2, status=None, target=None, error="timeout")),
        (now - 100, attempt_line("msg_a", "dead", attempt=3, status=500, reason="retries_exhausted")),
        (now - 90, attempt_line("msg_b", "delivered")),
    )
    history = _reader(make_source, logs, now).show("msg_a")
    assert history is not None
    assert [a.attempt for a in history.attempts] == [1, 2, 3]
    assert [a.outcome for a in history.attempts] == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DEAD]
    assert history.status is Status.DEAD
    assert history.reason == "retries_exhausted"
    assert history.attempts[0].http_status == 503
    assert history.attempts[1].error == "timeout"


def test_show_of_an_unknown_id_is_none(make_source: SourceFactory, logs: Any, writer: LogGroupWriter) -> None:
    now = writer.server_now()
    writer.write((now - 10, attempt_line("msg_other", "delivered")))
    assert _reader(make_source, logs, now).show("msg_missing") is None


def test_show_since_leaves_older_attempts_out(make_source: SourceFactory, logs: Any, writer: LogGroupWriter) -> None:
    now = writer.server_now()
    writer.write(
        (now - 7200, attempt_line("msg_a", "retrying", attempt=1, status=503)),
        (now - 60, attempt_line("msg_a", "delivered", attempt=2)),
    )
    history = _reader(make_source, logs, now).show("msg_a", since="1h")
    assert history is not None
    assert [a.attempt for a in history.attempts] == [2]


def test_list_status_is_the_latest_attempt(make_source: SourceFactory, logs: Any, writer: LogGroupWriter) -> None:
    now = writer.server_now()
    writer.write(
        (now - 500, attempt_line("msg_recovered", "retrying", status=503)),
        (now - 400, attempt_line("msg_pending", "retrying", status=503)),
        (now - 300, attempt_line("msg_recovered", "delivered", attempt=2)),
        (now - 200, attempt_line("msg_dead", "dead", status=None, reason="endpoint_gone")),
        (now - 100, attempt_line("msg_filtered", "filtered", status=None, target=None)),
    )
    reader = _reader(make_source, logs, now)
    everything = reader.list(since="1h")
    assert [(m.message_id, m.status) for m in everything.messages] == [
        ("msg_filtered", Status.FILTERED),
        ("msg_dead", Status.DEAD),
        ("msg_recovered", Status.DELIVERED),
        ("msg_pending", Status.FAILED),
    ]
    assert [m.message_id for m in reader.list(status=Status.FAILED, since="1h").messages] == ["msg_pending"]
    assert [m.message_id for m in reader.list(status=Status.DELIVERED, since="1h").messages] == ["msg_recovered"]
    assert [m.message_id for m in reader.list(status=Status.DEAD, since="1h").messages] == ["msg_dead"]


def test_list_filters_by_endpoint_event_type_and_time(
    make_source: SourceFactory, logs: Any, writer: LogGroupWriter
) -> None:
    now = writer.server_now()
    writer.write(
        (now - 7200, attempt_line("msg_old", "delivered", endpoint="acme")),
        (now - 300, attempt_line("msg_acme", "delivered", endpoint="acme", event_type="invoice.paid")),
        (now - 200, attempt_line("msg_other", "delivered", endpoint="globex", event_type="invoice.paid")),
        (now - 100, attempt_line("msg_refund", "delivered", endpoint="acme", event_type="refund.created")),
    )
    reader = _reader(make_source, logs, now)
    assert [m.message_id for m in reader.list(endpoint="acme", since="1h").messages] == ["msg_refund", "msg_acme"]
    by_type = reader.list(event_type="invoice.paid", since="1h").messages
    assert [m.message_id for m in by_type] == ["msg_other", "msg_acme"]
    window = reader.list(endpoint="acme", since="3h", until="1h").messages
    assert [m.message_id for m in window] == ["msg_old"]
    assert [m.message_id for m in reader.list(since="1h", limit=1).messages] == ["msg_refund"]


def test_lines_that_are_not_attempts_are_ignored(make_source: SourceFactory, logs: Any, writer: LogGroupWriter) -> None:
    now = writer.server_now()
    emf = json.dumps({"_aws": {"CloudWatchMetrics": []}, "DeliveryAttempts": 1})
    writer.write(
        (now - 30, "START RequestId: 1 Version: $LATEST"),
        (now - 20, emf),
        (now - 15, json.dumps({"level": "WARNING", "message": "breaker flush failed", "webhook_id": "msg_x"})),
        (now - 10, attempt_line("msg_x", "delivered")),
    )
    listed = _reader(make_source, logs, now).list(since="1h").messages
    assert [(m.message_id, len(m.attempts)) for m in listed] == [("msg_x", 1)]


def test_lines_of_the_older_schema_are_read(make_source: SourceFactory, logs: Any, writer: LogGroupWriter) -> None:
    now = writer.server_now()
    older = [
        {"message": "retry scheduled", "webhook_id": "msg_o", "endpoint": "acme", "attempt": 1, "last_status": 502},
        {
            "message": "dead-lettered",
            "webhook_id": "msg_o",
            "endpoint": "acme",
            "attempt": 2,
            "reason": "endpoint_gone",
        },
        {"message": "filtered: endpoint does not subscribe to this event type", "correlation_id": "msg_f"},
    ]
    writer.write(*((now - 30 + index, json.dumps(line)) for index, line in enumerate(older)))
    reader = _reader(make_source, logs, now)
    dead = reader.show("msg_o")
    assert dead is not None
    assert [a.http_status for a in dead.attempts] == [502, None]
    assert dead.status is Status.DEAD
    filtered = reader.show("msg_f")
    assert filtered is not None
    assert filtered.status is Status.FILTERED


def test_a_query_at_its_line_cap_says_it_is_incomplete(
    make_source: SourceFactory, logs: Any, writer: LogGroupWriter
) -> None:
    """Lines the query returned count toward its cap even when they are not attempts (a `slow_lane` line is not one:
    docs/contracts.md), so the cap is seen even when fewer attempts than the cap come back."""
    now = writer.server_now()
    slow = json.dumps({"message": "delivery", "webhook_id": "msg_new", "outcome": "slow_lane", "endpoint": "acme"})
    writer.write(
        (now - 40, attempt_line("msg_oldest", "delivered")),
        (now - 30, attempt_line("msg_b", "delivered")),
        (now - 20, attempt_line("msg_c", "delivered")),
        (now - 10, slow),
    )
    source = make_source(logs, [GROUP])
    capped = HistoryReader(source, retention_days=30, clock=lambda: now, max_lines=3).list(since="1h")
    assert not capped.complete or [m.message_id for m in capped.messages] == ["msg_c", "msg_b", "msg_oldest"]
    whole = HistoryReader(source, retention_days=30, clock=lambda: now, max_lines=5).list(since="1h")
    assert whole.complete
    assert [m.message_id for m in whole.messages] == ["msg_c", "msg_b", "msg_oldest"]
