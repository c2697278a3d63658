"""Seed-parity integration service: register integrations, read their health and breaker status (on the registry).

An integration is a registered endpoint plus a ``service_type`` label (the registry item's ``service_type``
attribute). ``service_type`` maps to the signing ``scheme`` when it names one (``standard``, ``github``,
``stripe``); any other value (``payments``, ``crm`` ...) is a free-form label, and the scheme is then ``standard``
unless given. An item written by other tools has no label and reads back as ``webhook``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3

from hookline.delivery.targets import origin_of
from hookline.registry import (
    DEFAULT_SERVICE_TYPE,
    DEFAULT_TIMEOUT_S,
    SCHEMES,
    Endpoint,
    EndpointRegistry,
    HealthCheck,
    HealthStatus,
    RegistryItemError,
    WritePolicy,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from hookline.health.store import HealthStore, HistoryEntry
    from hookline.registry import Scheme
    from resilience.breaker import BreakerRegistry, BreakerSnapshot

__all__ = ["DEFAULT_SERVICE_TYPE", "Integration", "IntegrationService"]


@dataclass(frozen=True)
class Integration:
    """A registered integration: its endpoint configuration (with the service type) and recorded health."""

    endpoint: Endpoint

    @property
    def name(self) -> str:
        """The integration's (endpoint's) name."""
        return self.endpoint.name

    @property
    def service_type(self) -> str:
        """The integration's label (``webhook`` when the item has none)."""
        return self.endpoint.service_type

    @property
    def health(self) -> HealthStatus:
        """Health as last recorded by the health function."""
        return self.endpoint.status

    @property
    def breaker_name(self) -> str:
        """The breaker delivery uses for the primary URL (and health steers)."""
        return origin_of(self.endpoint.url)


class IntegrationService:
    """Register, update, enable/disable and list integrations; read their health, history and breaker."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        breakers: BreakerRegistry | None = None,
        history: HealthStore | None = None,
        write_policy: WritePolicy | None = None,
    ) -> None:
        # Registrations meet the same rules as the CLI's (network guard, secret prefix): registry.policy.
        self.write_policy = write_policy or WritePolicy()
        self.registry = EndpointRegistry(
            table_name, client=client or boto3.client("dynamodb"), write_policy=self.write_policy
        )
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

        ``secret_id`` defaults to the policy's prefix + name (``hookline/<name>``, the Secrets Manager id `hookline
        endpoints add --generate-secret` creates) and must lie under that prefix. URLs pass the network guard
        (``write_policy.allow_private_targets``). One write; RegistryItemError names a refused field,
        EndpointExistsError a taken name (unless ``replace_existing``).
        """
        target = url or endpoint
        if not target or (url and endpoint and url != endpoint):
            raise RegistryItemError("give the integration's URL once, as endpoint or url")
        if scheme is None:
            scheme = cast("Scheme", service_type) if service_type in SCHEMES else "standard"
        registered = self.registry.register(
            Endpoint(
                name=name,
                url=target,
                secret_id=secret_id or self.write_policy.secret_id_for(name),
                fallback_urls=tuple(fallback_urls),
                scheme=scheme,
                timeout_s=timeout_s,
                headers=dict(headers or {}),
                event_types=tuple(event_types),
                health=health or HealthCheck(),
                service_type=service_type,
            ),
            replace_existing=replace_existing,
        )
        return Integration(registered)

    def update_integration(self, name: str, **changes: Any) -> Integration:
        """Change configuration fields (url, fallback_urls, scheme, timeout_s, headers, health, service_type ...)."""
        return Integration(self.registry.update(name, **changes))

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
        return Integration(self.registry.require(name, fresh=True))

    def list_integrations(self, *, enabled_only: bool = False) -> list[Integration]:
        """Every integration sorted by name (items that break the registry contract are skipped)."""
        return [Integration(endpoint) for endpoint in self.registry.list_endpoints(enabled_only=enabled_only)]

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
