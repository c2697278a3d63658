"""Webhook delivery: targets, schedule, one attempt, dead letters, the batch service and the in-process client.

The in-process client's names are importable from here too (``from hookline.delivery import WebhookDelivery,
webhook_client``); they load on first access, so importing the package costs the delivery function nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hookline.delivery.client import (
        AsyncWebhookClient,
        DeliveryFailedError,
        DeliveryResult,
        LazyWebhookClient,
        WebhookDelivery,
        webhook_client,
    )

__all__ = [
    "AsyncWebhookClient",
    "DeliveryFailedError",
    "DeliveryResult",
    "LazyWebhookClient",
    "WebhookDelivery",
    "webhook_client",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hookline.delivery import client

        return getattr(client, name)
    raise AttributeError(f"module 'hookline.delivery' has no attribute {name!r}")
