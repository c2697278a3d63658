"""The local SQS model in moto's process: the in-flight quota empties receives, delayed messages stay out of it, peaks.

Queues come from template.yaml's own properties (DeliveryQueue with its redrive to DeadLetterQueue); each test sets
a small quota on its own queue through the control endpoint, so tests never see each other's queues.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline_local.server import MotoServer
from hookline_local.sqs_control import SQS_INFLIGHT_QUOTA, SqsControl, queue_name
from tests.support.aws import REGION, client
from tests.support.template import create_queues

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with MotoServer(region=REGION) as started:
        yield started


@pytest.fixture
def control(server: MotoServer) -> Iterator[SqsControl]:
    sqs_control = server.sqs_control()
    yield sqs_control
    sqs_control.close()


@pytest.fixture
def sqs(server: MotoServer) -> Any:
    return client("sqs", server.endpoint_url)


def _queue(sqs: Any, control: SqsControl, quota: int) -> str:
    url = create_queues(sqs, "DeliveryQueue")["DeliveryQueue"].url
    control.configure(quotas={url: quota})
    return url


def _send(sqs: Any, url: str, count: int, **options: Any) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{start + i}", **options} for i in range(min(10, count - start))]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def _receive(sqs: Any, url: str, *, wait_s: int = 0, count: int = 10) -> list[dict[str, Any]]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_s)
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def test_every_queue_gets_sqs_quota_by_default(sqs: Any, control: SqsControl) -> None:
    url = sqs.create_queue(QueueName="default-quota")["QueueUrl"]
    assert control.queue(url).quota == SQS_INFLIGHT_QUOTA


def test_at_the_quota_receives_come_back_empty_until_room_is_made(sqs: Any, control: SqsControl) -> None:
    url = _queue(sqs, control, quota=5)
    _send(sqs, url, 12)
    taken = _receive(sqs, url)
    assert len(taken) == 5  # only the room left, although 10 were asked for and 12 are visible
    assert _receive(sqs, url) == []
    state = control.queue(url)
    assert (state.in_flight, state.visible, state.peak_in_flight, state.receives_refused) == (5, 7, 5, 1)

    # Room comes back when a message is deleted or its visibility ends; a receive takes no more than the room.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=taken[0]["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=taken[1]["ReceiptHandle"], VisibilityTimeout=0)
    assert len(_receive(sqs, url)) == 2
    assert _receive(sqs, url) == []
    state = control.queue(url)
    assert (state.in_flight, state.visible, state.peak_in_flight, state.receives_refused) == (5, 6, 5, 2)


def test_a_long_poll_at_the_quota_waits_and_takes_the_first_room(sqs: Any, control: SqsControl) -> None:
    url = _queue(sqs, control, quota=1)
    _send(sqs, url, 3)
    (held,) = _receive(sqs, url)
    polled: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: polled.append(_receive(sqs, url, wait_s=10)))
    poller.start()
    sqs.delete_message(QueueUrl=url, ReceiptHandle=held["ReceiptHandle"])
    poller.join(timeout=10)
    assert len(polled) == 1 and len(polled[0]) == 1
    assert control.queue(url).in_flight == 1


def test_delayed_messages_are_not_in_flight(sqs: Any, control: SqsControl) -> None:
    url = _queue(sqs, control, quota=3)
    _send(sqs, url, 5, DelaySeconds=900)
    _send(sqs, url, 2)
    assert len(_receive(sqs, url)) == 2
    state = control.queue(url)
    assert (state.in_flight, state.delayed, state.visible) == (2, 5, 0)
    delayed = [m for m in state.messages if m.delayed_for_s > 0]
    assert len(delayed) == 5 and all(890 < m.delayed_for_s <= 900 and m.receive_count == 0 for m in delayed)
    # Below the quota, an empty answer is just an empty queue: not counted as refused.
    assert _receive(sqs, url) == []
    assert control.queue(url).receives_refused == 0


def test_peak_in_flight_is_kept_until_reset(sqs: Any, control: SqsControl) -> None:
    url = _queue(sqs, control, quota=100)
    _send(sqs, url, 20)
    taken = _receive(sqs, url) + _receive(sqs, url)
    assert len(taken) == 20
    for message in taken[:15]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    state = control.queue(url)
    assert (state.in_flight, state.peak_in_flight) == (5, 20)
    state = control.configure(reset_peaks=True)[queue_name(url)]
    assert state.peak_in_flight == 5  # after a reset the peak starts from what is in flight now
    assert state.receives_refused == 0


def test_message_timers_show_visibility_and_receive_count(sqs: Any, control: SqsControl) -> None:
    url = _queue(sqs, control, quota=10)
    _send(sqs, url, 1)
    (message,) = _receive(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=300)
    (timers,) = control.queue(url).messages
    assert timers.message_id == message["MessageId"]
    assert timers.receive_count == 1
    assert 290 < timers.visible_in_s <= 300


def test_a_bad_quota_is_refused(server: MotoServer, control: SqsControl) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        control.configure(default_quota=0)
    with pytest.raises(ValueError, match="at least 1"):
        MotoServer(inflight_quota=0)
    response = httpx.post(server.endpoint_url + "/_hookline/sqs", content=b"not json", trust_env=False)
    assert response.status_code == 400


def test_moto_answers_as_before_on_its_fast_paths(sqs: Any, control: SqsControl) -> None:
    """GetQueueAttributes counts, deletes and receives keep moto's answers (counts in one pass, one-pass deletes)."""
    url = _queue(sqs, control, quota=100)
    _send(sqs, url, 3, DelaySeconds=900)
    _send(sqs, url, 7)
    first = _receive(sqs, url, count=4)
    counts = [f"ApproximateNumberOf{kind}" for kind in ("Messages", "MessagesNotVisible", "MessagesDelayed")]
    named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counts)["Attributes"]
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert [named[name] for name in counts] == [everything[name] for name in counts] == ["3", "4", "3"]
    assert everything["MessageRetentionPeriod"] == "1209600"  # the template's 14 days, still read through

    # A message received again deletes by its old receipt handle too; a second delete is accepted; a made-up one is not.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = [m for m in _receive(sqs, url) if m["MessageId"] == first[0]["MessageId"]]
    assert again and again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    state = control.queue(url)
    assert (state.visible + state.in_flight, state.delayed) == (6, 3)
