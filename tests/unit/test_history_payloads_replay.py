"""Kept payloads (DynamoDB, moto) and replay (SQS, moto): same id, same body bytes, once per id, paced."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hookline.history import PayloadMeta, PayloadRecorder, PayloadStore, PayloadStoreError, Replayer
from hookline.history.payloads import StoredPayload, decode_body, encode_body
from hookline.history.replay import RETRY_ATTRIBUTE, replay_body
from hookline.messages import parse_message
from tests.support.aws import client
from tests.support.history import create_payload_table
from tests.support.timefakes import FakeClock

NOW = 1_800_000_000.0
META = PayloadMeta(event_type="invoice.paid", endpoint="acme")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=NOW)


@pytest.fixture
def store(dynamodb: Any, clock: FakeClock) -> PayloadStore:
    return PayloadStore(create_payload_table(dynamodb), client=dynamodb, retention_days=7, clock=clock)


@pytest.fixture
def queue(aws: None) -> tuple[Any, str]:
    sqs = client("sqs")
    return sqs, sqs.create_queue(QueueName="delivery")["QueueUrl"]


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)


@pytest.mark.parametrize("body", [b'{"a":1}', json.dumps({"text": "x" * 5000}).encode(), '{"é":"ü"}'.encode()])
def test_bodies_come_back_as_the_same_bytes(body: bytes) -> None:
    assert decode_body(*encode_body(body)) == body


def test_a_kept_payload_reads_back_until_it_expires(store: PayloadStore, clock: FakeClock) -> None:
    body = json.dumps({"amount": 1.0, "items": [1, 2, 3]}, separators=(",", ":")).encode()
    recorder = PayloadRecorder(store)
    recorder.remember("msg_1", body, META)
    assert recorder.flush() == []
    kept = store.get("msg_1")
    assert kept is not None
    assert (kept.body, kept.meta, kept.stored_at) == (body, META, NOW)
    clock.advance(7 * 86400)  # TTL deletes lag: a read past expires_at treats the item as gone
    assert store.get("msg_1") is None


def test_items_carry_ttl_and_no_header_or_secret(store: PayloadStore, dynamodb: Any) -> None:
    store.put_many([("msg_1", b'{"a":1}', PayloadMeta("t", url="https://h.example/x", secret_id="hookline/s"))])
    item = dynamodb.get_item(TableName=store.table, Key={"id": {"S": "msg_1"}})["Item"]
    assert int(item["expires_at"]["N"]) == int(NOW) + 7 * 86400
    assert set(item) == {"id", "body", "enc", "event_type", "url", "secret_id", "stored_at", "expires_at"}


def test_forget_deletes_one_payload(store: PayloadStore) -> None:
    store.put_many([("msg_1", b"{}", META), ("msg_2", b"[]", META)])
    assert store.forget("msg_1") is True
    assert store.forget("msg_1") is False
    assert store.get("msg_1") is None
    assert store.get("msg_2") is not None


def test_many_payloads_are_written_and_read_in_batches(store: PayloadStore) -> None:
    entries = [(f"msg_{index}", json.dumps({"n": index}).encode(), META) for index in range(60)]
    assert store.put_many(entries) == []
    found = store.get_many([mid for mid, _, _ in entries] + ["msg_missing"])
    assert len(found) == 60
    assert found["msg_42"].body == b'{"n": 42}'


def test_a_replayed_message_has_the_id_and_the_exact_body_bytes(store: PayloadStore) -> None:
    body = '{"amount":1.50,"note":"caf\u00e9","n":[1e2]}'.encode()
    # Not the bytes encode_payload would write (1.50, 1e2): such a body cannot be re-sent as the same bytes.
    store.put_many([("msg_odd", body, META)])
    kept = store.get("msg_odd")
    assert kept is not None
    with pytest.raises(ValueError, match="same bytes"):
        replay_body("msg_odd", kept)
    canonical = '{"amount":1.5,"note":"café"}'.encode()
    store.put_many(
        [("msg_ok", canonical, PayloadMeta("invoice.paid", endpoint="acme", timestamp="2027-01-15T08:00:00Z"))]
    )
    kept = store.get("msg_ok")
    assert kept is not None
    message = parse_message(replay_body("msg_ok", kept))
    assert (message.id, message.body, message.endpoint, message.timestamp) == (
        "msg_ok",
        canonical,
        "acme",
        "2027-01-15T08:00:00Z",
    )


def test_replay_sends_each_id_once_and_says_what_was_not_kept(
    store: PayloadStore, queue: tuple[Any, str], clock: FakeClock
) -> None:
    sqs, url = queue
    store.put_many([("msg_1", b'{"a":1}', META), ("msg_2", b'{"a":2}', META)])
    replayer = Replayer(sqs=sqs, queue_url=url, payloads=store, clock=clock)
    result = replayer.run(["msg_1", "msg_gone", "msg_2", "msg_1"])
    assert result.resent == ["msg_1", "msg_2"]
    assert result.not_retained == ["msg_gone"]
    assert result.repeated == ["msg_1"]
    sent = _receive(sqs, url)
    assert sorted(json.loads(m["Body"])["id"] for m in sent) == ["msg_1", "msg_2"]
    state = json.loads(sent[0]["MessageAttributes"][RETRY_ATTRIBUTE]["StringValue"])
    assert state == {"v": 1, "n": 0, "p": 0, "f": int(NOW), "r": 1}


def test_replay_spaces_an_endpoints_messages_by_its_rate_limit(store: PayloadStore, clock: FakeClock) -> None:
    store.put_many([(f"msg_{index:04d}", b"{}", META) for index in range(25)])
    store.put_many([("msg_free", b"{}", PayloadMeta("t", endpoint="free"))])
    sent: list[dict[str, Any]] = []

    class _Sqs:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            sent.extend({**entry, "sent_at": clock.now} for entry in Entries)
            return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    limits = {"acme": 1 / 60}  # one a minute: 25 messages span 24 minutes, past one 900 s delay
    replayer = Replayer(sqs=_Sqs(), queue_url="q", payloads=store, rate_limit_of=limits.get, clock=clock)
    ids = ["msg_free", *(f"msg_{index:04d}" for index in range(25))]
    result = replayer.run(ids)
    assert len(result.resent) == 26
    due = {json.loads(e["MessageBody"])["id"]: e["sent_at"] - NOW + e["DelaySeconds"] for e in sent}
    assert due["msg_free"] == 0
    # Spaced a minute apart over SQS's 900 s of delay; later ones arrive at 900 s for the delivery function's pacing.
    assert [due[f"msg_{index:04d}"] for index in range(25)] == [min(60.0 * index, 900.0) for index in range(25)]
    assert all(entry["DelaySeconds"] <= 900 for entry in sent)
    assert not clock.sleeps  # the command never waits


def test_replay_at_a_tiny_rate_limit_never_waits(store: PayloadStore, clock: FakeClock) -> None:
    store.put_many([(f"msg_{index}", b"{}", META) for index in range(3)])
    sent: list[dict[str, Any]] = []

    class _Sqs:
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
            sent.extend(Entries)
            return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    replayer = Replayer(sqs=_Sqs(), queue_url="q", payloads=store, rate_limit_of=lambda _: 1e-130, clock=clock)
    assert len(replayer.run([f"msg_{index}" for index in range(3)]).resent) == 3
    assert sorted(entry["DelaySeconds"] for entry in sent) == [0, 900, 900]
    assert not clock.sleeps


def _body_of_size(size: int) -> bytes:
    """A compact JSON body of exactly ``size`` bytes."""
    return json.dumps({"t": "x" * (size - 8)}, separators=(",", ":")).encode()


def test_replay_refuses_what_delivery_could_not_retry_and_keeps_going(
    store: PayloadStore, queue: tuple[Any, str], clock: FakeClock
) -> None:
    """A message SQS would still take, but with no room for the retry state, is dead-lettered message_too_large at
    once by the delivery function (docs/contracts.md); a body that is not a webhook's JSON is refused too."""
    sqs, url = queue
    head = len(replay_body("msg_big", StoredPayload("msg_big", b"{}", META, NOW))) - 2
    store.put_many(
        [
            ("msg_big", _body_of_size(256 * 1024 - head - 100), META),  # fits SQS alone, not with the retry state
            ("msg_nan", b'{"a":NaN}', META),
            ("msg_ok", b'{"a":1}', META),
        ]
    )
    replayer = Replayer(sqs=sqs, queue_url=url, payloads=store, clock=clock)
    result = replayer.run(["msg_big", "msg_nan", "msg_ok"])
    assert result.resent == ["msg_ok"]
    assert sorted(result.refused) == ["msg_big", "msg_nan"]
    assert "message_too_large" in result.refused["msg_big"]
    assert [json.loads(m["Body"])["id"] for m in _receive(sqs, url)] == ["msg_ok"]


class _Throttled:
    """BatchWriteItem that writes one item per call into a real (moto) table and returns the rest as UnprocessedItems,
    as DynamoDB may under throttling; ``stuck`` makes it write nothing at all."""

    def __init__(self, dynamodb: Any, *, stuck: bool = False) -> None:
        self._dynamodb = dynamodb
        self._stuck = stuck
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls += 1
        [(table, requests)] = RequestItems.items()
        if self._stuck:
            return {"UnprocessedItems": RequestItems}
        self._dynamodb.batch_write_item(RequestItems={table: requests[:1]})
        return {"UnprocessedItems": {table: requests[1:]} if requests[1:] else {}}


def test_unprocessed_items_are_written_again(store: PayloadStore, dynamodb: Any, clock: FakeClock) -> None:
    throttled = _Throttled(dynamodb)
    slow = PayloadStore(store.table, client=throttled, retention_days=7, clock=clock, sleep=clock.sleep)
    assert slow.put_many([("msg_1", b"{}", META), ("msg_2", b"[]", META), ("msg_3", b"1", META)]) == []
    assert throttled.calls == 3
    assert sorted(store.get_many(["msg_1", "msg_2", "msg_3"])) == ["msg_1", "msg_2", "msg_3"]
    assert len(clock.sleeps) == 2  # backed off between rounds


def test_items_never_written_are_named_not_raised(store: PayloadStore, dynamodb: Any, clock: FakeClock) -> None:
    client = _Throttled(dynamodb, stuck=True)
    stuck = PayloadStore(store.table, client=client, retention_days=7, clock=clock, sleep=clock.sleep, max_rounds=4)
    assert sorted(stuck.put_many([("msg_1", b"{}", META), ("msg_2", b"[]", META)])) == ["msg_1", "msg_2"]
    assert client.calls == 4
    assert len(clock.sleeps) == 3  # no wait after the last round: the delivery function's time is billed


@pytest.mark.parametrize(
    "damage",
    [
        {"enc": {"S": "zlib"}, "body": {"B": b"not zlib"}},
        {"enc": {"S": "brotli"}, "body": {"B": b"{}"}},
        {"body": {"S": "a string, not bytes"}},
    ],
)
def test_a_damaged_item_is_a_store_error_not_a_crash(
    store: PayloadStore, dynamodb: Any, damage: dict[str, Any]
) -> None:
    store.put_many([("msg_1", b"{}", META)])
    item = dynamodb.get_item(TableName=store.table, Key={"id": {"S": "msg_1"}})["Item"]
    dynamodb.put_item(TableName=store.table, Item={**item, **damage})
    with pytest.raises(PayloadStoreError, match="msg_1 cannot be read|unknown payload encoding"):
        store.get("msg_1")
