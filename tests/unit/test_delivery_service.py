"""DeliveryService with in-process fakes and httpx.MockTransport: outcomes, schedule, breakers, dead letters, logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline.delivery.batch import queue_url_from_arn
from hookline.exceptions import TargetRefusedError
from hookline.registry import Endpoint
from hookline.secrets import SecretUnavailableError
from hookline.settings import Settings
from hookline.signing import verify_standard
from resilience.breaker import BreakerConfig, BreakerState
from tests.support.delivery_fakes import WALL_CLOCK, ServiceKit
from tests.support.events import FakeLambdaContext, load_event, make_record, make_sqs_event

if TYPE_CHECKING:
    from collections.abc import Iterator

ACME = Endpoint(name="acme-billing", url="https://hooks.acme.example/hook", secret_id="hookline/acme")
ACME_FALLBACK = Endpoint(
    name="acme",
    url="https://hooks.acme.example/primary",
    fallback_urls=("https://backup.acme.example/hook",),
    secret_id="hookline/acme",
)
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"


@pytest.fixture
def kit() -> Iterator[ServiceKit]:
    kit = ServiceKit(ACME, ACME_FALLBACK)
    yield kit
    kit.close()


def _message(endpoint: str = "acme-billing", **fields: Any) -> dict[str, Any]:
    return {"version": 1, "event_type": "invoice.paid", "endpoint": endpoint, "payload": {"n": 1}, **fields}


def _failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_sample_delivery_event_is_delivered(kit: ServiceKit) -> None:
    kit.secrets.add("hookline/example-orders", kit.secret)
    response = kit.handle(load_event("sqs-delivery"))
    assert response == {"batchItemFailures": []}
    [billing] = kit.receiver.to("https://hooks.acme.example/hook")
    [orders] = kit.receiver.to("https://hooks.example.com/orders")
    assert billing.headers["webhook-id"] == "msg_01JD8Q6V2K8Y3N7W5R4T9B6C0A"
    assert orders.headers["webhook-id"] == "msg_7b3c1d2e-4f5a-4b6c-8d9e-0a1b2c3d4e5f"
    assert billing.headers["webhook-timestamp"] == str(int(WALL_CLOCK))
    signed_at = datetime.fromtimestamp(WALL_CLOCK, tz=UTC)
    for request in (billing, orders):
        headers = request.headers
        verify_standard(
            kit.secret,
            headers["webhook-id"],
            headers["webhook-timestamp"],
            request.content,
            headers["webhook-signature"],
            now=signed_at,
        )
    assert billing.content == b'{"invoice":"in_1001","amount":4200,"currency":"eur"}'
    assert kit.metrics.counts["DeliverySucceeded"] == 2
    assert kit.metrics.counts["DeliveryAttempts"] == 2
    assert len(kit.metrics.latencies_ms) == 2


def test_sample_poison_event_dead_letters_only_the_poison(kit: ServiceKit) -> None:
    response = kit.handle(load_event("sqs-poison"))
    assert response == {"batchItemFailures": []}
    assert sorted(kit.sqs.reasons()) == ["invalid_json", "schema_violation", "target_refused"]
    assert len(kit.receiver.requests) == 1
    assert kit.metrics.dead_lettered == {"invalid_json": 1, "schema_violation": 1, "target_refused": 1}
    assert all(call["QueueUrl"] == DLQ for call in kit.sqs.sent)


def test_same_id_and_body_bytes_on_every_attempt(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, [httpx.Response(500), httpx.Response(200)])
    record = make_record(_message(payload={"b": [1, 2.5, "\u00e9"], "a": None}))
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}  # re-enqueued, so done here
    [entry] = kit.sqs.requeued
    # The derived id is written into the re-enqueued body: the new SQS MessageId must not change it.
    assert json.loads(entry["MessageBody"])["id"] == f"msg_{record['messageId']}"
    assert kit.handle(make_sqs_event(kit.redeliver(entry))) == {"batchItemFailures": []}
    first, second = kit.receiver.to(ACME.url)
    assert first.content == second.content == '{"b":[1,2.5,"\u00e9"],"a":null}'.encode()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{record['messageId']}"
    assert kit.metrics.counts["DeliverySucceeded"] == 1


def test_fallback_is_used_in_order(kit: ServiceKit) -> None:
    kit.receiver.route(ACME_FALLBACK.url, httpx.Response(503))
    response = kit.handle(make_sqs_event(make_record(_message("acme"))))
    assert response == {"batchItemFailures": []}
    assert [str(request.url) for request in kit.receiver.requests] == [ACME_FALLBACK.url, *ACME_FALLBACK.fallback_urls]
    assert kit.metrics.counts["FallbackUsed"] == 1


@pytest.mark.parametrize(
    ("attempt", "response", "delay", "due_in"),
    [
        (1, httpx.Response(500), 0, 0),  # schedule[0] = 0
        (2, httpx.Response(500), 5, 5),
        (3, httpx.Response(503, headers={"Retry-After": "700"}), 700, 700),
        (3, httpx.Response(429, headers={"Retry-After": "10"}), 300, 300),
        # Longer than SQS's 900 s delay: the message hops (900 s at a time) until it is due.
        (3, httpx.Response(503, headers={"Retry-After": "1000"}), 900, 1000),
        (4, httpx.Response(503, headers={"Retry-After": "999999"}), 900, 43200),
    ],
)
def test_failed_attempt_is_re_enqueued_with_the_scheduled_delay(
    kit: ServiceKit, attempt: int, response: httpx.Response, delay: int, due_in: int
) -> None:
    kit.receiver.route(ACME.url, response)
    record = make_record(_message(), receive_count=attempt)
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    [entry] = kit.sqs.requeued
    assert entry["QueueUrl"] == "https://sqs.us-east-1.amazonaws.com/123456789012/hookline-DeliveryQueue"
    assert entry["DelaySeconds"] == delay
    [state] = kit.sqs.states()
    # Without the attribute the receive count counts (messages from before the upgrade): attempt N made N attempts.
    assert state["n"] == state["p"] == attempt
    assert state["d"] == WALL_CLOCK + due_in
    assert state["s"] == response.status_code
    assert kit.metrics.counts["DeliveryRetried"] == 1
    assert kit.metrics.counts["DeliveryFailed"] == 1


def test_re_enqueues_share_send_message_batch_calls() -> None:
    kit = ServiceKit(ACME, settings=Settings(dead_letter_queue_url=DLQ, max_concurrency=10))
    try:
        kit.receiver.route(ACME.url, httpx.Response(500))
        records = [make_record(_message(), receive_count=2) for _ in range(23)]
        assert kit.handle(make_sqs_event(*records)) == {"batchItemFailures": []}
        assert len(kit.sqs.requeued) == 23
        sizes = [len(call["Entries"]) for call in kit.sqs.batches]
        assert max(sizes) <= 10
        assert len(sizes) <= 5  # 23 records, 10 at a time: far fewer calls than records
    finally:
        kit.close()


def test_a_record_is_done_only_once_its_own_entry_was_accepted(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(500))
    refused, accepted = make_record(_message(id="msg_refused")), make_record(_message(id="msg_accepted"))
    kit.sqs.refuse.add(refused["body"])
    response = kit.handle(make_sqs_event(refused, accepted))
    # The refused entry comes back through batchItemFailures (after the visibility timeout), never reported done.
    assert _failures(response) == [refused["messageId"]]
    assert [json.loads(entry["MessageBody"])["id"] for entry in kit.sqs.requeued] == ["msg_accepted"]
    kit.sqs.fail_batch = RuntimeError("SQS unavailable")
    assert sorted(_failures(kit.handle(make_sqs_event(refused, accepted)))) == sorted(
        [refused["messageId"], accepted["messageId"]]
    )


def test_last_attempt_is_dead_lettered_retries_exhausted(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(500, text="down for maintenance"))
    attempts = kit.settings.max_attempts
    record = make_record(_message(), receive_count=attempts)
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    [letter] = kit.sqs.sent
    attributes = {key: value["StringValue"] for key, value in letter["MessageAttributes"].items()}
    assert attributes["reason"] == "retries_exhausted"
    assert attributes["attempts"] == str(attempts)
    assert attributes["last_status"] == "500"
    assert "down for maintenance" in attributes["last_error"]
    assert attributes["failed_at"] == "2026-11-28T08:00:00Z"
    assert json.loads(letter["MessageBody"])["id"] == f"msg_{record['messageId']}"
    assert kit.sqs.batches == []


def test_410_from_registered_endpoint_disables_it(kit: ServiceKit) -> None:
    kit.receiver.route(ACME_FALLBACK.url, httpx.Response(410))
    assert kit.handle(make_sqs_event(make_record(_message("acme")))) == {"batchItemFailures": []}
    assert kit.sqs.reasons() == ["endpoint_gone"]
    [(name, reason)] = kit.registry.disabled
    assert name == "acme"
    assert "410" in reason
    # 410 ends the attempt: the fallback is not tried.
    assert len(kit.receiver.requests) == 1


def test_410_from_inline_url_dead_letters_without_registry(kit: ServiceKit) -> None:
    kit.secrets.add("hookline/inline", kit.secret)
    kit.receiver.route("https://x.example/h", httpx.Response(410))
    inline = {"version": 1, "event_type": "a", "url": "https://x.example/h", "secret_id": "hookline/inline"}
    assert kit.handle(make_sqs_event(make_record({**inline, "payload": 1}))) == {"batchItemFailures": []}
    assert kit.sqs.reasons() == ["endpoint_gone"]
    assert kit.registry.disabled == []
    assert kit.sqs.sent[0]["MessageAttributes"]["endpoint"]["StringValue"] == "x.example"


def test_redirect_is_a_failure_not_followed(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(302, headers={"Location": "https://evil.example/"}))
    record = make_record(_message(), receive_count=2)
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert [str(request.url) for request in kit.receiver.requests] == [ACME.url]
    assert kit.sqs.states()[0]["s"] == 302


def test_open_breaker_skips_every_target_and_waits_for_it(kit: ServiceKit) -> None:
    kit.breakers.get("https://hooks.acme.example").force_open("maintenance")
    record = make_record(_message(), receive_count=2)
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert kit.receiver.requests == []
    # The schedule's next entry is 5 s; the forced-open breaker's retry_after (open_s = 30 s) is longer and wins.
    assert kit.sqs.delays() == [30]
    [state] = kit.sqs.states()
    # A skip consumes no attempt (n) but moves the schedule position (p) on; there is still no real status.
    assert (state["n"], state["p"]) == (1, 2)
    assert "s" not in state
    assert kit.metrics.counts["BreakerRejected"] == 1
    assert kit.metrics.counts["DeliveryAttempts"] == 0


def test_open_primary_breaker_goes_straight_to_the_fallback(kit: ServiceKit) -> None:
    kit.breakers.get("https://hooks.acme.example").force_open("maintenance")
    assert kit.handle(make_sqs_event(make_record(_message("acme")))) == {"batchItemFailures": []}
    assert [str(request.url) for request in kit.receiver.requests] == list(ACME_FALLBACK.fallback_urls)


def test_server_errors_trip_the_breaker_but_client_errors_do_not() -> None:
    config = BreakerConfig(consecutive_failures=3, min_calls=100)
    kit = ServiceKit(ACME, breaker_config=config)
    try:
        kit.receiver.route(ACME.url, httpx.Response(400))
        for _ in range(4):
            kit.handle(make_sqs_event(make_record(_message(), receive_count=2)))
        assert kit.breakers.get("https://hooks.acme.example").snapshot(refresh=True).state is BreakerState.CLOSED
        kit.receiver.route(ACME.url, httpx.Response(503))
        for _ in range(4):
            kit.handle(make_sqs_event(make_record(_message(), receive_count=2)))
        assert kit.breakers.get("https://hooks.acme.example").snapshot(refresh=True).state is BreakerState.OPEN
        assert len(kit.receiver.requests) == 7  # the eighth was refused by the open breaker
    finally:
        kit.close()


def test_dead_letter_send_failure_reports_the_record_failed(kit: ServiceKit) -> None:
    kit.sqs.fail_send = RuntimeError("SQS unavailable")
    record = make_record("not json")
    assert _failures(kit.handle(make_sqs_event(record))) == [record["messageId"]]


@pytest.mark.parametrize("where", ["registry", "secrets"])
def test_transient_dependency_errors_defer_the_record(kit: ServiceKit, where: str) -> None:
    if where == "registry":
        kit.registry.fail = RuntimeError("ProvisionedThroughputExceeded")
    else:
        kit.secrets.fail = SecretUnavailableError("throttled")
    record = make_record(_message())
    assert _failures(kit.handle(make_sqs_event(record))) == [record["messageId"]]
    assert kit.sqs.sent == []
    assert kit.receiver.requests == []


def test_connect_time_refusal_dead_letters_target_refused() -> None:
    async def refusing(*args: Any, **kwargs: Any) -> Any:
        raise TargetRefusedError("private_address", "target refused: hooks.acme.example resolves to 10.0.0.7")

    kit = ServiceKit(ACME, send=refusing)
    try:
        assert kit.handle(make_sqs_event(make_record(_message()))) == {"batchItemFailures": []}
        assert kit.sqs.reasons() == ["target_refused"]
        assert "10.0.0.7" in kit.sqs.sent[0]["MessageAttributes"]["last_error"]["StringValue"]
    finally:
        kit.close()


def test_disabled_unknown_and_invalid_targets_are_dead_lettered() -> None:
    disabled = Endpoint(name="off", url="https://off.example", secret_id="hookline/acme", enabled=False)
    private = Endpoint(name="private", url="https://10.0.0.1/x", secret_id="hookline/acme")
    kit = ServiceKit(disabled, private)
    try:
        records = [make_record(_message(name)) for name in ("off", "private", "nobody")]
        assert kit.handle(make_sqs_event(*records)) == {"batchItemFailures": []}
        assert sorted(kit.sqs.reasons()) == ["endpoint_disabled", "target_refused", "unknown_endpoint"]
        assert kit.receiver.requests == []
    finally:
        kit.close()


def test_concurrency_is_bounded_by_max_concurrency(kit: ServiceKit) -> None:
    kit.receiver.delay_s = 0.01
    records = [make_record(_message()) for _ in range(20)]
    assert kit.handle(make_sqs_event(*records)) == {"batchItemFailures": []}
    assert kit.receiver.max_in_flight == kit.settings.max_concurrency == 4
    assert len(kit.receiver.requests) == 20


def test_the_registry_and_secrets_are_read_once_per_batch(kit: ServiceKit) -> None:
    reads: list[str] = []
    inner = kit.secrets.get

    def counting_get(secret_id: str) -> Any:
        reads.append(secret_id)
        return inner(secret_id)

    kit.secrets.get = counting_get  # type: ignore[method-assign]
    records = [make_record(_message()) for _ in range(10)]
    assert kit.handle(make_sqs_event(*records)) == {"batchItemFailures": []}
    # The fake registry has no cache: one read ahead for the whole batch, none per record.
    assert kit.registry.reads == 1
    assert reads == ["hookline/acme"]


def test_no_time_left_defers_without_a_request(kit: ServiceKit) -> None:
    records = [make_record(_message()) for _ in range(3)]
    context = FakeLambdaContext(remaining_ms=lambda: 3500)  # minus the 3 s margin: 0.5 s, below one request
    response = kit.handle(make_sqs_event(*records), context)
    assert sorted(_failures(response)) == sorted(record["messageId"] for record in records)
    assert kit.receiver.requests == []
    assert kit.sqs.batches == []


def test_every_log_line_of_a_record_carries_its_webhook_id(kit: ServiceKit) -> None:
    kit.receiver.delay_s = 0.005
    kit.receiver.route(ACME_FALLBACK.url, httpx.Response(500))
    records = [make_record(_message("acme" if index % 2 else "acme-billing", id=f"msg_{index}")) for index in range(8)]
    kit.handle(make_sqs_event(*records))
    delivered = [json.loads(line) for line in kit.log_lines() if '"outcome":"delivered"' in line]
    assert len(delivered) == 8
    # Concurrent records never mix: each line names its own webhook and the target that served it.
    assert {(line["webhook_id"], line["target"]) for line in delivered} == {
        (f"msg_{index}", index % 2) for index in range(8)
    }
    assert kit.secret not in kit.log_stream.getvalue()


def test_unsubscribed_event_type_is_dropped(kit: ServiceKit) -> None:
    kit.registry.endpoints["acme-billing"] = Endpoint(
        name="acme-billing", url=ACME.url, secret_id="hookline/acme", event_types=("invoice.paid",)
    )
    record = make_record(_message(event_type="invoice.voided"))
    assert kit.handle(make_sqs_event(record)) == {"batchItemFailures": []}
    assert kit.receiver.requests == []
    assert kit.sqs.sent == []


def test_queue_url_from_arn() -> None:
    assert (
        queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:q")
        == "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    )
    assert queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:1:q") == "https://sqs.cn-north-1.amazonaws.com.cn/1/q"
    with pytest.raises(ValueError):
        queue_url_from_arn("arn:aws:sns:us-east-1:1:topic")


def test_settings_max_attempts_controls_exhaustion() -> None:
    settings = Settings(
        endpoints_table="e", breaker_table="b", dead_letter_queue_url=DLQ, retry_schedule=(1.0,), max_concurrency=2
    )
    kit = ServiceKit(ACME, settings=settings)
    try:
        kit.receiver.route(ACME.url, httpx.Response(500))
        assert kit.handle(make_sqs_event(make_record(_message(), receive_count=2))) == {"batchItemFailures": []}
        assert kit.sqs.reasons() == ["retries_exhausted"]
    finally:
        kit.close()
