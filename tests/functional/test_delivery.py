"""The real DeliveryFunction handler against moto (resources from template.yaml) and a real loopback receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from standardwebhooks.webhooks import Webhook

from hookline.delivery.targets import origin_of
from hookline.signing import generate_secret
from resilience.breaker import BreakerRegistry, DynamoDBStateStore
from tests.support.delivery import DeliveryHarness
from tests.support.loopback import Reply, loopback_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources


@pytest.fixture
def harness(stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeliveryHarness]:
    with loopback_server() as receiver:
        harness = DeliveryHarness(stack, moto_endpoint, receiver, monkeypatch)
        try:
            yield harness
        finally:
            harness.close()


def _compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {key: value["StringValue"] for key, value in message.get("MessageAttributes", {}).items()}


def _emf(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sum of every EMF metric printed to stdout, keyed by (name, dimensions)."""
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        dimensions = tuple(sorted((name, str(document[name])) for name in directive["Dimensions"][0]))
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            key = (metric["Name"], dimensions)
            totals[key] = totals.get(key, 0) + sum(values)
    return totals


SERVICE = (("service", "hookline-delivery"),)


def test_delivered_and_verified_by_standardwebhooks(
    harness: DeliveryHarness, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = harness.add_endpoint("acme-billing", "/hook", headers={"X-Tenant": "acme"})
    payload = {"amount": 4200, "name": "J\u00fcrgen"}
    webhook_id = harness.send(endpoint="acme-billing", event_type="invoice.paid", payload=payload)
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    [request] = harness.receiver.requests_for("/hook")
    assert request.method == "POST"
    assert request.body == _compact(payload)
    assert request.headers["webhook-id"] == webhook_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("hookline/")
    assert request.headers["x-tenant"] == "acme"
    # The public standardwebhooks library verifies exactly what the receiver got.
    assert Webhook(secret).verify(request.body, request.headers) == payload
    assert harness.dead_letters() == []
    metrics = _emf(capfd.readouterr().out)
    assert metrics[("DeliveryAttempts", SERVICE)] == 1
    assert metrics[("DeliverySucceeded", SERVICE)] == 1
    assert ("DeliveryLatency", SERVICE) in metrics


def test_fallback_used_when_the_primary_fails(harness: DeliveryHarness, capfd: pytest.CaptureFixture[str]) -> None:
    harness.receiver.route("/primary", Reply(status=503))
    harness.receiver.route("/backup", Reply(status=204))
    secret = harness.add_endpoint("acme", "/primary", fallback_paths=["/backup"])
    webhook_id = harness.send(endpoint="acme", event_type="invoice.paid", payload={"n": 1})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    [primary] = harness.receiver.requests_for("/primary")
    [backup] = harness.receiver.requests_for("/backup")
    assert primary.body == backup.body == b'{"n":1}'
    assert primary.headers["webhook-id"] == backup.headers["webhook-id"] == webhook_id
    Webhook(secret).verify(backup.body, backup.headers)
    metrics = _emf(capfd.readouterr().out)
    assert metrics[("FallbackUsed", SERVICE)] == 1
    assert metrics[("DeliverySucceeded", SERVICE)] == 1


def test_failed_attempt_is_re_enqueued_with_the_scheduled_delay(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="600,3600")
    harness.receiver.route("/hook", Reply(status=500, body=b"boom"))
    harness.add_endpoint("acme", "/hook")
    webhook_id = harness.send(endpoint="acme", event_type="invoice.paid", payload={})
    _event, response = harness.run_once()
    # The record was re-enqueued before it was reported done: the original is deleted, nothing waits in flight.
    assert response == {"batchItemFailures": []}
    [retry] = harness.queued()
    assert not retry.in_flight
    assert 480 - 2 <= retry.delayed_s <= 720
    assert json.loads(retry.body)["id"] == webhook_id
    assert (retry.retry_state["n"], retry.retry_state["s"]) == (1, 500)
    assert "boom" in retry.retry_state["e"]
    assert harness.receive()["Records"] == []
    assert harness.dead_letters() == []


def test_retry_after_is_honoured(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="5,3600")
    harness.receiver.route("/hook", Reply(status=429, headers={"Retry-After": "900"}))
    harness.add_endpoint("acme", "/hook")
    harness.send(endpoint="acme", event_type="invoice.paid", payload={})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    [retry] = harness.queued()
    assert 900 - 3 <= retry.delayed_s <= 901


def test_410_disables_the_endpoint_and_dead_letters(harness: DeliveryHarness) -> None:
    harness.receiver.route("/hook", Reply(status=410, body=b"unsubscribed"))
    harness.add_endpoint("acme", "/hook")
    webhook_id = harness.send(endpoint="acme", event_type="invoice.paid", payload={"a": 1})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    endpoint = harness.registry.get("acme", fresh=True)
    assert endpoint is not None
    assert not endpoint.enabled
    assert endpoint.disabled_reason is not None and "410" in endpoint.disabled_reason
    [letter] = harness.dead_letters()
    attributes = _attributes(letter)
    assert attributes["reason"] == "endpoint_gone"
    assert attributes["endpoint"] == "acme"
    assert attributes["last_status"] == "410"
    assert attributes["attempts"] == "1"
    assert json.loads(letter["Body"])["id"] == webhook_id
    # The next message for the disabled endpoint is dead-lettered without a request.
    harness.send(endpoint="acme", event_type="invoice.paid", payload={"a": 2})
    harness.run_once()
    assert len(harness.receiver.requests_for("/hook")) == 1
    reasons = sorted(_attributes(message)["reason"] for message in harness.dead_letters())
    assert reasons == ["endpoint_disabled", "endpoint_gone"]


def test_exhausted_retries_are_dead_lettered_with_attributes(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="0")  # two attempts; the retry is visible at once
    harness.receiver.route("/hook", Reply(status=502, body=b"bad gateway"))
    harness.add_endpoint("acme", "/hook")
    webhook_id = harness.send(endpoint="acme", event_type="invoice.paid", payload={"a": 1})
    first_event, first = harness.run_once()
    assert first == {"batchItemFailures": []}
    second_event, second = harness.run_once()
    # The retry is a new SQS message (received once) carrying the webhook-id in its body and the attempt count.
    [record] = second_event["Records"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageId"] != first_event["Records"][0]["messageId"]
    assert json.loads(record["body"])["id"] == webhook_id
    assert second == {"batchItemFailures": []}
    assert len(harness.receiver.requests_for("/hook")) == 2
    [letter] = harness.dead_letters()
    attributes = _attributes(letter)
    assert attributes["reason"] == "retries_exhausted"
    assert attributes["attempts"] == "2"
    assert attributes["last_status"] == "502"
    assert "bad gateway" in attributes["last_error"]
    assert attributes["endpoint"] == "acme"
    assert datetime.strptime(attributes["failed_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= datetime.now(UTC)
    assert json.loads(letter["Body"])["id"] == webhook_id
    assert harness.receive()["Records"] == []


def test_poison_is_dead_lettered_without_touching_the_rest_of_the_batch(
    harness: DeliveryHarness, capfd: pytest.CaptureFixture[str]
) -> None:
    harness.add_endpoint("acme", "/hook")
    not_json = harness.send_raw("this is not JSON {")
    schema = harness.send_raw(json.dumps({"version": 1, "event_type": "bad type", "endpoint": "acme", "payload": {}}))
    metadata = harness.send_raw(
        json.dumps(
            {
                "version": 1,
                "event_type": "a",
                "url": "http://169.254.169.254/latest/meta-data/",
                "secret_id": "hookline/acme",
                "payload": {},
            }
        )
    )
    unknown = harness.send_raw(json.dumps({"version": 1, "event_type": "a", "endpoint": "nobody", "payload": {}}))
    inline = {"url": harness.receiver.url("/x"), "secret_id": harness.secret_id("nope")}
    no_secret = harness.send_raw(json.dumps({"version": 1, "event_type": "a", **inline, "payload": {}}))
    good = harness.send(endpoint="acme", event_type="invoice.paid", payload={"ok": True})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    [delivered] = harness.receiver.requests_for("/hook")
    assert delivered.headers["webhook-id"] == good
    assert harness.receiver.requests_for("/x") == []
    letters = {message["Body"]: _attributes(message) for message in harness.dead_letters()}
    by_reason = {attributes["reason"]: body for body, attributes in letters.items()}
    assert set(by_reason) == {
        "invalid_json",
        "schema_violation",
        "target_refused",
        "unknown_endpoint",
        "secret_missing",
    }
    assert by_reason["invalid_json"] == "this is not JSON {"
    assert json.loads(by_reason["schema_violation"])["id"] == f"msg_{schema}"
    assert json.loads(by_reason["target_refused"])["id"] == f"msg_{metadata}"
    assert json.loads(by_reason["unknown_endpoint"])["id"] == f"msg_{unknown}"
    assert json.loads(by_reason["secret_missing"])["id"] == f"msg_{no_secret}"
    assert not_json
    for attributes in letters.values():
        assert attributes["attempts"] == "0"  # dead-lettered before any real attempt
        assert attributes["last_status"] == "0"
        assert attributes["last_error"]
    assert letters[by_reason["target_refused"]]["endpoint"] == "169.254.169.254"
    metrics = _emf(capfd.readouterr().out)
    assert metrics[("DeliveryDeadLettered", (("Reason", "invalid_json"), *SERVICE))] == 1
    assert metrics[("DeliveryDeadLettered", (("Reason", "secret_missing"), *SERVICE))] == 1


def test_open_breaker_skips_the_request(harness: DeliveryHarness, capfd: pytest.CaptureFixture[str]) -> None:
    harness.configure(RETRY_SCHEDULE="5,3600")
    harness.add_endpoint("acme", "/hook")
    operator = BreakerRegistry(DynamoDBStateStore(harness.stack.breaker_table, client=harness.dynamodb))
    operator.get(origin_of(harness.receiver.url("/"))).force_open("maintenance", source="operator")
    harness.send(endpoint="acme", event_type="invoice.paid", payload={})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    assert harness.receiver.requests == []
    # Every target was skipped: the delay is at least the breaker's retry_after (30 s open period), not 5 s, and the
    # skip used no attempt.
    [retry] = harness.queued()
    assert retry.delayed_s >= 28
    assert (retry.retry_state["n"], retry.retry_state["p"]) == (0, 1)
    metrics = _emf(capfd.readouterr().out)
    assert metrics[("BreakerRejected", SERVICE)] == 1
    assert metrics[("DeliveryRetried", SERVICE)] == 1


def test_rotation_signs_with_both_secrets(harness: DeliveryHarness) -> None:
    current, previous = generate_secret(), generate_secret()
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    harness.add_endpoint(
        "acme", "/hook", secret={"current": current, "previous": previous, "previous_expires_at": expires}
    )
    harness.send(endpoint="acme", event_type="invoice.paid", payload={"rotating": True})
    harness.run_once()
    [request] = harness.receiver.requests_for("/hook")
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    # Receivers still on the old secret and receivers already on the new one both verify.
    assert Webhook(current).verify(request.body, request.headers) == {"rotating": True}
    assert Webhook(previous).verify(request.body, request.headers) == {"rotating": True}


def test_github_and_stripe_schemes_verify_with_independent_hmac(harness: DeliveryHarness) -> None:
    github_secret = harness.add_endpoint("gh", "/github", scheme="github")
    stripe_secret = harness.add_endpoint("st", "/stripe", scheme="stripe")
    harness.send(endpoint="gh", event_type="push", payload={"ref": "main"})
    harness.send(endpoint="st", event_type="charge.succeeded", payload={"id": "ch_1"})
    harness.run_once()
    [github] = harness.receiver.requests_for("/github")
    expected = hmac.new(github_secret.encode(), github.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(github.headers["x-hub-signature-256"], f"sha256={expected}")
    [stripe] = harness.receiver.requests_for("/stripe")
    parts = dict(part.split("=", 1) for part in stripe.headers["stripe-signature"].split(","))
    signed = f"{parts['t']}.".encode() + stripe.body
    assert parts["t"] == stripe.headers["webhook-timestamp"]
    assert hmac.compare_digest(parts["v1"], hmac.new(stripe_secret.encode(), signed, hashlib.sha256).hexdigest())
    # Both schemes carry the Standard Webhooks headers too.
    Webhook(github_secret).verify(github.body, github.headers)
    Webhook(stripe_secret).verify(stripe.body, stripe.headers)


def test_no_secret_in_logs_metrics_or_dead_letters(harness: DeliveryHarness, capfd: pytest.CaptureFixture[str]) -> None:
    harness.configure(RETRY_SCHEDULE="0", LOG_LEVEL="DEBUG")
    secret = generate_secret()
    # A hostile receiver echoes everything it got back in its error body.
    harness.receiver.route("/echo", lambda request: Reply(status=500, body=json.dumps(request.headers).encode()))
    harness.receiver.route("/gone", Reply(status=410))
    harness.add_endpoint("echo", "/echo", secret=secret)
    harness.add_secret("inline", secret)
    harness.send(endpoint="echo", event_type="a", payload={"p": 1})
    harness.send(
        url=harness.receiver.url("/gone"), secret_id=harness.secret_id("inline"), event_type="a", payload={"p": 2}
    )
    harness.run_once()
    harness.run_once()
    letters = harness.dead_letters()
    assert sorted(_attributes(letter)["reason"] for letter in letters) == ["endpoint_gone", "retries_exhausted"]
    captured = capfd.readouterr()
    key = secret.removeprefix("whsec_")
    everything = captured.out + captured.err + json.dumps(letters)
    assert "dead_lettered" in everything
    assert secret not in everything
    assert key not in everything
    assert base64.b64decode(key).hex() not in everything


def test_id_survives_a_dead_letter_redrive(harness: DeliveryHarness) -> None:
    harness.receiver.route("/hook", [Reply(status=410), Reply(status=200)])
    harness.add_secret("inline")
    inline = {"url": harness.receiver.url("/hook"), "secret_id": harness.secret_id("inline")}
    sqs_id = harness.send_raw(json.dumps({"version": 1, "event_type": "a", **inline, "payload": {}}))
    harness.run_once()
    [letter] = harness.dead_letters()
    assert json.loads(letter["Body"])["id"] == f"msg_{sqs_id}"
    harness.send_raw(letter["Body"])  # what `hookline dlq redrive` does
    harness.run_once()
    first, second = harness.receiver.requests_for("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{sqs_id}"
    assert first.body == second.body


def test_a_whole_batch_to_retry_leaves_nothing_in_flight(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="60,600")
    harness.receiver.route("/hook", Reply(status=503))
    harness.add_endpoint("acme", "/hook")
    for index in range(5):
        harness.send(endpoint="acme", event_type="a", payload={"i": index})
    event, response = harness.run_once()
    assert len(event["Records"]) == 5
    assert response == {"batchItemFailures": []}
    queued = harness.queued()
    assert len(queued) == 5
    assert not any(message.in_flight for message in queued)
    assert all(message.delayed_s > 40 for message in queued)


def test_records_left_without_time_are_reported_failed_not_lost(harness: DeliveryHarness) -> None:
    harness.receiver.route("/slow", Reply(status=200, delay_s=3.0))
    harness.add_endpoint("slow", "/slow")
    harness.send(endpoint="slow", event_type="a", payload={})
    event = harness.receive()
    # 4.5 s left minus the 3 s safety margin: the request is cut at 1.5 s, long before the receiver answers.
    response = harness.invoke(event, remaining_ms=4500)
    harness.settle(event, response)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert harness.dead_letters() == []
    harness.send(endpoint="slow", event_type="a", payload={})
    event = harness.receive()
    response = harness.invoke(event, remaining_ms=3500)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert len(harness.receiver.requests_for("/slow")) == 1  # the second one was never started


def test_unsubscribed_event_type_is_dropped_without_a_request(harness: DeliveryHarness) -> None:
    harness.add_endpoint("acme", "/hook", event_types=["invoice.paid"])
    harness.send(endpoint="acme", event_type="invoice.voided", payload={})
    harness.send(endpoint="acme", event_type="invoice.paid", payload={})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    [request] = harness.receiver.requests_for("/hook")
    assert json.loads(request.body) == {}
    assert harness.dead_letters() == []
    assert harness.receive()["Records"] == []


def test_a_crash_between_re_enqueue_and_delete_duplicates_but_never_loses(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="0")
    harness.receiver.route("/hook", [Reply(status=500), Reply(status=204)])
    harness.add_endpoint("acme", "/hook")
    # No id in the body: the webhook-id is derived from the first SQS MessageId and must survive the re-enqueue.
    sqs_id = harness.send_raw(json.dumps({"version": 1, "event_type": "a", "endpoint": "acme", "payload": {"k": 1}}))
    event = harness.receive()
    harness.invoke(event)  # the retry is re-enqueued ...
    # ... and the environment dies before Lambda deletes the batch: the original comes back when its visibility runs
    # out (made immediate here), next to its re-enqueued copy.
    [record] = event["Records"]
    harness.sqs.change_message_visibility(
        QueueUrl=harness.stack.delivery_queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
    )
    assert len(harness.queued()) == 2
    harness.run_once()
    harness.run_once()
    failed, *deliveries = harness.receiver.requests_for("/hook")
    assert len(deliveries) == 2  # a duplicate ...
    assert {request.headers["webhook-id"] for request in (failed, *deliveries)} == {f"msg_{sqs_id}"}  # ... same id
    assert {request.body for request in deliveries} == {b'{"k":1}'}
    assert harness.queued() == []
    assert harness.dead_letters() == []


def test_breaker_skips_use_no_attempt_and_dead_letters_keep_the_real_status(harness: DeliveryHarness) -> None:
    harness.configure(RETRY_SCHEDULE="0")  # two real attempts
    harness.receiver.route("/hook", Reply(status=503, body=b"overloaded"))
    harness.add_endpoint("acme", "/hook")
    harness.send(endpoint="acme", event_type="a", payload={})
    harness.run_once()  # attempt 1: a real 503
    operator = BreakerRegistry(DynamoDBStateStore(harness.stack.breaker_table, client=harness.dynamodb))
    operator.get(origin_of(harness.receiver.url("/"))).force_open("maintenance", source="operator")
    harness.configure(BREAKER_OPEN_S="1")  # a forced-open breaker answers retry_after = open_s: 1 s
    for position in (2, 3):
        harness.release_delayed()
        harness.run_once()  # skipped by the breaker: no request, no attempt used, the schedule position moves on
        [retry] = harness.queued()
        assert (retry.retry_state["n"], retry.retry_state["p"]) == (1, position)
    assert harness.dead_letters() == []
    # The age bound ends it (slack 0: the schedule's 0 s are long over), with the receiver's real answer.
    harness.configure(RETRY_EXPIRY_SLACK_S="0")
    harness.release_delayed()
    harness.run_once()
    [letter] = harness.dead_letters()
    attributes = _attributes(letter)
    assert (attributes["reason"], attributes["attempts"], attributes["last_status"]) == ("expired", "1", "503")
    assert "overloaded" in attributes["last_error"]
    assert len(harness.receiver.requests_for("/hook")) == 1


def test_a_hostile_retry_attribute_never_fails_the_batch(harness: DeliveryHarness) -> None:
    # A producer's own "hookline-retry" that json reads but no state of ours holds (NaN): counted as absent (attempt 1).
    harness.add_endpoint("acme", "/hook")
    hostile = '{"v":1,"n":NaN,"p":0,"f":1}'
    harness.sqs.send_message(
        QueueUrl=harness.stack.delivery_queue_url,
        MessageBody=json.dumps(
            {"version": 1, "id": "msg_hostile", "event_type": "a", "endpoint": "acme", "payload": {}}
        ),
        MessageAttributes={"hookline-retry": {"DataType": "String", "StringValue": hostile}},
    )
    good = harness.send(endpoint="acme", event_type="invoice.paid", payload={"ok": True})
    _event, response = harness.run_once()
    assert response == {"batchItemFailures": []}
    ids = sorted(request.headers["webhook-id"] for request in harness.receiver.requests_for("/hook"))
    assert ids == sorted(["msg_hostile", good])
    assert harness.dead_letters() == []
