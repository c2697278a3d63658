"""Where a message goes: its registered endpoint or inline url, the ordered targets, and the network-guard check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import httpx

from hookline.delivery.deadletter import describe_target
from hookline.exceptions import HooklineError, TargetRefusedError
from hookline.metrics import Reason
from hookline.netguard import check_url
from hookline.registry import DEFAULT_TIMEOUT_S, RegistryItemError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hookline.messages import WebhookMessage
    from hookline.registry import Endpoint, Scheme

__all__ = [
    "DeliveryPlan",
    "EndpointSource",
    "EventTypeFiltered",
    "PlanError",
    "check_targets",
    "origin_of",
    "resolve_plan",
]


class EndpointSource(Protocol):
    """Where endpoints are read from (``EndpointRegistry`` or a batch's read-ahead)."""

    def get(self, name: str) -> Endpoint | None:
        """The endpoint called ``name`` or None."""
        ...


class PlanError(HooklineError, ValueError):
    """The message cannot be delivered as it stands (dead-letter at once with ``reason``)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class EventTypeFiltered(Exception):
    """The registered endpoint does not subscribe to the message's event type (dropped, not an error)."""


@dataclass(frozen=True)
class DeliveryPlan:
    """Everything one attempt needs besides the secret: targets in order, scheme, headers, timeout."""

    message_id: str
    event_type: str
    label: str
    targets: tuple[str, ...]
    secret_id: str
    scheme: Scheme = "standard"
    timeout_s: float = DEFAULT_TIMEOUT_S
    headers: Mapping[str, str] = field(default_factory=dict)
    endpoint: Endpoint | None = None

    @property
    def origins(self) -> tuple[str, ...]:
        """The breaker name of every target, in order."""
        return tuple(origin_of(url) for url in self.targets)


def origin_of(url: str) -> str:
    """The target's origin (``scheme://host[:port]``, lowercase, default port dropped): hookline's breaker name."""
    parsed = httpx.URL(url)
    host = parsed.host
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}"


def check_targets(targets: tuple[str, ...], *, allow_private: bool) -> None:
    """PlanError (target_refused) unless every URL passes the network guard's pre-connect check."""
    for url in targets:
        try:
            check_url(url, allow_private=allow_private)
            origin_of(url)
        except TargetRefusedError as error:
            raise PlanError(Reason.TARGET_REFUSED, str(error)) from None
        except (httpx.InvalidURL, ValueError):
            raise PlanError(Reason.TARGET_REFUSED, "target refused: the URL does not parse") from None


def resolve_plan(
    message: WebhookMessage, message_id: str, *, registry: EndpointSource, allow_private: bool
) -> DeliveryPlan:
    """The plan for ``message``; PlanError (dead-letter) or EventTypeFiltered (drop) when there is nothing to send.

    Registry read errors other than a broken item (throttling, network) propagate: the message is tried again.
    """
    if message.endpoint is None:
        assert message.url is not None and message.secret_id is not None  # guaranteed by validation
        targets = (message.url, *message.fallback_urls)
        check_targets(targets, allow_private=allow_private)
        return DeliveryPlan(
            message_id=message_id,
            event_type=message.event_type,
            label=describe_target(None, message.url),
            targets=targets,
            secret_id=message.secret_id,
        )
    try:
        endpoint = registry.get(message.endpoint)
    except RegistryItemError as error:
        detail = f"endpoint {message.endpoint!r} breaks the registry contract: {error}"
        raise PlanError(Reason.ENDPOINT_INVALID, detail) from None
    if endpoint is None:
        raise PlanError(Reason.UNKNOWN_ENDPOINT, f"no endpoint named {message.endpoint!r}")
    if not endpoint.enabled:
        why = f": {endpoint.disabled_reason}" if endpoint.disabled_reason else ""
        raise PlanError(Reason.ENDPOINT_DISABLED, f"endpoint {endpoint.name!r} is disabled{why}")
    if not endpoint.accepts(message.event_type):
        raise EventTypeFiltered(f"endpoint {endpoint.name!r} does not subscribe to {message.event_type!r}")
    check_targets(endpoint.targets, allow_private=allow_private)
    return DeliveryPlan(
        message_id=message_id,
        event_type=message.event_type,
        label=endpoint.name,
        targets=endpoint.targets,
        secret_id=endpoint.secret_id,
        scheme=endpoint.scheme,
        timeout_s=endpoint.timeout_s,
        headers=dict(endpoint.headers),
        endpoint=endpoint,
    )
