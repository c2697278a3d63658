"""The network guard with real sockets, on loopback only: what it lets through connects, what it refuses never does.

Every refused case asserts that no connect was attempted: a recording wrapper around the real backend sees no
call and the server accepts no connection. No packet is addressed anywhere but 127.0.0.1 / ::1.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpcore
import pytest

from hookline.exceptions import ConnectError, RequestTimeoutError, TargetRefusedError
from hookline.http import build_async_client, send_limited
from tests.support.loopback import LoopbackServer, loopback_server
from tests.support.network import RecordingBackend, TableResolver

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


class RecordingAnyIOBackend(RecordingBackend[httpcore.AsyncNetworkStream]):
    """The real backend, recording each connect; it refuses to touch anything that is not loopback."""

    def __init__(self) -> None:
        super().__init__()
        self.real = httpcore.AnyIOBackend()

    async def open(self, host: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
        # Belt and braces for the rule that tests never send a packet off the machine.
        if not (host.startswith("127.") or host == "::1"):
            raise AssertionError(f"test tried to connect to non-loopback {host}")
        return await self.real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


async def test_allow_private_reaches_a_loopback_server(server: LoopbackServer) -> None:
    backend = RecordingAnyIOBackend()
    async with build_async_client(allow_private=True, network_backend=backend) as client:
        result = await send_limited(client, "POST", server.url("/hook"), content=b"{}")
    assert result.status_code == 200
    assert backend.connects == [("127.0.0.1", server.port)]
    assert len(server.requests_for("/hook")) == 1


async def test_localhost_name_with_the_system_resolver(server: LoopbackServer) -> None:
    backend = RecordingAnyIOBackend()
    async with build_async_client(allow_private=True, network_backend=backend) as client:
        result = await send_limited(client, "GET", f"http://localhost:{server.port}/")
    assert result.status_code == 200
    # localhost may resolve to ::1 first (not served here) and then 127.0.0.1: only loopback literals are used.
    assert backend.connects[-1] == ("127.0.0.1", server.port)
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://2130706433:{port}/",
        "http://0x7f.1:{port}/",
        "http://127.1:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
    ],
)
async def test_refused_before_connecting_without_allow_private(server: LoopbackServer, template: str) -> None:
    backend = RecordingAnyIOBackend()
    async with build_async_client(allow_private=False, network_backend=backend) as client:
        with pytest.raises(TargetRefusedError) as caught:
            await send_limited(client, "POST", template.format(port=server.port), content=b"{}")
    assert caught.value.reason == "private_address"
    assert backend.connects == []
    assert server.connections == 0


async def test_rebinding_name_to_loopback_refused(server: LoopbackServer) -> None:
    backend = RecordingAnyIOBackend()
    client = build_async_client(
        allow_private=False, resolver=TableResolver({"rebind.test": ["127.0.0.1"]}), network_backend=backend
    )
    async with client:
        with pytest.raises(TargetRefusedError):
            await send_limited(client, "POST", f"http://rebind.test:{server.port}/", content=b"{}")
    assert backend.connects == []
    assert server.connections == 0


async def test_connects_to_the_resolved_literal_and_keeps_the_host_header(server: LoopbackServer) -> None:
    backend = RecordingAnyIOBackend()
    client = build_async_client(
        allow_private=True, resolver=TableResolver({"hooks.test": ["127.0.0.1"]}), network_backend=backend
    )
    async with client:
        result = await send_limited(client, "POST", f"http://hooks.test:{server.port}/in", content=b"{}")
    assert result.status_code == 200
    assert backend.connects == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["host"] == f"hooks.test:{server.port}"


async def test_tls_verifies_the_original_name_not_the_address() -> None:
    with loopback_server(tls=True) as server:
        trust = server.client_ssl_context()
        resolver = TableResolver({"localhost": ["127.0.0.1"], "hooks.test": ["127.0.0.1"]})
        async with build_async_client(allow_private=True, resolver=resolver, verify=trust) as client:
            # The certificate names localhost: TLS succeeds although TCP went to 127.0.0.1.
            ok = await send_limited(client, "GET", f"https://localhost:{server.port}/", capture_certificate=True)
            # hooks.test is not in the certificate: verification runs against that name, so it fails.
            with pytest.raises(ConnectError) as caught:
                await send_limited(client, "GET", f"https://hooks.test:{server.port}/")
    assert ok.status_code == 200
    assert ok.certificate_not_after == server.certificate_not_after
    assert caught.value.reason == "tls_error"


async def test_allow_private_keeps_other_ranges_closed(server: LoopbackServer) -> None:
    backend = RecordingAnyIOBackend()
    resolver = TableResolver({"meta.test": ["169.254.169.254"], "mixed.test": ["127.0.0.1", "10.0.0.1"]})
    async with build_async_client(allow_private=True, resolver=resolver, network_backend=backend) as client:
        for url in (
            f"http://meta.test:{server.port}/",
            f"http://mixed.test:{server.port}/",
            f"http://[::ffff:127.0.0.1]:{server.port}/",
            f"http://0.0.0.0:{server.port}/",
            "http://169.254.169.254/latest/api/token",
        ):
            with pytest.raises(TargetRefusedError):
                await send_limited(client, "GET", url)
    assert backend.connects == []
    assert server.connections == 0


async def test_slow_resolution_is_a_connect_timeout() -> None:
    backend = RecordingAnyIOBackend()

    async def never(host: str, port: int) -> Sequence[str]:
        await asyncio.Event().wait()
        return []

    async with build_async_client(
        allow_private=True, resolver=never, network_backend=backend, connect_timeout_s=0.05
    ) as client:
        with pytest.raises(RequestTimeoutError) as caught:
            await send_limited(client, "GET", "http://slow-dns.test/")
    assert caught.value.reason == "connect_timeout"
    assert backend.connects == []


async def test_ipv6_loopback_allowed_only_with_allow_private() -> None:
    try:
        server6 = LoopbackServer(host="::1").start()
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    try:
        backend = RecordingAnyIOBackend()
        async with build_async_client(allow_private=True, network_backend=backend) as client:
            assert (await send_limited(client, "GET", server6.url("/"))).status_code == 200
        async with build_async_client(allow_private=False, network_backend=backend) as client:
            with pytest.raises(TargetRefusedError):
                await send_limited(client, "GET", server6.url("/"))
        assert backend.connects == [("::1", server6.port)]
        assert server6.connections == 1
    finally:
        server6.stop()
