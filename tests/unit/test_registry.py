"""The registry follows the stable item contract, for items written by hookline and by other tools."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from hookline.registry import (
    Endpoint,
    EndpointExistsError,
    EndpointNotFoundError,
    EndpointRegistry,
    HealthCheck,
    RegistryItemError,
    RegistryUnavailableError,
    endpoint_from_item,
    endpoint_to_item,
)
from tests.support.template import create_table

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(dynamodb: Any) -> EndpointRegistry:
    return EndpointRegistry(create_table(dynamodb, "EndpointsTable"), client=dynamodb, clock=_Clock())


def _raw_item(**extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": {"S": "acme"},
        "url": {"S": "https://hooks.acme.example/in"},
        "secret_id": {"S": "hookline/acme"},
    }
    item.update(extra)
    return item


def test_minimal_raw_item_takes_defaults() -> None:
    endpoint = endpoint_from_item(_raw_item())
    assert endpoint.enabled is True
    assert endpoint.scheme == "standard"
    assert endpoint.timeout_s == 15.0
    assert endpoint.fallback_urls == ()
    assert endpoint.health == HealthCheck()
    assert endpoint.status.state == "unknown"
    assert endpoint.accepts("anything.at_all")


def test_raw_item_with_every_type_from_the_contract() -> None:
    endpoint = endpoint_from_item(
        _raw_item(
            fallback_urls={"L": [{"S": "https://backup.acme.example/in"}]},
            enabled={"BOOL": False},
            disabled_reason={"S": "receiver answered 410"},
            scheme={"S": "stripe"},
            timeout_s={"N": "30"},
            headers={"M": {"X-Tenant": {"S": "42"}}},
            event_types={"L": [{"S": "invoice.paid"}]},
            health={"M": {"url": {"S": "https://hooks.acme.example/health"}, "expect_status": {"S": "200-204"}}},
            health_state={"S": "unhealthy"},
            consecutive_failures={"N": "4"},
        )
    )
    assert endpoint.targets == ("https://hooks.acme.example/in", "https://backup.acme.example/in")
    assert endpoint.enabled is False
    assert endpoint.scheme == "stripe"
    assert endpoint.timeout_s == 30.0
    assert endpoint.headers == {"X-Tenant": "42"}
    assert endpoint.accepts("invoice.paid")
    assert not endpoint.accepts("invoice.created")
    assert endpoint.health.expect_status == (200, 201, 202, 203, 204)
    assert endpoint.health.status_ok(204)
    assert not endpoint.health.status_ok(205)
    assert endpoint.status.state == "unhealthy"
    assert endpoint.status.consecutive_failures == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"scheme": {"S": "hmac"}}, "scheme"),
        ({"timeout_s": {"N": "31"}}, "timeout_s"),
        ({"enabled": {"S": "yes"}}, "enabled"),
        ({"headers": {"M": {"webhook-signature": {"S": "forged"}}}}, "not allowed"),
        ({"headers": {"M": {"X-A": {"S": "a\r\nInjected: 1"}}}}, "line break"),
        ({"fallback_urls": {"S": "https://x"}}, "fallback_urls"),
        ({"health": {"M": {"method": {"S": "POST"}}}}, "health.method"),
        ({"health_state": {"S": "sick"}}, "health_state"),
        ({"name": {"S": "bad name"}}, "endpoint name"),
        ({"health": {"M": {"expect_status": {"S": "200-100"}}}}, "reversed range 200-100"),
        ({"health": {"M": {"expect_status": {"S": "200-99999999"}}}}, "between 100 and 599"),
        ({"health": {"M": {"expect_status": {"S": "99-200"}}}}, "between 100 and 599"),
        ({"health": {"M": {"expect_status": {"S": "200,204-600"}}}}, "between 100 and 599"),
        ({"health": {"M": {"expect_status": {"S": "200-"}}}}, "not a status, list or range"),
        ({"health": {"M": {"expect_status": {"N": "600"}}}}, "between 100 and 599"),
    ],
)
def test_items_that_break_the_contract_are_rejected(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryItemError, match=message):
        endpoint_from_item(_raw_item(**extra))


def test_item_round_trip() -> None:
    endpoint = Endpoint(
        name="acme",
        url="https://hooks.acme.example/in",
        secret_id="hookline/acme",
        fallback_urls=("https://backup.acme.example/in",),
        scheme="github",
        timeout_s=7.5,
        headers={"X-Tenant": "42"},
        event_types=("invoice.paid",),
        health=HealthCheck(url="https://hooks.acme.example/health", expect_status=(200,), max_latency_ms=500),
    )
    assert endpoint_from_item(endpoint_to_item(endpoint)) == endpoint


def test_register_get_update_disable_remove(registry: EndpointRegistry) -> None:
    endpoint = Endpoint(name="acme", url="https://hooks.acme.example/in", secret_id="hookline/acme")
    registry.register(endpoint)
    with pytest.raises(EndpointExistsError):
        registry.register(endpoint)
    assert registry.require("acme") == endpoint

    updated = registry.update("acme", fallback_urls=("https://backup.acme.example/in",))
    assert registry.require("acme").fallback_urls == updated.fallback_urls

    registry.disable("acme", "receiver answered 410 Gone")
    disabled = registry.require("acme")
    assert not disabled.enabled
    assert disabled.disabled_reason == "receiver answered 410 Gone"
    assert registry.list_endpoints(enabled_only=True) == []
    registry.enable("acme")
    assert registry.require("acme").disabled_reason is None

    registry.remove("acme")
    assert registry.get("acme") is None
    with pytest.raises(EndpointNotFoundError):
        registry.remove("acme")
    with pytest.raises(EndpointNotFoundError):
        registry.disable("acme", "gone")


def test_reads_are_cached_until_the_ttl(dynamodb: Any) -> None:
    clock = _Clock()
    table = create_table(dynamodb, "EndpointsTable")
    reader = EndpointRegistry(table, client=dynamodb, clock=clock, cache_ttl_s=10)
    writer = EndpointRegistry(table, client=dynamodb)
    writer.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    assert reader.require("acme").url == "https://a.example/"
    writer.update("acme", url="https://b.example/")
    assert reader.require("acme").url == "https://a.example/"
    clock.now += 10
    assert reader.require("acme").url == "https://b.example/"


def test_listing_skips_broken_items_and_reports_them(registry: EndpointRegistry, dynamodb: Any) -> None:
    registry.register(Endpoint(name="good", url="https://a.example/", secret_id="s"))
    dynamodb.put_item(TableName=registry.table_name, Item=_raw_item(name={"S": "broken"}, timeout_s={"N": "99"}))
    assert [endpoint.name for endpoint in registry.list_endpoints()] == ["good"]
    assert registry.invalid_items() == [("broken", "timeout_s must be a number from 1 to 30")]


@pytest.mark.parametrize(
    "extra",
    [
        {"last_latency_ms": {"S": "slow"}},
        {"last_latency_ms": {"N": "-5"}},
        {"last_latency_ms": {"M": {}}},
        {"consecutive_failures": {"S": "x"}},
        {"consecutive_failures": {"N": "1.5"}},
        {"consecutive_successes": {"L": []}},
        {"last_checked_at": {"N": "1"}},
        {"disabled_reason": {"BOOL": True}},
    ],
)
def test_malformed_health_state_is_a_registry_item_error(extra: dict[str, Any]) -> None:
    (key,) = extra
    with pytest.raises(RegistryItemError, match=key):
        endpoint_from_item(_raw_item(**extra))


def test_listing_skips_items_with_malformed_numbers(registry: EndpointRegistry, dynamodb: Any) -> None:
    registry.register(Endpoint(name="good", url="https://a.example/", secret_id="s"))
    for name, extra in (
        ("bad-latency", {"last_latency_ms": {"S": "slow"}}),
        ("bad-count", {"consecutive_failures": {"L": []}}),
    ):
        dynamodb.put_item(TableName=registry.table_name, Item=_raw_item(name={"S": name}, **extra))

    assert [endpoint.name for endpoint in registry.list_endpoints()] == ["good"]
    assert [name for name, _ in registry.invalid_items()] == ["bad-count", "bad-latency"]


def test_get_integration_health(registry: EndpointRegistry) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    assert registry.get_integration_health("acme").state == "unknown"


def test_flow_control_fields_round_trip_and_are_absent_by_default(registry: EndpointRegistry, dynamodb: Any) -> None:
    plain = Endpoint(name="plain", url="https://a.example/", secret_id="s")
    paced = Endpoint(name="paced", url="https://a.example/", secret_id="s", rate_limit_per_s=0.5, max_in_flight=3)
    registry.register(plain)
    registry.register(paced)

    assert (plain.rate_limit_per_s, plain.max_in_flight) == (None, None)
    assert "rate_limit_per_s" not in endpoint_to_item(plain)
    assert "max_in_flight" not in endpoint_to_item(plain)
    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "paced"}})["Item"]
    assert (raw["rate_limit_per_s"], raw["max_in_flight"]) == ({"N": "0.5"}, {"N": "3"})
    assert registry.require("paced") == paced
    assert registry.require("plain") == plain


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"rate_limit_per_s": {"N": "0.25"}}, (0.25, None)),
        ({"rate_limit_per_s": {"N": "100"}}, (100.0, None)),
        ({"max_in_flight": {"N": "1"}}, (None, 1)),
        ({"max_in_flight": {"N": "50.0"}}, (None, 50)),
    ],
)
def test_flow_control_fields_written_by_other_tools(extra: dict[str, Any], expected: tuple[Any, Any]) -> None:
    endpoint = endpoint_from_item(_raw_item(**extra))
    assert (endpoint.rate_limit_per_s, endpoint.max_in_flight) == expected


@pytest.mark.parametrize(
    "extra",
    [
        {"rate_limit_per_s": {"N": "0"}},
        {"rate_limit_per_s": {"N": "-1"}},
        {"rate_limit_per_s": {"S": "5"}},
        {"rate_limit_per_s": {"BOOL": True}},
        {"max_in_flight": {"N": "0"}},
        {"max_in_flight": {"N": "2.5"}},
        {"max_in_flight": {"S": "3"}},
        {"max_in_flight": {"BOOL": True}},
    ],
)
def test_flow_control_fields_that_break_the_contract_are_rejected(extra: dict[str, Any]) -> None:
    (key,) = extra
    with pytest.raises(RegistryItemError, match=key):
        endpoint_from_item(_raw_item(**extra))


@pytest.mark.parametrize(
    "extra",
    [
        {"rate_limit_per_s": 10**400},
        {"rate_limit_per_s": Decimal("Infinity")},
        {"rate_limit_per_s": Decimal("sNaN")},
        {"max_in_flight": Decimal("Infinity")},
        {"max_in_flight": Decimal("NaN")},
    ],
)
def test_plain_flow_control_values_out_of_any_range_are_contract_errors(extra: dict[str, Any]) -> None:
    # endpoint_from_item also takes plain values (boto3's resource API, files): an error names the attribute.
    item = {"name": "acme", "url": "https://a.example/", "secret_id": "s", **extra}
    (key,) = extra
    with pytest.raises(RegistryItemError, match=key):
        endpoint_from_item(item)


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_limit_per_s": 0.0},
        {"rate_limit_per_s": float("nan")},
        {"max_in_flight": 0},
        # Above 0 and whole, but no DynamoDB N: under 1E-130, over 9.99E+125, over 38 digits.
        {"rate_limit_per_s": 1e-200},
        {"rate_limit_per_s": 1e300},
        {"max_in_flight": 10**40},
    ],
)
def test_update_refuses_invalid_flow_control_values(registry: EndpointRegistry, changes: dict[str, Any]) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    (field,) = changes
    with pytest.raises(RegistryItemError, match=field):
        registry.update("acme", **changes)
    assert registry.require("acme", fresh=True).rate_limit_per_s is None


def test_update_with_none_removes_the_attribute(registry: EndpointRegistry, dynamodb: Any) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    registry.update("acme", rate_limit_per_s=2.5, max_in_flight=4)
    assert registry.require("acme", fresh=True).rate_limit_per_s == 2.5

    updated = registry.update("acme", rate_limit_per_s=None, url="https://b.example/")

    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "acme"}})["Item"]
    assert "rate_limit_per_s" not in raw
    assert raw["max_in_flight"] == {"N": "4"}
    assert raw["url"] == {"S": "https://b.example/"}
    assert registry.require("acme", fresh=True) == updated
    assert (updated.rate_limit_per_s, updated.max_in_flight) == (None, 4)

    registry.update("acme", max_in_flight=None)
    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "acme"}})["Item"]
    assert "max_in_flight" not in raw


def test_update_fixes_or_clears_a_broken_flow_control_value_another_tool_wrote(
    registry: EndpointRegistry, dynamodb: Any
) -> None:
    broken = _raw_item(rate_limit_per_s={"S": "fast"}, max_in_flight={"N": "0"})
    dynamodb.put_item(TableName=registry.table_name, Item=broken)
    with pytest.raises(RegistryItemError, match="rate_limit_per_s"):
        registry.require("acme", fresh=True)

    with pytest.raises(RegistryItemError, match="max_in_flight"):  # a broken field left as it is still counts
        registry.update("acme", rate_limit_per_s=None)
    # The operator's way out: clear or set the fields that break the item.
    fixed = registry.update("acme", rate_limit_per_s=None, max_in_flight=2)

    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "acme"}})["Item"]
    assert "rate_limit_per_s" not in raw
    assert raw["max_in_flight"] == {"N": "2"}
    assert registry.require("acme", fresh=True) == fixed
    assert (fixed.rate_limit_per_s, fixed.max_in_flight) == (None, 2)


def test_update_refuses_unknown_and_health_state_fields(registry: EndpointRegistry) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    with pytest.raises(RegistryItemError, match="cannot update enabled, status"):
        registry.update("acme", enabled=False, status=None)


class _DeletesBeforeUpdate:
    """A DynamoDB client on which the item disappears between update()'s read and its write (a concurrent remove)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_item(self, **kwargs: Any) -> Any:
        self._inner.delete_item(TableName=kwargs["TableName"], Key=kwargs["Key"])
        return self._inner.update_item(**kwargs)


def test_update_of_an_endpoint_removed_meanwhile_is_not_found(dynamodb: Any) -> None:
    table = create_table(dynamodb, "EndpointsTable")
    EndpointRegistry(table, client=dynamodb).register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    racing = EndpointRegistry(table, client=_DeletesBeforeUpdate(dynamodb))

    with pytest.raises(EndpointNotFoundError, match="acme"):
        racing.update("acme", url="https://b.example/")
    assert racing.get("acme", fresh=True) is None


def test_service_type_is_part_of_the_model(registry: EndpointRegistry, dynamodb: Any) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s", service_type="payments"))
    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "acme"}})["Item"]
    assert raw["service_type"] == {"S": "payments"}
    assert registry.require("acme").service_type == "payments"

    registry.update("acme", service_type="webhook")  # the default label is not stored

    raw = dynamodb.get_item(TableName=registry.table_name, Key={"name": {"S": "acme"}})["Item"]
    assert "service_type" not in raw
    assert registry.require("acme", fresh=True).service_type == "webhook"
    with pytest.raises(RegistryItemError, match="service_type"):
        registry.update("acme", service_type="bad label!")


@pytest.mark.parametrize(("value", "expected"), [(None, "webhook"), ({"N": "3"}, "webhook"), ({"S": "crm"}, "crm")])
def test_service_type_is_read_leniently(value: dict[str, Any] | None, expected: str) -> None:
    """A label is not part of delivery: an odd one written by another tool never makes the item unusable."""
    item = _raw_item() if value is None else _raw_item(service_type=value)
    assert endpoint_from_item(item).service_type == expected


def _throttling(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


class _ThrottledPages:
    def paginate(self, **_: Any) -> Iterator[dict[str, Any]]:
        raise _throttling("Scan")  # when the first page is fetched, as botocore's paginator does
        yield {}


class _Throttled:
    """A DynamoDB client whose every request of one operation is throttled (after botocore's own retries)."""

    def __init__(self, inner: Any, operation: str) -> None:
        self._inner = inner
        self._operation = operation

    def __getattr__(self, name: str) -> Any:
        if name != self._operation:
            return getattr(self._inner, name)
        if name == "get_paginator":
            return lambda _operation: _ThrottledPages()

        def throttled(**_: Any) -> Any:
            raise _throttling(name)

        return throttled


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("get_item", lambda registry: registry.get("acme", fresh=True)),
        ("put_item", lambda registry: registry.register(Endpoint(name="b", url="https://b.example/", secret_id="s"))),
        ("update_item", lambda registry: registry.update("acme", url="https://c.example/")),
        ("delete_item", lambda registry: registry.remove("acme")),
        ("get_paginator", lambda registry: registry.list_endpoints()),
    ],
)
def test_botocore_errors_become_registry_errors_at_the_store(dynamodb: Any, operation: str, call: Any) -> None:
    table = create_table(dynamodb, "EndpointsTable")
    EndpointRegistry(table, client=dynamodb).register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    registry = EndpointRegistry(table, client=_Throttled(dynamodb, operation), cache_ttl_s=0)
    if operation == "update_item":
        registry.get("acme")  # update() reads first, through the healthy get_item

    with pytest.raises(RegistryUnavailableError, match="ThrottlingException: Rate exceeded") as failure:
        call(registry)

    assert isinstance(failure.value.__cause__, ClientError)
