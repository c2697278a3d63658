"""The endpoint registry (EndpointsTable): the stable item contract, parsing, caching reads and registration writes.

DynamoDB types follow docs/contracts.md so other tools can write items too: strings are S, ``fallback_urls`` and
``event_types`` are L of S, ``enabled`` is BOOL, ``timeout_s`` is N (1-30), ``rate_limit_per_s`` is N (> 0),
``max_in_flight`` is N (whole, >= 1), ``headers`` and ``health`` are M. Missing optional attributes take their
defaults (no limit for the two flow-control fields).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "Endpoint",
    "EndpointExistsError",
    "EndpointNotFoundError",
    "EndpointRegistry",
    "HealthCheck",
    "HealthState",
    "HealthStatus",
    "RegistryError",
    "RegistryItemError",
    "Scheme",
    "endpoint_from_item",
    "endpoint_to_item",
    "validate_name",
]

Scheme = Literal["standard", "github", "stripe"]
HealthState = Literal["healthy", "unhealthy", "unknown"]
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 30.0
_SCHEMES: tuple[Scheme, ...] = ("standard", "github", "stripe")
_STATES: tuple[HealthState, ...] = ("healthy", "unhealthy", "unknown")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers hookline sets itself; an endpoint may not override them (they carry the signature and identity).
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"}
    | {"x-hub-signature-256", "stripe-signature", "transfer-encoding", "connection"}
)
_DESERIALIZER = TypeDeserializer()
_SERIALIZER = TypeSerializer()
# Configuration fields update() may change; health state fields belong to the health function.
_UPDATABLE = frozenset(
    {"url", "secret_id", "fallback_urls", "scheme", "timeout_s", "headers", "event_types", "health"}
    | {"rate_limit_per_s", "max_in_flight"}
)


class RegistryError(Exception):
    """Base class of registry errors.

    RegistryError
     +-- RegistryItemError        an item does not follow the registry contract (message names the attribute)
     +-- EndpointNotFoundError    no endpoint with that name
     +-- EndpointExistsError      register() of a name that is taken
    """


class RegistryItemError(RegistryError, ValueError):
    """A registry item or registration request does not follow the contract."""


class EndpointNotFoundError(RegistryError, LookupError):
    """No endpoint with that name is registered."""


class EndpointExistsError(RegistryError):
    """An endpoint with that name is registered already."""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid endpoint name (1-128 of [A-Za-z0-9._:-], starting alphanumeric)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryItemError(f"endpoint name must be 1-128 chars of [A-Za-z0-9._:-], got {name!r}")
    return name


@dataclass(frozen=True)
class HealthCheck:
    """How the health function probes an integration (registry attribute ``health``)."""

    url: str | None = None
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: tuple[int, ...] = ()  # empty = any 2xx
    max_latency_ms: int | None = None
    body_contains: str | None = None
    min_cert_days: int | None = None
    failure_threshold: int = 3
    success_threshold: int = 2

    def status_ok(self, status: int) -> bool:
        """Whether a probe's HTTP status meets the expectation."""
        return status in self.expect_status if self.expect_status else 200 <= status < 300


@dataclass(frozen=True)
class HealthStatus:
    """Health as last recorded by the health function."""

    state: HealthState = "unknown"
    last_checked_at: str | None = None
    last_latency_ms: int | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One registered endpoint (the EndpointsTable item contract)."""

    name: str
    url: str
    secret_id: str
    fallback_urls: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    scheme: Scheme = "standard"
    timeout_s: float = DEFAULT_TIMEOUT_S
    headers: Mapping[str, str] = field(default_factory=dict)
    event_types: tuple[str, ...] = ()
    health: HealthCheck = field(default_factory=HealthCheck)
    status: HealthStatus = field(default_factory=HealthStatus)
    # Fleet-wide flow control (docs/contracts.md): requests per second and concurrent requests; None = no limit.
    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The primary URL followed by the fallbacks, in the order they are tried."""
        return (self.url, *self.fallback_urls)

    def accepts(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type`` (no filter = every type)."""
        return not self.event_types or event_type in self.event_types


def _plain(value: Any) -> Any:
    """Turn deserialized DynamoDB numbers (Decimal) into int/float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(item) for item in value]
    return value


def _str(item: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise RegistryItemError(f"registry item is missing {key!r}")
        return None
    if not isinstance(value, str):
        raise RegistryItemError(f"registry attribute {key!r} must be a string")
    return value


def _str_list(item: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = item.get(key) or []
    if not isinstance(value, list | tuple | set) or not all(isinstance(entry, str) for entry in value):
        raise RegistryItemError(f"registry attribute {key!r} must be a list of strings")
    return tuple(value)


def _int(value: Any, key: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RegistryItemError(f"registry attribute {key!r} must be a whole number")
    if not low <= int(value) <= high:
        raise RegistryItemError(f"registry attribute {key!r} must be between {low} and {high}")
    return int(value)


def _rate_limit(value: Any) -> float | None:
    """``rate_limit_per_s``: absent, or a number above 0 (fractional rates such as 0.5/s are fine)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise RegistryItemError("registry attribute 'rate_limit_per_s' must be a number above 0")
    return float(value)


def _max_in_flight(value: Any) -> int | None:
    """``max_in_flight``: absent, or a whole number of at least 1."""
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise RegistryItemError("registry attribute 'max_in_flight' must be a whole number of at least 1")
    return int(value)


def _expect_status(value: Any) -> tuple[int, ...]:
    """Accept N, a list of N, or S like "200", "200,204" or "200-299"."""
    if value is None or value in ("", []):
        return ()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (_int(value, "health.expect_status", low=100, high=599),)
    if isinstance(value, list):
        return tuple(_int(entry, "health.expect_status", low=100, high=599) for entry in value)
    if isinstance(value, str):
        statuses: list[int] = []
        for part in value.split(","):
            low, _, high = part.strip().partition("-")
            try:
                first, last = int(low), int(high or low)
            except ValueError:
                raise RegistryItemError(f"health.expect_status {value!r} is not a status, list or range") from None
            statuses.extend(range(_int(first, "health.expect_status", low=100, high=599), last + 1))
        return tuple(statuses)
    raise RegistryItemError("health.expect_status must be a number, a list of numbers or a string like 200-299")


def _health_check(value: Any) -> HealthCheck:
    if value is None:
        return HealthCheck()
    if not isinstance(value, Mapping):
        raise RegistryItemError("registry attribute 'health' must be a map")
    method = str(value.get("method") or "GET").upper()
    if method not in ("GET", "HEAD"):
        raise RegistryItemError(f"health.method must be GET or HEAD, got {method!r}")

    def optional_int(key: str, low: int, high: int) -> int | None:
        raw = value.get(key)
        return None if raw is None else _int(raw, f"health.{key}", low=low, high=high)

    body_contains = value.get("body_contains")
    if body_contains is not None and not isinstance(body_contains, str):
        raise RegistryItemError("health.body_contains must be a string")
    url = value.get("url")
    if url is not None and not isinstance(url, str):
        raise RegistryItemError("health.url must be a string")
    return HealthCheck(
        url=url or None,
        method=cast("Literal['GET', 'HEAD']", method),
        expect_status=_expect_status(value.get("expect_status")),
        max_latency_ms=optional_int("max_latency_ms", 1, 600_000),
        body_contains=body_contains or None,
        min_cert_days=optional_int("min_cert_days", 0, 3650),
        failure_threshold=optional_int("failure_threshold", 1, 100) or 3,
        success_threshold=optional_int("success_threshold", 1, 100) or 2,
    )


def _health_status(item: Mapping[str, Any]) -> HealthStatus:
    state = item.get("health_state") or "unknown"
    if state not in _STATES:
        raise RegistryItemError(f"health_state must be one of {', '.join(_STATES)}, got {state!r}")
    latency = item.get("last_latency_ms")
    return HealthStatus(
        state=cast("HealthState", state),
        last_checked_at=_str(item, "last_checked_at"),
        last_latency_ms=None if latency is None else int(latency),
        consecutive_failures=int(item.get("consecutive_failures") or 0),
        consecutive_successes=int(item.get("consecutive_successes") or 0),
        last_error=_str(item, "last_error"),
    )


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise RegistryItemError("registry attribute 'headers' must be a map of strings")
    for key, item in value.items():
        if not _HEADER_NAME_RE.match(key) or key.lower() in _RESERVED_HEADERS:
            raise RegistryItemError(f"header {key!r} is not allowed as a static endpoint header")
        if "\r" in item or "\n" in item:
            raise RegistryItemError(f"header {key!r} has a line break in its value")
    return dict(value)


def endpoint_from_item(item: Mapping[str, Any]) -> Endpoint:
    """Build an Endpoint from a registry item (raw DynamoDB AttributeValues or plain Python values)."""
    if item and all(isinstance(value, Mapping) and len(value) == 1 for value in item.values()) and "name" in item:
        # Raw AttributeValue form ({"name": {"S": ...}}) as returned by the low-level client.
        item = {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}
    plain = cast("dict[str, Any]", _plain(item))
    scheme = plain.get("scheme") or "standard"
    if scheme not in _SCHEMES:
        raise RegistryItemError(f"scheme must be one of {', '.join(_SCHEMES)}, got {scheme!r}")
    timeout = plain.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= MAX_TIMEOUT_S:
        raise RegistryItemError(f"timeout_s must be a number from 1 to {MAX_TIMEOUT_S:g}")
    enabled = plain.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RegistryItemError("registry attribute 'enabled' must be a boolean (BOOL)")
    return Endpoint(
        name=validate_name(cast("str", _str(plain, "name", required=True))),
        url=cast("str", _str(plain, "url", required=True)),
        secret_id=cast("str", _str(plain, "secret_id", required=True)),
        fallback_urls=_str_list(plain, "fallback_urls"),
        enabled=enabled,
        disabled_reason=_str(plain, "disabled_reason"),
        scheme=cast("Scheme", scheme),
        timeout_s=float(timeout),
        headers=_headers(plain.get("headers")),
        event_types=_str_list(plain, "event_types"),
        health=_health_check(plain.get("health")),
        status=_health_status(plain),
        rate_limit_per_s=_rate_limit(plain.get("rate_limit_per_s")),
        max_in_flight=_max_in_flight(plain.get("max_in_flight")),
    )


def _health_to_item(check: HealthCheck) -> dict[str, Any]:
    item: dict[str, Any] = {
        "method": check.method,
        "failure_threshold": check.failure_threshold,
        "success_threshold": check.success_threshold,
    }
    optional = {
        "url": check.url,
        "expect_status": list(check.expect_status) or None,
        "max_latency_ms": check.max_latency_ms,
        "body_contains": check.body_contains,
        "min_cert_days": check.min_cert_days,
    }
    item.update({key: value for key, value in optional.items() if value is not None})
    return item


def _number(value: float) -> Decimal:
    return Decimal(str(value))


def endpoint_to_item(endpoint: Endpoint) -> dict[str, Any]:
    """The registry item (plain Python values ready for TypeSerializer) of an endpoint's configuration."""
    item: dict[str, Any] = {
        "name": endpoint.name,
        "url": endpoint.url,
        "secret_id": endpoint.secret_id,
        "fallback_urls": list(endpoint.fallback_urls),
        "enabled": endpoint.enabled,
        "scheme": endpoint.scheme,
        "timeout_s": _number(endpoint.timeout_s),
        "headers": dict(endpoint.headers),
        "event_types": list(endpoint.event_types),
        "health": _health_to_item(endpoint.health),
        "health_state": endpoint.status.state,
        "consecutive_failures": endpoint.status.consecutive_failures,
        "consecutive_successes": endpoint.status.consecutive_successes,
    }
    if endpoint.disabled_reason:
        item["disabled_reason"] = endpoint.disabled_reason
    if endpoint.rate_limit_per_s is not None:
        item["rate_limit_per_s"] = _number(endpoint.rate_limit_per_s)
    if endpoint.max_in_flight is not None:
        item["max_in_flight"] = endpoint.max_in_flight
    return item


def _serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _SERIALIZER.serialize(value) for key, value in item.items()}


class EndpointRegistry:
    """Reads (cached per environment for ``cache_ttl_s``) and writes registry items."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_ttl_s: float = 15.0,
    ) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._clock = clock
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Endpoint | None]] = {}
        self._lock = threading.Lock()

    # --- reads -----------------------------------------------------------------------------------------------
    def get(self, name: str, *, fresh: bool = False) -> Endpoint | None:
        """The endpoint called ``name`` or None; cached for a short time unless ``fresh``."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached and not fresh and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        response = self._client.get_item(TableName=self.table_name, Key={"name": {"S": name}}, ConsistentRead=fresh)
        raw = response.get("Item")
        endpoint = endpoint_from_item(raw) if raw else None
        with self._lock:
            self._cache[name] = (now, endpoint)
        return endpoint

    def require(self, name: str, *, fresh: bool = False) -> Endpoint:
        """The endpoint called ``name``; EndpointNotFoundError if there is none."""
        endpoint = self.get(name, fresh=fresh)
        if endpoint is None:
            raise EndpointNotFoundError(f"no endpoint named {name!r}")
        return endpoint

    def iter_items(self) -> Iterator[dict[str, Any]]:
        """Every raw registry item (paginated scan)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name):
            yield from page.get("Items", [])

    def list_endpoints(self, *, enabled_only: bool = False) -> list[Endpoint]:
        """Every endpoint, sorted by name (items that break the contract are skipped; see ``invalid_items``)."""
        endpoints: list[Endpoint] = []
        for raw in self.iter_items():
            try:
                endpoint = endpoint_from_item(raw)
            except RegistryItemError:
                continue
            if endpoint.enabled or not enabled_only:
                endpoints.append(endpoint)
        return sorted(endpoints, key=lambda endpoint: endpoint.name)

    def invalid_items(self) -> list[tuple[str, str]]:
        """(name, problem) for every item that does not follow the contract, so operators can fix them."""
        problems: list[tuple[str, str]] = []
        for raw in self.iter_items():
            try:
                endpoint_from_item(raw)
            except RegistryItemError as error:
                problems.append((str(raw.get("name", {}).get("S", "?")), str(error)))
        return problems

    def get_integration_health(self, name: str) -> HealthStatus:
        """The recorded health of one integration (seed parity: ``get_integration_health("name")``)."""
        return self.require(name, fresh=True).status

    def invalidate(self, name: str | None = None) -> None:
        """Forget cached reads (one name or all)."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    # --- writes ----------------------------------------------------------------------------------------------
    def register(self, endpoint: Endpoint, *, replace_existing: bool = False) -> Endpoint:
        """Store a new endpoint (EndpointExistsError if the name is taken, unless ``replace_existing``)."""
        validate_name(endpoint.name)
        endpoint_from_item(endpoint_to_item(endpoint))  # validate through the same parser readers use
        kwargs: dict[str, Any] = {}
        if not replace_existing:
            kwargs["ConditionExpression"] = "attribute_not_exists(#n)"
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
        try:
            self._client.put_item(TableName=self.table_name, Item=_serialize(endpoint_to_item(endpoint)), **kwargs)
        except self._client.exceptions.ConditionalCheckFailedException:
            raise EndpointExistsError(f"an endpoint named {endpoint.name!r} exists already") from None
        self.invalidate(endpoint.name)
        return endpoint

    def update(self, name: str, **changes: Any) -> Endpoint:
        """Change configuration fields of an endpoint (health state fields belong to the health function).

        A field changed to a value the item does not store (None for ``rate_limit_per_s``, ``max_in_flight`` ...)
        is removed from the item, so it takes its default again.
        """
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise RegistryItemError(f"cannot update {', '.join(sorted(unknown))}")
        current = self.require(name, fresh=True)
        updated = replace(current, **changes)
        item = endpoint_to_item(updated)
        endpoint_from_item(item)
        keys = sorted(changes)
        sets = [key for key in keys if key in item]
        removes = [key for key in keys if key not in item]
        names = {f"#a{index}": key for index, key in enumerate(keys)}
        alias = {key: placeholder for placeholder, key in names.items()}
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(f"{alias[key]} = :v{index}" for index, key in enumerate(sets)))
        if removes:
            clauses.append("REMOVE " + ", ".join(alias[key] for key in removes))
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"name": {"S": name}},
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": "attribute_exists(#n)",
            "ExpressionAttributeNames": {"#n": "name", **names},
        }
        if sets:  # DynamoDB refuses an empty ExpressionAttributeValues
            request["ExpressionAttributeValues"] = {
                f":v{index}": _SERIALIZER.serialize(item[key]) for index, key in enumerate(sets)
            }
        self._client.update_item(**request)
        self.invalidate(name)
        return updated

    def set_enabled(self, name: str, enabled: bool, *, reason: str | None = None) -> None:
        """Enable an endpoint (clearing the reason) or disable it with a reason."""
        values: dict[str, Any] = {":e": {"BOOL": enabled}}
        if enabled:
            expression = "SET #e = :e REMOVE disabled_reason"
        else:
            expression = "SET #e = :e, disabled_reason = :r"
            values[":r"] = {"S": (reason or "disabled")[:1024]}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"name": {"S": name}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name", "#e": "enabled"},
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise EndpointNotFoundError(f"no endpoint named {name!r}") from None
        self.invalidate(name)

    def enable(self, name: str) -> None:
        """Enable an endpoint."""
        self.set_enabled(name, True)

    def disable(self, name: str, reason: str) -> None:
        """Disable an endpoint, recording why (e.g. the receiver answered 410 Gone)."""
        self.set_enabled(name, False, reason=reason)

    def remove(self, name: str) -> None:
        """Delete an endpoint (EndpointNotFoundError if there is none)."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={"name": {"S": name}},
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise EndpointNotFoundError(f"no endpoint named {name!r}") from None
        self.invalidate(name)
