"""hookline_local.loopback itself: the behaviours other suites rely on (sequences, callables, chunked, HEAD)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

from hookline_local.loopback import LoopbackServer, RecordedRequest, Reply, loopback_server


async def test_sequence_then_last_repeats_and_callable_handlers() -> None:
    def echo(request: RecordedRequest) -> Reply:
        return Reply(status=201, body=request.body[::-1], headers={"x-path": request.path})

    with loopback_server(default=Reply(status=404)) as server:
        server.route("/flaky", [Reply(status=500), Reply(status=503), Reply(status=200)])
        server.route("/echo", echo)
        async with httpx.AsyncClient() as client:
            statuses = [(await client.post(server.url("/flaky"))).status_code for _ in range(4)]
            echoed = await client.post(server.url("/echo?x=1"), content=b"abc")
            missing = await client.get(server.url("/nowhere"))
        assert statuses == [500, 503, 200, 200]
        assert (echoed.status_code, echoed.content, echoed.headers["x-path"]) == (201, b"cba", "/echo")
        assert missing.status_code == 404
        assert [request.path for request in server.requests] == ["/flaky"] * 4 + ["/echo", "/nowhere"]
        server.route("/flaky", [Reply(status=502), Reply(status=200)])  # re-routing restarts the sequence
        async with httpx.AsyncClient() as client:
            assert (await client.post(server.url("/flaky"))).status_code == 502
        server.clear()
        assert server.requests == []


async def test_chunked_request_body_and_head() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    with loopback_server(default=Reply(body=b"payload")) as server:
        async with httpx.AsyncClient() as client:
            await client.post(server.url("/chunked"), content=body())
            head = await client.head(server.url("/"))
        assert server.requests_for("/chunked")[0].body == b"hello world"
        assert server.requests_for("/chunked")[0].headers["transfer-encoding"] == "chunked"
        assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "7")


def test_serves_sync_clients_and_ipv6_loopback() -> None:
    with loopback_server() as server, httpx.Client() as client:
        assert client.get(server.url("/")).status_code == 200
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server6 = LoopbackServer(host="::1").start()
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    try:
        assert server6.base_url.startswith("http://[::1]:")
        with httpx.Client() as client:
            assert client.get(server6.url("/")).status_code == 200
    finally:
        server6.stop()
