"""hookline.http with httpx.MockTransport (and, for the guarded stack, a fake network backend): no sockets."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest

import hookline
from hookline.exceptions import ConnectError, RequestTimeoutError, TargetRefusedError
from hookline.http import (
    DEFAULT_MAX_BODY_BYTES,
    GuardedTransport,
    HttpResult,
    build_async_client,
    parse_retry_after,
    send_limited,
)
from hookline.netguard import GuardedNetworkBackend

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
URL = "https://hooks.example.com/in/T0K3N?sig=abc"


def _ticks(*values: float) -> Callable[[], float]:
    iterator: Iterator[float] = iter(values)
    return lambda: next(iterator)


def _client(handler: Callable[[httpx.Request], httpx.Response], *, allow_private: bool = False) -> httpx.AsyncClient:
    return build_async_client(allow_private=allow_private, transport=httpx.MockTransport(handler))


async def test_result_fields_and_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, headers={"x-request-id": "r1"}, content=b"accepted")

    async with _client(handler) as client:
        result = await send_limited(
            client,
            "POST",
            URL,
            content=b'{"a":1}',
            headers={"content-type": "application/json", "webhook-id": "msg_1"},
            clock=_ticks(100.0, 100.25),
        )
    assert result == HttpResult(
        status_code=202,
        headers=result.headers,
        body=b"accepted",
        truncated=False,
        latency_ms=250.0,
        retry_after_s=None,
        certificate_not_after=None,
    )
    assert result.is_success
    assert result.headers["x-request-id"] == "r1"
    (request,) = seen
    assert request.method == "POST"
    assert request.content == b'{"a":1}'
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"hookline/{hookline.__version__}"
    assert request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("status", [200, 204, 301, 302, 307, 308, 400, 404, 410, 429, 500, 503])
async def test_every_status_is_a_result_and_redirects_are_not_followed(status: int) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(status, headers={"location": "https://elsewhere.example.com/"})

    async with _client(handler) as client:
        result = await send_limited(client, "POST", URL, content=b"{}")
    assert result.status_code == status
    assert result.is_success == (200 <= status < 300)
    assert calls == [URL]


async def _chunks(body: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _body_handler(body: bytes, headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    """A response streamed in chunks, as from the network (a bytes body would already be read into memory)."""
    return lambda request: httpx.Response(200, headers=headers or {}, content=_chunks(body))


async def test_in_memory_body_is_capped_too() -> None:
    async with _client(lambda request: httpx.Response(200, content=b"y" * 100)) as client:
        result = await send_limited(client, "GET", URL, max_body_bytes=10)
    assert (result.body, result.truncated) == (b"y" * 10, True)


@pytest.mark.parametrize(
    ("size", "limit", "kept", "truncated"),
    [
        (0, DEFAULT_MAX_BODY_BYTES, 0, False),
        (DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, False),
        (DEFAULT_MAX_BODY_BYTES + 1, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, True),
        (1_000_000, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, True),
        (100, 10, 10, True),
        (100, 0, 0, True),
    ],
)
async def test_body_is_capped(size: int, limit: int, kept: int, truncated: bool) -> None:
    body = bytes(index % 251 for index in range(size))
    async with _client(_body_handler(body)) as client:
        result = await send_limited(client, "GET", URL, max_body_bytes=limit)
    assert result.body == body[:kept]
    assert result.truncated is truncated


async def test_reading_stops_at_the_cap() -> None:
    produced: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(10_000):
            produced.append(index)
            yield b"x" * 4096

    async with _client(lambda request: httpx.Response(200, content=endless())) as client:
        result = await send_limited(client, "GET", URL)
    assert result.truncated
    assert len(result.body) == DEFAULT_MAX_BODY_BYTES
    # 16 chunks fill 64 KB; the 17th shows there is more. The other 9,983 are never produced.
    assert len(produced) == 17


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_bomb_is_decoded_within_the_cap(encoding: str) -> None:
    plain = b"\0" * 5_000_000
    packed = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)
    assert len(packed) < 100_000
    async with _client(_body_handler(packed, {"content-encoding": encoding})) as client:
        result = await send_limited(client, "GET", URL)
    assert result.body == b"\0" * DEFAULT_MAX_BODY_BYTES
    assert result.truncated


async def test_small_gzip_body_is_decoded() -> None:
    async with _client(_body_handler(gzip.compress(b'{"ok":true}'), {"content-encoding": "gzip"})) as client:
        result = await send_limited(client, "GET", URL)
    assert result.body == b'{"ok":true}'
    assert not result.truncated


async def test_corrupt_gzip_keeps_what_decoded() -> None:
    async with _client(_body_handler(b"not gzip at all", {"content-encoding": "gzip"})) as client:
        result = await send_limited(client, "GET", URL)
    assert result.status_code == 200
    assert result.body == b""


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
        # An HTTP-date is measured from the server's own Date header when there is one...
        ({"retry-after": "Sat, 28 Nov 2026 09:00:30 GMT", "date": "Sat, 28 Nov 2026 09:00:00 GMT"}, 30.0),
        # ...and from the injected wall clock (NOW = 08:00:00) otherwise.
        ({"retry-after": "Sat, 28 Nov 2026 08:01:00 GMT"}, 60.0),
        ({"retry-after": "Sat, 28 Nov 2026 08:01:00 GMT", "date": "garbage"}, 60.0),
    ],
)
async def test_retry_after_in_result(headers: dict[str, str], expected: float | None) -> None:
    async with _client(lambda request: httpx.Response(429, headers=headers)) as client:
        result = await send_limited(client, "POST", URL, wall_clock=lambda: NOW)
    assert result.retry_after_s == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-30", 0.0),
        ("+3", 3.0),
        ("Sat, 28 Nov 2026 08:00:10 GMT", 10.0),  # IMF-fixdate
        ("Saturday, 28-Nov-26 08:02:00 GMT", 120.0),  # obsolete RFC 850
        ("Sat Nov 28 08:00:05 2026", 5.0),  # obsolete asctime
        ("Sat, 28 Nov 2026 07:00:00 GMT", 0.0),  # in the past
        ("Wed, 32 Nov 2026 08:00:00 GMT", None),
        ("tomorrow", None),
        ("12abc", None),
        ("1e3", None),
        ("9" * 40, None),
        ("0x10", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ConnectError, "connection_refused"),
        (httpx.ConnectError("All connection attempts failed"), ConnectError, "network_error"),
        (httpx.ConnectTimeout("timed out"), RequestTimeoutError, "connect_timeout"),
        (httpx.ReadTimeout("timed out"), RequestTimeoutError, "timeout"),
        (httpx.WriteTimeout("timed out"), RequestTimeoutError, "timeout"),
        (httpx.PoolTimeout("timed out"), RequestTimeoutError, "timeout"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), ConnectError, "connection_reset"),
        (httpx.WriteError("[Errno 32] Broken pipe"), ConnectError, "connection_reset"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            ConnectError,
            "connection_reset",
        ),
        (httpx.RemoteProtocolError("illegal status line"), ConnectError, "protocol_error"),
        (httpx.UnsupportedProtocol("Request URL has an unsupported protocol"), TargetRefusedError, "scheme"),
        (httpx.ProxyError("proxy"), ConnectError, "network_error"),
    ],
)
async def test_transport_errors_map_to_the_tree(error: Exception, kind: type[Exception], reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with _client(handler) as client:
        with pytest.raises(kind) as caught:
            await send_limited(client, "POST", URL, content=b"{}")
    assert caught.value.reason == reason  # type: ignore[attr-defined]
    message = str(caught.value)
    assert "hooks.example.com" in message or kind is TargetRefusedError
    assert "T0K3N" not in message
    assert "sig=abc" not in message
    assert len(message) <= 300
    # The httpx error (which may quote the URL) is not chained into logged tracebacks.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_guard_runs_before_the_transport() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    async with _client(handler) as client:
        for url, reason in [
            ("http://127.0.0.1/", "private_address"),
            ("http://0x7f.1/", "private_address"),
            ("http://[::ffff:169.254.169.254]/", "private_address"),
            ("https://user:pw@hooks.example.com/", "credentials"),
        ]:
            with pytest.raises(TargetRefusedError) as caught:
                await send_limited(client, "POST", url)
            assert caught.value.reason == reason
        with pytest.raises(TargetRefusedError) as scheme:
            await send_limited(client, "GET", "ftp://hooks.example.com/")
        assert scheme.value.reason in {"scheme"}
    assert calls == []


async def test_allow_private_lets_loopback_through_the_hook() -> None:
    async with _client(lambda request: httpx.Response(200), allow_private=True) as client:
        assert (await send_limited(client, "GET", "http://127.0.0.1:8080/")).status_code == 200
        with pytest.raises(TargetRefusedError):
            await send_limited(client, "GET", "http://10.0.0.1/")


async def test_invalid_arguments() -> None:
    async with _client(lambda request: httpx.Response(200)) as client:
        with pytest.raises(ValueError, match="timeout_s"):
            await send_limited(client, "GET", URL, timeout_s=0)
        with pytest.raises(ValueError, match="max_body_bytes"):
            await send_limited(client, "GET", URL, max_body_bytes=-1)


async def test_client_configuration() -> None:
    async with build_async_client(allow_private=False, connect_timeout_s=2.5, user_agent="probe/1") as client:
        assert client.follow_redirects is False
        assert client.trust_env is False
        assert client.timeout.connect == 2.5
        # send_limited's one deadline bounds the rest of the request.
        assert (client.timeout.read, client.timeout.write, client.timeout.pool) == (None, None, None)
        assert client.headers["user-agent"] == "probe/1"
        transport = client._transport
        assert isinstance(transport, GuardedTransport)
        assert isinstance(transport.network_backend, GuardedNetworkBackend)
        assert transport.network_backend.allow_private is False
        # No per-scheme proxy mounts either: the environment is not consulted.
        assert client._mounts == {}


async def test_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would make the connection on our behalf, after the guard: it must never be picked up.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://proxy.example.com:3128")
    async with build_async_client(allow_private=False) as client:
        assert client._mounts == {}
        assert isinstance(client._transport_for_url(httpx.URL("https://hooks.example.com/")), GuardedTransport)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "connection_reset"),
        (httpx.RemoteProtocolError("peer closed connection without sending complete message body"), "connection_reset"),
        (httpx.RemoteProtocolError("malformed chunk"), "protocol_error"),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
async def test_broken_body_keeps_status_and_what_arrived(error: Exception, reason: str) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first "
        yield b"second"
        raise error

    async with _client(lambda request: httpx.Response(200, content=broken())) as client:
        result = await send_limited(client, "POST", URL, content=b"{}")
    assert (result.status_code, result.body, result.truncated, result.body_error) == (
        200,
        b"first second",
        True,
        reason,
    )
