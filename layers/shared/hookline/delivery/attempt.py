"""One delivery attempt: every target in order through the layer's fallback chain, each behind its origin's breaker.

Within an attempt a target fails over to the next on any non-2xx status, a timeout or a connection error; an open
breaker skips its target without a request. Three answers end the attempt at once instead: 410 Gone (the
subscription is over), a network-guard refusal at connect time (a configuration problem, never a transient one) and
the Lambda deadline (no request may outlive the invocation).

What the breaker counts: timeouts, connection errors, 5xx, 408 and 429 are failures; 2xx, 410 and other 3xx/4xx
answers are successes (the receiver is up, it just said no); a refusal or a request cut short by the deadline counts
nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from hookline.delivery.targets import origin_of
from hookline.exceptions import RequestTimeoutError, TargetError, TargetRefusedError
from hookline.http import DEFAULT_USER_AGENT, send_limited
from hookline.signing import signature_headers
from resilience import CircuitOpenError, FallbackExhaustedError
from resilience.fallback import Alternative, FallbackChain

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import httpx

    from hookline.delivery.targets import DeliveryPlan
    from hookline.http import HttpResult
    from resilience.breaker import BreakerRegistry, CircuitBreaker, Permit

__all__ = [
    "MIN_REQUEST_S",
    "USER_AGENT",
    "AttemptResult",
    "Outcome",
    "Sender",
    "TargetOutcome",
    "attempt_delivery",
    "build_headers",
]

USER_AGENT = DEFAULT_USER_AGENT  # defined once, in hookline.http
MIN_REQUEST_S = 1.0
"""A target is not started with less than this much time left before the deadline."""
_BREAKER_FAILURE_STATUSES = frozenset({408, 429})
_MAX_ERROR_BODY = 200

type Sender = Callable[..., Awaitable[HttpResult]]
"""``hookline.http.send_limited`` or a test double with its signature."""


class Outcome(StrEnum):
    """How an attempt ended."""

    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"
    REFUSED = "refused"
    OUT_OF_TIME = "out_of_time"


@dataclass(frozen=True)
class TargetOutcome:
    """What happened at one target during the attempt."""

    index: int
    origin: str
    status: Literal["served", "failed", "skipped", "gone", "refused", "out_of_time"]
    http_status: int | None = None
    error: str = ""
    latency_ms: float | None = None
    retry_after_s: float | None = None
    """The receiver's Retry-After, when it sent one."""
    breaker_retry_after_s: float | None = None
    """For a skipped target: seconds until its breaker lets a call through."""


@dataclass(frozen=True)
class AttemptResult:
    """The result of one attempt over all targets."""

    outcome: Outcome
    targets: tuple[TargetOutcome, ...]
    served_by: int | None = None

    @property
    def requests(self) -> tuple[TargetOutcome, ...]:
        """The targets that were actually sent a request."""
        return tuple(target for target in self.targets if target.latency_ms is not None)

    @property
    def used_fallback(self) -> bool:
        """Whether a fallback URL (not the primary) delivered."""
        return self.served_by is not None and self.served_by > 0

    @property
    def all_skipped(self) -> bool:
        """Whether every target was skipped by an open breaker (no request at all)."""
        return bool(self.targets) and all(target.status == "skipped" for target in self.targets)

    @property
    def skipped(self) -> int:
        """How many targets an open breaker skipped."""
        return sum(1 for target in self.targets if target.status == "skipped")

    @property
    def last_status(self) -> int | None:
        """The last HTTP status any target answered with."""
        return next((target.http_status for target in reversed(self.targets) if target.http_status), None)

    @property
    def last_error(self) -> str:
        """The last error, one line, naming only origins (never paths, queries or secrets)."""
        return next((target.error for target in reversed(self.targets) if target.error), "")

    @property
    def retry_after_s(self) -> float | None:
        """The longest Retry-After any receiver sent in this attempt."""
        hints = [target.retry_after_s for target in self.targets if target.retry_after_s is not None]
        return max(hints) if hints else None

    @property
    def breaker_retry_after_s(self) -> float | None:
        """When every target was skipped: the soonest any of their breakers lets a call through."""
        if not self.all_skipped:
            return None
        waits = [target.breaker_retry_after_s for target in self.targets if target.breaker_retry_after_s is not None]
        return min(waits) if waits else None


class _Stop(Exception):
    """Ends the chain without trying further targets (410, refusal, deadline)."""


class _TargetFailed(Exception):
    """The target did not deliver; the chain moves on to the next one."""


class _Gate:
    """Hands the chain a breaker whose bookkeeping follows this module's rules (see the module docstring).

    ``allow()`` keeps the breaker's permit (it may be a half-open probe lease) and returns None, so the chain reports
    outcomes here, where the target's verdict decides what the permit is told.
    """

    def __init__(self, breaker: CircuitBreaker, log: Callable[[TargetOutcome], None], index: int, origin: str) -> None:
        self.breaker = breaker
        self.verdict: Literal["failure", "healthy", "neutral"] = "neutral"
        self._permit: Permit | None = None
        self._log = log
        self._index = index
        self._origin = origin

    def allow(self) -> None:
        try:
            self._permit = self.breaker.allow()
        except CircuitOpenError as error:
            # Logged here because the chain keeps its own outcomes to itself when an attempt ends early.
            self._log(
                TargetOutcome(
                    self._index, self._origin, "skipped", error=str(error), breaker_retry_after_s=error.retry_after
                )
            )
            raise

    def record_success(self, latency_s: float) -> None:
        self._report(latency_s, "ok")

    def record_failure(self, latency_s: float, *, error: str = "error") -> None:
        self._report(latency_s, error)

    def _report(self, latency_s: float, error: str) -> None:
        # The chain's own success/failure split is replaced by the verdict the request set.
        recorder = self._permit or self.breaker
        if self.verdict == "failure":
            recorder.record_failure(latency_s, error=error)
        elif self.verdict == "healthy":
            recorder.record_success(latency_s)


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


class _TargetCall:
    """The alternative for one target: sign and POST once, turn the answer into a TargetOutcome."""

    def __init__(self, index: int, url: str, run: _Run) -> None:
        self.index = index
        self.url = url
        self.origin = origin_of(url)
        self.run = run
        breakers = run.breakers
        self.gate = _Gate(breakers.get(self.origin), run.log.append, index, self.origin) if breakers else None

    def _finish(self, outcome: TargetOutcome, verdict: Literal["failure", "healthy", "neutral"]) -> TargetOutcome:
        if self.gate is not None:
            self.gate.verdict = verdict
        self.run.log.append(outcome)
        return outcome

    def _outcome(self, status: str, **fields: object) -> TargetOutcome:
        return TargetOutcome(self.index, self.origin, status, **fields)  # type: ignore[arg-type]

    async def __call__(self) -> TargetOutcome:
        run = self.run
        timeout_s = run.plan.timeout_s
        clipped = False
        if run.remaining_s is not None:
            left = run.remaining_s()
            if left < MIN_REQUEST_S:
                self._finish(self._outcome("out_of_time", error="no time left before the deadline"), "neutral")
                raise _Stop
            if left < timeout_s:
                timeout_s, clipped = left, True
        headers = build_headers(run.plan, run.secrets, int(run.wall_clock()), run.body)
        started = run.monotonic()
        try:
            result = await run.send(
                run.http,
                "POST",
                self.url,
                content=run.body,
                headers=headers,
                timeout_s=timeout_s,
                max_body_bytes=run.max_response_bytes,
            )
        except TargetRefusedError as error:
            self._finish(self._outcome("refused", error=str(error)), "neutral")
            raise _Stop from None
        except TargetError as error:
            latency_ms = (run.monotonic() - started) * 1000
            if clipped and isinstance(error, RequestTimeoutError):
                detail = f"{error} (cut short by the invocation deadline)"
                self._finish(self._outcome("out_of_time", error=detail, latency_ms=latency_ms), "neutral")
                raise _Stop from None
            self._finish(self._outcome("failed", error=str(error), latency_ms=latency_ms), "failure")
            raise _TargetFailed from None
        return self._answered(result)

    def _answered(self, result: HttpResult) -> TargetOutcome:
        status = result.status_code
        if 200 <= status < 300:
            return self._finish(self._outcome("served", http_status=status, latency_ms=result.latency_ms), "healthy")
        error_text = _describe_status(result, self.origin)
        if status == 410:
            gone = self._outcome("gone", http_status=status, error=error_text, latency_ms=result.latency_ms)
            self._finish(gone, "healthy")
            raise _Stop
        failed = self._outcome(
            "failed",
            http_status=status,
            error=error_text,
            latency_ms=result.latency_ms,
            retry_after_s=result.retry_after_s,
        )
        counts = status >= 500 or status in _BREAKER_FAILURE_STATUSES
        self._finish(failed, "failure" if counts else "healthy")
        raise _TargetFailed


@dataclass
class _Run:
    """What every target of one attempt shares."""

    plan: DeliveryPlan
    secrets: tuple[str, ...]
    body: bytes
    http: httpx.AsyncClient
    breakers: BreakerRegistry | None
    send: Sender
    wall_clock: Callable[[], float]
    monotonic: Callable[[], float]
    remaining_s: Callable[[], float] | None
    max_response_bytes: int
    log: list[TargetOutcome] = field(default_factory=list)


async def attempt_delivery(
    plan: DeliveryPlan,
    secrets: Sequence[str],
    body: bytes,
    *,
    http: httpx.AsyncClient,
    breakers: BreakerRegistry | None = None,
    send: Sender = send_limited,
    wall_clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    remaining_s: Callable[[], float] | None = None,
    max_response_bytes: int = 65536,
) -> AttemptResult:
    """Try the plan's targets in order once; sign each request with ``secrets`` over the same ``body`` bytes."""
    run = _Run(plan, tuple(secrets), body, http, breakers, send, wall_clock, monotonic, remaining_s, max_response_bytes)
    calls = [_TargetCall(index, url, run) for index, url in enumerate(plan.targets)]
    chain = FallbackChain(
        [Alternative(name=f"{call.index}:{call.origin}", fn=call, breaker=call.gate) for call in calls],
        should_fallback=lambda error: isinstance(error, _TargetFailed),
        clock=monotonic,
    )
    log = run.log
    try:
        served = await chain.run_async()
    except _Stop:
        last = log[-1]
        if last.status == "gone":
            return AttemptResult(Outcome.GONE, tuple(log))
        if last.status == "refused":
            return AttemptResult(Outcome.REFUSED, tuple(log))
        # Out of time: a failed attempt if some target was tried, else one that did not happen at all.
        tried = any(target.status in ("failed", "skipped") for target in log)
        return AttemptResult(Outcome.FAILED if tried else Outcome.OUT_OF_TIME, tuple(log))
    except FallbackExhaustedError:
        return AttemptResult(Outcome.FAILED, tuple(log))
    return AttemptResult(Outcome.DELIVERED, tuple(log), served_by=served.index)
