"""httpcore's HTTP/1.1 connection pool with a single-pass assignment that hands each idle connection to one request,
and a request's head and body written in one send.

httpcore 1.0.9's ``AsyncConnectionPool._assign_requests_to_connections`` runs on every request start and end. It
scans all connections once per connection (its keep-alive count) and once per queued request, probes every idle
socket with poll(), and hands the same idle HTTP/1.1 connection to every queued request of the pass: all but one
then fail with ``ConnectionNotAvailable``, re-queue and run the pass again. Measured with 100 requests in flight
(bench/delivery.py, docs/signing-netguard-http.md): 10-24 ms of CPU per request and 1.8-4.4 s for a batch that
takes 0.2 s; the same fix is proposed upstream (encode/httpcore#1035, #1110) and was merged in the httpx2 fork.

This pass is linear in connections + requests, reserves a connection for the request it is handed to (so no
other request of any pass gets it, and no pass closes it while its request has yet to start), and probes a
connection's socket only when it is about to be reused. Everything else is httpcore's own: the request queue and
its wait, ``ConnectionNotAvailable`` retries, response streams, connection objects, the network backend.

httpcore also writes a request's head and body with two sends (two syscalls, two packets, two wake-ups of the
receiver); the pool's streams hold writes until the request is complete and the response is read.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import httpcore

from hookline.asyncio_backend import AsyncioBackend

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

    from httpcore._backends.base import SOCKET_OPTION

__all__ = ["Http11ConnectionPool"]

_FLUSH_AT_BYTES = 65_536


class Http11ConnectionPool(httpcore.AsyncConnectionPool):
    """``httpcore.AsyncConnectionPool`` for HTTP/1.1 only, with a linear assignment pass (see the module docstring).

    Relies on httpcore 1.0's pool internals (``_connections``, ``_requests``, the pool request's ``connection``),
    which tests/unit/test_http_pool.py exercises; the layer pins httpcore.
    """

    def __init__(self, *, network_backend: httpcore.AsyncNetworkBackend | None = None, **options: Any) -> None:
        if options.get("http2") or options.get("http1") is False:
            # An HTTP/2 connection takes many requests at once; this pass hands each connection to one.
            raise ValueError("Http11ConnectionPool speaks HTTP/1.1 only")
        inner = network_backend if network_backend is not None else AsyncioBackend()
        super().__init__(network_backend=_WriteOnReadBackend(inner), **options)

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        queued = [request for request in self._requests if request.connection is None]
        if not queued and len(self._connections) <= self._max_keepalive_connections:
            # Nothing to hand out and no keep-alive surplus possible: closed or expired connections are dropped by
            # the next pass that needs a connection, before it counts them against max_connections.
            return []
        reserved = {id(request.connection) for request in self._requests if request.connection is not None}
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections: list[httpcore.AsyncConnectionInterface] = []
        idle: list[httpcore.AsyncConnectionInterface] = []  # HTTP/1.1: idle = free to take a request
        for connection in self._connections:
            if id(connection) in reserved:
                connections.append(connection)  # in use, or handed to a request that has yet to start on it
            elif not connection.is_closed():
                connections.append(connection)
                if connection.is_idle():
                    idle.append(connection)
        for pool_request in queued:
            origin = pool_request.request.url.origin
            chosen = self._take_idle(idle, origin, closing)
            if chosen is None:
                if len(connections) - len(closing) >= self._max_connections:
                    if not idle:
                        break  # every connection is busy: the rest of the queue waits for the next pass
                    # Make room: close an idle connection to another origin.
                    closing.append(idle.pop(0))
                chosen = self.create_connection(origin)
                connections.append(chosen)
            reserved.add(id(chosen))
            pool_request.assign_to_connection(chosen)
        surplus = len(idle) - self._max_keepalive_connections
        if surplus > 0:
            closing.extend(idle[:surplus])
        gone = {id(connection) for connection in closing}
        self._connections = [connection for connection in connections if id(connection) not in gone]
        return closing

    async def _close_connections(self, closing: list[httpcore.AsyncConnectionInterface]) -> None:
        # httpcore opens a cancellation shield (an anyio cancel scope) even for an empty list, twice per request.
        if closing:
            await super()._close_connections(closing)

    @staticmethod
    def _take_idle(
        idle: list[httpcore.AsyncConnectionInterface],
        origin: httpcore.Origin,
        closing: list[httpcore.AsyncConnectionInterface],
    ) -> httpcore.AsyncConnectionInterface | None:
        """Remove and return the first idle connection to ``origin`` that has not expired; expired ones go to
        ``closing`` (the expiry check polls the socket, so only connections about to be reused are checked)."""
        index = 0
        while index < len(idle):
            connection = idle[index]
            if not connection.can_handle_request(origin):
                index += 1
                continue
            del idle[index]
            if connection.has_expired():
                closing.append(connection)
                continue
            return connection
        return None


class _WriteOnReadStream(httpcore.AsyncNetworkStream):
    """Holds writes until the next read, so a request's head and body leave in one send: one syscall and one
    packet instead of two (httpcore writes them separately). More than 64 KiB held is written at once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held: list[bytes] = []
        self._held_bytes = 0

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hold ``buffer``; write what is held once it reaches 64 KiB."""
        if buffer:
            self._held.append(buffer)
            self._held_bytes += len(buffer)
            if self._held_bytes >= _FLUSH_AT_BYTES:
                await self._flush(timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Write what is held, then read."""
        if self._held:
            # As httpcore does for its own writes: a server may answer (413...) and close before reading it all.
            with contextlib.suppress(httpcore.WriteError):
                await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def _flush(self, timeout: float | None) -> None:
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        await self._inner.write(data, timeout)

    async def aclose(self) -> None:
        """Drop what is held and close."""
        self._held.clear()
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade the inner stream (nothing is held before the handshake)."""
        if self._held:
            await self._flush(timeout)
        return _WriteOnReadStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """The inner stream's (ssl_object, socket, is_readable...)."""
        return self._inner.get_extra_info(info)


class _WriteOnReadBackend(httpcore.AsyncNetworkBackend):
    """Wraps every stream of ``inner`` (the network guard) in a ``_WriteOnReadStream``."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The inner backend's connection, wrapped."""
        stream = await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _WriteOnReadStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        """The inner backend's connection, wrapped."""
        return _WriteOnReadStream(await self.inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        """The inner backend's sleep."""
        await self.inner.sleep(seconds)
