"""Lanes: a request over the fast lane's budget is cut, its origin marked slow, its record moved to the slow lane."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline.delivery.config import DeliveryConfig
from hookline.exceptions import RequestTimeoutError
from hookline.http import HttpResult
from hookline.registry import Endpoint
from hookline.settings import Settings
from tests.support.delivery_fakes import ServiceKit
from tests.support.events import make_record, make_sqs_event
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

SLOW = Endpoint(name="slow", url="https://slow.example/hook", secret_id="hookline/s")
FAST = Endpoint(name="fast", url="https://fast.example/hook", secret_id="hookline/s")
SLOW_ORIGIN = "https://slow.example"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
RETRY_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-RetryQueue"
SLOW_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-SlowQueue"


class Receivers:
    """A send_limited stand-in on the kit's fake clock: each URL answers after its latency, or times out."""

    def __init__(self, clock: FakeClock, latency_s: dict[str, float]) -> None:
        self.clocks = [clock]
        self.latency_s = latency_s
        self.statuses: dict[str, int] = {}
        self.calls: list[tuple[str, float]] = []

    async def __call__(self, client: Any, method: str, url: str, **kwargs: Any) -> HttpResult:
        timeout_s = kwargs["timeout_s"]
        self.calls.append((url, timeout_s))
        latency = self.latency_s.get(url, 0.05)
        if latency > timeout_s:
            self._advance(timeout_s)
            raise RequestTimeoutError("timeout", f"no answer from {url} within {timeout_s:g}s")
        self._advance(latency)
        return HttpResult(self.statuses.get(url, 200), httpx.Headers(), b"", False, latency * 1000)

    def _advance(self, seconds: float) -> None:
        for clock in self.clocks:
            clock.advance(seconds)


def _kit(lane: str, latency_s: float) -> tuple[ServiceKit, Receivers]:
    wall = FakeClock(1_800_000_000.0)
    receivers = Receivers(wall, {SLOW.url: latency_s})
    settings = Settings(dead_letter_queue_url=DLQ, retry_schedule=(10.0, 20.0), max_concurrency=4)
    config = DeliveryConfig(
        lane=lane, retry_queue_url=RETRY_QUEUE, slow_queue_url=SLOW_QUEUE, request_budget_s=3.0, slow_mark_s=300.0
    )
    kit = ServiceKit(SLOW, FAST, settings=settings, config=config, wall=wall, send=receivers)
    receivers.clocks.append(kit.clock)  # latencies are measured on the monotonic clock
    return kit, receivers


@pytest.fixture
def fast() -> Iterator[tuple[ServiceKit, Receivers]]:
    kit, receivers = _kit("fast", latency_s=5.0)
    yield kit, receivers
    kit.close()


def _message(endpoint: str, **fields: Any) -> dict[str, Any]:
    return {"version": 1, "event_type": "a", "endpoint": endpoint, "payload": {}, **fields}


def test_over_the_budget_the_request_is_cut_and_the_record_moves_to_the_slow_lane(
    fast: tuple[ServiceKit, Receivers],
) -> None:
    kit, receivers = fast
    records = [make_record(_message("slow", id="msg_slow")), make_record(_message("fast", id="msg_fast"))]
    assert kit.handle(make_sqs_event(*records)) == {"batchItemFailures": []}
    assert (SLOW.url, 3.0) in receivers.calls  # cut at the fast lane's 3 s budget, not the endpoint's 15 s
    [moved] = kit.sqs.requeued
    assert moved["QueueUrl"] == SLOW_QUEUE
    assert moved["DelaySeconds"] == 0
    assert kit.sqs.states()[0]["n"] == 0  # no attempt used
    assert kit.marks_store.items[SLOW_ORIGIN] > 0  # marked slow fleet-wide
    assert kit.metrics.counts["DeliverySlowLane"] == 1
    assert kit.metrics.counts["DeliverySucceeded"] == 1  # the other record was delivered meanwhile


def test_a_marked_origin_goes_straight_to_the_slow_lane(fast: tuple[ServiceKit, Receivers]) -> None:
    kit, receivers = fast
    kit.handle(make_sqs_event(make_record(_message("slow"))))
    kit.slow_marks._read_at.clear()  # another environment: it reads the mark from the store
    kit.handle(make_sqs_event(make_record(_message("slow"))))
    assert len(receivers.calls) == 1  # the second record made no request
    assert [entry["QueueUrl"] for entry in kit.sqs.requeued] == [SLOW_QUEUE, SLOW_QUEUE]


def test_the_slow_lane_has_full_timeouts_and_lifts_the_mark_when_fast_again() -> None:
    kit, receivers = _kit("slow", latency_s=5.0)
    try:
        kit.marks_store.items[SLOW_ORIGIN] = 1_800_000_000.0 + 300
        kit.handle(make_sqs_event(make_record(_message("slow"))))
        assert receivers.calls == [(SLOW.url, 15.0)]
        assert kit.metrics.counts["DeliverySucceeded"] == 1
        assert kit.marks_store.items[SLOW_ORIGIN] > 1_800_000_000.0  # still slow: the mark stands
        receivers.latency_s[SLOW.url] = 0.2
        kit.handle(make_sqs_event(make_record(_message("slow"))))
        assert kit.marks_store.items[SLOW_ORIGIN] == 0.0  # answered within the budget: lifted
    finally:
        kit.close()


def test_retries_wait_in_the_lane_their_endpoint_belongs_to() -> None:
    kit, receivers = _kit("slow", latency_s=20.0)  # times out even with the full 15 s
    try:
        kit.marks_store.items[SLOW_ORIGIN] = 1_800_000_000.0 + 300
        kit.handle(make_sqs_event(make_record(_message("slow"))))
        assert kit.sqs.requeued[-1]["QueueUrl"] == SLOW_QUEUE  # still slow: its retry stays in the slow lane
        receivers.latency_s[SLOW.url] = 0.2  # fast again, and failing: the mark is lifted, the retry goes back
        receivers.statuses[SLOW.url] = 500
        kit.handle(make_sqs_event(make_record(_message("slow"))))
        assert kit.marks_store.items[SLOW_ORIGIN] == 0.0
        assert kit.sqs.requeued[-1]["QueueUrl"] == RETRY_QUEUE
    finally:
        kit.close()
