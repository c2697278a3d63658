"""History without a log service: line parsing, time ranges, the Logs Insights query and its polling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookline.history import HistoryOffError, HistoryQueryError, HistoryReader, InsightsSource, Outcome, RecordFilter
from hookline.history.exceptions import TimeRangeError
from hookline.history.insights import build_query
from hookline.history.logline import parse_line
from hookline.history.model import Status
from hookline.history.timerange import TimeRange, parse_moment
from tests.support.history import attempt_line

NOW = 1_800_000_000.0


def test_a_line_of_the_schema_becomes_an_attempt() -> None:
    line = attempt_line("msg_1", "retrying", attempt=3, status=429, target=1, error="HTTP 429", replay=True)
    attempt = parse_line(line, NOW)
    assert attempt is not None
    assert (attempt.message_id, attempt.outcome, attempt.attempt, attempt.target) == ("msg_1", Outcome.RETRYING, 3, 1)
    assert (attempt.http_status, attempt.error, attempt.replay, attempt.time) == (429, "HTTP 429", True, NOW)


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        json.dumps({"message": "delivered"}),  # no id
        json.dumps({"message": "visibility change failed", "webhook_id": "msg_1"}),
        json.dumps({"outcome": "exploded", "webhook_id": "msg_1"}),
    ],
)
def test_other_lines_are_not_history(message: str) -> None:
    assert parse_line(message, NOW) is None


def test_status_zero_means_no_answer() -> None:
    attempt = parse_line(json.dumps({"message": "dead-lettered", "webhook_id": "m", "last_status": 0}), NOW)
    assert attempt is not None
    assert attempt.http_status is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - 90),
        ("15m", NOW - 900),
        ("1h", NOW - 3600),
        ("2d", NOW - 172800),
        ("1w", NOW - 604800),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15", 1_800_000_000.0 - 8 * 3600),
        ("1799913600", 1_799_913_600.0),
    ],
)
def test_moments(text: str, expected: float) -> None:
    assert parse_moment(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "1y", "-1h", "2027-13-01"])
def test_bad_moments_say_what_is_accepted(text: str) -> None:
    with pytest.raises(TimeRangeError, match="duration back from now"):
        parse_moment(text, now=NOW)


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(TimeRangeError, match="empty"):
        TimeRange.parse("1h", "2h", now=NOW, default_since_s=3600)


def test_history_off_refuses_to_read() -> None:
    with pytest.raises(HistoryOffError, match="HistoryRetentionDays=0"):
        HistoryReader(_NoSource(), retention_days=0)


def test_the_window_never_reaches_past_retention() -> None:
    reader = HistoryReader(_NoSource(), retention_days=7, clock=lambda: NOW)
    assert reader.window("30d") == TimeRange(NOW - 7 * 86400, NOW)
    with pytest.raises(TimeRangeError, match="7 days"):
        reader.window("30d", "10d")


def test_bad_filters_are_refused_before_any_query() -> None:
    reader = HistoryReader(_NoSource(), retention_days=7, clock=lambda: NOW)
    with pytest.raises(ValueError, match="webhook id"):
        reader.show('x" or 1=1')
    with pytest.raises(ValueError, match="event type"):
        reader.list(event_type="bad type")


def test_the_query_filters_on_the_indexed_id_first() -> None:
    query = build_query(RecordFilter(message_ids=frozenset({"msg_1"})), limit=100)
    lines = query.splitlines()
    assert lines[0] == "fields @timestamp, @message"
    assert lines[1] == '| filter webhook_id = "msg_1"'
    assert lines[-2:] == ["| sort @timestamp desc", "| limit 100"]
    several = build_query(RecordFilter(message_ids=frozenset({"b", "a"})), limit=10)
    assert '| filter webhook_id in ["a", "b"]' in several


def test_the_query_carries_every_filter() -> None:
    where = RecordFilter.for_status(Status.DEAD, endpoint="acme", event_type="invoice.paid")
    query = build_query(where, limit=10)
    assert '| filter endpoint = "acme"' in query
    assert '| filter event_type = "invoice.paid"' in query
    assert 'outcome in ["dead", "dead_lettered"] or message in ["dead-lettered"]' in query


class _NoSource:
    def attempts(self, where: RecordFilter, window: TimeRange, *, limit: int) -> Any:
        raise AssertionError("no query expected")


class _FakeInsights:
    """Answers like CloudWatch Logs: queries run for ``running`` polls, then end with ``final``."""

    def __init__(self, *, running: int, final: str, rows: list[list[dict[str, str]]] | None = None) -> None:
        self.running = running
        self.final = final
        self.rows = rows or []
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []

    def start_query(self, **request: Any) -> dict[str, str]:
        self.started.append(request)
        return {"queryId": "q-1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:  # noqa: N803 - the API's name
        if self.running:
            self.running -= 1
            return {"status": "Running", "results": []}
        return {"status": self.final, "results": self.rows, "statistics": {"bytesScanned": 2048.0}}

    def stop_query(self, queryId: str) -> dict[str, bool]:  # noqa: N803 - the API's name
        self.stopped.append(queryId)
        return {"success": True}


def test_insights_polls_until_complete_and_counts_bytes_scanned() -> None:
    row = [
        {"field": "@timestamp", "value": "2027-01-15 08:00:00.250"},
        {"field": "@message", "value": attempt_line("msg_1", "delivered")},
    ]
    fake = _FakeInsights(running=2, final="Complete", rows=[row])
    sleeps: list[float] = []
    source = InsightsSource(fake, ["/g"], poll_s=0.5, sleep=sleeps.append)
    found = source.attempts(RecordFilter(), TimeRange(1_799_900_000.0, 1_800_000_000.0), limit=10)
    assert [(a.message_id, a.time) for a in found.attempts] == [("msg_1", 1_800_000_000.25)]
    assert found.capped is False
    assert sleeps == [0.5, 0.5]
    assert source.bytes_scanned == 2048.0
    assert fake.started[0]["logGroupNames"] == ["/g"]
    assert fake.started[0]["startTime"] == 1_799_900_000


@pytest.mark.parametrize("final", ["Failed", "Cancelled", "Timeout"])
def test_a_query_that_fails_is_an_error(final: str) -> None:
    source = InsightsSource(_FakeInsights(running=0, final=final), ["/g"], sleep=lambda _s: None)
    with pytest.raises(HistoryQueryError, match=final):
        source.attempts(RecordFilter(), TimeRange(0, 10), limit=10)


def test_a_query_that_runs_too_long_is_stopped() -> None:
    fake = _FakeInsights(running=1000, final="Complete")
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    source = InsightsSource(fake, ["/g"], poll_s=1.0, timeout_s=5.0, sleep=sleep, monotonic=lambda: clock[0])
    with pytest.raises(HistoryQueryError, match="did not finish"):
        source.attempts(RecordFilter(), TimeRange(0, 10), limit=10)
    assert fake.stopped == ["q-1"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("delivered", Outcome.DELIVERED),
        ("retry", Outcome.RETRYING),
        ("dead_lettered", Outcome.DEAD),
        ("filtered", Outcome.FILTERED),
        ("deferred", None),  # not tried: the record comes back
        ("waiting", None),
        ("paced", None),
    ],
)
def test_the_delivery_log_line_contract_is_read(outcome: str, expected: Outcome | None) -> None:
    """Lines as docs/contracts.md "Delivery log line" writes them (message "delivery", outcome names of its own)."""
    line = {"level": "WARNING", "message": "delivery", "webhook_id": "msg_1", "endpoint": "acme", "attempt": 2}
    line |= {"event_type": "invoice.paid", "target": 1, "status": 503, "outcome": outcome, "lane": "fast"}
    line |= {"reason": "retries_exhausted", "error": "HTTP 503", "targets": [{"index": 0, "result": "failed"}]}
    attempt = parse_line(json.dumps(line), NOW)
    if expected is None:
        assert attempt is None
        return
    assert attempt is not None
    assert (attempt.outcome, attempt.lane, attempt.target, attempt.http_status) == (expected, "fast", 1, 503)


@pytest.mark.parametrize(
    "line",
    [
        '{"a":' + "[" * 100_000 + "}",  # nested too deep for json.loads: RecursionError
        json.dumps({"outcome": "delivered", "webhook_id": "m", "attempt": "²"}),  # a digit int() refuses
        json.dumps({"outcome": "delivered", "webhook_id": "m", "target": "9" * 5000}),  # over int()'s 4,300 digits
        json.dumps({"outcome": "delivered", "webhook_id": "m"})[:-1] + ', "latency_ms": NaN}',
        json.dumps({"outcome": "delivered", "webhook_id": "m"})[:-1] + ', "latency_ms": 1e999}',
        json.dumps({"outcome": "delivered", "webhook_id": "m", "latency_ms": 10**400}),  # float() overflows
    ],
)
def test_hostile_lines_never_raise(line: str) -> None:
    """Anyone can write into the log group: a line is history, or not, but reading it never fails."""
    attempt = parse_line(line, NOW)
    if attempt is not None:
        assert (attempt.attempt, attempt.target, attempt.latency_ms) == (None, None, None)
        json.dumps(attempt.view(), allow_nan=False)  # the --json output stays JSON


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("1h", "99999999999w"),  # before the year 1: datetime cannot show it
        ("9999-12-31T23:59:59-14:00", None),  # after the year 9999 in UTC
        ("99999999999999999999d", None),
    ],
)
def test_huge_times_are_refused_as_bad_input(since: str, until: str | None) -> None:
    with pytest.raises(TimeRangeError, match="out of range"):
        TimeRange.parse(since, until, now=NOW, default_since_s=3600)


def test_the_query_selects_only_lines_that_are_attempts() -> None:
    """Lines of the contract's other outcomes would fill the 10,000-line cap with lines the reader drops."""
    query = build_query(RecordFilter(), limit=10)
    for outcome in ("delivered", "retry", "dead_lettered", "filtered"):
        assert f'"{outcome}"' in query
    for not_an_attempt in ("deferred", "slow_lane", "waiting", "paced"):
        assert not_an_attempt not in query
    assert "ispresent(outcome)" not in query
