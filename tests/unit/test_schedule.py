"""The retry schedule: attempt numbers, +-20% jitter, Retry-After, breaker retry_after, the 12 h cap."""

from __future__ import annotations

import pytest

from hookline.delivery.schedule import attempt_number, is_last_attempt, next_delay
from hookline.settings import DEFAULT_RETRY_SCHEDULE, MAX_RETRY_DELAY_S, Settings

SCHEDULE = DEFAULT_RETRY_SCHEDULE


def _fixed(value: float):  # type: ignore[no-untyped-def]
    return lambda: value


@pytest.mark.parametrize(("count", "expected"), [("1", 1), ("3", 3), (7, 7), (None, 1), ("", 1), ("x", 1), ("0", 1)])
def test_attempt_number_comes_from_the_receive_count(count: object, expected: int) -> None:
    assert attempt_number(count) == expected  # type: ignore[arg-type]


def test_last_attempt_is_settings_max_attempts() -> None:
    settings = Settings()
    assert settings.max_attempts == len(SCHEDULE) + 1
    assert not is_last_attempt(settings.max_attempts - 1, settings.max_attempts)
    assert is_last_attempt(settings.max_attempts, settings.max_attempts)
    assert is_last_attempt(settings.max_attempts + 2, settings.max_attempts)


@pytest.mark.parametrize("attempt", range(1, len(SCHEDULE) + 1))
def test_delay_is_the_schedule_entry_within_20_percent(attempt: int) -> None:
    base = SCHEDULE[attempt - 1]
    assert next_delay(attempt, SCHEDULE, random=_fixed(0.5)) == base
    low = next_delay(attempt, SCHEDULE, random=_fixed(0.0))
    high = next_delay(attempt, SCHEDULE, random=_fixed(0.999999))
    assert int(base * 0.8) <= low <= base
    assert base <= high <= min(base * 1.2 + 1, MAX_RETRY_DELAY_S)


def test_jitter_spreads_delays() -> None:
    values = iter([index / 100 for index in range(100)])
    delays = {next_delay(3, SCHEDULE, random=lambda: next(values)) for _ in range(100)}
    assert min(delays) == 240
    assert max(delays) == 359  # random() < 1, so the top is 300 * (1 + 0.2 * 0.98)
    assert len(delays) > 50


def test_retry_after_raises_the_delay_but_never_lowers_it() -> None:
    assert next_delay(2, SCHEDULE, retry_after_s=120, random=_fixed(0.5)) == 120
    assert next_delay(2, SCHEDULE, retry_after_s=2.2, random=_fixed(0.5)) == 5
    assert next_delay(1, SCHEDULE, retry_after_s=2.2, random=_fixed(0.5)) == 3  # rounded up, never early
    assert next_delay(3, SCHEDULE, retry_after_s=1, random=_fixed(0.0)) == 240


def test_breaker_retry_after_raises_the_delay() -> None:
    assert next_delay(1, SCHEDULE, breaker_retry_after_s=30, random=_fixed(0.5)) == 30
    assert next_delay(3, SCHEDULE, breaker_retry_after_s=30, random=_fixed(0.5)) == 300


def test_never_over_twelve_hours() -> None:
    assert next_delay(1, SCHEDULE, retry_after_s=10 * 86400, random=_fixed(0.5)) == MAX_RETRY_DELAY_S
    assert next_delay(8, (43200,) * 8, random=_fixed(0.999)) == MAX_RETRY_DELAY_S
    assert next_delay(1, SCHEDULE, breaker_retry_after_s=float("inf"), random=_fixed(0.5)) == 0


def test_attempts_beyond_the_schedule_use_its_last_entry() -> None:
    assert next_delay(40, (1, 2, 3), random=_fixed(0.5)) == 3
    assert next_delay(1, (), random=_fixed(0.5)) == 0
