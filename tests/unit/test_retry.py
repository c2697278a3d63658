"""Unit tests for resilience.retry: budgets, backoff, jitter, Retry-After, predicates, hooks, sync/async parity."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from resilience import CircuitOpenError, ConfigurationError, RetryError
from resilience.retry import (
    AttemptInfo,
    RetryConfig,
    RetryPolicy,
    compute_delay,
    lambda_deadline,
    retry,
    retry_after_of,
    retry_with_fallback,
)
from tests.support.timefakes import FakeClock, FakeRandom

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class Flaky:
    """Raises or returns the scripted outcomes in turn; optionally takes time on the fake clock per call."""

    def __init__(self, *outcomes: object, clock: FakeClock | None = None, duration: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.clock = clock
        self.duration = duration

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.calls.append((args, kwargs))
        if self.clock is not None:
            self.clock.advance(self.duration)
        outcome = self.outcomes[min(len(self.calls), len(self.outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class HttpError(Exception):
    """Like the HTTP errors hookline raises: may carry a Retry-After in seconds."""

    def __init__(self, status: int, retry_after: object = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


type Runner = Callable[..., Awaitable[Any]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


def make_policy(clock: FakeClock, **fields: Any) -> RetryPolicy:
    """A policy wired to the fake clock; jitter off unless a test asks for it, so delays are exact."""
    base: dict[str, Any] = {
        "jitter": "none",
        "clock": clock,
        "sleep": clock.sleep,
        "async_sleep": clock.async_sleep,
        "random": FakeRandom([0.5]),
    }
    base.update(fields)
    return RetryPolicy(**base)


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run ``fn`` under a policy through ``call`` (sync) or ``call_async`` (async wrapper around the same fn)."""
    mode = request.param

    async def runner(policy: RetryPolicy, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if mode == "sync":
            return policy.call(fn, *args, **kwargs)

        async def async_fn(*a: Any, **kw: Any) -> Any:
            await asyncio.sleep(0)  # a real suspension point, so the async path is exercised
            return fn(*a, **kw)

        return await policy.call_async(async_fn, *args, **kwargs)

    return runner


# --- attempts and exhaustion -------------------------------------------------------------------------------------


async def test_succeeds_after_transient_failures(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(OSError("a"), OSError("b"), "ok")
    result = await run(make_policy(clock, max_attempts=5, initial_delay=1.0), fn, 7, key="v")
    assert result == "ok"
    assert fn.calls == [((7,), {"key": "v"})] * 3
    assert clock.sleeps == [1.0, 2.0]


async def test_exhaustion_raises_retry_error_chained_from_last_error(run: Runner, clock: FakeClock) -> None:
    errors = [OSError(f"boom {i}") for i in range(4)]
    fn = Flaky(*errors)
    with pytest.raises(RetryError) as info:
        await run(make_policy(clock, max_attempts=4), fn)
    assert len(fn.calls) == 4
    assert info.value.attempts == 4
    assert info.value.reason == "max_attempts"
    assert info.value.last_exception is errors[3]
    assert info.value.__cause__ is errors[3]
    assert "boom 3" in str(info.value)
    assert clock.sleeps == [1.0, 2.0, 4.0]  # no sleep after the last attempt


async def test_reraise_raises_the_last_error_itself(run: Runner, clock: FakeClock) -> None:
    errors = [OSError("first"), OSError("second")]
    with pytest.raises(OSError) as info:
        await run(make_policy(clock, max_attempts=2, reraise=True), Flaky(*errors))
    assert info.value is errors[1]


async def test_single_attempt_policy_never_sleeps(run: Runner, clock: FakeClock) -> None:
    with pytest.raises(RetryError) as info:
        await run(make_policy(clock, max_attempts=1), Flaky(OSError("x")))
    assert info.value.attempts == 1
    assert clock.sleeps == []


# --- what is retryable -------------------------------------------------------------------------------------------


async def test_non_retryable_error_propagates_immediately_unchanged(run: Runner, clock: FakeClock) -> None:
    error = ValueError("bad input")
    fn = Flaky(error, "never")
    with pytest.raises(ValueError, match="bad input") as info:
        await run(make_policy(clock, retry_on=(OSError,)), fn)
    assert info.value is error
    assert len(fn.calls) == 1
    assert clock.sleeps == []


async def test_retry_on_accepts_a_single_type_and_subclasses(run: Runner, clock: FakeClock) -> None:
    policy = make_policy(clock, retry_on=OSError)
    assert policy.retry_on == (OSError,)
    fn = Flaky(ConnectionResetError("reset"), "ok")  # a subclass of OSError
    assert await run(policy, fn) == "ok"
    assert len(fn.calls) == 2


async def test_retry_if_predicate_narrows_retry_on(run: Runner, clock: FakeClock) -> None:
    policy = make_policy(
        clock, max_attempts=5, retry_on=(HttpError,), retry_if=lambda e: getattr(e, "status", 0) >= 500
    )
    fn = Flaky(HttpError(503), HttpError(404), "never")
    with pytest.raises(HttpError) as info:
        await run(policy, fn)
    assert info.value.status == 404
    assert len(fn.calls) == 2
    assert policy.is_retryable(HttpError(500))
    assert not policy.is_retryable(HttpError(400))
    assert not policy.is_retryable(ValueError())


async def test_result_predicate_retries_rejected_results(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(None, None, {"id": 1})
    result = await run(make_policy(clock, max_attempts=3, retry_if_result=lambda r: r is None), fn)
    assert result == {"id": 1}
    assert len(fn.calls) == 3


async def test_result_predicate_exhaustion_carries_last_result(run: Runner, clock: FakeClock) -> None:
    with pytest.raises(RetryError) as info:
        await run(make_policy(clock, max_attempts=2, retry_if_result=lambda r: r == "busy"), Flaky("busy"))
    assert info.value.last_result == "busy"
    assert info.value.last_exception is None
    assert info.value.attempts == 2


async def test_cancellation_is_never_retried(clock: FakeClock) -> None:
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await make_policy(clock, retry_on=(BaseException,)).call_async(cancelled)
    assert calls == 1


def test_sync_call_refuses_an_async_function(clock: FakeClock) -> None:
    async def fetch() -> str:
        return "never awaited"

    with pytest.raises(ConfigurationError, match="call_async"):
        make_policy(clock).call(fetch)  # type: ignore[unused-coroutine]


# --- backoff and jitter ------------------------------------------------------------------------------------------


def test_exponential_growth_is_capped_at_max_delay(clock: FakeClock) -> None:
    policy = make_policy(clock, initial_delay=1.0, multiplier=2.0, max_delay=10.0)
    assert [compute_delay(policy, n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_huge_attempt_numbers_do_not_overflow(clock: FakeClock) -> None:
    policy = make_policy(clock, initial_delay=1.0, multiplier=3.0, max_delay=60.0)
    assert compute_delay(policy, 100_000) == 60.0


def test_constant_backoff_with_multiplier_one(clock: FakeClock) -> None:
    policy = make_policy(clock, initial_delay=0.5, multiplier=1.0)
    assert {compute_delay(policy, n) for n in range(1, 10)} == {0.5}


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8])
def test_full_jitter_stays_within_zero_and_the_capped_backoff(clock: FakeClock, attempt: int) -> None:
    policy = make_policy(clock, jitter="full", initial_delay=1.0, multiplier=2.0, max_delay=5.0)
    cap = min(5.0, 2.0 ** (attempt - 1))
    draws = random.Random(attempt).random
    delays = [compute_delay(policy, attempt, random=draws) for _ in range(2000)]
    assert all(0.0 <= d < cap for d in delays)
    # Full jitter spreads over the whole range, not a narrow band around the backoff.
    assert min(delays) < 0.05 * cap
    assert max(delays) > 0.95 * cap
    assert compute_delay(policy, attempt, random=lambda: 0.0) == 0.0
    assert compute_delay(policy, attempt, random=lambda: 0.5) == pytest.approx(cap / 2)


def test_equal_jitter_keeps_at_least_half_the_backoff(clock: FakeClock) -> None:
    policy = make_policy(clock, jitter="equal", initial_delay=2.0, multiplier=2.0, max_delay=100.0)
    assert compute_delay(policy, 3, random=lambda: 0.0) == 4.0
    assert compute_delay(policy, 3, random=lambda: 0.999) == pytest.approx(7.996)


def test_policy_random_is_used_when_none_is_passed(clock: FakeClock) -> None:
    draws = FakeRandom([0.25, 0.75])
    policy = make_policy(clock, jitter="full", initial_delay=4.0, random=draws)
    assert [policy.delay_for(1), compute_delay(policy, 1)] == [1.0, 3.0]
    assert draws.draws == 2


def test_compute_delay_rejects_attempt_zero(clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError):
        compute_delay(make_policy(clock), 0)


async def test_jittered_sleeps_use_the_injected_random(run: Runner, clock: FakeClock) -> None:
    policy = make_policy(clock, jitter="full", max_attempts=3, initial_delay=2.0, random=FakeRandom([0.5, 0.25]))
    with pytest.raises(RetryError):
        await run(policy, Flaky(OSError("x")))
    assert clock.sleeps == [1.0, 1.0]  # 0.5 * 2 and 0.25 * 4


# --- Retry-After -------------------------------------------------------------------------------------------------


async def test_retry_after_raises_the_sleep_to_at_least_the_hint(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(HttpError(429, retry_after=7), HttpError(503, retry_after=0.5), "ok")
    assert await run(make_policy(clock, initial_delay=1.0, max_attempts=3), fn) == "ok"
    assert clock.sleeps == [7.0, 2.0]  # the hint wins when longer; the backoff wins when the hint is shorter


async def test_retry_after_is_not_capped_by_max_delay_unless_asked(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(HttpError(429, retry_after=120), "ok")
    await run(make_policy(clock, max_delay=30.0), fn)
    assert clock.sleeps == [120.0]

    capped = FakeClock()
    fn = Flaky(HttpError(429, retry_after=120), "ok")
    await run(make_policy(capped, max_delay=30.0, cap_retry_after=True), fn)
    assert capped.sleeps == [30.0]


async def test_retry_after_can_be_ignored(run: Runner, clock: FakeClock) -> None:
    await run(make_policy(clock, respect_retry_after=False), Flaky(HttpError(429, retry_after=60), "ok"))
    assert clock.sleeps == [1.0]


async def test_circuit_open_error_retry_after_is_honoured(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(CircuitOpenError("https://hooks.acme.com", retry_after=12.5), "ok")
    await run(make_policy(clock), fn)
    assert clock.sleeps == [12.5]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (2.5, 2.5), (timedelta(seconds=90), 90.0), (0, 0.0), (None, None), (-1, None), (True, None),
     ("30", None), (float("nan"), None), (float("inf"), None)],
)  # fmt: skip
def test_retry_after_of_accepts_only_sane_numbers(value: object, expected: float | None) -> None:
    assert retry_after_of(HttpError(429, retry_after=value)) == expected


def test_retry_after_of_without_attribute() -> None:
    assert retry_after_of(OSError("x")) is None


# --- budgets: max_elapsed and deadline ---------------------------------------------------------------------------


async def test_max_elapsed_stops_before_a_retry_that_would_overrun_it(run: Runner, clock: FakeClock) -> None:
    # Each call takes 2 s. Attempt 1 ends at +2 (sleep 1), attempt 2 at +5 (sleep 2), attempt 3 at +9: sleeping 4
    # more would end at +13 > 10, so it is not started.
    fn = Flaky(OSError("slow"), clock=clock, duration=2.0)
    with pytest.raises(RetryError) as info:
        await run(make_policy(clock, max_attempts=None, max_elapsed=10.0), fn)
    assert info.value.reason == "max_elapsed"
    assert info.value.attempts == 3
    assert clock.sleeps == [1.0, 2.0]
    assert clock.now == 1009.0


async def test_deadline_callable_stops_before_a_sleep_that_would_overrun_it(run: Runner, clock: FakeClock) -> None:
    deadline_at = 1010.0
    fn = Flaky(OSError("slow"), clock=clock, duration=2.0)
    policy = make_policy(clock, max_attempts=10, deadline=lambda: deadline_at - clock())
    with pytest.raises(RetryError) as info:
        await run(policy, fn)
    assert info.value.reason == "deadline"
    assert info.value.attempts == 3
    assert isinstance(info.value.last_exception, OSError)
    # The third failure ends at 1009 with 1 s left; the 4 s sleep would overrun, so it never started.
    assert clock.sleeps == [1.0, 2.0]
    assert clock.now <= deadline_at


async def test_absolute_deadline_on_the_policy_clock(run: Runner, clock: FakeClock) -> None:
    policy = make_policy(clock, max_attempts=10, initial_delay=1.0, deadline=1006.5)
    with pytest.raises(RetryError) as info:
        await run(policy, Flaky(OSError("x")))
    # Sleeps 1, 2 (t=1003), then 4 would end at 1007 > 1006.5.
    assert info.value.reason == "deadline"
    assert clock.sleeps == [1.0, 2.0]


async def test_retry_after_beyond_the_deadline_is_not_waited_for(run: Runner, clock: FakeClock) -> None:
    fn = Flaky(HttpError(429, retry_after=600), "never")
    with pytest.raises(RetryError) as info:
        await run(make_policy(clock, deadline=lambda: 30.0), fn)
    assert info.value.reason == "deadline"
    assert clock.sleeps == []
    assert len(fn.calls) == 1


def test_lambda_deadline_uses_remaining_time_minus_margin() -> None:
    class Context:
        remaining_ms = 5000

        def get_remaining_time_in_millis(self) -> int:
            return self.remaining_ms

    context = Context()
    deadline = lambda_deadline(context, margin_s=1.5)
    assert deadline() == 3.5
    context.remaining_ms = 1000
    assert deadline() == -0.5


def test_first_attempt_runs_even_when_the_deadline_has_passed(clock: FakeClock) -> None:
    fn = Flaky("ok")
    assert make_policy(clock, deadline=lambda: -1.0).call(fn) == "ok"


# --- hooks -------------------------------------------------------------------------------------------------------


async def test_hooks_see_every_attempt(run: Runner, clock: FakeClock) -> None:
    attempts: list[AttemptInfo] = []
    sleeps: list[AttemptInfo] = []
    first, second = OSError("one"), OSError("two")
    fn = Flaky(first, second, "done", clock=clock, duration=0.5)
    policy = make_policy(clock, max_attempts=5, on_attempt=attempts.append, before_sleep=sleeps.append)
    assert await run(policy, fn) == "done"
    assert attempts == [
        AttemptInfo(1, 1.0, first, 0.5),
        AttemptInfo(2, 2.0, second, 2.0),
        AttemptInfo(3, None, None, 4.5, "done"),
    ]
    assert sleeps == attempts[:2]
    assert [a.will_retry for a in attempts] == [True, True, False]


async def test_hooks_on_exhaustion_and_on_non_retryable(run: Runner, clock: FakeClock) -> None:
    attempts: list[AttemptInfo] = []
    sleeps: list[AttemptInfo] = []
    policy = make_policy(clock, max_attempts=2, retry_on=(OSError,), on_attempt=attempts.append,
                         before_sleep=sleeps.append)  # fmt: skip
    with pytest.raises(RetryError):
        await run(policy, Flaky(OSError("x")))
    assert [(a.attempt, a.delay) for a in attempts] == [(1, 1.0), (2, None)]
    assert len(sleeps) == 1

    attempts.clear()
    with pytest.raises(KeyError):
        await run(policy, Flaky(KeyError("k")))
    assert [(a.attempt, a.delay, type(a.exception)) for a in attempts] == [(1, None, KeyError)]


# --- decorator forms ---------------------------------------------------------------------------------------------


def test_seed_parity_one_liner(clock: FakeClock) -> None:
    fn = Flaky(OSError("a"), OSError("b"), "ok")

    @retry(config=RetryConfig(max_attempts=3, initial_delay=1.0, jitter="none", sleep=clock.sleep, clock=clock))
    def fetch(x: int) -> object:
        """Docstring kept."""
        return fn(x)

    assert fetch(1) == "ok"
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Docstring kept."
    assert clock.sleeps == [1.0, 2.0]
    assert RetryConfig is RetryPolicy


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_decorator_works_on_sync_and_async_functions(clock: FakeClock, mode: str) -> None:
    fn = Flaky(OSError("a"), "ok")
    policy = make_policy(clock)
    if mode == "sync":

        @retry(policy)
        def sync_fetch() -> object:
            return fn()

        assert not inspect.iscoroutinefunction(sync_fetch)
        assert sync_fetch() == "ok"
    else:

        @retry(policy)
        async def async_fetch() -> object:
            return fn()

        assert inspect.iscoroutinefunction(async_fetch)
        assert await async_fetch() == "ok"
    assert len(fn.calls) == 2
    assert clock.sleeps == [1.0]


def test_decorator_accepts_field_overrides(clock: FakeClock) -> None:
    fn = Flaky(OSError("a"))
    decorated = retry(make_policy(clock), max_attempts=5, initial_delay=0.1)(fn)
    with pytest.raises(RetryError) as info:
        decorated()
    assert info.value.attempts == 5
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_decorator_rejects_policy_and_config_together(clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError):
        retry(make_policy(clock), config=make_policy(clock))


# --- policy object -----------------------------------------------------------------------------------------------


def test_policy_is_frozen_and_replace_derives_variants(clock: FakeClock) -> None:
    policy = make_policy(clock, max_attempts=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]
    derived = policy.replace(max_attempts=5)
    assert (policy.max_attempts, derived.max_attempts) == (3, 5)
    assert derived.clock is clock


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 0},
        {"max_attempts": None},
        {"initial_delay": -1.0},
        {"max_delay": -1.0},
        {"multiplier": 0.5},
        {"jitter": "gaussian"},
        {"max_elapsed": 0.0},
        {"retry_on": (ValueError, "OSError")},
    ],
)
def test_invalid_policies_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**fields)


def test_unbounded_attempts_are_allowed_with_a_budget() -> None:
    assert RetryPolicy(max_attempts=None, max_elapsed=5.0).max_attempts is None
    assert RetryPolicy(max_attempts=None, deadline=lambda: 5.0).max_attempts is None


# --- retry_with_fallback -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retry_with_fallback_falls_back_after_exhaustion(clock: FakeClock, mode: str) -> None:
    primary = Flaky(OSError("down"))
    fallback_calls: list[tuple[Any, ...]] = []

    def fallback(*args: Any) -> str:
        fallback_calls.append(args)
        return "from fallback"

    decorate = retry_with_fallback(fallback, make_policy(clock, max_attempts=3))
    if mode == "sync":
        assert decorate(primary)("x") == "from fallback"
    else:

        async def async_primary(arg: str) -> object:
            return primary(arg)

        assert await decorate(async_primary)("x") == "from fallback"
    assert len(primary.calls) == 3
    assert fallback_calls == [("x",)]


async def test_retry_with_fallback_awaits_an_async_fallback(clock: FakeClock) -> None:
    async def fallback() -> str:
        return "async fallback"

    @retry_with_fallback(fallback, make_policy(clock, max_attempts=2))
    async def primary() -> str:
        raise OSError("down")

    assert await primary() == "async fallback"


def test_retry_with_fallback_lets_unlisted_errors_propagate(clock: FakeClock) -> None:
    fallback = Flaky("fallback")
    decorated = retry_with_fallback(fallback, make_policy(clock, retry_on=(OSError,)), fallback_on=(RetryError,))(
        Flaky(KeyError("k"))
    )
    with pytest.raises(KeyError):
        decorated()
    assert fallback.calls == []
