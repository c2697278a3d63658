"""Retries leave the batch: re-enqueued with their state, only real attempts count, a bounded age, sizes, hops."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline.delivery.config import DeliveryConfig
from hookline.delivery.retrystate import RETRY_ATTRIBUTE, RetryState, RetryStateError
from hookline.delivery.schedule import Failure, GiveUp, Retry, RetryPolicy
from hookline.messages import MAX_MESSAGE_BYTES
from hookline.metrics import Reason
from hookline.registry import Endpoint
from hookline.settings import Settings
from tests.support.delivery_fakes import WALL_CLOCK, ServiceKit
from tests.support.events import make_record, make_sqs_event
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ACME = Endpoint(name="acme", url="https://hooks.acme.example/hook", secret_id="hookline/acme")
ORIGIN = "https://hooks.acme.example"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
RETRY_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-RetryQueue"


def _message(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "event_type": "invoice.paid", "endpoint": "acme", "payload": {"n": 1}, **fields}


def _letter(kit: ServiceKit) -> dict[str, str]:
    [letter] = kit.sqs.sent
    return {key: value["StringValue"] for key, value in letter["MessageAttributes"].items()}


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(WALL_CLOCK)


@pytest.fixture
def kit(wall: FakeClock) -> Iterator[ServiceKit]:
    settings = Settings(dead_letter_queue_url=DLQ, retry_schedule=(10.0, 20.0), max_concurrency=4)
    config = DeliveryConfig(retry_queue_url=RETRY_QUEUE, expiry_slack_s=100.0)
    kit = ServiceKit(ACME, settings=settings, wall=wall, config=config)
    yield kit
    kit.close()


def _cycle(kit: ServiceKit, record: dict[str, Any]) -> dict[str, Any]:
    """Handle ``record``; return the record SQS hands back for its re-enqueued copy."""
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    return kit.redeliver(kit.sqs.requeued[-1])


def test_retries_go_to_the_retry_queue_with_the_id_and_the_state(kit: ServiceKit, wall: FakeClock) -> None:
    kit.receiver.route(ACME.url, httpx.Response(503, text="busy"))
    record = make_record(_message())
    again = _cycle(kit, record)
    [entry] = kit.sqs.requeued
    assert entry["QueueUrl"] == RETRY_QUEUE
    assert json.loads(entry["MessageBody"])["id"] == f"msg_{record['messageId']}"
    assert entry["DelaySeconds"] == 10
    state = RetryState.decode(again["messageAttributes"][RETRY_ATTRIBUTE]["stringValue"])
    assert (state.attempts, state.position, state.last_status) == (1, 1, 503)
    assert state.first_failure == wall.now
    assert "busy" in state.last_error


def test_skipped_attempts_are_not_counted(kit: ServiceKit, wall: FakeClock) -> None:
    kit.receiver.route(ACME.url, httpx.Response(500))
    record = _cycle(kit, make_record(_message()))  # attempt 1: a real failure
    breaker = kit.breakers.get(ORIGIN)
    breaker.force_open("maintenance")
    for _ in range(3):  # three tries skipped by the open breaker
        wall.advance(kit.sqs.delays()[-1])
        record = _cycle(kit, record)
    assert len(kit.receiver.requests) == 1
    assert [(state["n"], state["p"]) for state in kit.sqs.states()] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    breaker.reset()
    kit.receiver.route(ACME.url, httpx.Response(200))
    wall.advance(kit.sqs.delays()[-1])
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert len(kit.receiver.requests) == 2
    assert kit.sqs.sent == []  # three skips did not use up a budget of three real attempts


def test_skip_waits_at_least_the_schedules_next_entry(kit: ServiceKit) -> None:
    kit.breakers.get(ORIGIN).force_open("maintenance")
    record = make_record(_message(), receive_count=3)  # two attempts made before: position 2, next entry 20 s
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    # Forced open answers retry_after = open_s (30 s); a breaker about to close would answer less, never below 20 s.
    assert kit.sqs.delays() == [30]
    kit.breakers.get(ORIGIN).reset()
    kit.receiver.route(ACME.url, httpx.Response(500))
    kit.handle(make_sqs_event(make_record(_message(), receive_count=2)))
    assert kit.sqs.delays()[-1] == 20


def test_dead_letter_keeps_the_last_real_status_not_the_breakers_refusal(kit: ServiceKit, wall: FakeClock) -> None:
    kit.receiver.route(ACME.url, httpx.Response(502, text="bad gateway"))
    record = _cycle(kit, make_record(_message()))
    kit.breakers.get(ORIGIN).force_open("maintenance")
    # Skips keep the message going until its age passes schedule x 1.2 + slack (30 x 1.2 + 100 = 136 s).
    while not kit.sqs.sent:
        wall.advance(kit.sqs.delays()[-1])
        kit.handle(make_sqs_event(record))
        if not kit.sqs.sent:
            record = kit.redeliver(kit.sqs.requeued[-1])
    attributes = _letter(kit)
    assert attributes["reason"] == "expired"
    assert attributes["attempts"] == "1"
    assert attributes["last_status"] == "502"
    assert "bad gateway" in attributes["last_error"]
    assert "forced_open" not in attributes["last_error"]
    assert len(kit.receiver.requests) == 1
    assert kit.metrics.dead_lettered == {"expired": 1}


def test_a_message_never_tried_expires_with_the_refusal_as_its_error(kit: ServiceKit, wall: FakeClock) -> None:
    kit.breakers.get(ORIGIN).force_open("maintenance")
    record = make_record(_message())
    while not kit.sqs.sent:
        kit.handle(make_sqs_event(record))
        if not kit.sqs.sent:
            record = kit.redeliver(kit.sqs.requeued[-1])
            wall.advance(kit.sqs.delays()[-1])
    attributes = _letter(kit)
    assert (attributes["reason"], attributes["attempts"], attributes["last_status"]) == ("expired", "0", "0")
    assert attributes["last_error"].startswith("no attempt reached a receiver: circuit")


def test_a_message_back_before_it_is_due_waits_again_without_an_attempt(kit: ServiceKit, wall: FakeClock) -> None:
    # A long wait for the endpoint's pace: no failure yet, so no age either.
    state = RetryState(first_seen=WALL_CLOCK, paced_s=1500.0, due_at=WALL_CLOCK + 1500)
    attribute = {RETRY_ATTRIBUTE: {"stringValue": state.encode(), "dataType": "String"}}
    record = make_record(_message(id="msg_parked"), message_attributes=attribute)
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert kit.receiver.requests == []
    assert kit.sqs.delays() == [900]
    assert RetryState.decode(json.dumps(kit.sqs.states()[0])) == state
    wall.advance(1499.5)  # back half a second early (SQS delays are whole seconds): tried now
    assert kit.handle(make_sqs_event(kit.redeliver(kit.sqs.requeued[-1]))) == {"batchItemFailures": []}
    assert len(kit.receiver.requests) == 1


def test_producer_attributes_are_carried_through_every_re_enqueue(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(500))
    producer = {
        "tenant": {"stringValue": "acme", "dataType": "String"},
        "trace": {"binaryValue": base64.b64encode(b"\x00\x01").decode(), "dataType": "Binary"},
    }
    record = _cycle(kit, make_record(_message(), message_attributes=producer))
    _cycle(kit, record)
    for entry in kit.sqs.requeued:
        attributes = entry["MessageAttributes"]
        assert set(attributes) == {"tenant", "trace", RETRY_ATTRIBUTE}
        assert attributes["tenant"] == {"DataType": "String", "StringValue": "acme"}
        assert attributes["trace"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}


def test_a_message_that_could_not_carry_its_state_is_dead_lettered_at_once(kit: ServiceKit) -> None:
    producer = {f"a{index}": {"stringValue": "x", "dataType": "String"} for index in range(10)}
    kit.handle(make_sqs_event(make_record(_message(id="msg_crowded"), message_attributes=producer)))
    # Just under 256 KB without an id: the derived id (and the retry attribute) would push it over.
    padding = "x" * (MAX_MESSAGE_BYTES - 150)
    kit.handle(make_sqs_event(make_record(_message(payload=padding))))
    assert kit.sqs.reasons() == ["message_too_large", "message_too_large"]
    assert "10 message attributes" in kit.sqs.sent[0]["MessageAttributes"]["last_error"]["StringValue"]
    assert kit.receiver.requests == []


def test_garbled_state_falls_back_to_the_receive_count(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(500))
    attribute = {RETRY_ATTRIBUTE: {"stringValue": '{"v": 99}', "dataType": "String"}}
    kit.handle(make_sqs_event(make_record(_message(), receive_count=2, message_attributes=attribute)))
    assert [(state["n"], state["p"]) for state in kit.sqs.states()] == [(2, 2)]


def test_retry_state_round_trips_and_keeps_unknown_keys() -> None:
    state = RetryState(
        first_seen=100.5, attempts=3, position=5, first_failure=101, last_status=503, last_error="é" * 700, paced_s=7
    )
    text = state.encode()
    assert len(json.loads(text)["e"].encode()) <= 1024
    assert RetryState.decode(text).attempts == 3
    with_flag = json.dumps({**json.loads(text), "r": 1})
    assert json.loads(RetryState.decode(with_flag).encode())["r"] == 1
    assert "e" not in json.loads(state.encode(max_error_bytes=0))
    for bad in ("nope", "[]", '{"v":1}', '{"v":1,"n":-1,"p":0,"f":1}', '{"v":1,"n":1,"p":1,"f":1,"e":5}'):
        with pytest.raises(RetryStateError):
            RetryState.decode(bad)
    legacy = RetryState.from_receive_count(3, sent_at=50.0)
    assert (legacy.attempts, legacy.position, legacy.first_failure, legacy.attempt) == (2, 2, None, 3)


def _mid() -> float:
    return 0.5  # no jitter


def test_policy_decides_without_io() -> None:
    policy = RetryPolicy((10.0, 20.0), expiry_slack_s=5.0)
    assert (policy.max_attempts, policy.max_age_s) == (3, 41.0)
    fresh = RetryState(first_seen=0.0)
    step = policy.after_failure(fresh, Failure(real=True, status=500, error="e"), now=0.0, random=_mid)
    assert isinstance(step, Retry)
    assert (step.delay_s, step.state.due_at, step.state.attempts) == (10, 10.0, 1)
    last = RetryState(first_seen=0.0, attempts=2, position=2, first_failure=0.0)
    step = policy.after_failure(last, Failure(real=True, status=500, error="e"), now=30.0, random=_mid)
    assert isinstance(step, GiveUp)
    assert step.reason is Reason.RETRIES_EXHAUSTED
    step = policy.after_failure(last, Failure(real=False, error="skip"), now=30.0, random=_mid)
    assert isinstance(step, GiveUp)
    assert step.reason is Reason.EXPIRED  # 30 s old plus the next 20 s is past 41 s
    paced = RetryState(first_seen=0.0, attempts=1, position=1, first_failure=0.0, paced_s=1000.0)
    assert not policy.expired(paced, 1030.0)  # waiting for pace never ages a message


def test_a_429_paces_the_endpoint_and_a_pace_wait_uses_no_attempt(kit: ServiceKit, wall: FakeClock) -> None:
    kit.receiver.route(ACME.url, httpx.Response(429, headers={"Retry-After": "30"}))
    kit.handle(make_sqs_event(make_record(_message(id="msg_first"))))
    # The 429 was a real answer: an attempt, Retry-After honoured; and it holds the endpoint fleet-wide for 30 s.
    assert [(state["n"], state["s"]) for state in kit.sqs.states()] == [(1, 429)]
    assert kit.sqs.delays() == [30]
    assert kit.breakers.get(ORIGIN).snapshot(refresh=True).state.value == "closed"  # not a breaker failure
    wall.advance(5)
    kit.handle(make_sqs_event(make_record(_message(id="msg_second"))))
    assert len(kit.receiver.requests) == 1  # the second record was paced: no request
    second = kit.sqs.states()[-1]
    assert (second["n"], second.get("x"), second["w"]) == (0, None, 25)  # no attempt, no failure, waited 25 s
    assert kit.sqs.delays()[-1] == 25
    assert kit.metrics.counts["DeliveryPaced"] == 1
    assert kit.metrics.counts["DeliveryAttempts"] == 0


HOSTILE_STATES = [
    pytest.param('{"v":1,"n":NaN,"p":0,"f":1}', id="nan"),
    pytest.param('{"v":1,"n":1,"p":1,"f":Infinity}', id="infinity"),
    pytest.param("[" * 100_000, id="nested-too-deep"),
    pytest.param('{"v":1,"n":1,"p":1,"f":1,"s":1e300}', id="status-not-http"),
    pytest.param('{"v":1,"n":1e300,"p":1,"f":1}', id="attempts-out-of-range"),
    pytest.param('{"v":1,"n":1,"p":1,"f":1,"d":1e300}', id="due-out-of-range"),
]


@pytest.mark.parametrize("text", HOSTILE_STATES)
def test_a_hostile_retry_attribute_is_refused_as_unreadable(text: str) -> None:
    # Only RetryStateError: the batch treats it as absent (receive count); anything else would fail the whole batch.
    with pytest.raises(RetryStateError):
        RetryState.decode(text)


@pytest.mark.parametrize("text", HOSTILE_STATES)
def test_a_hostile_retry_attribute_never_fails_the_batch(kit: ServiceKit, text: str) -> None:
    kit.receiver.route(ACME.url, httpx.Response(200))
    attribute = {RETRY_ATTRIBUTE: {"stringValue": text, "dataType": "String"}}
    hostile = make_record(_message(id="msg_hostile"), message_attributes=attribute)
    good = make_record(_message(id="msg_good"))
    assert kit.handle(make_sqs_event(hostile, good)) == {"batchItemFailures": []}
    ids = sorted(request.headers["webhook-id"] for request in kit.receiver.requests)
    assert ids == ["msg_good", "msg_hostile"]  # the hostile one counts as a producer's first attempt


def test_a_skips_wait_is_never_shorter_than_the_schedules_next_entry_even_with_jitter() -> None:
    policy = RetryPolicy((10.0, 20.0), expiry_slack_s=100.0)
    state = RetryState(first_seen=0.0, attempts=1, position=1, first_failure=0.0)

    def low() -> float:
        return 0.0  # the jitter's low end: -20%

    skipped = Failure(real=False, error="open", breaker_retry_after_s=1.0)
    skip = policy.after_failure(state, skipped, now=5.0, random=low)
    assert isinstance(skip, Retry)
    assert skip.delay_s == 20  # not 16: docs/contracts.md "Only real attempts count"
    real = policy.after_failure(state, Failure(real=True, status=500, error="e"), now=5.0, random=low)
    assert isinstance(real, Retry)
    assert real.delay_s == 16  # a real failure keeps the +-20% jitter


def test_a_dead_letter_near_256_kib_fits_by_cutting_its_error(kit: ServiceKit) -> None:
    # Room for the id and the retry state (with 100 bytes to spare), not for a 1 KB last_error beside the body.
    kit.receiver.route(ACME.url, httpx.Response(500, text="e" * 300))
    message = _message(id="msg_big", payload="")
    size = len(json.dumps(message).encode())
    message["payload"] = "x" * (MAX_MESSAGE_BYTES - 300 - size)
    assert kit.handle(make_sqs_event(make_record(message, receive_count=3))) == {"batchItemFailures": []}
    attributes = _letter(kit)
    assert (attributes["reason"], attributes["last_status"]) == ("retries_exhausted", "500")
    assert attributes["last_error"].startswith("HTTP 500 from https://hooks.acme.example")


def test_a_retry_attribute_padded_with_unknown_keys_is_not_ours(kit: ServiceKit) -> None:
    # Unknown keys are kept for later flags (replay's "r"), but a producer's padding must not push the re-enqueued
    # message past 256 KiB: the record would come back on every visibility timeout instead of being retried.
    kit.receiver.route(ACME.url, httpx.Response(500))
    padded = json.dumps({"v": 1, "n": 0, "p": 0, "f": 1_795_852_800, "pad": "p" * 60_000})
    attribute = {RETRY_ATTRIBUTE: {"stringValue": padded, "dataType": "String"}}
    message = _message(id="msg_padded", payload="")
    sent_size = len(json.dumps(message)) + len(RETRY_ATTRIBUTE) + len("String") + len(padded)
    message["payload"] = "x" * (MAX_MESSAGE_BYTES - 20 - sent_size)  # as the producer sent it: 20 bytes to spare
    assert kit.handle(make_sqs_event(make_record(message, message_attributes=attribute))) == {"batchItemFailures": []}
    assert [(state["n"], "pad" in state) for state in kit.sqs.states()] == [(1, False)]
    with pytest.raises(RetryStateError):
        RetryState.decode(padded)


def test_a_retry_attributes_error_is_capped_when_read() -> None:
    # The error travels into log lines and dead letters: a producer's 200 KB one is cut to the contract's 1 KB.
    text = json.dumps({"v": 1, "n": 1, "p": 1, "f": 1, "s": 500, "e": "x" * 200_000})
    assert len(RetryState.decode(text).last_error.encode()) <= 1024


def test_a_message_found_expired_when_it_comes_back_says_it_was_never_tried(kit: ServiceKit, wall: FakeClock) -> None:
    # Only breaker skips so far; back a little late (SQS, the batching window), past its bounded age of 136 s.
    state = RetryState(first_seen=WALL_CLOCK - 200, position=3, first_failure=WALL_CLOCK - 140)
    attribute = {RETRY_ATTRIBUTE: {"stringValue": state.encode(), "dataType": "String"}}
    kit.handle(make_sqs_event(make_record(_message(id="msg_late"), message_attributes=attribute)))
    attributes = _letter(kit)
    assert (attributes["reason"], attributes["attempts"], attributes["last_status"]) == ("expired", "0", "0")
    assert attributes["last_error"].startswith("no attempt reached a receiver")


def test_a_retry_near_256_kib_fits_even_when_its_error_is_full_of_quotes(kit: ServiceKit) -> None:
    # The error is cut to the room the body leaves; JSON escaping (\" for every quote) must not push it over.
    kit.receiver.route(ACME.url, httpx.Response(500, text='"' * 300))
    message = _message(id="msg_quoted", payload="")
    message["payload"] = "x" * (MAX_MESSAGE_BYTES - 350 - len(json.dumps(message).encode()))
    assert kit.handle(make_sqs_event(make_record(message))) == {"batchItemFailures": []}
    [state] = kit.sqs.states()
    assert (state["n"], state["s"]) == (1, 500)


def test_an_encoded_error_stays_within_its_bytes_after_json_escaping() -> None:
    state = RetryState(first_seen=1.0, attempts=1, position=1, last_status=500, last_error='"\\' * 1000)
    for limit in (4, 10, 100, 1024):
        error = json.loads(state.encode(max_error_bytes=limit)).get("e", "")  # left out when not even "x..." fits
        assert len(json.dumps(error, ensure_ascii=False).encode()) - 2 <= limit
    assert json.loads(state.encode(max_error_bytes=100))["e"].endswith("...")
