"""EndpointRegistry: the EndpointsTable repository (cached reads, scans, validated writes) on an injected client."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from hookline.registry.errors import (
    EndpointExistsError,
    EndpointNotFoundError,
    RegistryError,
    RegistryItemError,
    RegistryUnavailableError,
)
from hookline.registry.items import attribute_value, check_item, endpoint_from_item, item_name, split_items
from hookline.registry.policy import check_endpoint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient

    from hookline.registry.items import ItemScan
    from hookline.registry.model import Endpoint, HealthStatus
    from hookline.registry.policy import WritePolicy

__all__ = ["UPDATABLE_FIELDS", "EndpointRegistry"]

# Configuration fields update() may change; health state fields belong to the health function.
UPDATABLE_FIELDS = frozenset(
    {"url", "secret_id", "fallback_urls", "scheme", "timeout_s", "headers", "event_types", "health"}
    | {"rate_limit_per_s", "max_in_flight", "service_type"}
)
_REQUIRED_FIELDS = frozenset({"url", "secret_id"})
_MAX_REASON = 1024


def _update_request(table: str, name: str, item: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A conditional UpdateItem that SETs the fields the item stores and REMOVEs the ones it leaves out."""
    names = {f"#a{index}": key for index, key in enumerate(fields)}
    alias = {key: placeholder for placeholder, key in names.items()}
    sets = [key for key in fields if key in item]
    removes = [key for key in fields if key not in item]
    clauses = []
    if sets:
        clauses.append("SET " + ", ".join(f"{alias[key]} = :v{index}" for index, key in enumerate(sets)))
    if removes:
        clauses.append("REMOVE " + ", ".join(alias[key] for key in removes))
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {"name": {"S": name}},
        "UpdateExpression": " ".join(clauses),
        "ConditionExpression": "attribute_exists(#n)",
        "ExpressionAttributeNames": {"#n": "name", **names},
    }
    if sets:  # DynamoDB refuses an empty ExpressionAttributeValues
        request["ExpressionAttributeValues"] = {f":v{i}": attribute_value(item[key]) for i, key in enumerate(sets)}
    return request


def _not_found(name: str) -> EndpointNotFoundError:
    return EndpointNotFoundError(f"no endpoint named {name!r}")


class EndpointRegistry:
    """Reads (cached per environment for ``cache_ttl_s``) and writes registry items.

    Every write is checked against the item contract. With a ``write_policy`` (the CLI's and IntegrationService's
    registries carry the stack's), writes are also held to the stack's rules: network guard and secret prefix.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache_ttl_s: float = 15.0,
        write_policy: WritePolicy | None = None,
    ) -> None:
        self.table_name = table_name
        self.write_policy = write_policy
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
        raw = self._raw_item(name, consistent=fresh)
        endpoint = endpoint_from_item(raw) if raw else None
        with self._lock:
            self._cache[name] = (now, endpoint)
        return endpoint

    def _raw_item(self, name: str, *, consistent: bool) -> Mapping[str, Any] | None:
        key = {"name": {"S": name}}
        response = self._send(
            "GetItem", lambda: self._client.get_item(TableName=self.table_name, Key=key, ConsistentRead=consistent)
        )
        return response.get("Item")

    def require(self, name: str, *, fresh: bool = False) -> Endpoint:
        """The endpoint called ``name``; EndpointNotFoundError if there is none."""
        endpoint = self.get(name, fresh=fresh)
        if endpoint is None:
            raise _not_found(name)
        return endpoint

    def iter_items(self) -> Iterator[dict[str, Any]]:
        """Every raw registry item (paginated scan)."""
        pages = iter(self._client.get_paginator("scan").paginate(TableName=self.table_name))
        while (page := self._send("Scan", lambda: next(pages, None))) is not None:
            yield from page.get("Items", [])

    def scan[T](self, parse: Callable[[Mapping[str, Any]], T]) -> ItemScan[T]:
        """Every raw item parsed with ``parse`` (e.g. ``endpoint_from_item``), split into valid and invalid."""
        return split_items(self.iter_items(), parse)

    def list_endpoints(self, *, enabled_only: bool = False) -> list[Endpoint]:
        """Every endpoint, sorted by name (items that break the contract are skipped; see ``scan``)."""
        endpoints = self.scan(endpoint_from_item).valid
        return sorted(
            (endpoint for endpoint in endpoints if endpoint.enabled or not enabled_only),
            key=lambda endpoint: endpoint.name,
        )

    def invalid_items(self) -> list[tuple[str, str]]:
        """(name, problem) for every item that does not follow the contract, so operators can fix them."""
        return [(item.name, item.problem) for item in self.scan(endpoint_from_item).invalid]

    def secret_users(self, secret_id: str) -> list[str]:
        """Names of every item whose ``secret_id`` is this one, sorted (items that break the contract included)."""
        users = (item_name(raw) for raw in self.iter_items() if raw.get("secret_id", {}).get("S") == secret_id)
        return sorted(users)

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
    def check(self, endpoint: Endpoint, *, changed: Sequence[str] | None = None) -> dict[str, Any]:
        """The item of ``endpoint`` if this registry would write it (RegistryItemError naming the field if not)."""
        if self.write_policy is not None:
            check_endpoint(endpoint, self.write_policy, changed=changed)
        return check_item(endpoint)

    def register(self, endpoint: Endpoint, *, replace_existing: bool = False) -> Endpoint:
        """Store a new endpoint (EndpointExistsError if the name is taken, unless ``replace_existing``)."""
        item = self.check(endpoint)
        kwargs: dict[str, Any] = {}
        if not replace_existing:
            kwargs["ConditionExpression"] = "attribute_not_exists(#n)"
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
        serialized = {key: attribute_value(value) for key, value in item.items()}
        self._send(
            "PutItem",
            lambda: self._client.put_item(TableName=self.table_name, Item=serialized, **kwargs),
            if_condition_fails=EndpointExistsError(f"an endpoint named {endpoint.name!r} exists already"),
        )
        self.invalidate(endpoint.name)
        return endpoint

    def update(self, name: str, **changes: Any) -> Endpoint:
        """Change configuration fields of an endpoint (health state fields belong to the health function).

        A field changed to a value the item does not store (None for ``rate_limit_per_s``, ``max_in_flight`` ...)
        is removed from the item, so it takes its default again.
        """
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise RegistryItemError(f"cannot update {', '.join(sorted(unknown))}")
        raw = self._raw_item(name, consistent=True)
        if not raw:
            raise _not_found(name)
        # An optional field about to be replaced is not parsed: a broken value another tool wrote can be fixed or
        # cleared (the item may hold any N or type); every other field must still meet the contract.
        kept = {key: value for key, value in raw.items() if key not in changes or key in _REQUIRED_FIELDS}
        updated = replace(endpoint_from_item(kept), **changes)
        fields = sorted(changes)
        item = self.check(updated, changed=fields)
        request = _update_request(self.table_name, name, item, fields)
        try:  # the condition fails when the item was removed between the read above and this write
            self._send("UpdateItem", lambda: self._client.update_item(**request), if_condition_fails=_not_found(name))
        finally:
            self.invalidate(name)
        return updated

    def set_enabled(self, name: str, enabled: bool, *, reason: str | None = None) -> None:
        """Enable an endpoint (clearing the reason) or disable it with a reason."""
        values: dict[str, Any] = {":e": {"BOOL": enabled}}
        if enabled:
            expression = "SET #e = :e REMOVE disabled_reason"
        else:
            expression = "SET #e = :e, disabled_reason = :r"
            values[":r"] = {"S": (reason or "disabled")[:_MAX_REASON]}
        self._send(
            "UpdateItem",
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"name": {"S": name}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name", "#e": "enabled"},
                ExpressionAttributeValues=values,
            ),
            if_condition_fails=_not_found(name),
        )
        self.invalidate(name)

    def enable(self, name: str) -> None:
        """Enable an endpoint."""
        self.set_enabled(name, True)

    def disable(self, name: str, reason: str) -> None:
        """Disable an endpoint, recording why (e.g. the receiver answered 410 Gone)."""
        self.set_enabled(name, False, reason=reason)

    def remove(self, name: str) -> None:
        """Delete an endpoint (EndpointNotFoundError if there is none)."""
        self._send(
            "DeleteItem",
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key={"name": {"S": name}},
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            ),
            if_condition_fails=_not_found(name),
        )
        self.invalidate(name)

    def _send[R](self, operation: str, call: Callable[[], R], *, if_condition_fails: RegistryError | None = None) -> R:
        """Run one DynamoDB request: the one place botocore errors become registry errors (the cause stays chained)."""
        try:
            return call()
        except ClientError as error:
            detail = error.response.get("Error", {})
            code = detail.get("Code", "Error")
            if if_condition_fails is not None and code == "ConditionalCheckFailedException":
                raise if_condition_fails from None
            message = f"{code}: {detail.get('Message', '')}".rstrip(": ")
            raise RegistryUnavailableError(f"registry {operation} on {self.table_name} failed: {message}") from error
        except BotoCoreError as error:
            raise RegistryUnavailableError(f"registry {operation} on {self.table_name} failed: {error}") from error
