"""Parking: waits longer than PARK_AFTER_S become one EventBridge Scheduler one-time schedule (moto's Scheduler)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline.delivery.config import DeliveryConfig
from hookline.delivery.parking import SQS_SEND_MESSAGE_TARGET, Parking, ParkingConfig
from hookline.registry import Endpoint
from hookline.settings import Settings
from tests.support.aws import client
from tests.support.delivery_fakes import WALL_CLOCK, ServiceKit
from tests.support.events import make_record, make_sqs_event
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ACME = Endpoint(name="acme", url="https://hooks.acme.example/hook", secret_id="hookline/acme")
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
RETRY_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-RetryQueue"
ROLE = "arn:aws:iam::123456789012:role/hookline-parking"
GROUP = "hookline-parking"


class FlakyScheduler:
    """The moto Scheduler client, failing the next ``fail`` calls with a throttle."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = 0

    def create_schedule(self, **kwargs: Any) -> Any:
        if self.fail:
            self.fail -= 1
            raise self.inner.exceptions.ThrottlingException(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "CreateSchedule"
            )
        return self.inner.create_schedule(**kwargs)


@pytest.fixture
def scheduler(aws: None) -> FlakyScheduler:
    inner = client("scheduler")
    inner.create_schedule_group(Name=GROUP)
    return FlakyScheduler(inner)


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(WALL_CLOCK)


@pytest.fixture
def kit(scheduler: FlakyScheduler, wall: FakeClock) -> Iterator[ServiceKit]:
    settings = Settings(dead_letter_queue_url=DLQ, retry_schedule=(10.0, 7200.0), max_concurrency=4)
    config = DeliveryConfig(retry_queue_url=RETRY_QUEUE)
    parking = Parking(scheduler, ParkingConfig(GROUP, ROLE, park_after_s=3600, dead_letter_arn="arn:aws:sqs:dlq"))
    kit = ServiceKit(ACME, settings=settings, config=config, wall=wall, parking=parking)
    kit.receiver.route(ACME.url, httpx.Response(503))
    yield kit
    kit.close()


def _message(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "event_type": "a", "endpoint": "acme", "payload": {"n": 1}, **fields}


def _schedules(scheduler: FlakyScheduler) -> list[dict[str, Any]]:
    listed = scheduler.inner.list_schedules(GroupName=GROUP)["Schedules"]
    return [scheduler.inner.get_schedule(Name=item["Name"], GroupName=GROUP) for item in listed]


def test_a_wait_over_an_hour_is_one_schedule_that_sends_the_message_back(
    kit: ServiceKit, scheduler: FlakyScheduler, wall: FakeClock
) -> None:
    record = make_record(_message(id="msg_long"), receive_count=2)  # attempt 2 fails: next wait 7200 s
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert kit.sqs.requeued == []  # no hop
    [schedule] = _schedules(scheduler)
    assert schedule["ScheduleExpression"] == "at(2026-11-28T10:00:00)"  # WALL_CLOCK + 7200 s (no jitter)
    assert schedule["ActionAfterCompletion"] == "DELETE"
    target = schedule["Target"]
    assert (target["Arn"], target["RoleArn"]) == (SQS_SEND_MESSAGE_TARGET, ROLE)
    assert target["DeadLetterConfig"] == {"Arn": "arn:aws:sqs:dlq"}
    request = json.loads(target["Input"])
    assert request["QueueUrl"] == RETRY_QUEUE
    assert json.loads(request["MessageBody"])["id"] == "msg_long"
    state = json.loads(request["MessageAttributes"]["hookline-retry"]["StringValue"])
    assert (state["n"], state["d"]) == (2, WALL_CLOCK + 7200)
    assert kit.metrics.counts["DeliveryParked"] == 1
    # When it is due, Scheduler sends the input as is; the record is then tried (and here dead-lettered: 3 attempts).
    wall.advance(7200)
    entry = {**request, "MessageAttributes": {"hookline-retry": request["MessageAttributes"]["hookline-retry"]}}
    kit.handle(make_sqs_event(kit.redeliver(entry)))
    assert len(kit.receiver.requests) == 2
    assert kit.sqs.reasons() == ["retries_exhausted"]


def test_parking_the_same_wait_twice_creates_one_schedule(kit: ServiceKit, scheduler: FlakyScheduler) -> None:
    record = make_record(_message(id="msg_twice"), receive_count=2)
    kit.handle(make_sqs_event(record))
    kit.handle(make_sqs_event(record))  # a crash before the delete: the same record again, the same wait
    assert len(_schedules(scheduler)) == 1
    assert kit.sqs.requeued == []


def test_a_park_that_fails_hops_instead(kit: ServiceKit, scheduler: FlakyScheduler) -> None:
    scheduler.fail = 1
    kit.handle(make_sqs_event(make_record(_message(), receive_count=2)))
    assert _schedules(scheduler) == []
    assert kit.sqs.delays() == [900]  # the first of 8 hops
    assert kit.sqs.states()[0]["d"] == WALL_CLOCK + 7200


def test_short_waits_never_park(kit: ServiceKit, scheduler: FlakyScheduler) -> None:
    kit.handle(make_sqs_event(make_record(_message())))  # attempt 1 fails: next wait 10 s
    assert _schedules(scheduler) == []
    assert kit.sqs.delays() == [10]
