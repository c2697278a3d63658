"""Loopback webhook receivers for the demo: healthy, flaky (5xx and 429 + Retry-After), gone (410), and down.

Each receiver is a small threaded HTTP/1.1 server on 127.0.0.1 with its own port, so that each one is its own
origin (hookline names circuit breakers by origin). It verifies every request's Standard Webhooks signature with
the endpoint's secret and records the webhook-id, which attempt this is at this receiver, the verification result
and what it answered. ``GET /health`` answers the health function's probes. A "down" target is a port where
nothing listens (connection refused), reserved by :func:`closed_port`.

``stop()`` closes every open keep-alive connection and joins every thread, so nothing outlives the demo.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

from hookline.exceptions import SecretFormatError, SignatureVerificationError
from hookline.signing import verify_standard

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

__all__ = [
    "HEALTH_PATH",
    "HOOK_PATH",
    "Answer",
    "Behaviour",
    "Flaky",
    "Receiver",
    "RequestRecord",
    "always",
    "closed_port",
]

HOOK_PATH = "/hooks"
HEALTH_PATH = "/health"
_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """What a receiver answers to one webhook request."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


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


type Behaviour = Callable[[str], Answer]
"""A receiver's behaviour: webhook-id -> the answer (called under the receiver's lock, so it may keep state)."""


def always(status: int, headers: Mapping[str, str] | None = None) -> Behaviour:
    """A behaviour that always answers ``status``."""
    answer = Answer(status=status, headers=dict(headers or {}), body=b'{"ok":true}' if status < 300 else b"")

    def behaviour(_webhook_id: str) -> Answer:
        return answer

    return behaviour


@dataclass
class Flaky:
    """Fails at random, from a seeded RNG: ``error_rate`` 5xx, ``throttle_rate`` 429 with Retry-After, else 200."""

    seed: int
    error_rate: float = 0.2
    throttle_rate: float = 0.1
    retry_after_s: int = 1
    random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.error_rate + self.throttle_rate <= 1:
            raise ValueError("error_rate + throttle_rate must be between 0 and 1")
        self.random = random.Random(self.seed)

    def __call__(self, _webhook_id: str) -> Answer:
        """One answer, drawn at random."""
        draw = self.random.random()
        if draw < self.error_rate:
            return Answer(status=self.random.choice((500, 502, 503)))
        if draw < self.error_rate + self.throttle_rate:
            return Answer(status=429, headers={"Retry-After": str(self.retry_after_s)})
        return Answer(status=200, body=b'{"ok":true}')


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port where nothing listens (connections are refused): a target that is down for good."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class _Server(ThreadingHTTPServer):
    """A threaded HTTP server that knows its open connections, so stop() can close them and join every thread."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on an idle keep-alive connection."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's parameter name
        """Quiet: the demo shows counts, not access logs."""

    def _reply(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def do_GET(self) -> None:
        """Health probes."""
        path = self.path.split("?", 1)[0]
        if path != HEALTH_PATH:
            self._reply(Answer(status=404))
            return
        self._reply(self.server.receiver.health_answer())

    def do_POST(self) -> None:
        """Webhook deliveries."""
        length = int(self.headers.get("content-length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            self._reply(Answer(status=413))
            return
        body = self.rfile.read(length)
        if self.path.split("?", 1)[0] != HOOK_PATH:
            self._reply(Answer(status=404))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._reply(self.server.receiver.handle(headers, body))


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
        self._health_status = health_status
        self._clock = clock
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._attempts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the receiver listens on."""
        if self._server is None:
            raise RuntimeError(f"receiver {self.name} is not running")
        port: int = self._server.server_address[1]
        return port

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
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"receiver-{self.name}"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections, join every thread and release the port."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.close_connections()
        server.server_close()  # joins the connection threads (block_on_close)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- requests (server threads) -------------------------------------------------------------------------
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

    def handle(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Verify, record and answer one webhook request."""
        webhook_id = headers.get("webhook-id", "")
        verified = self._verified(headers, body)
        with self._lock:
            # An unsigned or forged request is refused, as a real receiver would; it never counts as delivered.
            answer = self._behaviour(webhook_id) if verified else Answer(status=401)
            self._attempts[webhook_id] += 1
            self._records.append(
                RequestRecord(
                    receiver=self.name,
                    webhook_id=webhook_id,
                    attempt=self._attempts[webhook_id],
                    verified=verified,
                    status=answer.status,
                    received_at=self._clock(),
                )
            )
        return answer

    def health_answer(self) -> Answer:
        """The answer to a health probe."""
        return Answer(status=self._health_status, body=b'{"status":"ok"}' if self._health_status < 300 else b"")

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
