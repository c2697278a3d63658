"""Pure evaluation of a probe against an integration's conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookline.health.conditions import MAX_REASON_CHARS, certificate_days_left, describe_statuses, evaluate
from hookline.health.model import ProbeResult
from hookline.registry import HealthCheck

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def result(**overrides: object) -> ProbeResult:
    values: dict[str, object] = {"url": "https://hooks.example/health", "method": "GET", "latency_ms": 40}
    values.update({"status_code": 200, "body": b'{"status":"ok"}'})
    values.update(overrides)
    return ProbeResult(**values)  # type: ignore[arg-type]


def test_default_check_passes_any_2xx() -> None:
    verdict = evaluate(HealthCheck(), result(status_code=204), now=NOW)
    assert verdict.passed
    assert verdict.reason is None


@pytest.mark.parametrize("status", [301, 404, 500, 199])
def test_default_check_fails_outside_2xx_and_says_what_was_expected(status: int) -> None:
    verdict = evaluate(HealthCheck(), result(status_code=status), now=NOW)
    assert not verdict.passed
    assert verdict.reason == f"status {status}, expected 2xx"


def test_expected_status_set_is_exact() -> None:
    check = HealthCheck(expect_status=(200, 201, 202, 204))
    assert evaluate(check, result(status_code=204), now=NOW).passed
    verdict = evaluate(check, result(status_code=203), now=NOW)
    assert verdict.reason == "status 203, expected 200-202,204"


def test_describe_statuses_compacts_runs() -> None:
    assert describe_statuses([]) == "2xx"
    assert describe_statuses([404, 200, 201, 202]) == "200-202,404"
    assert describe_statuses([503]) == "503"


def test_latency_over_the_limit_fails_and_equal_passes() -> None:
    check = HealthCheck(max_latency_ms=300)
    assert evaluate(check, result(latency_ms=300), now=NOW).passed
    verdict = evaluate(check, result(latency_ms=301), now=NOW)
    assert verdict.reason == "latency 301 ms over the 300 ms limit"


def test_body_contains_is_searched_in_the_body() -> None:
    check = HealthCheck(body_contains='"status":"ok"')
    assert evaluate(check, result(), now=NOW).passed
    verdict = evaluate(check, result(body=b'{"status":"degraded"}'), now=NOW)
    assert not verdict.passed
    assert verdict.reason == '\'"status":"ok"\' not in the response body'


def test_body_contains_with_head_explains_there_is_no_body() -> None:
    verdict = evaluate(HealthCheck(body_contains="ok"), result(method="HEAD", body=b""), now=NOW)
    assert verdict.reason == "'ok' HEAD responses have no body"


def test_certificate_days_are_reported_and_checked_for_https() -> None:
    check = HealthCheck(min_cert_days=14)
    fresh = evaluate(check, result(certificate_not_after=NOW + timedelta(days=60)), now=NOW)
    assert fresh.passed
    assert fresh.certificate_days_left == pytest.approx(60.0)
    expiring = evaluate(check, result(certificate_not_after=NOW + timedelta(days=3, hours=12)), now=NOW)
    assert not expiring.passed
    assert expiring.reason == "TLS certificate expires in 3.5 days (minimum 14)"
    assert expiring.certificate_days_left == pytest.approx(3.5)


def test_expired_certificate_has_negative_days() -> None:
    assert certificate_days_left(NOW - timedelta(days=2), NOW) == pytest.approx(-2.0)
    assert certificate_days_left(None, NOW) is None


def test_https_without_a_captured_certificate_fails_the_certificate_condition() -> None:
    verdict = evaluate(HealthCheck(min_cert_days=7), result(certificate_not_after=None), now=NOW)
    assert verdict.reason == "no TLS certificate was captured"


def test_certificate_condition_does_not_apply_to_plain_http() -> None:
    verdict = evaluate(HealthCheck(min_cert_days=7), result(url="http://hooks.example/health"), now=NOW)
    assert verdict.passed


def test_every_failed_condition_is_listed() -> None:
    check = HealthCheck(expect_status=(200,), max_latency_ms=100, body_contains="ok")
    verdict = evaluate(check, result(status_code=500, latency_ms=900, body=b"boom"), now=NOW)
    assert verdict.reason == (
        "status 500, expected 200; latency 900 ms over the 100 ms limit; 'ok' not in the response body"
    )


def test_no_response_fails_with_the_error_reason_first() -> None:
    probe = result(
        status_code=None,
        body=b"",
        error="connection refused by https://hooks.example",
        error_reason="connection_refused",
    )
    verdict = evaluate(HealthCheck(), probe, now=NOW)
    assert not verdict.passed
    assert verdict.reason == "connection_refused: connection refused by https://hooks.example"


def test_reason_is_bounded() -> None:
    probe = result(status_code=None, error="x" * 5000, error_reason="network_error")
    verdict = evaluate(HealthCheck(), probe, now=NOW)
    assert verdict.reason is not None
    assert len(verdict.reason) == MAX_REASON_CHARS
    assert verdict.reason.endswith("...")
