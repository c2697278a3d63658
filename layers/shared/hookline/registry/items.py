"""Registry items <-> Endpoint: parsing (raw AttributeValues or plain values) and serialisation, by the contract.

DynamoDB types follow docs/contracts.md so other tools can write items too: strings are S, ``fallback_urls`` and
``event_types`` are L of S, ``enabled`` is BOOL, ``timeout_s`` is N (1-30), ``rate_limit_per_s`` is N (> 0),
``max_in_flight`` is N (whole, >= 1), ``headers`` and ``health`` are M. Missing optional attributes take their
defaults (no limit for the two flow-control fields). An item that breaks the contract raises RegistryItemError,
whose message names the attribute; ``split_items`` keeps such items aside instead of stopping on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from hookline.registry.errors import RegistryItemError
from hookline.registry.model import (
    DEFAULT_SERVICE_TYPE,
    DEFAULT_TIMEOUT_S,
    HEALTH_STATES,
    MAX_TIMEOUT_S,
    SCHEMES,
    Endpoint,
    HealthCheck,
    HealthStatus,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hookline.registry.model import HealthState, Scheme

__all__ = [
    "InvalidItem",
    "ItemScan",
    "attribute_value",
    "check_item",
    "endpoint_from_item",
    "endpoint_to_item",
    "item_name",
    "split_items",
    "validate_name",
]

_MAX_COUNT = 2**31 - 1  # health counters and latencies: anything larger is a broken item, not a measurement
_MAX_NUMBER = 10**126  # DynamoDB numbers stay below 1E+126 (an int above the largest float must not overflow)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SERVICE_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers hookline sets itself; an endpoint may not override them (they carry the signature and identity).
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"}
    | {"x-hub-signature-256", "stripe-signature", "transfer-encoding", "connection"}
)
_DESERIALIZER = TypeDeserializer()
_SERIALIZER = TypeSerializer()


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid endpoint name (1-128 of [A-Za-z0-9._:-], starting alphanumeric)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryItemError(f"endpoint name must be 1-128 chars of [A-Za-z0-9._:-], got {name!r}")
    return name


def _plain(value: Any) -> Any:
    """Turn deserialized DynamoDB numbers (Decimal) into int/float, recursively."""
    if isinstance(value, Decimal):
        if not value.is_finite():  # never from DynamoDB, but plain values may hold one: a contract error, not a crash
            return math.nan if value.is_nan() else float(value)
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
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise RegistryItemError(f"registry attribute {key!r} must be a whole number")
    if not low <= int(value) <= high:
        raise RegistryItemError(f"registry attribute {key!r} must be between {low} and {high}")
    return int(value)


def _rate_limit(value: Any) -> float | None:
    """``rate_limit_per_s``: absent, or a number above 0 (fractional rates such as 0.5/s are fine)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < _MAX_NUMBER:
        raise RegistryItemError("registry attribute 'rate_limit_per_s' must be a number above 0 and below 1E+126")
    return float(value)


def _max_in_flight(value: Any) -> int | None:
    """``max_in_flight``: absent, or a whole number of at least 1."""
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise RegistryItemError("registry attribute 'max_in_flight' must be a whole number of at least 1")
    return int(value)


def _service_type(value: Any) -> str:
    # Lenient on read: a label is not part of delivery, so a strange one must never make an item unusable.
    return value if isinstance(value, str) and value else DEFAULT_SERVICE_TYPE


def _status_range(part: str, value: str) -> range:
    low, dash, high = part.strip().partition("-")
    try:
        first, last = int(low), int(high if dash else low)
    except ValueError:
        raise RegistryItemError(f"health.expect_status {value!r} is not a status, list or range") from None
    first = _int(first, "health.expect_status", low=100, high=599)
    last = _int(last, "health.expect_status", low=100, high=599)
    if first > last:
        raise RegistryItemError(f"health.expect_status has a reversed range {first}-{last}")
    return range(first, last + 1)


def _expect_status(value: Any) -> tuple[int, ...]:
    """Accept N, a list of N, or S like "200", "200,204" or "200-299"."""
    if value is None or value in ("", []):
        return ()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (_int(value, "health.expect_status", low=100, high=599),)
    if isinstance(value, list):
        return tuple(_int(entry, "health.expect_status", low=100, high=599) for entry in value)
    if isinstance(value, str):
        return tuple(status for part in value.split(",") for status in _status_range(part, value))
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
    if state not in HEALTH_STATES:
        raise RegistryItemError(f"health_state must be one of {', '.join(HEALTH_STATES)}, got {state!r}")

    def count(key: str) -> int | None:
        value = item.get(key)
        return None if value is None else _int(value, key, low=0, high=_MAX_COUNT)

    return HealthStatus(
        state=cast("HealthState", state),
        last_checked_at=_str(item, "last_checked_at"),
        last_latency_ms=count("last_latency_ms"),
        consecutive_failures=count("consecutive_failures") or 0,
        consecutive_successes=count("consecutive_successes") or 0,
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


def _plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as plain Python values, whether it came as raw AttributeValues or already deserialized."""
    if item and "name" in item and all(isinstance(value, Mapping) and len(value) == 1 for value in item.values()):
        # Raw AttributeValue form ({"name": {"S": ...}}) as returned by the low-level client.
        try:
            item = {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}
        except (TypeError, ValueError, ArithmeticError) as error:
            raise RegistryItemError(f"registry item is not valid DynamoDB JSON: {error}") from None
    return cast("dict[str, Any]", _plain(item))


def endpoint_from_item(item: Mapping[str, Any]) -> Endpoint:
    """Build an Endpoint from a registry item (raw DynamoDB AttributeValues or plain Python values)."""
    plain = _plain_item(item)
    scheme = plain.get("scheme") or "standard"
    if scheme not in SCHEMES:
        raise RegistryItemError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
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
        service_type=_service_type(plain.get("service_type")),
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
    """The registry item (plain Python values ready for TypeSerializer) of an endpoint's configuration.

    Optional attributes at their default (no disabled reason, no limits, the default label) are left out.
    """
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
    optional: dict[str, Any] = {
        "disabled_reason": endpoint.disabled_reason or None,
        "rate_limit_per_s": None if endpoint.rate_limit_per_s is None else _number(endpoint.rate_limit_per_s),
        "max_in_flight": endpoint.max_in_flight,
        "service_type": None if endpoint.service_type == DEFAULT_SERVICE_TYPE else endpoint.service_type,
    }
    item.update({key: value for key, value in optional.items() if value is not None})
    return item


def attribute_value(value: Any) -> dict[str, Any]:
    """One plain value (from ``endpoint_to_item``) as a DynamoDB AttributeValue."""
    return cast("dict[str, Any]", _SERIALIZER.serialize(value))


def check_item(endpoint: Endpoint) -> dict[str, Any]:
    """The item of ``endpoint`` after checking it against the contract exactly as readers will parse it.

    A write also needs a well-formed ``service_type`` label (1-64 of [A-Za-z0-9._-]); readers accept any string.
    """
    validate_name(endpoint.name)
    if not isinstance(endpoint.service_type, str) or not _SERVICE_TYPE_RE.match(endpoint.service_type):
        raise RegistryItemError(f"service_type must be 1-64 chars of [A-Za-z0-9._-], got {endpoint.service_type!r}")
    item = endpoint_to_item(endpoint)
    endpoint_from_item(item)
    for key, value in item.items():
        try:
            attribute_value(value)
        except ArithmeticError:  # boto3 traps what DynamoDB refuses: above 38 digits, outside 1E-130 to 1E+126
            raise RegistryItemError(
                f"registry attribute {key!r} is not a number DynamoDB can store (at most 38 digits, 1E-130 to 1E+125)"
            ) from None
    return item


@dataclass(frozen=True)
class InvalidItem:
    """A registry item that breaks the contract: its name (``?`` if unreadable) and what is wrong with it."""

    name: str
    problem: str


@dataclass(frozen=True)
class ItemScan[T]:
    """Registry items split into the ones that parsed and the ones that break the contract."""

    valid: list[T]
    invalid: list[InvalidItem]


def item_name(raw: Mapping[str, Any]) -> str:
    """The ``name`` of a raw (AttributeValue) registry item, or ``?`` when it has none that is readable."""
    value = raw.get("name")
    name = value.get("S") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) else "?"


def split_items[T](raws: Iterable[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], T]) -> ItemScan[T]:
    """Parse every raw item; one that breaks the contract is kept aside with its problem, never stops the rest."""
    valid: list[T] = []
    invalid: list[InvalidItem] = []
    for raw in raws:
        try:
            valid.append(parse(raw))
        except RegistryItemError as error:
            invalid.append(InvalidItem(item_name(raw), str(error)))
    return ItemScan(valid, invalid)
