"""Dead letters: the body keeps the resolved id, the attributes follow the contract and are SQS-safe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookline.delivery.deadletter import (
    DeadLetter,
    DeadLetterWriter,
    dead_letter_body,
    describe_target,
    letter_overhead,
    sanitize_attribute,
    scrub,
)
from hookline.delivery.requeue import attributes_size
from hookline.messages import MAX_MESSAGE_BYTES, MessageError, parse_message
from hookline.metrics import Reason


class RecordingSqs:
    """An SQS client fake that records SendMessage calls."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.calls.append(kwargs)
        return {"MessageId": f"dlq-{len(self.calls)}"}


def test_body_without_id_gets_the_resolved_id_and_still_validates() -> None:
    raw = json.dumps({"version": 1, "event_type": "a.b", "endpoint": "acme", "payload": {"x": "\u00e9"}})
    body = dead_letter_body(raw, "msg_sqs-1", message=parse_message(raw))
    again = parse_message(body)
    assert again.id == "msg_sqs-1"
    assert again.payload == {"x": "\u00e9"}
    assert list(json.loads(body))[:2] == ["version", "id"]


def test_body_with_id_is_kept_byte_for_byte() -> None:
    raw = '{ "version": 1, "id": "msg_1", "event_type": "a", "endpoint": "e", "payload": 1.50 }'
    assert dead_letter_body(raw, "msg_1", message=parse_message(raw)) == raw


def test_non_json_body_is_kept_as_is() -> None:
    assert dead_letter_body("not json", "msg_x") == "not json"


def test_invalid_object_gets_the_id_inserted_unless_it_has_one() -> None:
    raw = json.dumps({"version": 1, "event_type": "bad type", "endpoint": "e", "payload": {}})
    with pytest.raises(MessageError) as caught:
        parse_message(raw)
    body = json.loads(dead_letter_body(raw, "msg_q", data=caught.value.data))
    assert body == {"version": 1, "id": "msg_q", "event_type": "bad type", "endpoint": "e", "payload": {}}
    with_bad_id = json.dumps({"version": 1, "id": 5, "event_type": "a", "payload": {}})
    assert dead_letter_body(with_bad_id, "msg_q", data=json.loads(with_bad_id)) == with_bad_id


def test_characters_sqs_rejects_are_escaped_in_rebuilt_bodies() -> None:
    raw = json.dumps({"version": 1, "event_type": "a", "endpoint": "e", "payload": "x\uffffy"})
    body = dead_letter_body(raw, "msg_1", message=parse_message(raw))
    assert "\uffff" not in body
    assert json.loads(body)["payload"] == "x\uffffy"


def test_attributes_follow_the_contract() -> None:
    sqs = RecordingSqs()
    writer = DeadLetterWriter("https://sqs.local/dlq", client=sqs, clock=lambda: 1_795_852_800.7)  # type: ignore[arg-type]
    message_id = writer.send(
        DeadLetter(
            body="{}",
            reason=Reason.RETRIES_EXHAUSTED,
            endpoint="acme",
            attempts=9,
            last_status=503,
            last_error="HTTP 503 from https://hooks.acme.com",
        )
    )
    assert message_id == "dlq-1"
    call = sqs.calls[0]
    assert call["QueueUrl"] == "https://sqs.local/dlq"
    attributes = {key: value["StringValue"] for key, value in call["MessageAttributes"].items()}
    assert attributes == {
        "reason": "retries_exhausted",
        "endpoint": "acme",
        "attempts": "9",
        "last_status": "503",
        "last_error": "HTTP 503 from https://hooks.acme.com",
        "failed_at": "2026-11-28T08:00:00Z",
    }
    assert call["MessageAttributes"]["attempts"]["DataType"] == "Number"


def test_no_status_is_zero_and_errors_are_never_empty() -> None:
    sqs = RecordingSqs()
    writer = DeadLetterWriter("q", client=sqs, clock=lambda: 0.0)  # type: ignore[arg-type]
    writer.send(DeadLetter("x", Reason.INVALID_JSON, "", 1, None, ""))
    attributes = sqs.calls[0]["MessageAttributes"]
    assert attributes["last_status"]["StringValue"] == "0"
    assert attributes["last_error"]["StringValue"] == "none"
    assert attributes["endpoint"]["StringValue"] == "unknown"


@pytest.mark.parametrize(
    ("spare", "kept"),
    [
        pytest.param(2000, {"reason", "endpoint", "attempts", "last_status", "last_error", "failed_at"}, id="room"),
        pytest.param(300, {"reason", "endpoint", "attempts", "last_status", "last_error", "failed_at"}, id="cut"),
        pytest.param(60, {"reason", "endpoint"}, id="tight"),
    ],
)
def test_a_dead_letter_fits_sqs_256_kib_beside_its_body(spare: int, kept: set[str]) -> None:
    sqs = RecordingSqs()
    writer = DeadLetterWriter("q", client=sqs, clock=lambda: 0.0)  # type: ignore[arg-type]
    body = "x" * (MAX_MESSAGE_BYTES - spare)
    writer.send(DeadLetter(body, Reason.MESSAGE_TOO_LARGE, "acme", 0, None, "e" * 2000))
    attributes = sqs.calls[0]["MessageAttributes"]
    assert set(attributes) == kept
    assert len(body) + attributes_size(attributes) <= MAX_MESSAGE_BYTES  # what SQS counts
    assert attributes["reason"]["StringValue"] == "message_too_large"


def test_a_body_that_passes_the_overhead_check_keeps_some_of_its_error() -> None:
    sqs = RecordingSqs()
    writer = DeadLetterWriter("q", client=sqs, clock=lambda: 0.0)  # type: ignore[arg-type]
    body = "x" * (MAX_MESSAGE_BYTES - letter_overhead("acme"))
    writer.send(DeadLetter(body, Reason.RETRIES_EXHAUSTED, "acme", 1_000_000, 503, "e" * 2000))
    attributes = sqs.calls[0]["MessageAttributes"]
    assert len(attributes["last_error"]["StringValue"]) >= 64
    assert len(body) + attributes_size(attributes) <= MAX_MESSAGE_BYTES


def test_a_rebuilt_body_adds_only_its_id() -> None:
    raw = json.dumps(
        {"version": 1, "event_type": "a", "endpoint": "e", "payload": list(range(1000))}, separators=(",", ":")
    )
    body = dead_letter_body(raw, "msg_1", message=parse_message(raw))
    assert len(body) == len(raw) + len(',"id":"msg_1"')


def test_send_errors_propagate() -> None:
    writer = DeadLetterWriter("q", client=RecordingSqs(fail=RuntimeError("sqs down")))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        writer.send(DeadLetter("x", Reason.INVALID_JSON, "e", 1, None, "bad"))


def test_last_error_is_one_line_and_at_most_1_kb() -> None:
    text = "line1\nline2\x00\x07 " + "\u00e9" * 2000
    cleaned = sanitize_attribute(text)
    assert len(cleaned.encode("utf-8")) <= 1024
    assert "\n" not in cleaned
    assert "\x00" not in cleaned
    assert cleaned.startswith("line1 line2")
    assert cleaned.endswith("...")


def test_describe_target_never_includes_path_or_query() -> None:
    assert describe_target("acme", "https://x.example/secret-token") == "acme"
    assert describe_target(None, "https://hooks.acme.com/t/abc?key=123") == "hooks.acme.com"
    assert describe_target(None, None) == "unknown"
    assert describe_target(None, "https://[bad") == "unknown"


def test_scrub_redacts_secret_strings() -> None:
    assert scrub("got whsec_abc back", ["whsec_abc", ""]) == "got [redacted] back"


@pytest.mark.parametrize(
    ("char", "kept"),
    [
        ("\x08", False), ("\x0b", False), ("\x0c", False), ("\x1f", False), (" ", True),
        ("\ud7ff", True), ("\ud800", False), ("\udfff", False), ("\ue000", True), ("\ufffd", True),
        ("\ufffe", False), ("\uffff", False), ("\U00010000", True), ("\U0010ffff", True),
    ],
)  # fmt: skip
def test_only_xml_1_0_characters_reach_sqs(char: str, kept: bool) -> None:
    """The edges of XML 1.0's character ranges, the only characters SQS accepts."""
    assert (sanitize_attribute(f"a{char}b") == f"a{char}b") is kept
