"""Http11ConnectionPool: one request per idle connection, linear assignment passes, httpcore's pool rules kept.

Every connection is an in-memory stream whose answers the test releases, so requests can be held in flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpcore
import pytest

from hookline.http_pool import Http11ConnectionPool
from tests.support.network import RecordingBackend

ANSWER = b"HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n"


@dataclass(eq=False)
class HeldStream(httpcore.AsyncNetworkStream):
    """Answers each request once ``gate`` is open; records requests, overlap and whether it was closed."""

    gate: asyncio.Event
    origin: tuple[str, int]
    requests: int = 0
    writes: list[bytes] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    closed: bool = False
    readable_when_idle: bool = False  # True: the server closed it (httpcore treats the connection as expired)
    _pending: int = 0

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)
        for _ in range(buffer.count(b"POST /")):
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._pending += 1

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self.gate.wait()
        if not self._pending:
            return b""
        self._pending -= 1
        self.in_flight -= 1
        return ANSWER

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> object:
        return self.readable_when_idle if info == "is_readable" else None


class HeldBackend(RecordingBackend[HeldStream]):
    """Every connect gets a fresh HeldStream sharing the backend's gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def open(self, host: str, port: int, timeout: float | None) -> HeldStream:
        return HeldStream(self.gate, (host, port))


class CountingPool(Http11ConnectionPool):
    """Counts assignment passes (the stock pool's churn shows up as many passes per request)."""

    passes = 0

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        self.passes += 1
        return super()._assign_requests_to_connections()


async def _post(
    pool: httpcore.AsyncConnectionPool, url: str = "http://93.184.216.34/hook", content: bytes = b"{}"
) -> int:
    response = await pool.request("POST", url, content=content)
    return response.status


async def _hold(pool: httpcore.AsyncConnectionPool, backend: HeldBackend, count: int) -> list[int]:
    """Start ``count`` requests, let them all reach their connections, then release the answers."""
    tasks = [asyncio.create_task(_post(pool)) for _ in range(count)]
    for _ in range(20):
        await asyncio.sleep(0)
    backend.gate.set()
    statuses = await asyncio.gather(*tasks)
    backend.gate.clear()
    return statuses


async def test_concurrent_requests_each_get_their_own_connection_then_reuse_them() -> None:
    backend = HeldBackend()
    pool = CountingPool(max_connections=50, max_keepalive_connections=50, network_backend=backend)
    async with pool:
        assert await _hold(pool, backend, 50) == [204] * 50
        assert await _hold(pool, backend, 50) == [204] * 50
        # One assignment pass when a request arrives and one when it ends: no ConnectionNotAvailable churn.
        assert pool.passes <= 2 * 100
    assert len(backend.streams) == 50
    assert [stream.requests for stream in backend.streams] == [2] * 50
    assert max(stream.max_in_flight for stream in backend.streams) == 1


async def test_requests_over_the_limit_wait_for_a_free_connection() -> None:
    backend = HeldBackend()
    async with CountingPool(max_connections=3, max_keepalive_connections=3, network_backend=backend) as pool:
        assert await _hold(pool, backend, 12) == [204] * 12
    assert len(backend.streams) == 3
    assert sum(stream.requests for stream in backend.streams) == 12
    assert max(stream.max_in_flight for stream in backend.streams) == 1


async def test_an_expired_idle_connection_is_closed_instead_of_reused() -> None:
    backend = HeldBackend()
    backend.gate.set()
    async with Http11ConnectionPool(network_backend=backend) as pool:
        await _post(pool)
        backend.streams[0].readable_when_idle = True  # the server has closed its end
        await _post(pool)
    assert [stream.requests for stream in backend.streams] == [1, 1]
    assert backend.streams[0].closed


async def test_idle_connections_over_the_keepalive_limit_are_closed() -> None:
    backend = HeldBackend()
    async with Http11ConnectionPool(max_connections=4, max_keepalive_connections=1, network_backend=backend) as pool:
        await _hold(pool, backend, 4)
        assert len(pool.connections) == 1
        assert [stream.closed for stream in backend.streams].count(False) == 1


async def test_a_full_pool_closes_an_idle_connection_to_another_origin() -> None:
    backend = HeldBackend()
    backend.gate.set()
    async with Http11ConnectionPool(max_connections=1, network_backend=backend) as pool:
        await _post(pool, "http://93.184.216.34/a")
        await _post(pool, "http://93.184.216.35/b")
    assert [stream.origin for stream in backend.streams] == [("93.184.216.34", 80), ("93.184.216.35", 80)]
    assert backend.streams[0].closed


async def test_head_and_body_leave_in_one_write() -> None:
    backend = HeldBackend()
    backend.gate.set()
    async with Http11ConnectionPool(network_backend=backend) as pool:
        await _post(pool, content=b'{"n":1}')
        await _post(pool, content=b'{"n":2}')
    (stream,) = backend.streams
    assert len(stream.writes) == 2
    assert all(write.startswith(b"POST /hook HTTP/1.1\r\n") for write in stream.writes)
    assert stream.writes[1].endswith(b'\r\n\r\n{"n":2}')


async def test_a_large_body_is_written_without_waiting_for_the_read() -> None:
    backend = HeldBackend()  # gate closed: nothing is answered until the test opens it
    async with Http11ConnectionPool(network_backend=backend) as pool:
        task = asyncio.create_task(_post(pool, content=b"x" * 100_000))
        for _ in range(20):
            await asyncio.sleep(0)
        assert sum(len(write) for write in backend.streams[0].writes) > 100_000
        backend.gate.set()
        assert await task == 204


async def test_a_failed_write_still_reads_the_answer() -> None:
    """A receiver may answer (413, 503) and close before reading the request: the answer counts, as in httpcore."""

    @dataclass(eq=False)
    class ClosedForWriting(HeldStream):
        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await super().write(buffer, timeout)
            raise httpcore.WriteError("broken pipe")

    class Backend(HeldBackend):
        async def open(self, host: str, port: int, timeout: float | None) -> HeldStream:
            return ClosedForWriting(self.gate, (host, port))

    backend = Backend()
    backend.gate.set()
    async with Http11ConnectionPool(network_backend=backend) as pool:
        assert await _post(pool) == 204


@pytest.mark.parametrize("count", [1, 7])
async def test_a_refused_connect_frees_its_slot(count: int) -> None:
    class RefusingFirst(HeldBackend):
        refusing = True

        async def open(self, host: str, port: int, timeout: float | None) -> HeldStream:
            if self.refusing:
                raise httpcore.ConnectError("refused")
            return await super().open(host, port, timeout)

    backend = RefusingFirst()
    async with Http11ConnectionPool(max_connections=2, network_backend=backend) as pool:
        outcomes = await asyncio.gather(*(_post(pool) for _ in range(count)), return_exceptions=True)
        assert all(isinstance(outcome, httpcore.ConnectError) for outcome in outcomes)
        backend.refusing = False
        # Both slots are free again: two requests held in flight at once get a connection each.
        assert await _hold(pool, backend, 2) == [204, 204]
    assert len(backend.streams) == 2


def test_http2_is_refused() -> None:
    with pytest.raises(ValueError, match="HTTP/1.1"):
        Http11ConnectionPool(http2=True)
