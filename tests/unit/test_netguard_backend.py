"""GuardedNetworkBackend: connect-time checks with a fake resolver and a fake inner backend (no sockets at all)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpcore
import pytest

from hookline.exceptions import ConnectError, TargetRefusedError
from hookline.netguard import GuardedNetworkBackend
from tests.support.network import RecordingBackend, TableResolver

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence


class StopAtTLS(Exception):
    """Raised by the fake stream's start_tls, after recording it, to end a request without any I/O."""


@dataclass
class FakeStream(httpcore.AsyncNetworkStream):
    """A stream that records start_tls and then stops the request."""

    tls_calls: list[str | None] = field(default_factory=list)

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.tls_calls.append(server_hostname)
        raise StopAtTLS

    async def aclose(self) -> None:
        return None


class InnerBackend(RecordingBackend[FakeStream]):
    """Hands every connect the same FakeStream; addresses in ``refuse`` fail like a refused connect."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse
        self.stream = FakeStream()

    async def open(self, host: str, port: int, timeout: float | None) -> FakeStream:
        if host in self.refuse:
            raise httpcore.ConnectError(f"[Errno 111] Connection refused ({host})")
        return self.stream


def _backend(
    table: dict[str, Sequence[str]], *, allow_private: bool = False, refuse: set[str] | None = None
) -> tuple[GuardedNetworkBackend, TableResolver, InnerBackend]:
    resolver = TableResolver(table)
    inner = InnerBackend(refuse or set())
    return GuardedNetworkBackend(allow_private=allow_private, resolver=resolver, inner=inner), resolver, inner


@pytest.mark.parametrize(
    ("answers", "address_class"),
    [
        (["169.254.169.254"], "link_local"),
        (["10.0.0.1"], "private"),
        (["127.0.0.1"], "loopback"),
        (["::ffff:169.254.169.254"], "link_local"),
        (["fd00:ec2::254"], "private"),
        (["93.184.216.34", "10.0.0.1"], "private"),  # one bad answer among good ones refuses the name
        (["2606:4700:4700::1111", "fe80::1%2"], "link_local"),
    ],
)
async def test_rebinding_name_refused_before_any_connect(answers: list[str], address_class: str) -> None:
    guard, resolver, inner = _backend({"rebind.test": answers})
    with pytest.raises(TargetRefusedError) as caught:
        await guard.connect_tcp("rebind.test", 443, timeout=5.0)
    assert caught.value.reason == "private_address"
    assert caught.value.address_class == address_class
    assert resolver.lookups == [("rebind.test", 443)]
    assert inner.connects == []


async def test_public_name_connects_to_the_vetted_literal_not_the_name() -> None:
    guard, _, inner = _backend({"hooks.test": ["93.184.216.34"]})
    stream = await guard.connect_tcp("hooks.test", 443, timeout=5.0)
    assert stream is inner.stream
    assert inner.connects == [("93.184.216.34", 443)]


async def test_next_address_tried_when_first_refuses() -> None:
    guard, _, inner = _backend(
        {"hooks.test": ["2606:4700:4700::1111", "93.184.216.34", "93.184.216.34"]}, refuse={"2606:4700:4700::1111"}
    )
    await guard.connect_tcp("hooks.test", 80)
    # Duplicates are dropped; addresses are tried in resolver order.
    assert inner.connects == [("2606:4700:4700::1111", 80), ("93.184.216.34", 80)]


async def test_all_addresses_refusing_raises_connect_error() -> None:
    guard, _, inner = _backend(
        {"hooks.test": ["93.184.216.34", "93.184.216.35"]}, refuse={"93.184.216.34", "93.184.216.35"}
    )
    with pytest.raises(httpcore.ConnectError):
        await guard.connect_tcp("hooks.test", 80)
    assert len(inner.connects) == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "::1", "169.254.169.254", "::ffff:7f00:1"])
async def test_literal_hosts_checked_without_resolving(host: str) -> None:
    guard, resolver, inner = _backend({})
    with pytest.raises(TargetRefusedError):
        await guard.connect_tcp(host, 80)
    assert resolver.lookups == []
    assert inner.connects == []


async def test_public_literal_connects_in_canonical_form() -> None:
    guard, resolver, inner = _backend({})
    await guard.connect_tcp("1.1", 80)
    assert resolver.lookups == []
    assert inner.connects == [("1.0.0.1", 80)]


async def test_allow_private_opens_loopback_names_and_literals() -> None:
    guard, _, inner = _backend({"localhost": ["127.0.0.1", "::1"]}, allow_private=True)
    await guard.connect_tcp("localhost", 8080)
    await guard.connect_tcp("::1", 8080)
    await guard.connect_tcp("127.0.0.1", 8080)
    assert inner.connects == [("127.0.0.1", 8080), ("::1", 8080), ("127.0.0.1", 8080)]


@pytest.mark.parametrize(
    "answers", [["10.0.0.1"], ["169.254.169.254"], ["127.0.0.1", "10.0.0.1"], ["::ffff:127.0.0.1"]]
)
async def test_allow_private_keeps_other_ranges_closed(answers: list[str]) -> None:
    guard, _, inner = _backend({"rebind.test": answers}, allow_private=True)
    with pytest.raises(TargetRefusedError):
        await guard.connect_tcp("rebind.test", 80)
    assert inner.connects == []


async def test_localhost_refused_without_lookup_unless_allowed() -> None:
    guard, resolver, inner = _backend({"localhost": ["127.0.0.1"]})
    with pytest.raises(TargetRefusedError) as caught:
        await guard.connect_tcp("localhost", 80)
    assert caught.value.address_class == "loopback"
    assert resolver.lookups == []
    assert inner.connects == []


async def test_resolution_failure_is_a_connect_error() -> None:
    guard, _, inner = _backend({"empty.test": []})
    with pytest.raises(ConnectError) as caught:
        await guard.connect_tcp("nxdomain.test", 443)
    assert caught.value.reason == "dns_failure"
    assert "nxdomain.test" in str(caught.value)
    with pytest.raises(ConnectError) as empty:
        await guard.connect_tcp("empty.test", 443)
    assert empty.value.reason == "dns_failure"
    assert inner.connects == []


async def test_garbage_resolver_answer_refused() -> None:
    guard, _, inner = _backend({"odd.test": ["not-an-address"]})
    with pytest.raises(TargetRefusedError) as caught:
        await guard.connect_tcp("odd.test", 443)
    assert caught.value.reason == "invalid_host"
    assert inner.connects == []


async def test_unix_sockets_refused() -> None:
    guard, _, _ = _backend({})
    with pytest.raises(TargetRefusedError) as caught:
        await guard.connect_unix_socket("/var/run/docker.sock")
    assert caught.value.reason == "scheme"


async def test_pool_keeps_hostname_for_tls_while_connecting_to_the_literal() -> None:
    """Through httpcore's own connection pool: TCP goes to the vetted IP, start_tls gets the original name (SNI)."""
    guard, _, inner = _backend({"hooks.test": ["93.184.216.34"]})
    async with httpcore.AsyncConnectionPool(network_backend=guard) as pool:
        with pytest.raises(StopAtTLS):
            await pool.request("POST", "https://hooks.test/webhook", content=b"{}")
    assert inner.connects == [("93.184.216.34", 443)]
    assert inner.stream.tls_calls == ["hooks.test"]


async def test_pool_refusal_propagates_unchanged() -> None:
    guard, _, inner = _backend({"rebind.test": ["169.254.169.254"]})
    async with httpcore.AsyncConnectionPool(network_backend=guard) as pool:
        with pytest.raises(TargetRefusedError):
            await pool.request("GET", "https://rebind.test/")
    assert inner.connects == []
