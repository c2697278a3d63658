"""In-process webhook delivery (seed parity): a ``WebhookDelivery`` object and an ``AsyncWebhookClient``.

``deliver()`` signs (Standard Webhooks, or the github/stripe schemes), tries the URL and its fallbacks in order behind
per-origin breakers, and retries the whole attempt with resilience's retry policy (Retry-After honoured). It runs
the same code as the delivery function (``attempt_delivery``); only the retry loop differs: in-process sleeps here,
SQS visibility there.

    async with AsyncWebhookClient() as client:
        result = await client.deliver(WebhookDelivery(url, {"amount": 5}, secret, fallback_urls=[backup]))
        assert result.delivered
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from hookline.delivery.attempt import AttemptResult, Outcome, attempt_delivery
from hookline.delivery.deadletter import describe_target
from hookline.delivery.targets import DeliveryPlan, check_targets
from hookline.exceptions import HooklineError
from hookline.http import build_async_client, send_limited
from hookline.messages import EVENT_TYPE_PATTERN, ID_PATTERN, encode_payload
from hookline.producer import new_message_id
from hookline.registry import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from hookline.signing import SigningSecrets, parse_secret_string
from resilience.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

    import httpx

    from hookline.delivery.attempt import Sender
    from hookline.registry import Scheme
    from resilience.breaker import BreakerRegistry

__all__ = ["DEFAULT_RETRY", "AsyncWebhookClient", "DeliveryFailedError", "DeliveryResult", "WebhookDelivery"]

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
        import re

        if self.id is None:
            # Fixed once, so every attempt (and every retry) carries the same webhook-id.
            object.__setattr__(self, "id", new_message_id())
        if not re.search(ID_PATTERN, str(self.id)):
            raise ValueError(f"id must match {ID_PATTERN}")
        if not re.search(EVENT_TYPE_PATTERN, self.event_type):
            raise ValueError(f"event_type must match {EVENT_TYPE_PATTERN}")
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S:g}]")
        object.__setattr__(self, "fallback_urls", tuple(self.fallback_urls))

    @property
    def message_id(self) -> str:
        """The webhook-id (always set after construction)."""
        return str(self.id)

    @property
    def signing_secrets(self) -> SigningSecrets:
        """The secret as SigningSecrets (a string is parsed: bare ``whsec_`` or the rotation JSON)."""
        return self.secret if isinstance(self.secret, SigningSecrets) else parse_secret_string(self.secret)


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

    def __init__(
        self,
        *,
        http: httpx.AsyncClient | None = None,
        breakers: BreakerRegistry | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        send: Sender = send_limited,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own_http = http is None
        self.http = http or build_async_client(allow_private=allow_private, transport=transport)
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
        check_targets(targets, allow_private=self.allow_private)
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

        A refused URL raises ``PlanError`` (a ValueError) before any request; 410 Gone and a connect-time refusal end
        the retries at once.
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
