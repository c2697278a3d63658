"""Receivers verify hookline's headers with the public standardwebhooks library, rotation included.

Functional rather than unit: Webhook.verify checks the timestamp against the real clock, so the headers must carry
the current time.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookline.delivery.client import AsyncWebhookClient, WebhookDelivery
from hookline.signing import PlainSecret, parse_secret_string, signature_headers, verify_standard
from tests.support.delivery_fakes import MockReceiver

CURRENT = "whsec_" + base64.b64encode(b"c" * 32).decode()
PREVIOUS = "whsec_" + base64.b64encode(b"p" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = b'{"event_type":"invoice.paid","payload":{"amount":4200,"currency":"EUR"}}'
PAYLOAD = {"order": 42, "status": "shipped"}


@pytest.mark.parametrize("scheme", ["standard", "github", "stripe"])
def test_rotation_headers_verify_with_each_secret(scheme: str) -> None:
    now = datetime.now(UTC)
    rotation = parse_secret_string(
        f'{{"current": "{CURRENT}", "previous": "{PREVIOUS}", '
        f'"previous_expires_at": "{(now + timedelta(hours=1)).isoformat()}"}}'
    )
    active = rotation.active(now)
    assert active == (CURRENT, PREVIOUS)
    headers = signature_headers(scheme, active, "msg_rotation", int(time.time()), BODY)

    assert Webhook(CURRENT).verify(BODY, headers) == {
        "event_type": "invoice.paid",
        "payload": {"amount": 4200, "currency": "EUR"},
    }
    Webhook(PREVIOUS).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(BODY, headers)
    # hookline's own verifier agrees with the library.
    verify_standard(CURRENT, headers["webhook-id"], headers["webhook-timestamp"], BODY, headers["webhook-signature"])


def test_after_expiry_only_current_signs() -> None:
    now = datetime.now(UTC)
    rotation = parse_secret_string(
        f'{{"current": "{CURRENT}", "previous": "{PREVIOUS}", '
        f'"previous_expires_at": "{(now - timedelta(seconds=1)).isoformat()}"}}'
    )
    headers = signature_headers("standard", rotation.active(now), "msg_expired", int(time.time()), BODY)
    Webhook(CURRENT).verify(BODY, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(PREVIOUS).verify(BODY, headers)


def test_library_rejects_tampered_body() -> None:
    headers = signature_headers("standard", [CURRENT], "msg_tamper", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(CURRENT).verify(BODY.replace(b"4200", b"4201"), headers)


async def test_in_process_delivery_with_a_plain_secret_verifies_as_whsec_base64() -> None:
    receiver = MockReceiver()
    async with AsyncWebhookClient(transport=httpx.MockTransport(receiver)) as client:
        result = await client.deliver(
            WebhookDelivery(url="https://hooks.acme.example/in", payload=PAYLOAD, secret="webhook_secret")
        )

    assert result.delivered
    [request] = receiver.requests
    headers = dict(request.headers)
    assert Webhook("whsec_" + base64.b64encode(b"webhook_secret").decode()).verify(request.content, headers) == PAYLOAD
    assert Webhook(PlainSecret("webhook_secret").whsec).verify(request.content, headers) == PAYLOAD
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"webhook_secret!").decode()).verify(request.content, headers)
