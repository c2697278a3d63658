"""hookline.http against a real loopback server (HTTP and HTTPS with a trustme CA). Loopback only."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from hookline.exceptions import ConnectError, RequestTimeoutError
from hookline.http import DEFAULT_MAX_BODY_BYTES, build_async_client, send_limited
from tests.support.loopback import LoopbackServer, Reply, loopback_server

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


@pytest.fixture
def tls_server() -> Iterator[LoopbackServer]:
    not_after = datetime(2031, 5, 17, 12, 30, 0, tzinfo=UTC)
    with loopback_server(tls=True, certificate_not_after=not_after) as running:
        yield running


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_post_reaches_the_receiver(server: LoopbackServer) -> None:
    server.route("/hook", Reply(status=204, headers={"x-receiver": "yes"}))
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(
            client,
            "POST",
            server.url("/hook?source=test"),
            content=b'{"amount":42}',
            headers={"content-type": "application/json", "webhook-id": "msg_1"},
        )
    assert result.status_code == 204
    assert result.headers["x-receiver"] == "yes"
    assert result.latency_ms > 0
    (request,) = server.requests_for("/hook")
    assert request.method == "POST"
    assert request.target == "/hook?source=test"
    assert request.body == b'{"amount":42}'
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["user-agent"].startswith("hookline/")


async def test_whole_request_deadline(server: LoopbackServer) -> None:
    server.route("/slow", Reply(delay_s=0.2))
    async with build_async_client(allow_private=True) as client:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            await send_limited(client, "POST", server.url("/slow"), content=b"{}", timeout_s=0.05)
        elapsed = time.monotonic() - started
        # The pool survives a cancelled request: the next one works.
        server.route("/slow", Reply())
        assert (await send_limited(client, "POST", server.url("/slow"), content=b"{}")).status_code == 200
    assert caught.value.reason == "timeout"
    assert elapsed < 0.18


async def test_slow_body_counts_against_the_deadline(server: LoopbackServer) -> None:
    # The status arrives at once but the body never completes: the deadline covers the read as well, and the
    # answer the receiver gave is kept.
    server.route("/trickle", Reply(status=200, headers={"content-length": "100"}, body=b"partial"))
    async with build_async_client(allow_private=True) as client:
        started = time.monotonic()
        result = await send_limited(client, "GET", server.url("/trickle"), timeout_s=0.1)
        elapsed = time.monotonic() - started
    assert (result.status_code, result.body, result.truncated, result.body_error) == (200, b"partial", True, "timeout")
    assert elapsed < 0.3


async def test_body_cut_short_keeps_the_status(server: LoopbackServer) -> None:
    server.route("/cut", Reply(status=202, headers={"content-length": "100"}, body=b"part", action="respond_close"))
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(client, "POST", server.url("/cut"), content=b"{}")
        assert (await send_limited(client, "POST", server.url("/"), content=b"{}")).status_code == 200
    assert (result.status_code, result.body, result.truncated) == (202, b"part", True)
    assert result.body_error == "connection_reset"


async def test_redirects_are_returned_not_followed(server: LoopbackServer) -> None:
    server.route("/moved", Reply(status=302, headers={"location": "/elsewhere"}))
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(client, "POST", server.url("/moved"), content=b"{}")
    assert result.status_code == 302
    assert result.headers["location"] == "/elsewhere"
    assert server.requests_for("/elsewhere") == []


async def test_cookies_set_by_one_answer_never_ride_along(server: LoopbackServer) -> None:
    """Receivers of different customers can share a host: no cookie jar between deliveries."""
    server.route("/a", Reply(headers={"set-cookie": "session=customer-a; Path=/"}))
    async with build_async_client(allow_private=True) as client:
        await send_limited(client, "POST", server.url("/a"), content=b"{}")
        await send_limited(client, "POST", server.url("/b"), content=b"{}")
        assert not client.cookies
    assert "cookie" not in server.requests_for("/b")[0].headers


async def test_connection_refused() -> None:
    async with build_async_client(allow_private=True) as client:
        with pytest.raises(ConnectError) as caught:
            await send_limited(client, "POST", f"http://127.0.0.1:{_closed_port()}/hook", content=b"{}")
    assert caught.value.reason == "connection_refused"


@pytest.mark.parametrize("action", ["reset", "close"])
async def test_connection_reset_or_closed_without_response(server: LoopbackServer, action: str) -> None:
    server.route("/drop", Reply(action=action))  # type: ignore[arg-type]
    async with build_async_client(allow_private=True) as client:
        with pytest.raises(ConnectError) as caught:
            await send_limited(client, "POST", server.url("/drop"), content=b"{}")
    assert caught.value.reason == "connection_reset"
    assert len(server.requests_for("/drop")) == 1


async def test_large_body_is_capped(server: LoopbackServer) -> None:
    server.route("/big", Reply(body=b"z" * 500_000))
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(client, "GET", server.url("/big"))
        assert result.truncated
        assert result.body == b"z" * DEFAULT_MAX_BODY_BYTES
        # The unread rest makes that connection unusable; the next request still works.
        assert (await send_limited(client, "GET", server.url("/"))).status_code == 200


async def test_connections_are_pooled(server: LoopbackServer) -> None:
    async with build_async_client(allow_private=True) as client:
        for _ in range(3):
            assert (await send_limited(client, "POST", server.url("/"), content=b"{}")).status_code == 200
    assert server.connections == 1


async def test_certificate_not_after(tls_server: LoopbackServer) -> None:
    async with build_async_client(allow_private=True, verify=tls_server.client_ssl_context()) as client:
        result = await send_limited(client, "GET", tls_server.url("/health"), capture_certificate=True)
        plain = await send_limited(client, "GET", tls_server.url("/health"))
    assert result.status_code == 200
    assert result.certificate_not_after == datetime(2031, 5, 17, 12, 30, 0, tzinfo=UTC)
    assert plain.certificate_not_after is None


async def test_certificate_not_after_without_verification(tls_server: LoopbackServer) -> None:
    # getpeercert() is empty when nothing was verified; the date is read from the raw certificate instead.
    async with build_async_client(allow_private=True, verify=False) as client:
        result = await send_limited(client, "GET", tls_server.url("/"), capture_certificate=True)
    assert result.certificate_not_after == datetime(2031, 5, 17, 12, 30, 0, tzinfo=UTC)


async def test_certificate_not_after_none_for_http(server: LoopbackServer) -> None:
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(client, "GET", server.url("/"), capture_certificate=True)
    assert result.certificate_not_after is None


async def test_untrusted_certificate_is_a_tls_error(tls_server: LoopbackServer) -> None:
    async with build_async_client(allow_private=True) as client:
        with pytest.raises(ConnectError) as caught:
            await send_limited(client, "GET", tls_server.url("/"))
    assert caught.value.reason == "tls_error"
    assert tls_server.requests == []


async def test_expired_certificate_is_a_tls_error() -> None:
    expired = datetime.now(UTC) - timedelta(days=1)
    with loopback_server(tls=True, certificate_not_after=expired) as server:
        async with build_async_client(allow_private=True, verify=server.client_ssl_context()) as client:
            with pytest.raises(ConnectError) as caught:
                await send_limited(client, "GET", server.url("/"), capture_certificate=True)
    assert caught.value.reason == "tls_error"


async def test_retry_after_from_a_real_response(server: LoopbackServer) -> None:
    server.route("/busy", Reply(status=429, headers={"retry-after": "17"}))
    async with build_async_client(allow_private=True) as client:
        result = await send_limited(client, "POST", server.url("/busy"), content=b"{}")
    assert (result.status_code, result.retry_after_s) == (429, 17.0)


async def test_environment_proxy_is_not_used(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with build_async_client(allow_private=True) as client:
        assert (await send_limited(client, "GET", server.url("/"))).status_code == 200
