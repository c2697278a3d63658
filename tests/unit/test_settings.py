"""Settings parse the function environment strictly and explain what is wrong."""

from __future__ import annotations

import pytest

from hookline.settings import DEFAULT_RETRY_SCHEDULE, Settings, SettingsError, parse_retry_schedule


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_env({})
    assert settings.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert settings.max_attempts == len(DEFAULT_RETRY_SCHEDULE) + 1
    assert settings.allow_private_targets is False
    assert settings.metrics_namespace == "Hookline"


def test_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "ENDPOINTS_TABLE": "endpoints",
            "BREAKER_TABLE": "breakers",
            "DEAD_LETTER_QUEUE_URL": "http://q/dlq",
            "RETRY_SCHEDULE": "0, 1.5,2",
            "MAX_CONCURRENCY": "25",
            "ALLOW_PRIVATE_TARGETS": "TRUE",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert settings.retry_schedule == (0.0, 1.5, 2.0)
    assert settings.max_attempts == 4
    assert settings.max_concurrency == 25
    assert settings.allow_private_targets is True
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"
    assert settings.require("endpoints_table", "breaker_table") is settings


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RETRY_SCHEDULE", "1,,2", "comma-separated"),
        ("RETRY_SCHEDULE", "1,x", "not a number"),
        ("RETRY_SCHEDULE", "50000", "between 0 and 43200"),
        ("RETRY_SCHEDULE", "-1", "between 0 and 43200"),
        ("MAX_CONCURRENCY", "0", "at least 1"),
        ("MAX_CONCURRENCY", "ten", "whole number"),
        ("ALLOW_PRIVATE_TARGETS", "maybe", "true or false"),
    ],
)
def test_malformed_values_are_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_require_names_every_missing_variable() -> None:
    with pytest.raises(SettingsError, match="ENDPOINTS_TABLE, DEAD_LETTER_QUEUE_URL"):
        Settings.from_env({}).require("endpoints_table", "dead_letter_queue_url")


def test_parse_retry_schedule_accepts_max_delay() -> None:
    assert parse_retry_schedule("43200") == (43200.0,)
