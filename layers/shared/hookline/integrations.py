"""Seed-parity integration service: register integrations, read their health and breaker status (on the registry).

An integration is a registered endpoint plus a ``service_type`` label (the registry item's ``service_type``
attribute). ``service_type`` maps to the signing ``scheme`` when it names one (``standard``, ``github``,
``stripe``); any other value (``payments``, ``crm`` ...) is a free-form label, and the scheme is then ``standard``
unless given. An item written by other tools has no label and reads back as ``webhook``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3

from hookline.delivery.targets import origin_of
from hookline.local import LOCAL_ENV, selected_local_stack
from hookline.registry import (
    DEFAULT_SECRET_PREFIX,
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
from hookline.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from hookline.health.store import HealthStore, HistoryEntry
    from hookline.local import LocalStackTarget
    from hookline.registry import Scheme
    from resilience.breaker import BreakerRegistry, BreakerSnapshot

__all__ = ["DEFAULT_SERVICE_TYPE", "Integration", "IntegrationService", "integration_service"]


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


@dataclass(frozen=True)
class _Wiring:
    """What one configured IntegrationService talks to."""

    registry: EndpointRegistry
    history: HealthStore | None
    breakers: BreakerRegistry | None


def _wire(
    client: DynamoDBClient, policy: WritePolicy, endpoints_table: str, history_table: str, breaker_table: str
) -> _Wiring:
    from hookline.health.store import HealthStore
    from resilience.breaker import BreakerRegistry, DynamoDBStateStore

    return _Wiring(
        registry=EndpointRegistry(endpoints_table, client=client, write_policy=policy),
        history=HealthStore(endpoints_table, history_table, client=client) if history_table else None,
        breakers=BreakerRegistry(DynamoDBStateStore(breaker_table, client=client)) if breaker_table else None,
    )


def _wire_local(target: LocalStackTarget) -> _Wiring:
    """The local stack's tables, client and rules (loopback targets allowed, its secret prefix)."""
    outputs = target.outputs
    policy = WritePolicy(
        allow_private_targets=target.allow_private_targets,
        secret_prefix=outputs.get("SigningSecretPrefix") or DEFAULT_SECRET_PREFIX,
    )
    return _wire(
        target.client("dynamodb"),
        policy,
        target.output("EndpointsTableName"),
        outputs.get("HealthHistoryTableName", ""),
        outputs.get("BreakerTableName", ""),
    )


def _wire_environment(environ: Mapping[str, str] | None) -> _Wiring:
    """The function environment's tables and rules (ENDPOINTS_TABLE, ALLOW_PRIVATE_TARGETS, ...)."""
    settings = Settings.from_env(environ)
    if not settings.endpoints_table:
        raise SettingsError(
            "IntegrationService needs ENDPOINTS_TABLE in the environment, or a local stack "
            f"({LOCAL_ENV}=path/to/.hookline/local.json or hookline.local.use_local_stack())"
        )
    policy = WritePolicy(settings.allow_private_targets, settings.signing_secret_prefix)
    client = boto3.client("dynamodb")
    return _wire(client, policy, settings.endpoints_table, settings.health_history_table, settings.breaker_table)


class IntegrationService:
    """Register, update, enable/disable and list integrations; read their health, history and breaker.

    ``IntegrationService(table_name, ...)`` uses what it is given. ``IntegrationService()`` configures itself on
    first use: from the local stack chosen with ``HOOKLINE_LOCAL`` or ``hookline.local.use_local_stack()`` (never
    found by itself), else from the function environment (ENDPOINTS_TABLE, HEALTH_HISTORY_TABLE, BREAKER_TABLE,
    ALLOW_PRIVATE_TARGETS, SIGNING_SECRET_PREFIX). Registrations meet the same rules as the CLI's
    (``hookline.registry.WritePolicy``: network guard and secret prefix).
    """

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        table_name: str | None = None,
        *,
        client: DynamoDBClient | None = None,
        breakers: BreakerRegistry | None = None,
        history: HealthStore | None = None,
        write_policy: WritePolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._source: LocalStackTarget | None = None
        self._wiring: _Wiring | None = None
        if table_name is not None:
            registry = EndpointRegistry(
                table_name, client=client or boto3.client("dynamodb"), write_policy=write_policy or WritePolicy()
            )
            self._wiring = _Wiring(registry, history, breakers)
        self._fixed = self._wiring is not None

    def _wired(self) -> _Wiring:
        if self._fixed and self._wiring is not None:
            return self._wiring
        target = selected_local_stack(self._environ)
        with self._lock:
            if self._wiring is None or target != self._source:
                self._wiring = _wire_local(target) if target is not None else _wire_environment(self._environ)
                self._source = target
            return self._wiring

    @property
    def registry(self) -> EndpointRegistry:
        """The endpoint registry this service writes to."""
        return self._wired().registry

    @property
    def write_policy(self) -> WritePolicy:
        """The rules registrations meet (network guard setting and secret prefix)."""
        return cast("WritePolicy", self.registry.write_policy)

    def register_integration(  # noqa: PLR0913 - the seed's public signature (README seed parity)
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
        history = self._wired().history
        if history is None:
            raise SettingsError("IntegrationService has no health history store (HEALTH_HISTORY_TABLE)")
        return history.history(name, limit=limit)

    def breaker_status(self, name: str) -> BreakerSnapshot:
        """The breaker of the integration's primary origin, read fresh from the store (needs the breakers)."""
        breakers = self._wired().breakers
        if breakers is None:
            raise SettingsError("IntegrationService has no breaker registry (BREAKER_TABLE)")
        integration = self.get_integration(name)
        return breakers.get(integration.breaker_name).snapshot(refresh=True)


integration_service = IntegrationService()
"""The ready module-level service (seed parity), configured on first use: ``integration_service.register_integration(
name="billing", service_type="payments", endpoint="https://...")`` and ``get_integration_health("billing")``."""
