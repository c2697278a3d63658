"""Seed-parity integration service: register integrations, read their health and breaker status (on the registry).

An integration is a registered endpoint plus a ``service_type`` label. ``service_type`` maps to the signing
``scheme`` when it names one (``standard``, ``github``, ``stripe``); any other value (``payments``, ``crm`` ...)
is a free-form label kept in the item's ``service_type`` attribute, and the scheme is then ``standard`` unless
given. The label is written right after the endpoint itself (two writes, not one transaction): an item written
by other tools simply has no label and reads back as ``webhook``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3

from hookline.delivery.targets import origin_of
from hookline.registry import (
    DEFAULT_TIMEOUT_S,
    Endpoint,
    EndpointNotFoundError,
    EndpointRegistry,
    HealthCheck,
    HealthStatus,
    RegistryItemError,
    endpoint_from_item,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from hookline.health.store import HealthStore, HistoryEntry
    from hookline.registry import Scheme
    from resilience.breaker import BreakerRegistry, BreakerSnapshot

__all__ = ["DEFAULT_SERVICE_TYPE", "SERVICE_TYPE_ATTRIBUTE", "Integration", "IntegrationService"]

SERVICE_TYPE_ATTRIBUTE = "service_type"
DEFAULT_SERVICE_TYPE = "webhook"
_SCHEMES = ("standard", "github", "stripe")
_SERVICE_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Integration:
    """A registered integration: its endpoint configuration, service type and recorded health."""

    endpoint: Endpoint
    service_type: str = DEFAULT_SERVICE_TYPE

    @property
    def name(self) -> str:
        """The integration's (endpoint's) name."""
        return self.endpoint.name

    @property
    def health(self) -> HealthStatus:
        """Health as last recorded by the health function."""
        return self.endpoint.status

    @property
    def breaker_name(self) -> str:
        """The breaker delivery uses for the primary URL (and health steers)."""
        return origin_of(self.endpoint.url)


def _service_type(raw: Mapping[str, Any]) -> str:
    value = raw.get(SERVICE_TYPE_ATTRIBUTE)
    if isinstance(value, dict) and isinstance(value.get("S"), str):
        return str(value["S"])
    return DEFAULT_SERVICE_TYPE


def _integration_from_item(raw: Mapping[str, Any]) -> Integration:
    return Integration(endpoint=endpoint_from_item(raw), service_type=_service_type(raw))


class IntegrationService:
    """Register, update, enable/disable and list integrations; read their health, history and breaker."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        breakers: BreakerRegistry | None = None,
        history: HealthStore | None = None,
    ) -> None:
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self.registry = EndpointRegistry(table_name, client=self._client)
        self._breakers = breakers
        self._history = history

    def register_integration(
        self,
        name: str,
        service_type: str = DEFAULT_SERVICE_TYPE,
        endpoint: str | None = None,
        *,
        url: str | None = None,
        secret_id: str | None = None,
        fallback_urls: Sequence[str] = (),
        scheme: Scheme | None = None,
        health: HealthCheck | None = None,
        headers: Mapping[str, str] | None = None,
        event_types: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        replace_existing: bool = False,
    ) -> Integration:
        """Register an integration; ``endpoint`` (seed name) and ``url`` are the same thing, give one.

        ``secret_id`` defaults to ``hookline/<name>`` (the Secrets Manager id `hookline endpoints add
        --generate-secret` creates). EndpointExistsError if the name is taken, unless ``replace_existing``.
        """
        target = url or endpoint
        if not target or (url and endpoint and url != endpoint):
            raise RegistryItemError("give the integration's URL once, as endpoint or url")
        if not _SERVICE_TYPE_RE.match(service_type):
            raise RegistryItemError(f"service_type must be 1-64 chars of [A-Za-z0-9._-], got {service_type!r}")
        if scheme is None:
            scheme = cast("Scheme", service_type) if service_type in _SCHEMES else "standard"
        registered = self.registry.register(
            Endpoint(
                name=name,
                url=target,
                secret_id=secret_id or f"hookline/{name}",
                fallback_urls=tuple(fallback_urls),
                scheme=scheme,
                timeout_s=timeout_s,
                headers=dict(headers or {}),
                event_types=tuple(event_types),
                health=health or HealthCheck(),
            ),
            replace_existing=replace_existing,
        )
        self._client.update_item(
            TableName=self.registry.table_name,
            Key={"name": {"S": name}},
            UpdateExpression="SET #t = :t",
            ConditionExpression="attribute_exists(#n)",
            ExpressionAttributeNames={"#t": SERVICE_TYPE_ATTRIBUTE, "#n": "name"},
            ExpressionAttributeValues={":t": {"S": service_type}},
        )
        return Integration(endpoint=registered, service_type=service_type)

    def update_integration(self, name: str, **changes: Any) -> Integration:
        """Change configuration fields (url, fallback_urls, scheme, timeout_s, headers, event_types, health, ...)."""
        self.registry.update(name, **changes)
        return self.get_integration(name)

    def enable(self, name: str) -> None:
        """Enable an integration: delivery and health checks resume."""
        self.registry.enable(name)

    def disable(self, name: str, reason: str = "disabled by an operator") -> None:
        """Disable an integration: delivery dead-letters its messages and health stops probing it."""
        self.registry.disable(name, reason)

    def remove(self, name: str) -> None:
        """Delete an integration (its history expires on its own)."""
        self.registry.remove(name)

    def get_integration(self, name: str) -> Integration:
        """One integration, read consistently; EndpointNotFoundError if there is none."""
        raw = self._client.get_item(
            TableName=self.registry.table_name, Key={"name": {"S": name}}, ConsistentRead=True
        ).get("Item")
        if not raw:
            raise EndpointNotFoundError(f"no integration named {name!r}")
        return Integration(endpoint=endpoint_from_item(raw), service_type=_service_type(raw))

    def list_integrations(self, *, enabled_only: bool = False) -> list[Integration]:
        """Every integration sorted by name (items that break the registry contract are skipped)."""
        integrations = self.registry.scan(_integration_from_item).valid
        return sorted(
            (item for item in integrations if item.endpoint.enabled or not enabled_only), key=lambda item: item.name
        )

    def get_integration_health(self, name: str) -> HealthStatus:
        """The recorded health of one integration (seed parity)."""
        return self.registry.get_integration_health(name)

    def health_history(self, name: str, *, limit: int = 20) -> list[HistoryEntry]:
        """The newest checks of one integration, newest first (needs the history store)."""
        if self._history is None:
            raise RuntimeError("IntegrationService was built without a health history store")
        return self._history.history(name, limit=limit)

    def breaker_status(self, name: str) -> BreakerSnapshot:
        """The breaker of the integration's primary origin, read fresh from the store (needs the breakers)."""
        if self._breakers is None:
            raise RuntimeError("IntegrationService was built without a breaker registry")
        integration = self.get_integration(name)
        return self._breakers.get(integration.breaker_name).snapshot(refresh=True)
