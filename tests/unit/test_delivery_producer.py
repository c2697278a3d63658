"""The producer: validated messages with a msg_ id, sent with one SendMessage."""

from __future__ import annotations

import json

import pytest

from hookline.messages import MessageError, parse_message
from hookline.metrics import Reason
from hookline.producer import build_message, new_message_id, send_webhook
from tests.support.aws import client


def test_new_ids_are_prefixed_time_ordered_and_distinct() -> None:
    counter = iter(range(100))
    ids = [
        new_message_id(clock=lambda: 1_795_852_800.0 + next(counter), random_bytes=lambda n: b"\xff" * n)
        for _ in range(5)
    ]
    assert all(value.startswith("msg_") and len(value) == 30 for value in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    same_ms = {new_message_id(clock=lambda: 1.0) for _ in range(50)}
    assert len(same_ms) == 50


def test_build_message_validates_and_round_trips() -> None:
    body = build_message(event_type="invoice.paid", payload={"amount": 5}, endpoint="acme", id="msg_1")
    message = parse_message(body)
    assert (message.id, message.endpoint, message.payload) == ("msg_1", "acme", {"amount": 5})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event_type": "invoice paid", "payload": {}, "endpoint": "acme"},
        {"event_type": "a", "payload": {}},
        {"event_type": "a", "payload": {}, "endpoint": "acme", "url": "https://x.example"},
        {"event_type": "a", "payload": {}, "url": "https://x.example"},
        {"event_type": "a", "payload": {}, "endpoint": "acme", "fallback_urls": ["https://x.example"]},
    ],
)
def test_contract_violations_are_refused_before_sending(kwargs: dict[str, object]) -> None:
    with pytest.raises(MessageError) as caught:
        build_message(**kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is Reason.SCHEMA_VIOLATION


def test_oversized_message_is_refused() -> None:
    with pytest.raises(MessageError) as caught:
        build_message(event_type="a", payload="x" * 300_000, endpoint="acme")
    assert caught.value.reason is Reason.MESSAGE_TOO_LARGE


@pytest.mark.usefixtures("aws")
def test_send_webhook_puts_one_message_and_returns_its_id() -> None:
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="delivery")["QueueUrl"]
    message_id = send_webhook(
        queue_url,
        url="https://hooks.acme.com/x",
        fallback_urls=["https://backup.acme.com/x"],
        secret_id="hookline/acme",
        event_type="invoice.paid",
        payload={"amount": 5},
        sqs_client=sqs,
    )
    assert message_id.startswith("msg_")
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 1
    data = json.loads(received[0]["Body"])
    assert data["id"] == message_id
    assert data["fallback_urls"] == ["https://backup.acme.com/x"]
    assert parse_message(received[0]["Body"]).body == b'{"amount":5}'
