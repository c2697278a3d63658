"""Loopback webhook receivers for the demo: healthy, flaky (5xx, and 429 + Retry-After over its rate limit), gone
(410), and down.

Each receiver is the tests' own loopback server (hookline_local.loopback) on its own port, so that each one is its
own origin (hookline names circuit breakers by origin). It verifies every request's Standard Webhooks signature with
the endpoint's secret and records the webhook-id, which attempt this is at this receiver, the verification result
and what it answered. ``GET /health`` answers the health function's probes. A "down" target is a port where
nothing listens (connection refused), reserved by :func:`closed_port`.

``stop()`` drops every open keep-alive connection and ends the server's thread, so nothing outlives the demo.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from hookline.exceptions import SecretFormatError, SignatureVerificationError
from hookline.signing import verify_standard
from hookline_local.loopback import LoopbackServer, RecordedRequest, Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

__all__ = [
    "HEALTH_PATH",
    "HOOK_PATH",
    "Behaviour",
    "Flaky",
    "Receiver",
    "Reply",
    "RequestRecord",
    "always",
    "closed_port",
]

HOOK_PATH = "/hooks"
HEALTH_PATH = "/health"


@dataclass(frozen=True)
class RequestRecord:
    """One webhook request as a receiver saw it."""

    receiver: str
    webhook_id: str
    attempt: int
    """1 for the first request with this webhook-id at this receiver, 2 for the second, ..."""
    verified: bool
    status: int
    received_at: float


type Behaviour = Callable[[str], Reply]
"""A receiver's behaviour: webhook-id -> the reply (called under the receiver's lock, so it may keep state)."""


def always(status: int, headers: Mapping[str, str] | None = None) -> Behaviour:
    """A behaviour that always answers ``status``."""
    reply = Reply(status=status, headers=dict(headers or {}), body=b'{"ok":true}' if status < 300 else b"")

    def behaviour(_webhook_id: str) -> Reply:
        return reply

    return behaviour


@dataclass
class Flaky:
    """Fails at random, from a seeded RNG, and throttles like a real receiver.

    ``error_rate`` of requests get a 5xx and ``throttle_rate`` a 429 with Retry-After, at random. With
    ``rate_limit_per_s`` set, a request beyond that many in the last second also gets a 429 with Retry-After: the
    load-driven 429 a real receiver sends, which hookline's pacing settles under (docs/pacing.md). A random 429 says
    nothing about load, so pacing keeps halving on it; the demo uses the limit instead.
    """

    seed: int
    error_rate: float = 0.2
    throttle_rate: float = 0.1
    retry_after_s: int = 1
    rate_limit_per_s: int | None = None
    clock: Callable[[], float] = time.monotonic
    random: random.Random = field(init=False)
    _recent: deque[float] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        if not 0 <= self.error_rate + self.throttle_rate <= 1:
            raise ValueError("error_rate + throttle_rate must be between 0 and 1")
        if self.rate_limit_per_s is not None and self.rate_limit_per_s < 1:
            raise ValueError("rate_limit_per_s must be at least 1")
        self.random = random.Random(self.seed)

    def __call__(self, _webhook_id: str) -> Reply:
        """One reply: 429 over the rate limit, else drawn at random."""
        if self._over_limit():
            return self._throttled()
        draw = self.random.random()
        if draw < self.error_rate:
            return Reply(status=self.random.choice((500, 502, 503)))
        if draw < self.error_rate + self.throttle_rate:
            return self._throttled()
        return Reply(status=200, body=b'{"ok":true}')

    def _over_limit(self) -> bool:
        """Count this request in a one-second sliding window; True if it is beyond the limit (not counted then)."""
        if self.rate_limit_per_s is None:
            return False
        now = self.clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit_per_s:
            return True
        self._recent.append(now)
        return False

    def _throttled(self) -> Reply:
        return Reply(status=429, headers={"Retry-After": str(self.retry_after_s)})


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port where nothing listens (connections are refused): a target that is down for good."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class Receiver:
    """One loopback webhook receiver; ``with Receiver(...) as r: r.url`` or start()/stop()."""

    def __init__(
        self,
        name: str,
        behaviour: Behaviour,
        *,
        secret: str,
        health_status: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.secret = secret
        self._behaviour = behaviour
        self._health = Reply(status=health_status, body=b'{"status":"ok"}' if health_status < 300 else b"")
        self._clock = clock
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._attempts: Counter[str] = Counter()
        self._server = LoopbackServer(default=self._reply)

    @property
    def port(self) -> int:
        """The port the receiver listens on."""
        if not self._server.port:
            raise RuntimeError(f"receiver {self.name} is not running")
        return self._server.port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: the breaker name hookline gives this receiver."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The webhook URL to register."""
        return self.origin + HOOK_PATH

    @property
    def health_url(self) -> str:
        """The URL the health function probes."""
        return self.origin + HEALTH_PATH

    def start(self) -> Self:
        """Listen on a free loopback port and serve in a background thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, end the thread and release the port."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- requests (the server's thread) --------------------------------------------------------------------
    def _reply(self, request: RecordedRequest) -> Reply:
        if request.method == "GET" and request.path == HEALTH_PATH:
            return self._health
        if request.method != "POST" or request.path != HOOK_PATH:
            return Reply(status=404)
        return self.handle(request.headers, request.body)

    def _verified(self, headers: Mapping[str, str], body: bytes) -> bool:
        try:
            verify_standard(
                self.secret,
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                body,
                headers.get("webhook-signature", ""),
            )
        except (SignatureVerificationError, SecretFormatError, ValueError):
            return False
        return True

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Verify, record and answer one webhook request (``headers`` with lower-case names)."""
        webhook_id = headers.get("webhook-id", "")
        verified = self._verified(headers, body)
        with self._lock:
            # An unsigned or forged request is refused, as a real receiver would; it never counts as delivered.
            reply = self._behaviour(webhook_id) if verified else Reply(status=401)
            self._attempts[webhook_id] += 1
            self._records.append(
                RequestRecord(
                    receiver=self.name,
                    webhook_id=webhook_id,
                    attempt=self._attempts[webhook_id],
                    verified=verified,
                    status=reply.status,
                    received_at=self._clock(),
                )
            )
        return reply

    # --- inspection (any thread) ---------------------------------------------------------------------------
    @property
    def records(self) -> list[RequestRecord]:
        """Every webhook request so far, in arrival order."""
        with self._lock:
            return list(self._records)

    def delivered_ids(self) -> set[str]:
        """Webhook ids this receiver accepted (verified signature, 2xx answer)."""
        return {r.webhook_id for r in self.records if r.verified and 200 <= r.status < 300}

    def failed_ids(self) -> set[str]:
        """Webhook ids this receiver answered with a failure at least once."""
        return {r.webhook_id for r in self.records if not 200 <= r.status < 300}

    @property
    def request_count(self) -> int:
        """How many webhook requests arrived."""
        with self._lock:
            return len(self._records)
