"""Evaluate one probe against an integration's conditions (pure): status set, latency, body text, certificate days."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hookline.health.model import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from hookline.health.model import ProbeResult
    from hookline.registry import HealthCheck

__all__ = ["MAX_REASON_CHARS", "certificate_days_left", "describe_statuses", "evaluate"]

MAX_REASON_CHARS = 1024  # last_error and alert bodies stay small whatever the target answered
_SECONDS_PER_DAY = 86_400.0
_SNIPPET = 60


def describe_statuses(statuses: Iterable[int]) -> str:
    """A compact form of an expected status set: (200, 201, 202, 204) -> "200-202,204"; empty -> "2xx"."""
    ordered = sorted(set(statuses))
    if not ordered:
        return "2xx"
    runs: list[tuple[int, int]] = []
    for status in ordered:
        if runs and status == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], status)
        else:
            runs.append((status, status))
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def certificate_days_left(not_after: datetime | None, now: datetime) -> float | None:
    """Days (fractional) until a certificate expires; negative once it has; None without a certificate."""
    if not_after is None:
        return None
    return (not_after - now).total_seconds() / _SECONDS_PER_DAY


def _clip(text: str, limit: int = _SNIPPET) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def evaluate(check: HealthCheck, result: ProbeResult, *, now: datetime) -> Verdict:
    """Pass only if every configured condition holds; the reason lists every condition that failed."""
    days_left = certificate_days_left(result.certificate_not_after, now)
    if not result.responded:
        reason = result.error or "no response"
        if result.error_reason and not reason.startswith(result.error_reason):
            reason = f"{result.error_reason}: {reason}"
        return Verdict(passed=False, reason=_clip(reason, MAX_REASON_CHARS), certificate_days_left=days_left)

    failures: list[str] = []
    status = result.status_code
    if status is not None and not check.status_ok(status):
        failures.append(f"status {status}, expected {describe_statuses(check.expect_status)}")
    if check.max_latency_ms is not None and result.latency_ms > check.max_latency_ms:
        failures.append(f"latency {result.latency_ms} ms over the {check.max_latency_ms} ms limit")
    if check.body_contains is not None and check.body_contains.encode("utf-8") not in result.body:
        where = "HEAD responses have no body" if result.method.upper() == "HEAD" else "not in the response body"
        failures.append(f"{_clip(check.body_contains)!r} {where}")
    if check.min_cert_days is not None and result.url.lower().startswith("https://"):
        # Plain-http probes have no certificate; the condition applies to https targets only (docs/health.md).
        if days_left is None:
            failures.append("no TLS certificate was captured")
        elif days_left < check.min_cert_days:
            failures.append(f"TLS certificate expires in {days_left:.1f} days (minimum {check.min_cert_days})")
    if failures:
        reason = _clip("; ".join(failures), MAX_REASON_CHARS)
        return Verdict(passed=False, reason=reason, certificate_days_left=days_left)
    return Verdict(passed=True, reason=None, certificate_days_left=days_left)
