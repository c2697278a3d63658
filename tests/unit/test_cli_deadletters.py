"""hookline_cli.deadletters without AWS: parsing dead letters, filters, and what peek/redrive ask of SQS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hookline_cli.deadletters import REASONS, DeadLetter, DeadLetterFilter, peek, redrive


def _message(message_id: str, body: Any, **attributes: str) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()},
    }


class FakeSqs:
    """An in-memory queue pair with just the calls peek/redrive make; every call is recorded."""

    def __init__(self, messages: list[dict[str, Any]], *, release_failures: list[dict[str, str]] | None = None):
        self.pending = list(messages)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[str] = []
        self.deleted: list[str] = []
        self._release_failures = release_failures or []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("receive_message", kwargs))
        batch, self.pending = self.pending[:10], self.pending[10:]
        return {"Messages": batch}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("change_message_visibility_batch", kwargs))
        return {"Successful": [], "Failed": self._release_failures}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("send_message_batch", kwargs))
        self.sent.extend(entry["MessageBody"] for entry in kwargs["Entries"])
        return {"Successful": [{"Id": entry["Id"]} for entry in kwargs["Entries"]]}

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("delete_message_batch", kwargs))
        self.deleted.extend(entry["ReceiptHandle"] for entry in kwargs["Entries"])
        return {"Successful": [{"Id": entry["Id"]} for entry in kwargs["Entries"]]}


def test_from_sqs_reads_the_contract_attributes() -> None:
    body = {"version": 1, "id": "msg_1", "event_type": "a.b", "endpoint": "acme", "payload": {}}
    message = _message("m1", body, reason="endpoint_gone", endpoint="acme", attempts="3", last_status="410")

    letter = DeadLetter.from_sqs(message)

    assert (letter.webhook_id, letter.reason, letter.endpoint, letter.attempts, letter.last_status) == (
        "msg_1",
        "endpoint_gone",
        "acme",
        3,
        410,
    )
    assert (letter.event_type, letter.receive_count, letter.failed_at) == ("a.b", 2, None)
    assert letter.redrive_body() == message["Body"]


def test_a_message_without_id_or_attributes_gets_the_derived_id() -> None:
    letter = DeadLetter.from_sqs(_message("sqs-42", {"version": 1, "event_type": "a.b", "endpoint": "x", "payload": 1}))

    assert (letter.webhook_id, letter.reason) == ("msg_sqs-42", None)
    assert json.loads(letter.redrive_body())["id"] == "msg_sqs-42"
    assert DeadLetterFilter(reason="none").matches(letter)
    assert not DeadLetterFilter(reason="retries_exhausted").matches(letter)


def test_a_body_that_is_not_json_is_kept_byte_for_byte() -> None:
    letter = DeadLetter.from_sqs(_message("m9", "not json {", reason="invalid_json"))

    assert letter.redrive_body() == "not json {"
    assert letter.webhook_id == "msg_m9"


def test_filter_rejects_unknown_reasons_and_knows_every_dead_letter_reason() -> None:
    with pytest.raises(ValueError, match="unknown reason 'nope'"):
        DeadLetterFilter(reason="nope")
    assert "retries_exhausted" in REASONS and "none" in REASONS


def test_peek_releases_everything_it_received_and_stops_at_the_limit() -> None:
    sqs = FakeSqs([_message(f"m{index}", {"id": f"msg_{index}"}, reason="retries_exhausted") for index in range(25)])

    letters, errors = peek(sqs, "dlq", where=DeadLetterFilter(), limit=12, wait_s=0)

    assert [letter.webhook_id for letter in letters] == [f"msg_{index}" for index in range(12)]
    assert errors == []
    released = [
        entry["ReceiptHandle"]
        for name, kwargs in sqs.calls
        if name == "change_message_visibility_batch"
        for entry in kwargs["Entries"]
    ]
    assert sorted(released) == sorted(f"rh-m{index}" for index in range(20))  # two batches received, all released
    assert all(
        entry["VisibilityTimeout"] == 0
        for name, kwargs in sqs.calls
        if name.startswith("change")
        for entry in kwargs["Entries"]
    )
    assert not any(name in ("delete_message_batch", "send_message_batch") for name, _ in sqs.calls)


def test_release_ignores_messages_that_are_visible_again_but_reports_real_failures() -> None:
    benign = FakeSqs([_message("m1", {})], release_failures=[{"Id": "0", "Code": "MessageNotInflight"}])
    broken = FakeSqs([_message("m1", {})], release_failures=[{"Id": "0", "Code": "InternalError", "Message": "boom"}])

    assert peek(benign, "dlq", where=DeadLetterFilter(), limit=5, wait_s=0)[1] == []
    assert peek(broken, "dlq", where=DeadLetterFilter(), limit=5, wait_s=0)[1] == [
        "could not release 1 message(s): boom"
    ]


def test_redrive_sends_before_it_deletes_and_only_what_matches() -> None:
    messages = [
        _message(f"m{index}", {"id": f"msg_{index}"}, reason="endpoint_gone" if index % 2 else "retries_exhausted")
        for index in range(6)
    ]
    sqs = FakeSqs(messages)

    result = redrive(sqs, "dlq", "delivery", where=DeadLetterFilter(reason="endpoint_gone"), wait_s=0)

    assert (result.matched, result.redriven, result.skipped) == (3, 3, 3)
    order = [name for name, _ in sqs.calls if name in ("send_message_batch", "delete_message_batch")]
    assert order == ["send_message_batch", "delete_message_batch"]
    assert sorted(sqs.deleted) == ["rh-m1", "rh-m3", "rh-m5"]
    assert [json.loads(body)["id"] for body in sqs.sent] == ["msg_1", "msg_3", "msg_5"]


def test_redrive_counts_a_send_error_and_deletes_nothing() -> None:
    sqs = FakeSqs([_message("m1", {"id": "msg_1"})])

    def refuse(**kwargs: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessageBatch")

    sqs.send_message_batch = refuse  # type: ignore[method-assign]

    result = redrive(sqs, "dlq", "delivery", where=DeadLetterFilter(), wait_s=0)

    assert (result.send_failed, result.redriven, sqs.deleted) == (1, 0, [])
    assert result.errors == ["sending to the delivery queue failed: AccessDenied: no"]


class BouncingSqs(FakeSqs):
    """Every redriven message fails again at once: a new DLQ message with the same body (and webhook id)."""

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        response = super().send_message_batch(**kwargs)
        for entry in kwargs["Entries"]:
            self.pending.append(_message(f"again-{len(self.sent)}-{entry['Id']}", entry["MessageBody"]))
        return response


def test_redriven_messages_that_come_back_are_not_counted_as_other_messages() -> None:
    messages = [_message(f"m{index}", {"id": f"msg_{index}"}, reason="endpoint_disabled") for index in range(3)]
    messages.append(_message("m9", {"id": "msg_9"}, reason="endpoint_gone"))
    sqs = BouncingSqs(messages)

    result = redrive(sqs, "dlq", "delivery", where=DeadLetterFilter(reason="endpoint_disabled"), wait_s=0)

    assert (result.matched, result.redriven, result.skipped, result.returned) == (3, 3, 1, 3)
    assert result.scan_complete


def test_a_redrive_stopped_by_its_limit_says_the_scan_is_incomplete() -> None:
    sqs = FakeSqs([_message(f"m{index}", {"id": f"msg_{index}"}, reason="endpoint_gone") for index in range(25)])

    stopped = redrive(sqs, "dlq", "delivery", where=DeadLetterFilter(), limit=3, wait_s=0)
    whole = redrive(FakeSqs([_message("m1", {"id": "msg_1"})]), "dlq", "delivery", where=DeadLetterFilter(), wait_s=0)

    assert (stopped.redriven, stopped.skipped, stopped.scan_complete) == (3, 7, False)
    assert whole.scan_complete
    assert set(stopped.view()) == {
        "matched", "redriven", "skipped", "returned", "send_failed", "duplicated", "scan_complete", "errors",
    }  # fmt: skip
