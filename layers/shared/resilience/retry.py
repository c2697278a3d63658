"""Retry with exponential backoff and jitter, an attempt/elapsed/deadline budget, and Retry-After, sync and async."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from resilience import _clock
from resilience.exceptions import ConfigurationError, RetryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from resilience._clock import AsyncSleep, Clock, Random, Sleep

__all__ = [
    "AttemptInfo",
    "Jitter",
    "RetryConfig",
    "RetryPolicy",
    "compute_delay",
    "lambda_deadline",
    "retry",
    "retry_after_of",
    "retry_with_fallback",
]

Jitter = Literal["full", "equal", "none"]
StopReason = Literal["max_attempts", "max_elapsed", "deadline"]
_JITTERS: frozenset[str] = frozenset({"full", "equal", "none"})


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What one finished attempt did; passed to ``on_attempt`` and ``before_sleep``."""

    attempt: int
    """1-based number of the attempt that just finished."""
    delay: float | None
    """Seconds the policy will sleep before the next attempt; None when no further attempt follows."""
    exception: BaseException | None
    """The error the attempt raised, or None if it returned."""
    elapsed: float
    """Seconds since the first attempt started, measured when this attempt finished."""
    result: Any = None
    """The value the attempt returned (None if it raised)."""

    @property
    def will_retry(self) -> bool:
        """True when another attempt follows this one."""
        return self.delay is not None


class _LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def lambda_deadline(context: _LambdaContext, *, margin_s: float = 1.0) -> Callable[[], float]:
    """A ``deadline`` callable: the Lambda invocation's remaining seconds minus a safety margin."""
    return lambda: context.get_remaining_time_in_millis() / 1000.0 - margin_s


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, how long and on what to retry. Immutable: derive variants with ``replace``."""

    max_attempts: int | None = 3
    """Total attempts including the first; None means unbounded (then max_elapsed or deadline is required)."""
    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Jitter = "full"
    max_elapsed: float | None = None
    """Total budget in seconds from the start of the first attempt; a retry that would start past it is not made."""
    deadline: Callable[[], float] | float | None = None
    """Callable returning the remaining seconds, or an absolute time on ``clock``; see ``_remaining``."""
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (Exception,)
    retry_if: Callable[[BaseException], bool] | None = None
    """Extra predicate on the error; an error is retried only if it matches ``retry_on`` and this returns True."""
    retry_if_result: Callable[[Any], bool] | None = None
    """Returns True for a result that should be retried as if it had failed."""
    respect_retry_after: bool = True
    cap_retry_after: bool = False
    """Cap a Retry-After hint at ``max_delay`` too (by default the server's hint wins over ``max_delay``)."""
    reraise: bool = False
    """On exhaustion re-raise the last error itself instead of RetryError."""
    on_attempt: Callable[[AttemptInfo], None] | None = field(default=None, compare=False)
    before_sleep: Callable[[AttemptInfo], None] | None = field(default=None, compare=False)
    clock: Clock = field(default=_clock.monotonic, compare=False, repr=False)
    sleep: Sleep = field(default=_clock.sleep, compare=False, repr=False)
    async_sleep: AsyncSleep = field(default=_clock.default_async_sleep, compare=False, repr=False)
    random: Random = field(default=_clock.default_random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.retry_on, type):
            object.__setattr__(self, "retry_on", (self.retry_on,))
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in self._retry_on):
            raise ConfigurationError("retry_on must be exception types")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be >= 1 (or None with max_elapsed/deadline)")
        if self.max_attempts is None and self.max_elapsed is None and self.deadline is None:
            raise ConfigurationError("an unbounded max_attempts needs max_elapsed or deadline")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ConfigurationError("delays must be >= 0")
        if self.multiplier < 1:
            raise ConfigurationError("multiplier must be >= 1")
        if self.jitter not in _JITTERS:
            raise ConfigurationError(f"jitter must be one of {sorted(_JITTERS)}")
        if self.max_elapsed is not None and self.max_elapsed <= 0:
            raise ConfigurationError("max_elapsed must be > 0")

    @property
    def _retry_on(self) -> tuple[type[BaseException], ...]:
        return cast("tuple[type[BaseException], ...]", self.retry_on)

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed, e.g. ``policy.replace(deadline=lambda_deadline(context))``."""
        return dataclasses.replace(self, **changes)

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether this error may be retried (``retry_on`` and ``retry_if`` both agree)."""
        if not isinstance(exc, self._retry_on):
            return False
        return self.retry_if is None or bool(self.retry_if(exc))

    def delay_for(self, attempt: int, *, retry_after: float | None = None) -> float:
        """The sleep after failed attempt ``attempt``, with this policy's jitter source."""
        return compute_delay(self, attempt, retry_after=retry_after, random=self.random)

    def call[R](self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Call ``fn(*args, **kwargs)`` under this policy (sync)."""
        run = _Run(self)
        while True:
            run.begin()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                delay = run.after_error(exc)
            else:
                if inspect.isawaitable(result):
                    # Retrying the creation of a coroutine would retry nothing; the caller meant call_async.
                    close = getattr(result, "close", None)
                    if callable(close):
                        close()
                    raise ConfigurationError(f"{fn!r} returned an awaitable: use call_async")
                planned = run.after_result(result)
                if planned is None:
                    return result
                delay = planned
            self.sleep(delay)

    async def call_async[R](self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R:
        """Await ``fn(*args, **kwargs)`` under this policy, sleeping with ``async_sleep``."""
        run = _Run(self)
        while True:
            run.begin()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                delay = run.after_error(exc)
            else:
                planned = run.after_result(result)
                if planned is None:
                    return result
                delay = planned
            await self.async_sleep(delay)

    def wrap[**P, R](self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async callable so each call runs under this policy."""
        if inspect.iscoroutinefunction(fn):
            async_fn = cast("Callable[..., Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(async_fn, *args, **kwargs)

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return self.call(fn, *args, **kwargs)

        return wrapper


RetryConfig = RetryPolicy
"""Alias kept for the seed's ``@retry(config=RetryConfig(...))`` spelling."""


def retry_after_of(exc: BaseException) -> float | None:
    """The Retry-After hint an error carries as ``retry_after`` (seconds or timedelta), if any."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def compute_delay(
    policy: RetryPolicy, attempt: int, *, retry_after: float | None = None, random: Random | None = None
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): jittered capped backoff, then Retry-After.

    Backoff is ``min(max_delay, initial_delay * multiplier ** (attempt - 1))``; "full" jitter draws uniformly from
    [0, backoff), "equal" from [backoff/2, backoff), "none" uses backoff. A Retry-After hint raises the result to at
    least the hint; it is capped at ``max_delay`` only when ``cap_retry_after`` is set.
    """
    if attempt < 1:
        raise ConfigurationError("attempt numbers start at 1")
    draw = policy.random if random is None else random
    try:
        backoff = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (attempt - 1))
    except OverflowError:
        # multiplier ** n overflows a float long after it has passed any sensible max_delay.
        backoff = policy.max_delay
    if policy.jitter == "full":
        delay = draw() * backoff
    elif policy.jitter == "equal":
        delay = backoff / 2 + draw() * backoff / 2
    else:
        delay = backoff
    if retry_after is not None and policy.respect_retry_after:
        delay = max(delay, retry_after)
        if policy.cap_retry_after:
            delay = min(delay, policy.max_delay)
    return delay


class _Run:
    """The bookkeeping of one retried call, shared by the sync and async loops."""

    __slots__ = ("attempt", "policy", "started")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self.started = policy.clock()

    def begin(self) -> None:
        self.attempt += 1

    def after_error(self, exc: Exception) -> float:
        """The delay before the next attempt, or raise (the error itself, or RetryError)."""
        policy = self.policy
        elapsed = policy.clock() - self.started
        if not policy.is_retryable(exc):
            self._notify(AttemptInfo(self.attempt, None, exc, elapsed))
            raise exc
        delay, reason = self._plan(elapsed, retry_after_of(exc))
        info = AttemptInfo(self.attempt, delay, exc, elapsed)
        self._notify(info)
        if reason is not None:
            if policy.reraise:
                raise exc
            raise RetryError(
                f"gave up after {self.attempt} attempt(s) ({reason}): {type(exc).__name__}: {exc}",
                attempts=self.attempt,
                last_exception=exc,
                reason=reason,
            ) from exc
        self._before_sleep(info)
        return cast("float", delay)

    def after_result(self, result: object) -> float | None:
        """None to return ``result``; else the delay before the next attempt; or raise RetryError."""
        policy = self.policy
        elapsed = policy.clock() - self.started
        if policy.retry_if_result is None or not policy.retry_if_result(result):
            self._notify(AttemptInfo(self.attempt, None, None, elapsed, result))
            return None
        delay, reason = self._plan(elapsed, None)
        info = AttemptInfo(self.attempt, delay, None, elapsed, result)
        self._notify(info)
        if reason is not None:
            raise RetryError(
                f"gave up after {self.attempt} attempt(s) ({reason}): result {result!r} was rejected",
                attempts=self.attempt,
                reason=reason,
                last_result=result,
            )
        self._before_sleep(info)
        return cast("float", delay)

    def _plan(self, elapsed: float, retry_after: float | None) -> tuple[float | None, StopReason | None]:
        policy = self.policy
        if policy.max_attempts is not None and self.attempt >= policy.max_attempts:
            return None, "max_attempts"
        delay = policy.delay_for(self.attempt, retry_after=retry_after)
        # A retry is only started if it would begin with some budget left; we never start one that is doomed.
        if policy.max_elapsed is not None and elapsed + delay >= policy.max_elapsed:
            return None, "max_elapsed"
        remaining = self._remaining()
        if remaining is not None and delay >= remaining:
            return None, "deadline"
        return delay, None

    def _remaining(self) -> float | None:
        deadline = self.policy.deadline
        if deadline is None:
            return None
        if callable(deadline):
            return float(deadline())
        return deadline - self.policy.clock()

    def _notify(self, info: AttemptInfo) -> None:
        if self.policy.on_attempt is not None:
            self.policy.on_attempt(info)

    def _before_sleep(self, info: AttemptInfo) -> None:
        if self.policy.before_sleep is not None:
            self.policy.before_sleep(info)


def retry[**P, R](
    policy: RetryPolicy | None = None, /, *, config: RetryPolicy | None = None, **overrides: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator retrying a sync or async callable: ``@retry(policy)``, ``@retry(config=p)``, ``@retry(**fields)``."""
    if policy is not None and config is not None:
        raise ConfigurationError("pass the policy positionally or as config=, not both")
    chosen = policy if policy is not None else config if config is not None else RetryPolicy()
    if overrides:
        chosen = chosen.replace(**overrides)
    return chosen.wrap


def retry_with_fallback[**P, R](
    fallback: Callable[..., Any],
    policy: RetryPolicy | None = None,
    /,
    *,
    fallback_on: tuple[type[BaseException], ...] = (Exception,),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: retry the primary under ``policy``; if it still fails, call ``fallback`` with the same arguments.

    ``fallback_on`` filters the error that escapes the retry loop (RetryError after exhaustion, the error itself if
    it was not retryable or ``reraise`` is set); other errors propagate. Async primaries may have a sync or async
    fallback.
    """
    chosen = policy if policy is not None else RetryPolicy()

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            async_fn = cast("Callable[..., Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await chosen.call_async(async_fn, *args, **kwargs)
                except fallback_on:
                    value = fallback(*args, **kwargs)
                    return await value if inspect.isawaitable(value) else value

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return chosen.call(fn, *args, **kwargs)
            except fallback_on:
                return cast("R", fallback(*args, **kwargs))

        return wrapper

    return decorate
