"""Test doubles for httpcore's network layer: a backend that records each connect, a resolver that answers from a table.

``RecordingBackend`` implements httpcore's ``connect_tcp`` once; a test says only what stream a connect gets by
overriding ``open`` (a scripted in-memory stream, one held until the test answers, a refusal, or the real backend
restricted to loopback).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import httpcore

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from httpcore._backends.base import SOCKET_OPTION

__all__ = ["RecordingBackend", "TableResolver"]


class RecordingBackend[S: httpcore.AsyncNetworkStream](httpcore.AsyncNetworkBackend):
    """Records each connect's (host, port) and the stream ``open`` gave it; sleeping is a test failure by default."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.streams: list[S] = []

    async def open(self, host: str, port: int, timeout: float | None) -> S:
        """The stream for one connect (raise httpcore.ConnectError to refuse it)."""
        raise NotImplementedError

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Record the connect, then hand out the stream ``open`` makes."""
        self.connects.append((host, port))
        stream = await self.open(host, port, timeout)
        self.streams.append(stream)
        return stream

    async def sleep(self, seconds: float) -> None:
        """Nothing these tests drive retries with a sleep."""
        raise AssertionError(f"no sleeps expected (asked for {seconds} s)")


class TableResolver:
    """An async resolver answering from a table and recording every lookup; a missing name fails like getaddrinfo."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]
