"""One delivery attempt: a plain loop over the targets, each one admitted by a gate and reported back to it.

Within an attempt a target fails over to the next on any non-2xx status, a timeout or a connection error. A gate
(breaker, pacing, lane; see ``hookline.delivery.gates``) may refuse a target without a request: the loop then moves
on to the next one. Three answers end the attempt at once: 410 Gone (the subscription is over), a network-guard
refusal (a configuration problem, never a transient one) and the Lambda deadline (no request may outlive the
invocation).

What a gate is told (``verdict``): timeouts, connection errors, 5xx and 408 are failures; 429 is throttling (the
receiver is alive and asks for less: pacing slows down, the breaker counts nothing); 2xx, 410 and other 3xx/4xx
answers are healthy (the receiver is up, it just said no); a refusal, a request cut short by the deadline and a
request cut by the lane's budget are neutral.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

from hookline.delivery.targets import origin_of
from hookline.exceptions import RequestTimeoutError, TargetError, TargetRefusedError
from hookline.http import DEFAULT_USER_AGENT, send_limited
from hookline.signing import signature_headers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import httpx

    from hookline.delivery.targets import DeliveryPlan
    from hookline.http import HttpResult
    from resilience.breaker import BreakerRegistry

__all__ = [
    "MIN_REQUEST_S",
    "USER_AGENT",
    "AttemptResult",
    "Gate",
    "Outcome",
    "Refusal",
    "Sender",
    "Target",
    "TargetOutcome",
    "Verdict",
    "attempt_delivery",
    "build_headers",
    "verdict_of",
]

USER_AGENT = DEFAULT_USER_AGENT  # defined once, in hookline.http
MIN_REQUEST_S = 1.0
"""A target is not started with less than this much time left before the deadline."""
_MAX_ERROR_BODY = 200

type Sender = Callable[..., Awaitable[HttpResult]]
"""``hookline.http.send_limited`` or a test double with its signature."""

type TargetStatus = Literal["served", "failed", "skipped", "paced", "slow", "gone", "refused", "out_of_time"]
"""``skipped``: refused by an open breaker; ``paced``: over the endpoint's pace; ``slow``: cut by the lane's request
budget, or refused because the origin is marked slow (the record belongs to the slow lane)."""


class Outcome(StrEnum):
    """How an attempt ended."""

    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"
    REFUSED = "refused"
    OUT_OF_TIME = "out_of_time"


class Verdict(StrEnum):
    """What a target's answer says about the receiver (what the gates are told)."""

    HEALTHY = "healthy"
    FAILURE = "failure"
    THROTTLED = "throttled"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Target:
    """One target of a plan, as a gate sees it."""

    index: int
    url: str
    origin: str
    plan: DeliveryPlan


@dataclass(frozen=True)
class Refusal:
    """A gate's no: the target is not sent a request now; ``retry_after_s`` says when it may be."""

    status: Literal["skipped", "paced", "slow"]
    reason: str
    retry_after_s: float | None = None


class Gate(Protocol):
    """Admits targets (returning a ticket, or a Refusal) and hears the outcome of every admitted one."""

    async def enter(self, target: Target) -> object:
        """A ticket to pass back to ``leave``, or a ``Refusal``."""
        ...

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """The outcome of an admitted target (called exactly once per ticket)."""
        ...


@dataclass(frozen=True)
class TargetOutcome:
    """What happened at one target during the attempt."""

    index: int
    origin: str
    status: TargetStatus
    http_status: int | None = None
    error: str = ""
    latency_ms: float | None = None
    retry_after_s: float | None = None
    """The receiver's Retry-After, or for a refused target: seconds until its gate may let it through."""

    @property
    def requested(self) -> bool:
        """Whether a request was sent (and timed)."""
        return self.latency_ms is not None

    @property
    def real(self) -> bool:
        """Whether this was a real try of the receiver: a request that was not cut by the lane's budget."""
        return self.requested and self.status != "slow"


def verdict_of(outcome: TargetOutcome) -> Verdict:
    """The verdict the gates hear for ``outcome`` (see the module docstring)."""
    if outcome.status in {"served", "gone"}:
        return Verdict.HEALTHY
    if outcome.status != "failed":
        return Verdict.NEUTRAL
    status = outcome.http_status
    if status is None or status >= 500 or status == 408:
        return Verdict.FAILURE
    if status == 429:
        return Verdict.THROTTLED
    return Verdict.HEALTHY


@dataclass(frozen=True)
class AttemptResult:
    """The result of one attempt over all targets."""

    outcome: Outcome
    targets: tuple[TargetOutcome, ...]
    served_by: int | None = None

    @property
    def requests(self) -> tuple[TargetOutcome, ...]:
        """The targets that were actually sent a request."""
        return tuple(target for target in self.targets if target.requested)

    @property
    def real(self) -> bool:
        """Whether the attempt tried a receiver for real (it then consumes an attempt of the retry budget)."""
        return any(target.real for target in self.targets)

    @property
    def used_fallback(self) -> bool:
        """Whether a fallback URL (not the primary) delivered."""
        return self.served_by is not None and self.served_by > 0

    def count(self, status: TargetStatus) -> int:
        """How many targets ended with ``status``."""
        return sum(1 for target in self.targets if target.status == status)

    @property
    def skipped(self) -> int:
        """How many targets an open breaker skipped."""
        return self.count("skipped")

    @property
    def all_skipped(self) -> bool:
        """Whether every target was skipped by an open breaker (no request at all)."""
        return bool(self.targets) and self.skipped == len(self.targets)

    @property
    def last_real(self) -> TargetOutcome | None:
        """The last target tried for real (its status and error are what a dead letter reports)."""
        return next((target for target in reversed(self.targets) if target.real), None)

    @property
    def last_status(self) -> int | None:
        """The HTTP status of the last real answer (None when that target was refused, reset or timed out).

        Status and error describe the same target (docs/contracts.md: "the last real answer"): a primary's 503
        followed by a fallback's refused connection reports the refusal, not a 503 beside the fallback's error."""
        last = self.last_real
        return last.http_status if last is not None else None

    @property
    def last_error(self) -> str:
        """The last real answer's error, one line, naming only origins (never paths, queries or secrets); with no
        real try, the last skip's reason."""
        last = self.last_real
        if last is not None:
            return last.error
        return next((target.error for target in reversed(self.targets) if target.error), "")

    @property
    def retry_after_s(self) -> float | None:
        """The longest Retry-After any receiver sent in this attempt."""
        hints = [t.retry_after_s for t in self.targets if t.requested and t.retry_after_s is not None]
        return max(hints) if hints else None

    def soonest(self, status: TargetStatus) -> float | None:
        """For targets refused with ``status``: the soonest their gate lets a call through."""
        waits = [t.retry_after_s for t in self.targets if t.status == status and t.retry_after_s is not None]
        return min(waits) if waits else None

    @property
    def breaker_retry_after_s(self) -> float | None:
        """When every target was skipped: the soonest any of their breakers lets a call through."""
        return self.soonest("skipped") if self.all_skipped else None


def build_headers(plan: DeliveryPlan, secrets: Sequence[str], timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers: endpoint static headers, then hookline's own (which static headers cannot override)."""
    headers = dict(plan.headers)
    headers["content-type"] = "application/json"
    headers["user-agent"] = USER_AGENT
    headers.update(signature_headers(plan.scheme, tuple(secrets), plan.message_id, timestamp, body))
    return headers


def _describe_status(result: HttpResult, origin: str) -> str:
    snippet = result.body[:_MAX_ERROR_BODY].decode("utf-8", "replace").strip() if result.body else ""
    text = f"HTTP {result.status_code} from {origin}"
    return f"{text}: {snippet}" if snippet else text


@dataclass(frozen=True)
class _Request:
    """What every request of one attempt shares."""

    plan: DeliveryPlan
    secrets: tuple[str, ...]
    body: bytes
    http: httpx.AsyncClient
    send: Sender
    wall_clock: Callable[[], float]
    monotonic: Callable[[], float]
    remaining_s: Callable[[], float] | None
    max_response_bytes: int
    budget_s: float | None

    async def __call__(self, target: Target) -> TargetOutcome:
        """Sign and POST once to ``target``; turn the answer (or the error) into a TargetOutcome."""
        index, origin = target.index, target.origin
        timeout_s, limit = self.plan.timeout_s, "timeout"
        if self.budget_s is not None and self.budget_s < timeout_s:
            timeout_s, limit = self.budget_s, "budget"
        if self.remaining_s is not None:
            left = self.remaining_s()
            if left < MIN_REQUEST_S:
                return TargetOutcome(index, origin, "out_of_time", error="no time left before the deadline")
            if left < timeout_s:
                timeout_s, limit = left, "deadline"
        headers = build_headers(self.plan, self.secrets, int(self.wall_clock()), self.body)
        started = self.monotonic()
        try:
            result = await self.send(
                self.http,
                "POST",
                target.url,
                content=self.body,
                headers=headers,
                timeout_s=timeout_s,
                max_body_bytes=self.max_response_bytes,
            )
        except TargetRefusedError as error:
            return TargetOutcome(index, origin, "refused", error=str(error))
        except TargetError as error:
            latency_ms = (self.monotonic() - started) * 1000
            if isinstance(error, RequestTimeoutError) and limit == "deadline":
                detail = f"{error} (cut short by the invocation deadline)"
                return TargetOutcome(index, origin, "out_of_time", error=detail, latency_ms=latency_ms)
            if isinstance(error, RequestTimeoutError) and limit == "budget":
                detail = f"no answer from {origin} within the lane's {timeout_s:g}s budget"
                return TargetOutcome(index, origin, "slow", error=detail, latency_ms=latency_ms)
            return TargetOutcome(index, origin, "failed", error=str(error), latency_ms=latency_ms)
        return _answered(target, result)


def _answered(target: Target, result: HttpResult) -> TargetOutcome:
    status = result.status_code
    index, origin, latency = target.index, target.origin, result.latency_ms
    if 200 <= status < 300:
        return TargetOutcome(index, origin, "served", http_status=status, latency_ms=latency)
    error = _describe_status(result, origin)
    if status == 410:
        return TargetOutcome(index, origin, "gone", http_status=status, error=error, latency_ms=latency)
    return TargetOutcome(
        index, origin, "failed", http_status=status, error=error, latency_ms=latency, retry_after_s=result.retry_after_s
    )


_ENDS_ATTEMPT = {"served": Outcome.DELIVERED, "gone": Outcome.GONE, "refused": Outcome.REFUSED}


async def attempt_delivery(  # noqa: PLR0913 - what to send, then injected seams (keywords with defaults)
    plan: DeliveryPlan,
    secrets: Sequence[str],
    body: bytes,
    *,
    http: httpx.AsyncClient,
    gate: Gate | None = None,
    breakers: BreakerRegistry | None = None,
    send: Sender = send_limited,
    wall_clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    remaining_s: Callable[[], float] | None = None,
    max_response_bytes: int = 65536,
    budget_s: float | None = None,
) -> AttemptResult:
    """Try the plan's targets in order once; sign each request with ``secrets`` over the same ``body`` bytes.

    ``gate`` admits each target (``breakers`` alone is shorthand for a ``BreakerGate``); ``budget_s`` cuts a request
    that takes longer (the fast lane's budget: the record then belongs to the slow lane).
    """
    if gate is None and breakers is not None:
        from hookline.delivery.gates import BreakerGate

        gate = BreakerGate(breakers)
    request = _Request(
        plan, tuple(secrets), body, http, send, wall_clock, monotonic, remaining_s, max_response_bytes, budget_s
    )
    outcomes: list[TargetOutcome] = []
    for index, url in enumerate(plan.targets):
        target = Target(index, url, origin_of(url), plan)
        ticket = await gate.enter(target) if gate is not None else None
        if isinstance(ticket, Refusal):
            wait = ticket.retry_after_s
            outcomes.append(TargetOutcome(index, target.origin, ticket.status, error=ticket.reason, retry_after_s=wait))
            continue
        outcome = await request(target)
        if gate is not None:
            await gate.leave(target, ticket, outcome)
        outcomes.append(outcome)
        if outcome.status in _ENDS_ATTEMPT:
            served_by = index if outcome.status == "served" else None
            return AttemptResult(_ENDS_ATTEMPT[outcome.status], tuple(outcomes), served_by=served_by)
        if outcome.status == "out_of_time":
            # A failed attempt if some target was tried or refused, else one that did not happen at all.
            tried = len(outcomes) > 1
            return AttemptResult(Outcome.FAILED if tried else Outcome.OUT_OF_TIME, tuple(outcomes))
    return AttemptResult(Outcome.FAILED, tuple(outcomes))
