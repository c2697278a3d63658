"""Fake time and randomness for resilience tests: a clock that only moves when told, sleeps that record."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class FakeClock:
    """A monotonic clock; ``sleep``/``async_sleep`` record the delay and advance the clock instead of waiting."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRandom:
    """Returns the given values in turn (then repeats the last one)."""

    def __init__(self, values: Iterable[float]) -> None:
        self._values = list(values)
        if not self._values:
            raise ValueError("FakeRandom needs at least one value")
        self.draws = 0

    def __call__(self) -> float:
        value = self._values[min(self.draws, len(self._values) - 1)]
        self.draws += 1
        return value
