"""The delivery service's dependencies, grouped in small immutable parameter objects (every one injectable)."""

from __future__ import annotations

import asyncio
import random as _random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from hookline.http import send_limited

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx
    from aws_lambda_powertools import Logger
    from mypy_boto3_sqs import SQSClient

    from hookline.delivery.attempt import Sender
    from hookline.delivery.deadletter import DeadLetterWriter
    from hookline.delivery.lanes import SlowMarks
    from hookline.delivery.parking import Parking
    from hookline.delivery.telemetry import BatchMetrics, EventTally
    from hookline.history.payloads import PayloadStore
    from hookline.pacing import Pacer
    from hookline.registry import Endpoint
    from hookline.secrets import SigningSecretStore
    from resilience.breaker import BreakerRegistry

__all__ = ["Clocks", "EndpointStore", "Outbox", "Stores", "Telemetry", "Transport"]


class EndpointStore(Protocol):
    """What delivery needs of the registry: read an endpoint, disable one that answered 410."""

    def get(self, name: str, *, fresh: bool = False) -> Endpoint | None:
        """The endpoint called ``name`` or None."""
        ...

    def disable(self, name: str, reason: str) -> None:
        """Disable ``name`` with ``reason`` (EndpointNotFoundError if it is gone)."""
        ...


@dataclass(frozen=True)
class Clocks:
    """Wall clock (signing, dead letters, retry state), monotonic clock (deadlines, latency), random (jitter) and
    sleep (a pace lease's start time)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    random: Callable[[], float] = _random.random
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True)
class Stores:
    """What delivery reads and steers: the registry, the signing secrets, the breakers, the endpoints' pace, the
    origins marked slow."""

    registry: EndpointStore
    secrets: SigningSecretStore
    breakers: BreakerRegistry | None = None
    pacer: Pacer | None = None
    slow_marks: SlowMarks | None = None


@dataclass(frozen=True)
class Outbox:
    """Where records go when they leave the batch: SQS (re-enqueued retries), the dead-letter queue, for waits
    longer than an hour EventBridge Scheduler, and the payload store (replay)."""

    sqs: SQSClient
    dead_letters: DeadLetterWriter
    parking: Parking | None = None
    payloads: PayloadStore | None = None
    """Where payloads are kept at first sight for replay (docs/history.md), when RetainPayloads is on."""


@dataclass(frozen=True)
class Transport:
    """The shared HTTP client (or a factory of it), the request function and the response cap."""

    http: httpx.AsyncClient | Callable[[], httpx.AsyncClient]
    send: Sender = send_limited
    max_response_bytes: int = 65536

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared HTTP client."""
        return self.http() if callable(self.http) else self.http


@dataclass(frozen=True)
class Telemetry:
    """Where metrics and logs go; ``breaker_events`` tallies what the breakers report through their hook."""

    emit: Callable[[BatchMetrics], None] | None = None
    logger: Logger | None = None
    breaker_events: EventTally | None = field(default=None)
