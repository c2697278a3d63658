"""BREAKER_OPEN_S: the delivery breakers' open duration from the function environment (compressed locally)."""

from __future__ import annotations

import pytest

from hookline.delivery.config import DeliveryConfig
from hookline.delivery.factory import breaker_config_for
from hookline.history.config import HistoryConfig
from hookline.settings import Settings, SettingsError
from resilience.breaker import BreakerConfig


def test_unset_keeps_the_breaker_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.breaker_open_s is None
    assert breaker_config_for(settings) == BreakerConfig()


def test_set_compresses_open_and_max_open() -> None:
    config = breaker_config_for(Settings.from_env({"BREAKER_OPEN_S": "2.5"}))
    assert (config.open_s, config.max_open_s, config.probe_lease_s) == (2.5, 25.0, 12.5)
    assert config.min_calls == BreakerConfig().min_calls


@pytest.mark.parametrize("value", ["0", "-1", "soon", "50000", "nan", "inf"])
def test_invalid_values_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="BREAKER_OPEN_S"):
        Settings.from_env({"BREAKER_OPEN_S": value})


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("REQUEST_BUDGET_S", "nan", "at least 0.1 seconds"),
        ("SLOW_MARK_S", "inf", "at least 1 seconds"),
        ("PARK_AFTER_S", "0.5", "at least 1 seconds"),
        ("REQUEST_BUDGET_S", "soon", "a number of seconds"),
    ],
)
def test_delivery_durations_must_be_finite_and_in_range(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be {problem}"):
        DeliveryConfig.from_env({name: value})


def test_delivery_durations_default_when_unset() -> None:
    config = DeliveryConfig.from_env({})
    assert (config.request_budget_s, config.slow_mark_s, config.park_after_s) == (3.0, 300.0, 3600.0)


@pytest.mark.parametrize(("value", "problem"), [("-1", "at least 0"), ("soon", "a whole number")])
def test_history_retention_days_must_be_a_whole_number_of_at_least_zero(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=f"HISTORY_RETENTION_DAYS must be {problem}"):
        HistoryConfig.from_env({"HISTORY_RETENTION_DAYS": value})
    assert HistoryConfig.from_env({}).retention_days == 0
