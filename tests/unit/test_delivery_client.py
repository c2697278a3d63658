"""The in-process client: WebhookDelivery + AsyncWebhookClient.deliver() on the same pieces as the function."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from hookline.delivery.attempt import Outcome
from hookline.delivery.client import AsyncWebhookClient, DeliveryFailedError, WebhookDelivery
from hookline.exceptions import HooklineError, SecretFormatError, TargetRefusedError
from hookline.signing import PlainSecret, generate_secret, verify_github, verify_standard, verify_stripe
from resilience.breaker import BreakerRegistry, MemoryStateStore
from resilience.retry import RetryPolicy
from tests.support.delivery_fakes import WALL_CLOCK, MockReceiver
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from hookline.registry import Scheme

URL = "https://hooks.acme.example/hook"
BACKUP = "https://backup.acme.example/hook"
SECRET = generate_secret()


def _client(receiver: MockReceiver, clock: FakeClock, **kwargs: object) -> AsyncWebhookClient:
    retry = RetryPolicy(max_attempts=3, initial_delay=1.0, jitter="none", async_sleep=clock.async_sleep, clock=clock)
    return AsyncWebhookClient(
        transport=httpx.MockTransport(receiver),
        retry=retry,
        wall_clock=lambda: WALL_CLOCK,
        monotonic=clock,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_deliver_signs_and_returns_the_result() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    async with _client(receiver, clock) as client:
        result = await client.deliver(WebhookDelivery(URL, {"amount": 5}, SECRET, event_type="invoice.paid"))
    assert result.delivered
    assert result.served_by == 0
    [request] = receiver.requests
    assert request.content == b'{"amount":5}'
    assert request.headers["webhook-id"] == result.id
    assert result.id.startswith("msg_")
    verify_standard(
        SECRET,
        request.headers["webhook-id"],
        request.headers["webhook-timestamp"],
        request.content,
        request.headers["webhook-signature"],
        now=datetime.fromtimestamp(WALL_CLOCK, tz=UTC),
    )


async def test_retries_with_the_same_id_and_body_then_falls_back() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    receiver.route(URL, httpx.Response(503, headers={"Retry-After": "4"}))
    receiver.route(BACKUP, [httpx.Response(500), httpx.Response(200)])
    async with _client(receiver, clock) as client:
        delivery = WebhookDelivery(URL, [1, 2], SECRET, fallback_urls=[BACKUP], id="msg_fixed")
        result = await client.deliver(delivery)
    assert result.delivered
    assert result.served_by == 1
    assert len(result.attempts) == 2
    assert [str(request.url) for request in receiver.requests] == [URL, BACKUP, URL, BACKUP]
    assert {request.headers["webhook-id"] for request in receiver.requests} == {"msg_fixed"}
    assert {request.content for request in receiver.requests} == {b"[1,2]"}
    assert clock.sleeps == [4.0]  # the receiver's Retry-After beat the 1 s backoff


async def test_gone_is_not_retried_and_can_raise() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    receiver.route(URL, httpx.Response(410))
    async with _client(receiver, clock) as client:
        with pytest.raises(DeliveryFailedError) as caught:
            await client.deliver(WebhookDelivery(URL, {}, SECRET), raise_on_failure=True)
    assert caught.value.result.outcome is Outcome.GONE
    assert len(receiver.requests) == 1
    assert clock.sleeps == []


async def test_exhausted_retries_return_a_failed_result() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    receiver.route(URL, httpx.Response(500))
    async with _client(receiver, clock) as client:
        result = await client.deliver(WebhookDelivery(URL, {}, SECRET))
    assert not result.delivered
    assert result.outcome is Outcome.FAILED
    assert result.status_code == 500
    assert len(receiver.requests) == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_open_breaker_skips_the_url_and_rotation_signs_twice() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    breakers = BreakerRegistry(MemoryStateStore(clock=clock), clock=clock)
    breakers.get("https://hooks.acme.example").force_open("maintenance")
    previous = generate_secret()
    rotation = json.dumps({"current": SECRET, "previous": previous, "previous_expires_at": "2030-01-01T00:00:00Z"})
    async with _client(receiver, clock, breakers=breakers) as client:
        result = await client.deliver(WebhookDelivery(URL, {}, rotation, fallback_urls=[BACKUP]))
    assert result.delivered
    [request] = receiver.requests
    assert str(request.url) == BACKUP
    assert len(request.headers["webhook-signature"].split(" ")) == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest", "private_address"),
        ("http://127.0.0.1:8080/hook", "private_address"),
        ("ftp://hooks.acme.example/hook", "scheme"),
        ("http://user:pass@hooks.acme.example/hook", "credentials"),
    ],
)
async def test_refused_url_raises_target_refused_before_any_request(url: str, reason: str) -> None:
    receiver, clock = MockReceiver(), FakeClock()
    async with _client(receiver, clock) as client:
        with pytest.raises(TargetRefusedError) as caught:
            await client.deliver(WebhookDelivery(URL, {}, SECRET, fallback_urls=[url]))
    assert caught.value.reason == reason
    assert isinstance(caught.value, HooklineError) and isinstance(caught.value, ValueError)
    assert receiver.requests == []


async def test_allow_private_opens_loopback_only() -> None:
    receiver, clock = MockReceiver(), FakeClock()
    async with _client(receiver, clock, allow_private=True) as client:
        result = await client.deliver(WebhookDelivery("http://127.0.0.1:8080/hook", {}, SECRET))
        with pytest.raises(TargetRefusedError) as caught:
            await client.deliver(WebhookDelivery("http://10.0.0.7/hook", {}, SECRET))
    assert result.delivered
    assert caught.value.address_class == "private"
    assert [str(request.url) for request in receiver.requests] == ["http://127.0.0.1:8080/hook"]


def test_delivery_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        WebhookDelivery(URL, {}, SECRET, event_type="bad type")
    with pytest.raises(ValueError):
        WebhookDelivery(URL, {}, SECRET, id="has space")
    with pytest.raises(ValueError):
        WebhookDelivery(URL, {}, SECRET, timeout_s=31)
    assert "whsec_" not in repr(WebhookDelivery(URL, {}, SECRET))


@pytest.mark.parametrize("scheme", ["standard", "github", "stripe"])
async def test_a_plain_seed_secret_is_its_own_key(scheme: Scheme) -> None:
    receiver, clock = MockReceiver(), FakeClock()
    async with _client(receiver, clock) as client:
        result = await client.deliver(
            WebhookDelivery(url=URL, payload={"order": 7}, secret="webhook_secret", scheme=scheme)
        )
    assert result.delivered
    [request] = receiver.requests
    now = datetime.fromtimestamp(WALL_CLOCK, tz=UTC)
    whsec = "whsec_" + base64.b64encode(b"webhook_secret").decode()
    headers = request.headers
    verify_standard(
        whsec,
        headers["webhook-id"],
        headers["webhook-timestamp"],
        request.content,
        headers["webhook-signature"],
        now=now,
    )
    if scheme == "github":
        verify_github("webhook_secret", request.content, headers["X-Hub-Signature-256"])
    if scheme == "stripe":
        verify_stripe("webhook_secret", request.content, headers["Stripe-Signature"], now=now)


def test_secret_strings_keep_their_meaning() -> None:
    plain = WebhookDelivery(URL, {}, "webhook_secret").signing_secrets
    stored = WebhookDelivery(URL, {}, SECRET).signing_secrets
    assert isinstance(plain.current, PlainSecret) and plain.current == "webhook_secret"
    assert plain.current.whsec == "whsec_" + base64.b64encode(b"webhook_secret").decode()
    assert stored.current == SECRET and not isinstance(stored.current, PlainSecret)
    assert "webhook_secret" not in repr(plain)


@pytest.mark.parametrize("secret", ["short", "whsec_tooshort", "whsec_not base64!", '{"current": "nope"}'])
def test_malformed_secrets_are_refused_when_the_delivery_is_made(secret: str) -> None:
    with pytest.raises(SecretFormatError) as caught:
        WebhookDelivery(URL, {}, secret)
    assert secret not in str(caught.value)


def test_field_errors_say_what_is_wrong_in_words() -> None:
    with pytest.raises(ValueError, match=r"event_type 'bad type' contains ' '; allowed characters") as caught:
        WebhookDelivery(URL, {}, SECRET, event_type="bad type")
    assert "(?!" not in str(caught.value)
