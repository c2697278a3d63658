"""``webhook_client`` against a real loopback receiver: repeated ``asyncio.run`` calls, one pool per loop."""

from __future__ import annotations

import asyncio
import base64

from standardwebhooks import Webhook

from hookline.delivery.client import LazyWebhookClient, WebhookDelivery
from tests.support.loopback import loopback_server


def test_repeated_asyncio_run_calls_deliver_and_reuse_connections_within_each_loop() -> None:
    client = LazyWebhookClient(environ={"ALLOW_PRIVATE_TARGETS": "true"})

    with loopback_server() as server:

        async def deliver_three() -> list[bool]:
            deliveries = [WebhookDelivery(server.url("/hook"), {"n": n}, "webhook_secret") for n in range(3)]
            return [bool(await client.deliver(delivery)) for delivery in deliveries]

        runs = [asyncio.run(deliver_three()) for _ in range(3)]
        connections = server.connections
        requests = server.requests_for("/hook")

    assert runs == [[True, True, True]] * 3
    assert connections == 3  # one kept-alive connection per loop, closed when the loop ended
    whsec = "whsec_" + base64.b64encode(b"webhook_secret").decode()
    for request in requests:
        Webhook(whsec).verify(request.body, dict(request.headers), json_parse=False)
