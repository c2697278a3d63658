"""Delivery history from the real handler's log lines (moto's CloudWatch Logs), kept payloads and replay."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks.webhooks import Webhook

from hookline.history import HistoryReader, LogEventsSource, PayloadStore, Replayer, Status
from tests.support.aws import client
from tests.support.delivery import DeliveryHarness, load_delivery_app
from tests.support.history import LogGroupWriter, create_payload_table, ship_output
from tests.support.loopback import Reply, loopback_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources


@pytest.fixture
def harness(stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeliveryHarness]:
    with loopback_server() as receiver, closing(DeliveryHarness(stack, moto_endpoint, receiver, monkeypatch)) as one:
        yield one


@pytest.fixture
def payload_table(moto_endpoint: str) -> str:
    return create_payload_table(client("dynamodb", moto_endpoint))


class _Logs:
    """The delivery log group in moto, fed with what the handler's logger printed (Lambda's own log shipping)."""

    def __init__(self, moto_endpoint: str, buffer: io.StringIO) -> None:
        self.client = client("logs", moto_endpoint)
        self.writer = LogGroupWriter(self.client, f"/aws/lambda/delivery-{uuid.uuid4().hex[:8]}")
        self._buffer = buffer
        self._next = self.writer.server_now() - 600

    def printed(self) -> str:
        """What the handler's logger printed since the last ship."""
        return self._buffer.getvalue()

    def ship(self) -> None:
        out = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        self._next += 1 + ship_output(self.writer, out, start=self._next) / 1000

    def reader(self) -> HistoryReader:
        source = LogEventsSource(self.client, [self.writer.group])
        return HistoryReader(source, retention_days=30, clock=lambda: self._next + 60)


@pytest.fixture
def logs(moto_endpoint: str) -> Iterator[_Logs]:
    # The handler's Powertools Logger writes to the stream it was built with; point it at a buffer for this test.
    # (Swapped in place: setStream would flush the old stream, which an earlier test's capture may have closed.)
    handler = load_delivery_app().logger.registered_handler
    buffer = io.StringIO()
    with handler.lock:
        previous, handler.stream = handler.stream, buffer
    try:
        yield _Logs(moto_endpoint, buffer)
    finally:
        with handler.lock:
            handler.stream = previous


def _payload_items(harness: DeliveryHarness, table: str) -> list[dict[str, Any]]:
    return list(harness.dynamodb.scan(TableName=table)["Items"])


def test_history_records_delivered_fallback_retried_dead_and_filtered(harness: DeliveryHarness, logs: _Logs) -> None:
    harness.configure(RETRY_SCHEDULE="0", HISTORY_RETENTION_DAYS="30")
    harness.receiver.route("/ok", Reply(status=204))
    harness.receiver.route("/down", Reply(status=503))
    harness.receiver.route("/flaky", [Reply(status=500, body=b"oops"), Reply(status=200)])
    harness.receiver.route("/gone", Reply(status=410))
    harness.add_endpoint("ok", "/ok", event_types=["invoice.paid"])
    harness.add_endpoint("fallback", "/down", fallback_paths=["/ok"])
    harness.add_endpoint("flaky", "/flaky")
    harness.add_endpoint("gone", "/gone")
    delivered = harness.send(endpoint="ok", event_type="invoice.paid", payload={"n": 1})
    filtered = harness.send(endpoint="ok", event_type="invoice.voided", payload={"n": 2})
    by_fallback = harness.send(endpoint="fallback", event_type="invoice.paid", payload={"n": 3})
    retried = harness.send(endpoint="flaky", event_type="refund.created", payload={"n": 4})
    dead = harness.send(endpoint="gone", event_type="invoice.paid", payload={"n": 5})
    harness.run_once()
    logs.ship()
    reader = logs.reader()
    pending = reader.show(retried)
    assert pending is not None
    assert pending.status is Status.FAILED
    assert [m.message_id for m in reader.list(status=Status.FAILED, since="1h").messages] == [retried]
    harness.run_once()
    logs.ship()

    shown = {mid: reader.show(mid) for mid in (delivered, filtered, by_fallback, retried, dead)}
    assert all(history is not None for history in shown.values())
    statuses = {mid: history.status for mid, history in shown.items() if history}
    assert statuses == {
        delivered: Status.DELIVERED,
        filtered: Status.FILTERED,
        by_fallback: Status.DELIVERED,
        retried: Status.DELIVERED,
        dead: Status.DEAD,
    }
    fallback_history, retried_history, dead_history = shown[by_fallback], shown[retried], shown[dead]
    assert fallback_history is not None and retried_history is not None and dead_history is not None
    assert [(a.target, a.http_status) for a in fallback_history.attempts] == [(1, 204)]
    assert [(a.attempt, a.http_status, a.outcome.value) for a in retried_history.attempts] == [
        (1, 500, "retrying"),
        (2, 200, "delivered"),
    ]
    assert retried_history.event_type == "refund.created"
    assert dead_history.reason == "endpoint_gone"
    assert dead_history.attempts[0].http_status == 410
    listed = reader.list(endpoint="ok", since="1h").messages
    assert {m.message_id for m in listed} == {delivered, filtered}
    assert [m.message_id for m in reader.list(event_type="refund.created", since="1h").messages] == [retried]
    assert [m.message_id for m in reader.list(status=Status.DEAD, since="1h").messages] == [dead]


def test_payloads_are_kept_once_at_first_sight(harness: DeliveryHarness, payload_table: str) -> None:
    harness.configure(RETRY_SCHEDULE="0", HISTORY_RETENTION_DAYS="7", PAYLOAD_TABLE=payload_table)
    harness.receiver.route("/flaky", [Reply(status=500), Reply(status=200)])
    harness.add_endpoint("flaky", "/flaky", headers={"Authorization": "Bearer static-header-value"})
    webhook_id = harness.send(endpoint="flaky", event_type="invoice.paid", payload={"amount": 4200})
    harness.run_once()
    [first] = _payload_items(harness, payload_table)
    harness.run_once()  # attempt 2 delivers; the item is not written again
    [second] = _payload_items(harness, payload_table)
    assert first == second
    assert first["id"] == {"S": webhook_id}
    assert "static-header-value" not in json.dumps(first, default=str)
    store = PayloadStore(payload_table, client=harness.dynamodb, retention_days=7)
    kept = store.get(webhook_id)
    assert kept is not None
    assert kept.body == b'{"amount":4200}'


def test_history_off_writes_nothing(harness: DeliveryHarness, payload_table: str) -> None:
    harness.configure(HISTORY_RETENTION_DAYS="0", PAYLOAD_TABLE=payload_table)
    harness.add_endpoint("ok", "/ok")
    harness.send(endpoint="ok", event_type="invoice.paid", payload={"n": 1})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    assert len(harness.receiver.requests_for("/ok")) == 1
    assert _payload_items(harness, payload_table) == []


def test_replay_resends_the_same_id_and_body_bytes(harness: DeliveryHarness, payload_table: str, logs: _Logs) -> None:
    harness.configure(HISTORY_RETENTION_DAYS="7", PAYLOAD_TABLE=payload_table)
    secret = harness.add_endpoint("acme", "/hook")
    payload = {"amount": 4200, "name": "J\u00fcrgen", "ratio": 0.5}
    webhook_id = harness.send(endpoint="acme", event_type="invoice.paid", payload=payload)
    harness.run_once()
    [original] = harness.receiver.requests_for("/hook")
    [kept_before] = _payload_items(harness, payload_table)
    store = PayloadStore(payload_table, client=harness.dynamodb, retention_days=7)
    replayer = Replayer(sqs=harness.sqs, queue_url=harness.stack.delivery_queue_url, payloads=store)
    result = replayer.run([webhook_id, webhook_id, "msg_never_kept"])
    assert (result.resent, result.not_retained, result.repeated) == ([webhook_id], ["msg_never_kept"], [webhook_id])
    event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
    original, replayed = harness.receiver.requests_for("/hook")
    assert replayed.headers["webhook-id"] == original.headers["webhook-id"] == webhook_id
    assert replayed.body == original.body
    assert Webhook(secret).verify(replayed.body, replayed.headers) == payload
    assert _payload_items(harness, payload_table) == [kept_before]  # a replay does not write the payload again
    logs.ship()
    history = logs.reader().show(webhook_id)
    assert history is not None
    assert [(a.attempt, a.replay, a.outcome.value) for a in history.attempts] == [
        (1, False, "delivered"),
        (1, True, "delivered"),
    ]


def test_a_payload_store_failure_never_fails_a_delivery(harness: DeliveryHarness, logs: _Logs) -> None:
    """docs/history.md: a write that fails is logged with a count (never the payload) and delivery goes on."""
    harness.configure(HISTORY_RETENTION_DAYS="7", PAYLOAD_TABLE=f"no-such-table-{uuid.uuid4().hex[:8]}")
    harness.add_endpoint("ok", "/ok")
    harness.send(endpoint="ok", event_type="invoice.paid", payload={"secret_note": "personal data"})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    assert len(harness.receiver.requests_for("/ok")) == 1
    printed = [json.loads(line) for line in logs.printed().splitlines() if line.startswith("{")]
    [not_kept] = [line for line in printed if line.get("message") == "payloads not kept"]
    assert not_kept["count"] == 1
    assert "personal data" not in logs.printed()
