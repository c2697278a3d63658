"""The real client stack (httpx -> GuardedTransport -> httpcore pool -> guard) over an in-memory network backend.

No socket is ever opened: the inner backend hands out scripted streams and records where it was asked to connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpcore
import pytest

from hookline.exceptions import ConnectError, TargetRefusedError
from hookline.http import build_async_client, send_limited
from tests.support.network import RecordingBackend, TableResolver

CANNED = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok"


@dataclass
class ScriptedStream(httpcore.AsyncNetworkStream):
    """Answers every request on the connection with the canned response; records what was written."""

    written: bytearray = field(default_factory=bytearray)
    pending: list[bytes] = field(default_factory=list)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer
        if buffer.endswith(b"\r\n\r\n") or self.written.endswith(b"{}"):
            self.pending.append(CANNED)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.pending.pop(0) if self.pending else b""

    async def aclose(self) -> None:
        return None

    def get_extra_info(self, info: str) -> object:
        return None


class InMemoryBackend(RecordingBackend[ScriptedStream]):
    """Every connect gets a fresh scripted stream."""

    async def open(self, host: str, port: int, timeout: float | None) -> ScriptedStream:
        return ScriptedStream()


async def test_request_goes_to_the_vetted_literal_with_the_original_host_header() -> None:
    backend = InMemoryBackend()
    client = build_async_client(
        allow_private=False,
        resolver=TableResolver({"hooks.test": ["93.184.216.34"]}),
        network_backend=backend,
    )
    async with client:
        result = await send_limited(client, "POST", "http://hooks.test/in", content=b"{}")
        again = await send_limited(client, "POST", "http://hooks.test/in", content=b"{}")
    assert (result.status_code, result.body, again.status_code) == (200, b"ok", 200)
    # One pooled connection, opened to the address literal; the Host header still names the host.
    assert backend.connects == [("93.184.216.34", 80)]
    request_head = bytes(backend.streams[0].written)
    assert b"Host: hooks.test\r\n" in request_head
    assert request_head.count(b"POST /in HTTP/1.1") == 2


@pytest.mark.parametrize("answers", [["169.254.169.254"], ["10.0.0.1"], ["93.184.216.34", "fd00:ec2::254"]])
async def test_rebinding_name_refused_through_the_client(answers: list[str]) -> None:
    backend = InMemoryBackend()
    client = build_async_client(
        allow_private=True,  # even the local stack's setting opens plain loopback only
        resolver=TableResolver({"rebind.test": answers}),
        network_backend=backend,
    )
    async with client:
        with pytest.raises(TargetRefusedError) as caught:
            await send_limited(client, "GET", "http://rebind.test/")
    assert caught.value.reason == "private_address"
    assert backend.connects == []


async def test_mixed_answers_refused_without_allow_private() -> None:
    backend = InMemoryBackend()
    client = build_async_client(
        allow_private=False,
        resolver=TableResolver({"rebind.test": ["93.184.216.34", "127.0.0.1"]}),
        network_backend=backend,
    )
    async with client:
        with pytest.raises(TargetRefusedError):
            await send_limited(client, "GET", "http://rebind.test/")
    assert backend.connects == []


async def test_dns_failure_is_a_connect_error() -> None:
    backend = InMemoryBackend()
    client = build_async_client(allow_private=False, resolver=TableResolver({}), network_backend=backend)
    async with client:
        with pytest.raises(ConnectError) as caught:
            await send_limited(client, "GET", "https://nxdomain.test/secret-path")
    assert caught.value.reason == "dns_failure"
    assert "secret-path" not in str(caught.value)
    assert backend.connects == []
