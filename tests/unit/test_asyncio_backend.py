"""hookline.asyncio_backend over socket pairs: what httpcore asks of a stream, and its errors. No network."""

from __future__ import annotations

import asyncio
import socket

import httpcore
import pytest

from hookline.asyncio_backend import AsyncioBackend, AsyncioStream


async def _pair() -> tuple[AsyncioStream, socket.socket]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    return AsyncioStream(reader, writer), theirs


async def test_reads_and_writes_bytes() -> None:
    stream, peer = await _pair()
    with peer:
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")
        assert peer.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
        peer.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert await stream.read(100) == b"HTTP/1.1 204 No Content\r\n\r\n"
    await stream.aclose()


async def test_an_idle_stream_reports_the_peer_closing_it() -> None:
    """httpcore treats a readable idle connection as closed by the server and does not reuse it."""
    stream, peer = await _pair()
    assert stream.get_extra_info("is_readable") is False
    peer.close()
    assert stream.get_extra_info("is_readable") is True
    assert await stream.read(100) == b""
    await stream.aclose()


async def test_a_read_past_its_timeout_is_a_read_timeout() -> None:
    stream, peer = await _pair()
    with peer, pytest.raises(httpcore.ReadTimeout):
        await stream.read(100, timeout=0)
    await stream.aclose()


async def test_a_reset_read_is_a_read_error_with_the_os_error_as_cause() -> None:
    stream, peer = await _pair()
    peer.close()
    await stream.read(100)  # end of stream
    stream.reader.set_exception(ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(httpcore.ReadError) as caught:
        await stream.read(100)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    await stream.aclose()


async def test_extra_info_names_the_socket_and_no_tls() -> None:
    stream, peer = await _pair()
    with peer:
        assert stream.get_extra_info("socket") is not None
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("something else") is None
    await stream.aclose()


async def test_a_refused_connect_is_a_connect_error_with_the_os_error_as_cause() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connects are refused
        with pytest.raises(httpcore.ConnectError) as caught:
            await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_unix_sockets_are_not_supported() -> None:
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_unix_socket("/tmp/hookline-never.sock")
