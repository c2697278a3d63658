"""The delivery log line (docs/contracts.md "Delivery log line"): one stable line per record, compact on success."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hookline.delivery.logline import LOG_MESSAGE, TRIMMED_KEYS
from hookline.registry import Endpoint
from tests.support.delivery_fakes import ServiceKit
from tests.support.events import FakeLambdaContext, make_record, make_sqs_event

if TYPE_CHECKING:
    from collections.abc import Iterator

ACME = Endpoint(name="acme", url="https://hooks.acme.example/hook", secret_id="hookline/acme")
SCHEMA = {"webhook_id", "endpoint", "event_type", "attempt", "target", "status", "latency_ms", "outcome", "lane"}
ALWAYS = {"webhook_id", "endpoint", "attempt", "outcome", "lane"}  # the others are left out when they have no value
FAILURE = {"reason", "delay_s", "error", "targets", "function_request_id"}
POWERTOOLS = {"level", "message", "timestamp"}


@pytest.fixture
def kit() -> Iterator[ServiceKit]:
    kit = ServiceKit(ACME)
    yield kit
    kit.close()


def _message(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "event_type": "invoice.paid", "endpoint": "acme", "payload": {"n": 1}, **fields}


def _lines(kit: ServiceKit) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, kit.log_lines()) if line.get("message") == LOG_MESSAGE]


def _invoke(kit: ServiceKit, *records: dict[str, Any]) -> None:
    # As in Lambda: inject_lambda_context has added the context keys before the handler runs.
    assert kit.logger is not None
    kit.logger.append_keys(
        cold_start=True,
        function_name="hookline-delivery",
        function_memory_size=512,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:hookline-delivery",
        function_request_id="req-1",
    )
    kit.handle(make_sqs_event(*records), FakeLambdaContext(aws_request_id="req-1"))


def test_a_success_is_one_compact_line_with_exactly_the_schema(
    kit: ServiceKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in Lambda with tracing on: Powertools would add the trace id to every line.
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1")
    _invoke(kit, make_record(_message(id="msg_ok")))
    [line] = _lines(kit)
    assert set(line) == SCHEMA | POWERTOOLS
    assert line["level"] == "INFO"
    assert {key: line[key] for key in SCHEMA - {"latency_ms"}} == {
        "webhook_id": "msg_ok",
        "endpoint": "acme",
        "event_type": "invoice.paid",
        "attempt": 1,
        "target": 0,
        "status": 200,
        "outcome": "delivered",
        "lane": "fast",
    }
    assert isinstance(line["latency_ms"], float)
    assert not set(TRIMMED_KEYS) & set(line)


def test_a_failure_is_logged_fully(kit: ServiceKit) -> None:
    kit.receiver.route(ACME.url, httpx.Response(503, text="overloaded"))
    _invoke(kit, make_record(_message(id="msg_retry")))
    [line] = _lines(kit)
    assert line["level"] == "WARNING"
    assert (line["outcome"], line["status"], line["target"], line["delay_s"]) == ("retry", 503, 0, 0)
    assert line["error"] == "HTTP 503 from https://hooks.acme.example: overloaded"
    assert "targets" not in line  # one target: the line's own fields say it all
    assert line["function_request_id"] == "req-1"


def test_a_failure_over_fallbacks_lists_every_target() -> None:
    endpoint = Endpoint(
        name="acme", url=ACME.url, secret_id="hookline/acme", fallback_urls=("https://backup.acme.example/hook",)
    )
    kit = ServiceKit(endpoint)
    try:
        kit.receiver.route(ACME.url, httpx.Response(500))
        kit.receiver.route("https://backup.acme.example/hook", httpx.Response(502))
        _invoke(kit, make_record(_message(id="msg_both")))
        [line] = _lines(kit)
        assert [(t["index"], t["result"], t["status"]) for t in line["targets"]] == [
            (0, "failed", 500),
            (1, "failed", 502),
        ]
        assert (line["target"], line["status"]) == (1, 502)
    finally:
        kit.close()


def test_every_outcome_writes_exactly_one_line(kit: ServiceKit) -> None:
    kit.registry.endpoints["acme"] = Endpoint(
        name="acme", url=ACME.url, secret_id="hookline/acme", event_types=("invoice.paid",)
    )
    records = [
        make_record(_message(id="msg_a")),
        make_record(_message(id="msg_b", event_type="invoice.voided")),
        make_record("not json"),
        make_record(_message(id="msg_c", endpoint="nobody")),
    ]
    _invoke(kit, *records)
    lines = _lines(kit)
    assert sorted((line["outcome"], line.get("reason")) for line in lines) == [
        ("dead_lettered", "invalid_json"),
        ("dead_lettered", "unknown_endpoint"),
        ("delivered", None),
        ("filtered", None),
    ]
    for line in lines:
        assert ALWAYS <= set(line) <= SCHEMA | FAILURE | POWERTOOLS


def test_success_lines_are_at_most_half_the_old_700_bytes(kit: ServiceKit) -> None:
    _invoke(kit, *(make_record(_message()) for _ in range(10)))
    sizes = [len(line.encode()) + 1 for line in kit.log_lines() if '"outcome":"delivered"' in line]
    assert len(sizes) == 10
    assert max(sizes) <= 350
