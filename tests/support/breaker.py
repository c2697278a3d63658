"""Breaker test support: a moto server that answers one request at a time (fake time: tests.support.timefakes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.aws import moto_server

if TYPE_CHECKING:
    from contextlib import AbstractContextManager


def serial_moto_server() -> AbstractContextManager[str]:
    """moto on loopback in its own process, serving requests one at a time; yields its endpoint URL.

    A single-threaded server makes every DynamoDB operation linearizable, so a concurrency test that still sees
    too many probes granted has found a bug in the breaker's conditional writes, not in moto's locking. Its own
    process keeps the server off the GIL that the test's contending threads fight over.
    """
    return moto_server(serial=True)
