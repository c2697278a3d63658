"""``webhook_client``: the ready module-level client (seed parity), lazily configured, one client per event loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hookline.delivery.client import AsyncWebhookClient, LazyWebhookClient, WebhookDelivery
from hookline.exceptions import TargetRefusedError
from hookline.settings import SettingsError
from resilience.breaker import DynamoDBStateStore, MemoryStateStore
from resilience.retry import RetryPolicy
from tests.support.delivery_fakes import MockReceiver
from tests.support.timefakes import FakeClock

URL = "https://hooks.acme.example/hook"
BACKUP = "https://backup.acme.example/hook"
LOOPBACK = "http://127.0.0.1:8080/hook"
SECRET = "webhook_secret"


def _lazy(receiver: MockReceiver, environ: dict[str, str], clock: FakeClock | None = None) -> LazyWebhookClient:
    clock = clock or FakeClock()
    retry = RetryPolicy(max_attempts=2, initial_delay=1.0, jitter="none", async_sleep=clock.async_sleep, clock=clock)
    return LazyWebhookClient(environ=environ, transport=httpx.MockTransport(receiver), retry=retry)


@pytest.mark.parametrize(
    ("answer", "truthy"),
    [(httpx.Response(204), True), (httpx.Response(500), False), (httpx.Response(410), False)],
)
def test_the_result_is_truthy_exactly_when_delivered(answer: httpx.Response, truthy: bool) -> None:
    receiver = MockReceiver()
    receiver.route(URL, answer)
    client = _lazy(receiver, {})

    success = asyncio.run(client.deliver(WebhookDelivery(url=URL, payload={"order": 1}, secret=SECRET)))

    assert bool(success) is truthy
    assert success.delivered is truthy


def test_configuration_is_read_from_the_environment_at_first_use() -> None:
    receiver, environ = MockReceiver(), {"ALLOW_PRIVATE_TARGETS": "false"}
    client = _lazy(receiver, environ)
    environ["ALLOW_PRIVATE_TARGETS"] = "true"  # after construction: still in time

    assert asyncio.run(client.deliver(WebhookDelivery(LOOPBACK, {}, SECRET)))
    assert [str(request.url) for request in receiver.requests] == [LOOPBACK]


def test_without_allow_private_targets_loopback_is_refused() -> None:
    receiver = MockReceiver()

    with pytest.raises(TargetRefusedError):
        asyncio.run(_lazy(receiver, {}).deliver(WebhookDelivery(LOOPBACK, {}, SECRET)))
    assert receiver.requests == []


def test_a_malformed_environment_is_reported_at_first_use() -> None:
    client = _lazy(MockReceiver(), {"ALLOW_PRIVATE_TARGETS": "maybe"})

    with pytest.raises(SettingsError, match="ALLOW_PRIVATE_TARGETS"):
        asyncio.run(client.deliver(WebhookDelivery(URL, {}, SECRET)))


def test_each_event_loop_gets_its_own_client_closed_when_the_loop_ends() -> None:
    client = _lazy(MockReceiver(), {})

    async def use() -> tuple[AsyncWebhookClient, AsyncWebhookClient]:
        await client.deliver(WebhookDelivery(URL, {}, SECRET))
        await client.deliver(WebhookDelivery(URL, {}, SECRET))
        return await client.client(), await client.client()

    first, same = asyncio.run(use())
    second, _ = asyncio.run(use())

    assert first is same  # one client (one pool) within a loop
    assert second is not first
    assert first.http.is_closed and second.http.is_closed


def test_aclose_closes_the_running_loops_client_and_the_next_use_builds_another() -> None:
    client = _lazy(MockReceiver(), {})

    async def use() -> tuple[AsyncWebhookClient, AsyncWebhookClient]:
        before = await client.client()
        await client.aclose()
        return before, await client.client()

    before, after = asyncio.run(use())

    assert before.http.is_closed and after is not before


def test_breakers_are_shared_by_every_loop() -> None:
    receiver = MockReceiver()
    client = _lazy(receiver, {})

    async def hold_primary_open() -> None:
        (await client.client()).breakers.get("https://hooks.acme.example").force_open("maintenance")  # type: ignore[union-attr]

    asyncio.run(hold_primary_open())
    result = asyncio.run(client.deliver(WebhookDelivery(URL, {}, SECRET, fallback_urls=[BACKUP])))

    assert result and result.served_by == 1
    assert [str(request.url) for request in receiver.requests] == [BACKUP]


def test_breaker_table_makes_the_breakers_fleet_wide() -> None:
    async def store_of(environ: dict[str, str]) -> object:
        return (await _lazy(MockReceiver(), environ).client()).breakers.store  # type: ignore[union-attr]

    fleet = asyncio.run(store_of({"BREAKER_TABLE": "hookline-breakers"}))
    local = asyncio.run(store_of({}))

    assert isinstance(fleet, DynamoDBStateStore) and fleet.table_name == "hookline-breakers"
    assert isinstance(local, MemoryStateStore)


def test_configure_replaces_the_options_for_later_loops() -> None:
    first, second = MockReceiver(), MockReceiver()
    client = _lazy(first, {})
    asyncio.run(client.deliver(WebhookDelivery(URL, {}, SECRET)))

    client.configure(environ={}, transport=httpx.MockTransport(second))
    asyncio.run(client.deliver(WebhookDelivery(URL, {}, SECRET)))

    assert (len(first.requests), len(second.requests)) == (1, 1)


def test_the_module_level_client_is_importable_from_the_short_path() -> None:
    from hookline.delivery import WebhookDelivery as ShortDelivery
    from hookline.delivery import webhook_client as short
    from hookline.delivery.client import webhook_client

    assert short is webhook_client
    assert isinstance(webhook_client, LazyWebhookClient)
    assert ShortDelivery is WebhookDelivery
