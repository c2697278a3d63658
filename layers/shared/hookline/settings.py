"""Frozen settings read once from the function environment (docs/contracts.md "Function environment")."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from hookline.exceptions import HooklineError
from hookline.registry.model import DEFAULT_SECRET_PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "MAX_RETRY_DELAY_S",
    "Settings",
    "SettingsError",
    "parse_retry_schedule",
    "parse_seconds",
    "parse_whole_number",
]

DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_RETRY_DELAY_S = 12 * 3600  # the contract's cap on one wait (docs/contracts.md), once SQS's visibility limit
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(HooklineError, ValueError):
    """An environment variable is missing or malformed."""


def parse_retry_schedule(value: str) -> tuple[float, ...]:
    """Parse RETRY_SCHEDULE ("0,5,300"): seconds before attempt 2, 3, ...; each 0..43200."""
    parts = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not part for part in parts):
        raise SettingsError(f"RETRY_SCHEDULE must be comma-separated seconds, got {value!r}")
    delays: list[float] = []
    for part in parts:
        try:
            delay = float(part)
        except ValueError:
            raise SettingsError(f"RETRY_SCHEDULE entry {part!r} is not a number") from None
        if not 0 <= delay <= MAX_RETRY_DELAY_S:
            raise SettingsError(f"RETRY_SCHEDULE entry {part!r} must be between 0 and {MAX_RETRY_DELAY_S} seconds")
        delays.append(delay)
    return tuple(delays)


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def parse_whole_number(name: str, value: str, *, low: int = 1) -> int:
    """A whole number read from the environment, at least ``low``; SettingsError otherwise."""
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if number < low:
        raise SettingsError(f"{name} must be at least {low}, got {number}")
    return number


def parse_seconds(
    name: str, value: str, *, low: float = 0.0, high: float = math.inf, open_low: bool = False
) -> float | None:
    """A number of seconds read from the environment: None when empty; SettingsError when not a finite number in
    range (``low`` excluded when ``open_low``)."""
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {value!r}") from None
    below = number <= low if open_low else number < low
    if not math.isfinite(number) or below or number > high:
        lowest = f"more than {low:g}" if open_low else f"at least {low:g}"
        highest = "" if math.isinf(high) else f" and at most {high:g}"
        raise SettingsError(f"{name} must be {lowest}{highest} seconds, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    """Everything the functions read from their environment, parsed and validated once."""

    endpoints_table: str = ""
    breaker_table: str = ""
    health_history_table: str = ""
    dead_letter_queue_url: str = ""
    alert_topic_arn: str = ""
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    max_concurrency: int = 10
    allow_private_targets: bool = False
    service_name: str = "hookline"
    metrics_namespace: str = "Hookline"
    log_level: str = "INFO"
    aws_endpoint_url: str | None = None
    # BREAKER_OPEN_S: seconds a delivery breaker stays open on its first trip (None = the breaker's default). Local
    # stacks, demos and tests with a compressed retry schedule compress this too.
    breaker_open_s: float | None = None
    # SIGNING_SECRET_PREFIX: where signing secrets live (the stack's SigningSecretPrefix); registry writes through
    # hookline.integrations keep secret ids under it.
    signing_secret_prefix: str = DEFAULT_SECRET_PREFIX

    @property
    def max_attempts(self) -> int:
        """Total delivery attempts: the first one plus one per schedule entry."""
        return len(self.retry_schedule) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (os.environ by default)."""
        env = os.environ if environ is None else environ
        return cls(
            endpoints_table=env.get("ENDPOINTS_TABLE", ""),
            breaker_table=env.get("BREAKER_TABLE", ""),
            health_history_table=env.get("HEALTH_HISTORY_TABLE", ""),
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL", ""),
            alert_topic_arn=env.get("ALERT_TOPIC_ARN", ""),
            retry_schedule=parse_retry_schedule(env["RETRY_SCHEDULE"])
            if env.get("RETRY_SCHEDULE")
            else DEFAULT_RETRY_SCHEDULE,
            max_concurrency=parse_whole_number("MAX_CONCURRENCY", env.get("MAX_CONCURRENCY", "10")),
            allow_private_targets=_parse_bool("ALLOW_PRIVATE_TARGETS", env.get("ALLOW_PRIVATE_TARGETS", "false")),
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "hookline"),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "Hookline"),
            log_level=env.get("LOG_LEVEL", "INFO"),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            breaker_open_s=parse_seconds(
                "BREAKER_OPEN_S", env.get("BREAKER_OPEN_S", ""), high=MAX_RETRY_DELAY_S, open_low=True
            ),
            signing_secret_prefix=env.get("SIGNING_SECRET_PREFIX") or DEFAULT_SECRET_PREFIX,
        )

    def require(self, *names: str) -> Settings:
        """Raise SettingsError naming every listed field that is empty; return self for chaining."""
        known = {field.name for field in fields(self)}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(unknown)}")
        missing = [name.upper() for name in names if not getattr(self, name)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        return self
