"""The registry follows the stable item contract, for items written by hookline and by other tools."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.registry import (
    Endpoint,
    EndpointExistsError,
    EndpointNotFoundError,
    EndpointRegistry,
    HealthCheck,
    RegistryItemError,
    endpoint_from_item,
    endpoint_to_item,
)
from tests.support.aws import client
from tests.support.template import create_table


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return client("dynamodb")


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


def test_get_integration_health(registry: EndpointRegistry) -> None:
    registry.register(Endpoint(name="acme", url="https://a.example/", secret_id="s"))
    assert registry.get_integration_health("acme").state == "unknown"
