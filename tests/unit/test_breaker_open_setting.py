"""BREAKER_OPEN_S: the delivery breakers' open duration from the function environment (compressed locally)."""

from __future__ import annotations

import pytest

from hookline.delivery.factory import breaker_config_for
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


@pytest.mark.parametrize("value", ["0", "-1", "soon", "50000"])
def test_invalid_values_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="BREAKER_OPEN_S"):
        Settings.from_env({"BREAKER_OPEN_S": value})
