"""A real HTTP/1.1 (and HTTPS, via a trustme CA) server on loopback: the one receiver of the demo, tests and benchmarks.

It runs its own asyncio loop in a background thread, so it serves sync and async tests alike and many concurrent
connections (delays do not block other requests). Per path you choose what it answers: a ``Reply``, a sequence
of them (served in order, the last one repeats), or a function of the ``RecordedRequest``. Every request is
recorded with its headers and body.

    with loopback_server() as server:
        server.route("/hook", Reply(status=503, headers={"retry-after": "7"}))
        server.route("/flaky", [Reply(status=500), Reply(status=200)])
        server.route("/slow", Reply(delay_s=0.2))
        server.route("/reset", Reply(action="reset"))   # RST after reading the request, no response
        server.route("/cut", Reply(headers={"content-length": "100"}, body=b"part", action="respond_close"))
        ... server.url("/hook") ...
        assert server.requests_for("/hook")[0].headers["webhook-id"] == "msg_1"

    with loopback_server(tls=True) as server:            # https://127.0.0.1:<port>, certificate for 127.0.0.1,
        ctx = server.client_ssl_context()                # ::1 and localhost; ctx trusts the test CA

TLS needs trustme (a development requirement, imported only for ``tls=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import trustme

__all__ = ["Handler", "LoopbackServer", "RecordedRequest", "Reply", "loopback_server"]

_MAX_HEADER_LINE = 65_536
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class Reply:
    """What the server answers: status, headers, body, after ``delay_s``; or ``action`` reset/close without one."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    # reset: RST (SO_LINGER 0) after reading the request; close: orderly FIN without a response;
    # respond_close: send the response, then FIN (with a content-length above len(body): a body cut short).
    action: Literal["respond", "reset", "close", "respond_close"] = "respond"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: method, target (path + query), path, headers (lower-case names), body."""

    method: str
    target: str
    path: str
    headers: dict[str, str]
    raw_headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float


type Handler = Reply | Sequence[Reply] | Callable[[RecordedRequest], Reply]


def _test_ca() -> trustme.CA:
    import trustme

    return trustme.CA()


class LoopbackServer:
    """The server; use ``loopback_server()`` or ``with LoopbackServer(...)`` to start and stop it."""

    def __init__(
        self,
        *,
        tls: bool = False,
        host: str = "127.0.0.1",
        default: Handler | None = None,
        certificate_not_after: datetime | None = None,
    ) -> None:
        self.host = host
        self.tls = tls
        self.ca: trustme.CA | None = _test_ca() if tls else None
        self.certificate_not_after = certificate_not_after or (
            datetime.now(UTC).replace(microsecond=0) + timedelta(days=42) if tls else None
        )
        self._default: Handler = Reply() if default is None else default
        self._routes: dict[str, Handler] = {}
        self._served: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._connections = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- configuration and inspection (any thread) --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """scheme://host:port of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def route(self, path: str, handler: Handler) -> None:
        """Answer requests to ``path`` (query ignored) with ``handler``; resets a sequence's position."""
        with self._lock:
            self._routes[path] = handler
            self._served[path] = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """The requests received for ``path``."""
        return [request for request in self.requests if request.path == path]

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted."""
        with self._lock:
            return self._connections

    def clear(self) -> None:
        """Forget recorded requests and connections (routes stay)."""
        with self._lock:
            self._requests.clear()
            self._connections = 0

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts this server's test CA."""
        if self.ca is None:
            raise RuntimeError("client_ssl_context() needs LoopbackServer(tls=True)")
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Start serving on a free port in a background thread."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="loopback-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_server(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and end the thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop_server(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the server (its own thread and loop) -------------------------------------------------------------------

    def _server_ssl_context(self) -> ssl.SSLContext | None:
        if self.ca is None:
            return None
        certificate = self.ca.issue_cert("127.0.0.1", "::1", "localhost", not_after=self.certificate_not_after)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        return context

    async def _start_server(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, 0, ssl=self._server_ssl_context(), limit=_MAX_HEADER_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_server(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            handler = self._routes.get(request.path, self._default)
            index = self._served.get(request.path, 0)
            self._served[request.path] = index + 1
        if isinstance(handler, Reply):
            return handler
        if callable(handler):
            return handler(request)
        return handler[min(index, len(handler) - 1)]

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        with self._lock:
            self._connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                reply = self._reply_for(request)
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                if reply.action == "reset":
                    _abort_with_rst(writer)
                    return
                if reply.action == "close":
                    break
                keep_alive = request.headers.get("connection", "").lower() != "close" and reply.action == "respond"
                writer.write(_render(reply, head_only=request.method == "HEAD", keep_alive=keep_alive))
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    raw_headers: list[tuple[str, str]] = []
    while True:
        header_line = await reader.readline()
        if header_line in (b"\r\n", b"\n", b""):
            break
        name, _, value = header_line.decode("latin-1").partition(":")
        raw_headers.append((name.strip(), value.strip()))
    headers = {name.lower(): value for name, value in raw_headers}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RecordedRequest(
        method=method,
        target=target,
        path=target.split("?", 1)[0],
        headers=headers,
        raw_headers=tuple(raw_headers),
        body=body,
        received_at=time.monotonic(),
    )


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Trailers end with a blank line.
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()


def _render(reply: Reply, *, head_only: bool, keep_alive: bool) -> bytes:
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {reply.status} {phrase}"]
    names = {name.lower() for name in reply.headers}
    if "content-length" not in names and reply.status not in _NO_BODY_STATUSES:
        lines.append(f"content-length: {len(reply.body)}")
    if "connection" not in names:
        lines.append(f"connection: {'keep-alive' if keep_alive else 'close'}")
    lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if head_only or reply.status in _NO_BODY_STATUSES:
        return head
    return head + reply.body


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger 0: close() sends RST instead of FIN, as a crashing or hostile peer would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextmanager
def loopback_server(
    *,
    tls: bool = False,
    host: str = "127.0.0.1",
    default: Handler | None = None,
    certificate_not_after: datetime | None = None,
) -> Iterator[LoopbackServer]:
    """A started LoopbackServer for the duration of the block."""
    server = LoopbackServer(tls=tls, host=host, default=default, certificate_not_after=certificate_not_after)
    with server:
        yield server
