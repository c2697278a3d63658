"""Time and randomness protocols shared by retry, fallback and the breaker, with their production defaults.

Every component takes these as keyword arguments so tests can pass a fake clock and a recording sleep instead of
monkeypatching ``time``. The names are stable: other modules of the layer import them.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections.abc import Awaitable, Callable

__all__ = [
    "AsyncSleep",
    "Clock",
    "Random",
    "Sleep",
    "default_async_sleep",
    "default_random",
    "monotonic",
    "sleep",
]

Clock = Callable[[], float]
"""Returns seconds on a monotonic scale (only differences matter)."""

Sleep = Callable[[float], None]
"""Blocks the calling thread for the given number of seconds."""

AsyncSleep = Callable[[float], Awaitable[None]]
"""Suspends the calling coroutine for the given number of seconds."""

Random = Callable[[], float]
"""Returns a uniformly distributed float in [0.0, 1.0)."""

monotonic: Clock = time.monotonic
sleep: Sleep = time.sleep
default_random: Random = _random.random


async def default_async_sleep(seconds: float) -> None:
    """Production async sleep (``asyncio.sleep``), typed as an ``AsyncSleep``."""
    await asyncio.sleep(seconds)
