"""`hookline dlq list|redrive` against moto's SQS: peeking consumes nothing, redrive is selective and loses nothing."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

from hookline.delivery.deadletter import DeadLetter, DeadLetterWriter
from hookline.messages import parse_message
from hookline.metrics import Reason
from tests.support.aws import client
from tests.support.cli import NOW, CliHarness, FailingClient, run

if TYPE_CHECKING:
    from pathlib import Path


def _body(webhook_id: str, endpoint: str = "acme") -> str:
    return json.dumps(
        {
            "version": 1,
            "id": webhook_id,
            "event_type": "invoice.paid",
            "endpoint": endpoint,
            "payload": {"n": webhook_id},
        }
    )


def _dead_letter(cli: CliHarness, webhook_id: str, reason: Reason, endpoint: str = "acme", status: int = 503) -> None:
    writer = DeadLetterWriter(cli.stack.dead_letter_queue_url, client=cli.aws("sqs"), clock=NOW.timestamp)
    writer.send(
        DeadLetter(
            body=_body(webhook_id, endpoint),
            reason=reason,
            endpoint=endpoint,
            attempts=9,
            last_status=status,
            last_error=f"HTTP {status}",
        )
    )


def _drain(cli: CliHarness, queue_url: str) -> list[dict[str, Any]]:
    """Every message of a queue (consumed), as (body, attributes)."""
    sqs = cli.aws("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        batch = response.get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def _ids(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(json.loads(message["Body"])["id"] for message in messages)


@pytest.fixture
def populated(cli: CliHarness) -> CliHarness:
    """12 dead letters: 7 retries_exhausted (acme), 3 endpoint_gone (acme), 2 invalid_json-ish (other)."""
    for index in range(7):
        _dead_letter(cli, f"msg_ex{index}", Reason.RETRIES_EXHAUSTED)
    for index in range(3):
        _dead_letter(cli, f"msg_gone{index}", Reason.ENDPOINT_GONE, status=410)
    for index in range(2):
        _dead_letter(cli, f"msg_other{index}", Reason.RETRIES_EXHAUSTED, endpoint="other", status=0)
    return cli


def test_list_shows_every_dead_letter_without_consuming_it(populated: CliHarness) -> None:
    cli = populated

    first = cli.json("dlq", "list")
    second = cli.json("dlq", "list")

    assert sorted(item["webhook_id"] for item in first) == sorted(item["webhook_id"] for item in second)
    assert len(first) == 12
    assert len(_drain(cli, cli.stack.dead_letter_queue_url)) == 12
    gone = next(item for item in first if item["webhook_id"] == "msg_gone0")
    assert gone == {
        "message_id": gone["message_id"],
        "webhook_id": "msg_gone0",
        "reason": "endpoint_gone",
        "endpoint": "acme",
        "event_type": "invoice.paid",
        "attempts": 9,
        "last_status": 410,
        "last_error": "HTTP 410",
        "failed_at": "2026-11-28T08:00:00Z",
        "receive_count": gone["receive_count"],
    }


def test_list_filters_by_reason_endpoint_and_limit(populated: CliHarness) -> None:
    cli = populated

    gone = cli.json("dlq", "list", "--reason", "endpoint_gone")
    other = cli.json("dlq", "list", "--endpoint", "other")
    both = cli.json("dlq", "list", "--reason", "retries_exhausted", "--endpoint", "acme")
    limited = cli.json("dlq", "list", "--limit", "4")

    assert sorted(item["webhook_id"] for item in gone) == ["msg_gone0", "msg_gone1", "msg_gone2"]
    assert sorted(item["webhook_id"] for item in other) == ["msg_other0", "msg_other1"]
    assert len(both) == 7 and {item["reason"] for item in both} == {"retries_exhausted"}
    assert len(limited) == 4


def test_list_table_and_empty_queue(cli: CliHarness) -> None:
    empty = cli.invoke("dlq", "list")
    _dead_letter(cli, "msg_t1", Reason.ENDPOINT_GONE, status=410)
    table = cli.invoke("dlq", "list")

    assert (empty.exit_code, empty.stdout.strip()) == (0, "no dead letters")
    assert table.exit_code == 0
    assert "msg_t1" in table.stdout and "endpoint_gone" in table.stdout and "410" in table.stdout


@pytest.mark.parametrize("command", ["list", "redrive"])
def test_unknown_reason_filter_is_bad_input(populated: CliHarness, command: str) -> None:
    result = populated.invoke("dlq", command, "--reason", "bad_luck")

    assert result.exit_code == 2
    assert "unknown reason 'bad_luck'" in result.stderr
    assert "retries_exhausted" in result.stderr
    assert len(_drain(populated, populated.stack.dead_letter_queue_url)) == 12


def test_redrive_moves_only_matching_messages_with_their_ids(populated: CliHarness) -> None:
    cli = populated

    data = cli.json("dlq", "redrive", "--reason", "retries_exhausted", "--endpoint", "acme")

    assert data == {
        "matched": 7, "redriven": 7, "skipped": 5, "returned": 0, "send_failed": 0, "duplicated": 0,
        "scan_complete": True, "errors": [],
    }  # fmt: skip
    delivered = _drain(cli, cli.stack.delivery_queue_url)
    assert _ids(delivered) == [f"msg_ex{index}" for index in range(7)]
    for message in delivered:
        assert parse_message(message["Body"]).endpoint == "acme"  # still a valid message for the delivery function
    left = _drain(cli, cli.stack.dead_letter_queue_url)
    assert _ids(left) == ["msg_gone0", "msg_gone1", "msg_gone2", "msg_other0", "msg_other1"]
    # Untouched: the reasons are still there for the operator.
    assert {m["MessageAttributes"]["reason"]["StringValue"] for m in left} == {"endpoint_gone", "retries_exhausted"}


def test_redrive_limit(populated: CliHarness) -> None:
    cli = populated

    result = cli.invoke("dlq", "redrive", "--reason", "endpoint_gone", "--limit", "2")

    assert result.exit_code == 0, result.stderr
    assert "redriven 2 of 2 matching message(s); stopped at --limit 2: " in result.stdout
    assert "seen and left in the DLQ, the rest not scanned" in result.stdout
    assert len(_drain(cli, cli.stack.delivery_queue_url)) == 2
    assert len(_drain(cli, cli.stack.dead_letter_queue_url)) == 10


def test_redrive_summary_counts_the_other_messages_left(populated: CliHarness) -> None:
    cli = populated

    result = cli.invoke("dlq", "redrive", "--reason", "endpoint_gone")

    assert result.exit_code == 0, result.stderr
    left = _drain(cli, cli.stack.dead_letter_queue_url)
    assert len(left) == 9
    assert result.stdout.strip() == "redriven 3 of 3 matching message(s); 9 other message(s) left in the DLQ"


def test_redrive_gives_an_id_less_message_its_derived_id(cli: CliHarness) -> None:
    sqs = cli.aws("sqs")
    # As the queue's own redrive policy moves it: the producer's body, no id, no attributes.
    body = json.dumps({"version": 1, "event_type": "a.b", "endpoint": "acme", "payload": {}})
    message_id = sqs.send_message(QueueUrl=cli.stack.dead_letter_queue_url, MessageBody=body)["MessageId"]

    listed = cli.json("dlq", "list", "--reason", "none")
    data = cli.json("dlq", "redrive", "--reason", "none")

    assert [(item["webhook_id"], item["reason"]) for item in listed] == [(f"msg_{message_id}", None)]
    assert data["redriven"] == 1
    [moved] = _drain(cli, cli.stack.delivery_queue_url)
    assert json.loads(moved["Body"])["id"] == f"msg_{message_id}"


def test_redrive_nothing_lost_when_delete_fails_midway(populated: CliHarness) -> None:
    cli = populated
    failing = FailingClient(client("sqs", cli.endpoint_url), "delete_message_batch", fail_from=2)
    cli.client_factory = lambda service: failing if service == "sqs" else client(service, cli.endpoint_url)

    result = cli.invoke("dlq", "redrive", "--json")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["duplicated"] > 0
    assert "injected-failure" in result.stderr
    cli.client_factory = None
    delivered = _ids(_drain(cli, cli.stack.delivery_queue_url))
    left = _ids(_drain(cli, cli.stack.dead_letter_queue_url))
    everything = sorted(
        [f"msg_ex{i}" for i in range(7)] + [f"msg_gone{i}" for i in range(3)] + [f"msg_other{i}" for i in range(2)]
    )
    # Every message is somewhere; some are in both (duplicates with the same webhook id), none is nowhere.
    assert sorted(set(delivered) | set(left)) == everything
    assert len(delivered) == data["redriven"] + data["duplicated"]
    assert len(set(delivered) & set(left)) == data["duplicated"]


def test_redrive_nothing_lost_when_send_fails(populated: CliHarness) -> None:
    cli = populated
    failing = FailingClient(client("sqs", cli.endpoint_url), "send_message_batch", fail_from=1)
    cli.client_factory = lambda service: failing if service == "sqs" else client(service, cli.endpoint_url)

    result = cli.invoke("dlq", "redrive")

    assert result.exit_code == 1
    assert "could not be sent and stay in the DLQ" in result.stdout
    cli.client_factory = None
    assert _drain(cli, cli.stack.delivery_queue_url) == []
    assert len(_drain(cli, cli.stack.dead_letter_queue_url)) == 12


class _BouncingClient:
    """An SQS client whose sends to the delivery queue come straight back to the DLQ (a consumer failing at once)."""

    def __init__(self, inner: Any, delivery_queue_url: str, dead_letter_queue_url: str) -> None:
        self._inner = inner
        self._delivery = delivery_queue_url
        self._dlq = dead_letter_queue_url
        self.bounced = 0  # capped, so that a redrive that loops shows up as a failure rather than a hang

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        response = self._inner.send_message_batch(**kwargs)
        if kwargs["QueueUrl"] == self._delivery and self.bounced < 30:
            attributes = {"reason": {"DataType": "String", "StringValue": "endpoint_disabled"}}
            for entry in kwargs["Entries"]:
                self.bounced += 1
                self._inner.send_message(
                    QueueUrl=self._dlq, MessageBody=entry["MessageBody"], MessageAttributes=attributes
                )
        return response


def test_redrive_does_not_loop_on_messages_that_bounce_straight_back(cli: CliHarness) -> None:
    for index in range(3):
        _dead_letter(cli, f"msg_b{index}", Reason.ENDPOINT_DISABLED)
    bouncing = _BouncingClient(
        client("sqs", cli.endpoint_url), cli.stack.delivery_queue_url, cli.stack.dead_letter_queue_url
    )
    cli.client_factory = lambda service: bouncing if service == "sqs" else client(service, cli.endpoint_url)

    data = cli.json("dlq", "redrive", "--reason", "endpoint_disabled")

    assert (data["matched"], data["redriven"]) == (3, 3)
    cli.client_factory = None
    assert _ids(_drain(cli, cli.stack.delivery_queue_url)) == ["msg_b0", "msg_b1", "msg_b2"]
    assert _ids(_drain(cli, cli.stack.dead_letter_queue_url)) == ["msg_b0", "msg_b1", "msg_b2"]


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory: no local stack, no HOOKLINE_* names, no AWS region anywhere."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("HOOKLINE_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    return tmp_path


@pytest.mark.parametrize("command", ["list", "redrive"])
def test_without_a_stack_dlq_gives_the_same_hint_as_the_other_commands(nowhere: Path, command: str) -> None:
    result = run(["dlq", command])
    other = run(["endpoints", "list"])

    assert result.exit_code == other.exit_code == 1
    assert result.stderr.startswith("error: dead letter queue url is not known: pass --stack-name")
    assert "HOOKLINE_DEAD_LETTER_QUEUE_URL" in result.stderr
    assert other.stderr.replace("endpoints table", "dead letter queue url").replace("ENDPOINTS_TABLE", "X") == (
        result.stderr.replace("DEAD_LETTER_QUEUE_URL", "X")
    )
    assert "You must specify a region" not in result.stderr


def test_a_missing_region_is_explained(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_DEAD_LETTER_QUEUE_URL", "https://sqs.example/123/dlq")

    result = run(["dlq", "list"])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: no AWS region configured",
        "hint: pass --region or set AWS_REGION, or start the local stack (`hookline local up`)",
    ]
