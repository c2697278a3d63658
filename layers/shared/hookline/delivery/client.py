"""In-process webhook delivery (seed parity): a ``WebhookDelivery`` object and an ``AsyncWebhookClient``.

``deliver()`` signs (Standard Webhooks, or the github/stripe schemes), tries the URL and its fallbacks in order behind
per-origin breakers, and retries the whole attempt with resilience's retry policy (Retry-After honoured). It runs
the same code as the delivery function (``attempt_delivery``); only the retry loop differs: in-process sleeps here,
SQS visibility there.

    async with AsyncWebhookClient() as client:
        result = await client.deliver(WebhookDelivery(url, {"amount": 5}, secret, fallback_urls=[backup]))
        assert result.delivered

The network guard refuses loopback, private, link-local and similar targets, as in the delivery function.
``AsyncWebhookClient(allow_private=True)`` opens loopback only (127.0.0.0/8 and ::1: a receiver on this machine,
in tests and local development), never the other private ranges. Errors (``hookline.exceptions``):

- ``TargetRefusedError`` (a ValueError): the guard refused a URL, raised by ``deliver()`` before any request;
- ``SecretFormatError`` (a ValueError): a malformed secret, raised when the ``WebhookDelivery`` is made;
- ``DeliveryFailedError``: not delivered, only with ``deliver(..., raise_on_failure=True)``; otherwise the result
  is falsy and says why.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import httpx

from hookline.delivery.attempt import AttemptResult, Outcome, attempt_delivery
from hookline.delivery.deadletter import describe_target
from hookline.delivery.targets import DeliveryPlan, origin_of
from hookline.exceptions import HooklineError, TargetRefusedError
from hookline.http import build_async_client, send_limited
from hookline.messages import encode_payload, validate_field
from hookline.netguard import check_url
from hookline.producer import new_message_id
from hookline.registry import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from hookline.settings import Settings
from hookline.signing import SigningSecrets, as_signing_secrets
from resilience.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
    from types import TracebackType

    from hookline.delivery.attempt import Sender
    from hookline.registry import Scheme
    from resilience.breaker import BreakerRegistry

__all__ = [
    "DEFAULT_RETRY",
    "AsyncWebhookClient",
    "DeliveryFailedError",
    "DeliveryResult",
    "LazyWebhookClient",
    "WebhookDelivery",
    "webhook_client",
]

_MAX_CONNECTIONS = 100
DEFAULT_RETRY = RetryPolicy(max_attempts=3, initial_delay=1.0, max_delay=30.0, jitter="equal")
"""Three attempts, about 1 s then 2 s apart; a receiver's Retry-After raises a wait (never beyond ``max_delay``)."""


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook to deliver: where, what, signed with which secret, and the fallbacks."""

    url: str
    payload: Any
    secret: str | SigningSecrets = field(repr=False)
    fallback_urls: Sequence[str] = ()
    event_type: str = "webhook"
    id: str | None = None
    scheme: Scheme = "standard"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.id is None:
            # Fixed once, so every attempt (and every retry) carries the same webhook-id.
            object.__setattr__(self, "id", new_message_id())
        # The message contract's own checks (MessageError, a ValueError, saying in words what is wrong).
        validate_field("id", self.id)
        validate_field("event_type", self.event_type)
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S:g}]")
        object.__setattr__(self, "fallback_urls", tuple(self.fallback_urls))
        as_signing_secrets(self.secret)  # a malformed secret is refused here, not at the first attempt

    @property
    def message_id(self) -> str:
        """The webhook-id (always set after construction)."""
        return str(self.id)

    @property
    def signing_secrets(self) -> SigningSecrets:
        """The secret as SigningSecrets: ``whsec_`` or rotation JSON as stored, any other string a PlainSecret."""
        return as_signing_secrets(self.secret)


@dataclass(frozen=True)
class DeliveryResult:
    """What ``deliver()`` did: every attempt's result, and who served the webhook if anyone did."""

    id: str
    attempts: tuple[AttemptResult, ...]

    @property
    def delivered(self) -> bool:
        """Whether a target answered 2xx."""
        return bool(self.attempts) and self.attempts[-1].outcome is Outcome.DELIVERED

    @property
    def outcome(self) -> Outcome:
        """The last attempt's outcome."""
        return self.attempts[-1].outcome

    @property
    def status_code(self) -> int | None:
        """The last HTTP status received."""
        return self.attempts[-1].last_status if self.attempts else None

    @property
    def served_by(self) -> int | None:
        """Index of the target that delivered (0 = the primary URL)."""
        return self.attempts[-1].served_by if self.attempts else None

    def __bool__(self) -> bool:
        """True exactly when the webhook was delivered: ``success = await webhook_client.deliver(delivery)``."""
        return self.delivered


class DeliveryFailedError(HooklineError):
    """``deliver(..., raise_on_failure=True)`` could not deliver; ``result`` says what happened."""

    def __init__(self, result: DeliveryResult) -> None:
        last = result.attempts[-1].last_error if result.attempts else "no attempt"
        super().__init__(f"webhook {result.id} not delivered ({result.outcome}): {last}")
        self.result = result


class _AttemptFailed(Exception):
    """One attempt delivered nowhere; carries the receiver's Retry-After for the retry policy."""

    def __init__(self, result: AttemptResult) -> None:
        super().__init__(result.last_error)
        self.result = result
        self.retry_after = result.retry_after_s or result.breaker_retry_after_s


class AsyncWebhookClient:
    """Signs, retries, respects breakers and falls back; one pooled httpx client for its lifetime."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        *,
        http: httpx.AsyncClient | None = None,
        breakers: BreakerRegistry | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        allow_private: bool = False,
        max_connections: int = _MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        send: Sender = send_limited,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own_http = http is None
        self.http = http or build_async_client(
            allow_private=allow_private, max_connections=max_connections, transport=transport
        )
        self.breakers = breakers
        self.retry = retry.replace(retry_on=(_AttemptFailed,), reraise=True)
        self.allow_private = allow_private
        self._send = send
        self._wall_clock = wall_clock
        self._monotonic = monotonic

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self.http.aclose()

    def _plan(self, delivery: WebhookDelivery) -> DeliveryPlan:
        targets = (delivery.url, *delivery.fallback_urls)
        for url in targets:
            check_url(url, allow_private=self.allow_private)
            try:
                origin_of(url)
            except (httpx.InvalidURL, ValueError):
                raise TargetRefusedError("invalid_url", "target refused: the URL does not parse") from None
        return DeliveryPlan(
            message_id=delivery.message_id,
            event_type=delivery.event_type,
            label=describe_target(None, delivery.url),
            targets=targets,
            secret_id="",
            scheme=delivery.scheme,
            timeout_s=delivery.timeout_s,
            headers=dict(delivery.headers),
        )

    async def deliver(self, delivery: WebhookDelivery, *, raise_on_failure: bool = False) -> DeliveryResult:
        """Deliver ``delivery``: every attempt tries all targets; failed attempts are retried by the retry policy.

        A URL the network guard refuses raises ``hookline.exceptions.TargetRefusedError`` (a ValueError) before any
        request; 410 Gone and a refusal at connect time (a name resolving to a refused address) end the retries at
        once, with a falsy result.
        """
        plan = self._plan(delivery)
        signing = delivery.signing_secrets
        body = encode_payload(delivery.payload)
        attempts: list[AttemptResult] = []

        async def one_attempt() -> AttemptResult:
            active = signing.active(datetime.fromtimestamp(self._wall_clock(), tz=UTC))
            result = await attempt_delivery(
                plan,
                active,
                body,
                http=self.http,
                breakers=self.breakers,
                send=self._send,
                wall_clock=self._wall_clock,
                monotonic=self._monotonic,
            )
            attempts.append(result)
            if result.outcome is Outcome.FAILED:
                raise _AttemptFailed(result)
            return result

        try:
            await self.retry.call_async(one_attempt)
        except _AttemptFailed:
            pass
        finally:
            if self.breakers is not None:
                self.breakers.flush()
        result = DeliveryResult(delivery.message_id, tuple(attempts))
        if raise_on_failure and not result.delivered:
            raise DeliveryFailedError(result)
        return result


@dataclass
class _LoopClient:
    client: AsyncWebhookClient
    closer: AsyncGenerator[None]


class LazyWebhookClient:
    """``webhook_client``: ready to use, configured from the environment on first use, one pool per event loop.

    An httpx pool belongs to the event loop it was first used in, so every running loop gets its own
    ``AsyncWebhookClient`` (its own connections), closed when that loop shuts down (``asyncio.run`` ends): repeated
    ``asyncio.run(...)`` calls work, and connections are reused within each. The breakers are shared by all loops.
    """

    def __init__(self, *, environ: Mapping[str, str] | None = None, **options: Any) -> None:
        self._environ = environ
        self._options = dict(options)
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._breakers: BreakerRegistry | None = None
        self._lock = threading.Lock()

    def configure(self, *, environ: Mapping[str, str] | None = None, **options: Any) -> None:
        """Replace the environment and the ``AsyncWebhookClient`` options; takes effect for loops started after."""
        with self._lock:
            self._environ = environ
            self._options = dict(options)
            self._breakers = None

    async def deliver(self, delivery: WebhookDelivery, *, raise_on_failure: bool = False) -> DeliveryResult:
        """``AsyncWebhookClient.deliver`` on the running loop's client; the result is truthy when delivered."""
        client = await self.client()
        return await client.deliver(delivery, raise_on_failure=raise_on_failure)

    async def client(self) -> AsyncWebhookClient:
        """The running loop's client, built on first use in that loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is not None:
                return entry.client
            # Loops closed without shutting down their async generators never ran our closer: forget their clients.
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            client = self._build()
            entry = _LoopClient(client, self._close_with_loop(loop, client))
            self._clients[loop] = entry
        # The first step registers the generator with the loop, which closes it (and so the client) at shutdown.
        await anext(entry.closer)
        return client

    async def aclose(self) -> None:
        """Close the running loop's client now (the next delivery in this loop builds a new one)."""
        with self._lock:
            entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()  # its cleanup closes the client

    async def _close_with_loop(
        self, loop: asyncio.AbstractEventLoop, client: AsyncWebhookClient
    ) -> AsyncGenerator[None]:
        # Suspended for the loop's lifetime; asyncio.run() (loop.shutdown_asyncgens) resumes it to close the pool in
        # the loop that owns its connections.
        try:
            yield
        finally:
            with self._lock:
                if self._clients.get(loop) is not None and self._clients[loop].client is client:
                    del self._clients[loop]
            await client.aclose()

    def _build(self) -> AsyncWebhookClient:
        settings = Settings.from_env(self._environ)
        options: dict[str, Any] = {
            "allow_private": settings.allow_private_targets,
            "max_connections": settings.max_concurrency,
            **self._options,
        }
        if "breakers" not in options:
            if self._breakers is None:
                self._breakers = _breakers_for(settings)
            options["breakers"] = self._breakers
        return AsyncWebhookClient(**options)


def _breakers_for(settings: Settings) -> BreakerRegistry:
    """Fleet-wide breakers in BREAKER_TABLE when it is set (as the delivery function's), else this process's own."""
    from resilience.breaker import BreakerRegistry, DynamoDBStateStore, MemoryStateStore

    if settings.breaker_table:
        return BreakerRegistry(DynamoDBStateStore(settings.breaker_table))
    return BreakerRegistry(MemoryStateStore())


webhook_client = LazyWebhookClient()
"""The ready module-level client: ``success = await webhook_client.deliver(WebhookDelivery(url, payload, secret))``.

Configured on first use from the function environment's variables (docs/contracts.md "Function environment"):
``ALLOW_PRIVATE_TARGETS`` (loopback receivers), ``MAX_CONCURRENCY`` (connections per loop), ``BREAKER_TABLE``
(fleet-wide breakers; else in memory). Retries follow ``DEFAULT_RETRY``, in-process.
"""
