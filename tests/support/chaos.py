"""A fault-injecting webhook receiver on loopback for the end-to-end chaos suite.

Built on the loopback server (``hookline_local.loopback``). Every request is verified with the real
``standardwebhooks`` library (independent of hookline's own signing code) and recorded with its webhook-id, body,
what the receiver did, and whether the sender can have seen a success. Faults are drawn from a seeded RNG:

* ``error``: a 500/502/503 answer;
* ``timeout``: the answer (a 503) comes after ``timeout_delay_s``, longer than the endpoint's ``timeout_s``, so the
  sender gives up first; it is never a success;
* ``reset``: the connection is reset (SO_LINGER 0) after the request is read, without an answer;
* ``throttle``: 429 with ``Retry-After``;
* otherwise 200.

A receiver may also carry a crash trigger: the first request for a chosen webhook-id calls ``on_trigger`` (which
kills the delivery function's worker process) and then waits, so the invocation dies in the middle of its batch,
after the other requests of the batch were answered.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookline_local.loopback import LoopbackServer, RecordedRequest, Reply

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Action", "ChaosMix", "ChaosReceiver", "Received"]

type Action = Literal["ok", "error", "timeout", "reset", "throttle", "crash"]
SUCCESS: frozenset[str] = frozenset({"ok"})


@dataclass(frozen=True)
class ChaosMix:
    """Probabilities of each fault (the rest answers 200)."""

    error: float = 0.0
    timeout: float = 0.0
    reset: float = 0.0
    throttle: float = 0.0
    retry_after_s: int = 1
    timeout_delay_s: float = 1.6

    def draw(self, rng: random.Random) -> Action:
        """One action, drawn from ``rng``."""
        value = rng.random()
        for action, probability in (
            ("error", self.error),
            ("timeout", self.timeout),
            ("reset", self.reset),
            ("throttle", self.throttle),
        ):
            if value < probability:
                return action  # type: ignore[return-value]
            value -= probability
        return "ok"


@dataclass(frozen=True)
class Received:
    """One request as the chaos receiver saw and answered it."""

    receiver: str
    webhook_id: str
    body: bytes
    verified: bool
    action: Action
    status: int | None
    at: float

    @property
    def delivered(self) -> bool:
        """Whether the sender got a 2xx for this request (and the signature verified)."""
        return self.verified and self.action in SUCCESS


@dataclass
class ChaosReceiver:
    """A loopback receiver with seeded faults; use as a context manager."""

    name: str
    secret: str
    mix: ChaosMix = field(default_factory=ChaosMix)
    seed: int = 0
    # Overrides the mix for every request: a target that is down for good ("error" or "reset").
    always: Action | None = None
    crash_ids: frozenset[str] = frozenset()
    on_trigger: Callable[[str], None] | None = None
    crash_hold_s: float = 3.0
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._webhook = Webhook(self.secret)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._triggered: set[str] = set()
        self.crash_times: list[float] = []
        self._server = LoopbackServer(default=self._reply)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> ChaosReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: the breaker name of this receiver."""
        return self._server.base_url

    @property
    def url(self) -> str:
        """The webhook URL to register."""
        return self._server.url("/hooks")

    # --- serving (the server's thread) ---------------------------------------------------------------------
    def _verify(self, request: RecordedRequest) -> bool:
        try:
            self._webhook.verify(request.body, request.headers, json_parse=False)
        except (WebhookVerificationError, ValueError):
            return False
        return True

    def _choose(self, webhook_id: str, *, verified: bool) -> tuple[Action, Reply]:
        with self._lock:
            if not verified:
                return "error", Reply(status=401)
            if webhook_id in self.crash_ids and webhook_id not in self._triggered:
                self._triggered.add(webhook_id)
                # The invocation is killed while this request waits; its answer never reaches anyone.
                return "crash", Reply(status=503, delay_s=self.crash_hold_s)
            action = self.always if self.always is not None else self.mix.draw(self._rng)
            if action == "error":
                return action, Reply(status=self._rng.choice((500, 502, 503)))
        replies: dict[Action, Reply] = {
            "ok": Reply(status=200, body=b'{"ok":true}'),
            "timeout": Reply(status=503, delay_s=self.mix.timeout_delay_s),
            "reset": Reply(action="reset"),
            "throttle": Reply(status=429, headers={"retry-after": str(self.mix.retry_after_s)}),
        }
        return action, replies[action]

    def _reply(self, request: RecordedRequest) -> Reply:
        webhook_id = request.headers.get("webhook-id", "")
        verified = self._verify(request)
        action, reply = self._choose(webhook_id, verified=verified)
        with self._lock:
            self._received.append(
                Received(
                    receiver=self.name,
                    webhook_id=webhook_id,
                    body=request.body,
                    verified=verified,
                    action=action,
                    status=None if reply.action == "reset" else reply.status,
                    at=self.clock(),
                )
            )
            if action == "crash":
                self.crash_times.append(self.clock())
        if action == "crash" and self.on_trigger is not None:
            # Runs in the server's thread: the kill happens while this request is still open.
            threading.Thread(target=self.on_trigger, args=(webhook_id,), name="chaos-crash").start()
        return reply

    # --- inspection ----------------------------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        """Every request so far."""
        with self._lock:
            return list(self._received)

    def delivered_counts(self) -> Counter[str]:
        """How many times each webhook-id was delivered (2xx, verified) here."""
        return Counter(r.webhook_id for r in self.received if r.delivered)

    def actions(self) -> Counter[str]:
        """How many requests got each action."""
        return Counter(r.action for r in self.received)
