"""Seed parity: ``from resilience.fallback import with_fallback, FallbackStrategy`` names the strategies there are."""

from __future__ import annotations

import asyncio

import pytest

from resilience import ConfigurationError, FallbackExhaustedError
from resilience.fallback import (
    FallbackChain,
    FallbackRegistry,
    FallbackResult,
    FallbackStrategy,
    alternate,
    cached_value,
    default_value,
    degrade,
    with_fallback,
)
from tests.support.timefakes import FakeClock


def _down(city: str) -> str:
    raise ConnectionError("weather service down")


def test_the_strategies_are_the_four_builders() -> None:
    assert [strategy.value for strategy in FallbackStrategy] == [
        "alternate_function",
        "cached_value",
        "default_value",
        "degrade",
    ]
    assert FallbackStrategy.ALTERNATE_FUNCTION.build(len).strategy is FallbackStrategy.ALTERNATE_FUNCTION
    assert FallbackStrategy.CACHED_VALUE.build(max_age_s=5).cache is not None
    assert FallbackStrategy.DEFAULT_VALUE.build(0).fn() == 0
    assert FallbackStrategy.DEGRADE.build(len, name="short").name == "short"
    for builder, strategy in [
        (alternate(len), FallbackStrategy.ALTERNATE_FUNCTION),
        (cached_value(), FallbackStrategy.CACHED_VALUE),
        (default_value(1), FallbackStrategy.DEFAULT_VALUE),
        (degrade(len), FallbackStrategy.DEGRADE),
    ]:
        assert builder.strategy is strategy


def test_the_result_names_the_strategy_that_served() -> None:
    chain = FallbackChain([_down, FallbackStrategy.DEFAULT_VALUE.build("sunny")])
    healthy = FallbackChain([str.upper, FallbackStrategy.DEFAULT_VALUE.build("sunny")])

    served = chain.run("Lyon")

    assert (served.value, served.strategy, served.degraded) == ("sunny", FallbackStrategy.DEFAULT_VALUE, True)
    assert healthy.run("lyon").strategy is None  # the primary served


@pytest.mark.parametrize(
    ("strategy", "degraded"),
    [(FallbackStrategy.ALTERNATE_FUNCTION, False), (FallbackStrategy.DEGRADE, True), ("default_value", True)],
)
def test_with_fallback_serves_fallback_func_by_strategy(strategy: FallbackStrategy, degraded: bool) -> None:
    results: list[FallbackResult[str]] = []

    @with_fallback(
        "weather",
        fallback_func=lambda city: f"{city}: unknown",
        strategy=strategy,
        registry=FallbackRegistry(),
        on_result=results.append,
    )
    def forecast(city: str) -> str:
        return _down(city)

    assert forecast("Lyon") == "Lyon: unknown"
    assert (results[0].strategy, results[0].degraded) == (FallbackStrategy(strategy), degraded)


def test_with_fallback_cached_value_serves_the_last_good_result() -> None:
    answers: list[str | Exception] = ["Lyon: 21C", ConnectionError("down"), ConnectionError("down")]
    results: list[FallbackResult[str]] = []

    @with_fallback(
        "weather",
        strategy=FallbackStrategy.CACHED_VALUE,
        fallback_func=lambda city: f"{city}: unknown",
        registry=FallbackRegistry(),
        on_result=results.append,
    )
    async def forecast(city: str) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert asyncio.run(forecast("Lyon")) == "Lyon: 21C"
    assert asyncio.run(forecast("Lyon")) == "Lyon: 21C"
    assert asyncio.run(forecast("Paris")) == "Paris: unknown"
    assert [result.strategy for result in results] == [
        None,
        FallbackStrategy.CACHED_VALUE,
        FallbackStrategy.ALTERNATE_FUNCTION,
    ]


@pytest.mark.parametrize("strategy", [FallbackStrategy.DEGRADE, FallbackStrategy.DEFAULT_VALUE])
def test_strategies_that_need_a_fallback_func_say_so(strategy: FallbackStrategy) -> None:
    with pytest.raises(ConfigurationError, match=f"{strategy.value!r} needs a fallback_func"):
        with_fallback("weather", strategy=strategy)


def test_cached_value_with_an_injected_clock_expires() -> None:
    clock = FakeClock()
    chain = FallbackChain([str.upper, FallbackStrategy.CACHED_VALUE.build(max_age_s=60, clock=clock)])
    assert chain.run("lyon").value == "LYON"
    down = FallbackChain([_down, *chain.alternatives[1:]])

    assert down.run("lyon").strategy is FallbackStrategy.CACHED_VALUE
    clock.advance(61)
    with pytest.raises(FallbackExhaustedError):
        down.run("lyon")
