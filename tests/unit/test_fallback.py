"""Unit tests for resilience.fallback: order, breakers, outcomes, strategies, registry and decorator."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

import pytest

from resilience import CircuitOpenError, ConfigurationError, FallbackExhaustedError, NoCachedValueError
from resilience.fallback import (
    Alternative,
    AlternativeOutcome,
    FallbackChain,
    FallbackRegistry,
    FallbackResult,
    LastGood,
    alternate,
    cached_value,
    default_registry,
    default_value,
    degrade,
    register_fallback,
    with_fallback,
)
from resilience.retry import RetryPolicy
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator


class FakeBreaker:
    """Duck-typed breaker: refuses while ``open``; records what the chain reports."""

    def __init__(self, name: str, *, open_for: float | None = None) -> None:
        self.name = name
        self.open_for = open_for
        self.allowed = 0
        self.successes: list[float] = []
        self.failures: list[tuple[float, str]] = []

    def allow(self) -> None:
        if self.open_for is not None:
            raise CircuitOpenError(self.name, retry_after=self.open_for)
        self.allowed += 1

    def record_success(self, latency_s: float) -> None:
        self.successes.append(latency_s)

    def record_failure(self, latency_s: float, error: str = "error") -> None:
        self.failures.append((latency_s, error))


class Target:
    """A scripted alternative: raises ``error`` or returns ``value``; logs its calls and takes ``duration`` s."""

    def __init__(  # noqa: PLR0913 - test fake: its behaviour as keywords
        self,
        name: str,
        log: list[str],
        *,
        value: object = None,
        error: Exception | None = None,
        clock: FakeClock | None = None,
        duration: float = 0.0,
    ) -> None:
        self.name, self.log, self.value, self.error = name, log, value, error
        self.clock, self.duration = clock, duration
        self.args: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.log.append(self.name)
        self.args.append((args, kwargs))
        if self.clock is not None:
            self.clock.advance(self.duration)
        if self.error is not None:
            raise self.error
        return self.value


type Run = Callable[..., Awaitable[FallbackResult[Any]]]


def as_async(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args, **kwargs)

    return wrapper


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def build(mode: str) -> Callable[..., FallbackChain]:
    """Build a chain; in async mode every plain-callable alternative becomes an async function."""

    def builder(alternatives: list[Alternative], **kwargs: Any) -> FallbackChain:
        if mode == "async":
            alternatives = [
                Alternative(a.name, as_async(a.fn), a.breaker, a.degraded, a.cache) if a.cache is None else a
                for a in alternatives
            ]
        return FallbackChain(alternatives, **kwargs)

    return builder


@pytest.fixture
def run(mode: str) -> Run:
    async def runner(chain: FallbackChain, *args: Any, **kwargs: Any) -> FallbackResult[Any]:
        if mode == "sync":
            return chain.run(*args, **kwargs)
        return await chain.run_async(*args, **kwargs)

    return runner


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=50.0)


# --- order, outcomes, breakers -----------------------------------------------------------------------------------


async def test_primary_serves_when_healthy(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    chain = build([Alternative("primary", Target("primary", log, value=1)), alternate(Target("b", log, value=2))])
    result = await run(chain, "arg", k=1)
    assert (result.value, result.served_by, result.index, result.used_fallback) == (1, "primary", 0, False)
    assert [o.status for o in result.outcomes] == ["served"]
    assert log == ["primary"]


async def test_alternatives_are_tried_in_order_and_outcomes_explain_why(
    build: Callable[..., FallbackChain], run: Run, clock: FakeClock
) -> None:
    log: list[str] = []
    first_error, second_error = OSError("connection reset"), TimeoutError()
    chain = build(
        [
            Alternative("primary", Target("primary", log, error=first_error, clock=clock, duration=0.25)),
            Alternative("secondary", Target("secondary", log, error=second_error, clock=clock, duration=1.5)),
            Alternative("tertiary", Target("tertiary", log, value="ok", clock=clock, duration=0.1)),
            Alternative("never", Target("never", log, value="no")),
        ],
        clock=clock,
    )
    result = await run(chain, 42)
    assert log == ["primary", "secondary", "tertiary"]
    assert (result.value, result.served_by, result.index, result.used_fallback) == ("ok", "tertiary", 2, True)
    assert result.outcomes == (
        AlternativeOutcome("primary", "failed", "OSError: connection reset", first_error, 0.25),
        AlternativeOutcome("secondary", "failed", "TimeoutError", second_error, 1.5),
        AlternativeOutcome("tertiary", "served", "ok", None, pytest.approx(0.1)),  # type: ignore[arg-type]
    )


async def test_open_breaker_skips_the_alternative_without_calling_it(
    build: Callable[..., FallbackChain], run: Run
) -> None:
    log: list[str] = []
    open_breaker = FakeBreaker("https://a.example", open_for=12.0)
    closed_breaker = FakeBreaker("https://b.example")
    chain = build(
        [
            Alternative("a", Target("a", log, value="a"), breaker=open_breaker),
            Alternative("b", Target("b", log, value="b"), breaker=closed_breaker),
        ]
    )
    result = await run(chain)
    assert log == ["b"]
    assert result.served_by == "b"
    skipped = result.outcomes[0]
    assert (skipped.name, skipped.status, skipped.latency_s) == ("a", "skipped", 0.0)
    assert isinstance(skipped.exception, CircuitOpenError)
    assert skipped.exception.retry_after == 12.0
    assert "retry after 12.0s" in skipped.reason
    assert open_breaker.successes == []
    assert open_breaker.failures == []
    assert (closed_breaker.allowed, len(closed_breaker.successes)) == (1, 1)


async def test_breakers_record_outcomes_with_latency_from_the_injected_clock(
    build: Callable[..., FallbackChain], run: Run, clock: FakeClock
) -> None:
    log: list[str] = []
    failing, serving = FakeBreaker("a"), FakeBreaker("b")
    chain = build(
        [
            Alternative("a", Target("a", log, error=ConnectionError("x"), clock=clock, duration=0.5), breaker=failing),
            Alternative("b", Target("b", log, value=1, clock=clock, duration=0.2), breaker=serving),
        ],
        clock=clock,
    )
    await run(chain)
    assert failing.failures == [(0.5, "ConnectionError")]
    assert failing.successes == []
    assert serving.successes == [pytest.approx(0.2)]


class PermitBreaker(FakeBreaker):
    """A breaker whose ``allow()`` hands out permits (like half-open probe leases) that take the outcome back."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.permits: list[FakeBreaker] = []

    def allow(self) -> FakeBreaker:  # type: ignore[override]
        permit = FakeBreaker(f"{self.name}-permit-{len(self.permits)}")
        self.permits.append(permit)
        return permit


async def test_outcomes_go_through_the_permit_allow_returned(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    a, b = PermitBreaker("a"), PermitBreaker("b")
    chain = build(
        [
            Alternative("a", Target("a", log, error=OSError("down")), breaker=a),
            Alternative("b", Target("b", log, value="ok"), breaker=b),
        ]
    )
    await run(chain)
    assert [len(p.failures) for p in a.permits] == [1]
    assert [len(p.successes) for p in b.permits] == [1]
    assert a.failures == []
    assert a.successes == b.successes == []


async def test_errors_the_predicate_rejects_propagate_unchanged(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    error = ValueError("bad payload")
    breaker = FakeBreaker("a")
    chain = build(
        [
            Alternative("a", Target("a", log, error=error), breaker=breaker),
            Alternative("b", Target("b", log, value="b")),
        ],
        should_fallback=lambda exc: isinstance(exc, OSError),
    )
    with pytest.raises(ValueError, match="bad payload") as info:
        await run(chain)
    assert info.value is error
    assert log == ["a"]
    # The target answered; the error is the caller's, so it is not a failure signal for the breaker.
    assert breaker.failures == []
    assert len(breaker.successes) == 1


async def test_exhaustion_reports_every_outcome(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    last = OSError("b down")
    chain = build(
        [
            Alternative("a", Target("a", log), breaker=FakeBreaker("a", open_for=3.0)),
            Alternative("b", Target("b", log, error=last)),
        ]
    )
    with pytest.raises(FallbackExhaustedError) as info:
        await run(chain)
    outcomes = info.value.outcomes
    assert [(o.name, o.status) for o in outcomes] == [("a", "skipped"), ("b", "failed")]  # type: ignore[attr-defined]
    assert info.value.__cause__ is last
    assert "a skipped" in str(info.value)
    assert "b failed (OSError: b down)" in str(info.value)


async def test_arguments_are_passed_to_every_alternative(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    a, b = Target("a", log, error=OSError()), Target("b", log, value="ok")
    await run(build([alternate(a, name="a"), alternate(b, name="b")]), 1, 2, key="v")
    assert a.args == b.args == [((1, 2), {"key": "v"})]


async def test_async_chain_accepts_sync_alternatives() -> None:
    log: list[str] = []

    async def primary() -> str:
        raise OSError("down")

    chain = FallbackChain([primary, Target("sync", log, value="sync value")])
    result = await chain.run_async()
    assert (result.value, result.index) == ("sync value", 1)


def test_sync_run_refuses_async_alternatives_instead_of_falling_back() -> None:
    async def primary() -> str:
        return "never awaited"

    chain = FallbackChain([primary, default_value("default")])
    with pytest.raises(ConfigurationError, match="run_async"):
        chain.run()


def test_a_retry_policy_composes_with_a_chain(clock: FakeClock) -> None:
    log: list[str] = []
    policy = RetryPolicy(max_attempts=3, jitter="none", clock=clock, sleep=clock.sleep)
    primary = Target("primary", log, error=OSError("down"))
    chain = FallbackChain([Alternative("primary", policy.wrap(primary)), default_value("default")])
    result = chain.run()
    assert log == ["primary"] * 3
    assert result.served_by == "default"
    assert "RetryError" in result.outcomes[0].reason
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    "alternatives",
    [[], [default_value(1, name="x"), default_value(2, name="x")], ["not callable"]],
)
def test_invalid_chains_are_rejected(alternatives: list[Any]) -> None:
    with pytest.raises(ConfigurationError):
        FallbackChain(alternatives)


# --- strategies --------------------------------------------------------------------------------------------------


async def test_default_and_degraded_values_are_marked_degraded(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []

    def reduced(user_id: int) -> dict[str, object]:
        return {"user": user_id, "recommendations": []}

    down = Alternative("primary", Target("primary", log, error=OSError()))
    result = await run(build([down, degrade(reduced)]), 7)
    assert (result.value, result.served_by, result.degraded) == ({"user": 7, "recommendations": []}, "reduced", True)

    result = await run(build([down, default_value({"rate": 1.0})]), 7)
    assert (result.value, result.served_by, result.degraded) == ({"rate": 1.0}, "default", True)

    result = await run(build([down, alternate(Target("mirror", log, value="live"), name="mirror")]), 7)
    assert (result.served_by, result.degraded) == ("mirror", False)


def test_alternate_names_default_to_the_callable_name() -> None:
    def secondary_region() -> None:
        return None

    assert alternate(secondary_region).name == "secondary_region"
    assert FallbackChain([secondary_region]).alternatives[0].name == "secondary_region"


async def test_cached_value_serves_the_primary_last_good_result_per_arguments(
    build: Callable[..., FallbackChain], run: Run, clock: FakeClock
) -> None:
    log: list[str] = []
    primary = Target("primary", log, value={"eur": 1.1})
    chain = build([Alternative("primary", primary), cached_value(max_age_s=60.0, clock=clock)])
    assert (await run(chain, "EUR")).served_by == "primary"

    primary.error = OSError("rates service down")
    clock.advance(59.0)
    result = await run(chain, "EUR")
    assert (result.value, result.served_by, result.degraded) == ({"eur": 1.1}, "cached", True)

    with pytest.raises(FallbackExhaustedError) as info:
        await run(chain, "USD")  # never fetched: nothing cached for these arguments
    cached_outcome = info.value.outcomes[-1]
    assert isinstance(cached_outcome, AlternativeOutcome)
    assert isinstance(cached_outcome.exception, NoCachedValueError)


async def test_cached_value_expires_after_max_age(
    build: Callable[..., FallbackChain], run: Run, clock: FakeClock
) -> None:
    log: list[str] = []
    primary = Target("primary", log, value="fresh")
    chain = build([Alternative("primary", primary), cached_value(max_age_s=60.0, clock=clock)])
    await run(chain)
    primary.error = OSError("down")
    clock.advance(60.5)
    with pytest.raises(FallbackExhaustedError) as info:
        await run(chain)
    reason = info.value.outcomes[-1].reason  # type: ignore[attr-defined]
    assert "60.5s old" in reason


async def test_cached_value_is_fed_only_by_the_primary(build: Callable[..., FallbackChain], run: Run) -> None:
    log: list[str] = []
    cache = LastGood(300.0, clock=FakeClock())
    primary = Target("primary", log, error=OSError())
    chain = build([Alternative("primary", primary), cached_value(cache), default_value("default")])
    assert (await run(chain)).served_by == "default"
    with pytest.raises(NoCachedValueError):
        cache.get()


def test_last_good_evicts_the_oldest_and_skips_unhashable_arguments() -> None:
    clock = FakeClock()
    cache = LastGood(10.0, max_entries=2, clock=clock)
    cache.remember((1,), {}, "one")
    cache.remember((2,), {}, "two")
    cache.remember((3,), {}, "three")
    with pytest.raises(NoCachedValueError):
        cache.get((1,))
    assert (cache.get((2,)), cache.get((3,))) == ("two", "three")
    cache.remember(([1, 2],), {}, "list arg")  # unhashable: silently not cached
    with pytest.raises(NoCachedValueError):
        cache.get(([1, 2],))
    assert cache.get((3,), {}) == "three"
    cache.clear()
    with pytest.raises(NoCachedValueError):
        cache.get((3,))


def test_last_good_custom_key_and_validation() -> None:
    cache = LastGood(10.0, key=lambda args, kwargs: kwargs.get("tenant"), clock=FakeClock())
    cache.remember((), {"tenant": "acme", "page": 1}, "acme data")
    assert cache.get((), {"tenant": "acme", "page": 2}) == "acme data"
    with pytest.raises(ConfigurationError):
        LastGood(0.0)


# --- registry and decorator --------------------------------------------------------------------------------------


@pytest.fixture
def registry(clock: FakeClock) -> FallbackRegistry:
    return FallbackRegistry(clock=clock)


def test_registry_names_fallbacks_once(registry: FallbackRegistry) -> None:
    def backup() -> str:
        return "backup"

    registry.register("billing", backup, default_value(0))
    assert "billing" in registry
    assert registry.services() == ["billing"]
    assert [a.name for a in registry.fallbacks("billing")][1] == "default"
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register("billing", backup)
    registry.register("billing", default_value(1), replace=True)
    assert len(registry.fallbacks("billing")) == 1
    registry.unregister("billing")
    assert registry.fallbacks("billing") == ()
    assert "billing" not in registry
    with pytest.raises(ConfigurationError):
        registry.register("empty")


def test_registry_chain_puts_the_primary_first_and_keeps_the_predicate(registry: FallbackRegistry) -> None:
    log: list[str] = []
    breaker = FakeBreaker("primary")
    registry.register("search", default_value([]), should_fallback=lambda exc: isinstance(exc, OSError))
    chain = registry.chain("search", Target("primary", log, error=OSError()), breaker=breaker)
    assert [a.name for a in chain.alternatives] == ["search", "default"]
    assert chain.alternatives[0].breaker is breaker
    assert chain.run().value == []
    with pytest.raises(KeyError):
        registry.chain("search", Target("primary", log, error=KeyError("k"))).run()
    with pytest.raises(ConfigurationError, match="no fallbacks"):
        registry.chain("unknown", Target("primary", log))


async def test_with_fallback_decorator_sync_and_async(registry: FallbackRegistry, mode: str) -> None:
    results: list[FallbackResult[Any]] = []

    def fallback_func(user_id: int) -> str:
        return f"fallback for {user_id}"

    decorate = with_fallback("profile", fallback_func=fallback_func, registry=registry, on_result=results.append)
    if mode == "sync":

        @decorate
        def get_profile(user_id: int) -> str:
            raise OSError("profile service down")

        assert not inspect.iscoroutinefunction(get_profile)
        assert get_profile(3) == "fallback for 3"
    else:

        @decorate
        async def get_profile_async(user_id: int) -> str:
            raise OSError("profile service down")

        assert inspect.iscoroutinefunction(get_profile_async)
        assert await get_profile_async(3) == "fallback for 3"
    assert [(r.served_by, r.index) for r in results] == [("fallback_func", 1)]
    assert results[0].outcomes[0].name == "profile"


def test_with_fallback_tries_registered_fallbacks_first_even_if_registered_later(registry: FallbackRegistry) -> None:
    calls: list[str] = []

    @with_fallback("rates", fallback_func=lambda: "last resort", registry=registry)
    def get_rates() -> str:
        calls.append("primary")
        raise OSError("down")

    assert get_rates() == "last resort"
    registry.register("rates", default_value("registered default"))
    assert get_rates() == "registered default"
    assert calls == ["primary", "primary"]


def test_with_fallback_returns_the_primary_value_and_names_the_function() -> None:
    registry = FallbackRegistry()

    @with_fallback("ok", fallback_func=lambda: "unused", registry=registry)
    def healthy() -> str:
        """Healthy service."""
        return "live"

    assert healthy() == "live"
    assert (healthy.__name__, healthy.__doc__) == ("healthy", "Healthy service.")


def test_with_fallback_without_any_fallback_is_a_configuration_error(registry: FallbackRegistry) -> None:
    @with_fallback("nothing-registered", registry=registry)
    def primary() -> str:
        return "live"

    with pytest.raises(ConfigurationError):
        primary()


@pytest.fixture
def default_service() -> Iterator[str]:
    name = "test-fallback-default-registry"
    yield name
    default_registry.unregister(name)


def test_module_level_registry_and_cached_value(default_service: str, clock: FakeClock) -> None:
    register_fallback(default_service, cached_value(max_age_s=30.0, clock=clock), default_value("default"))
    healthy = True

    @with_fallback(default_service)
    def fetch(item: str) -> str:
        if not healthy:
            raise OSError("down")
        return f"live {item}"

    assert fetch("a") == "live a"
    healthy = False
    assert fetch("a") == "live a"  # the cached last good value for the same argument
    assert fetch("b") == "default"
    clock.advance(31.0)
    assert fetch("a") == "default"
