"""One attempt: target order, what ends it early, what the breaker is told, the deadline, the request headers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hookline.delivery.attempt import USER_AGENT, Outcome, attempt_delivery, build_headers
from hookline.delivery.targets import DeliveryPlan, origin_of
from hookline.exceptions import ConnectError, RequestTimeoutError
from hookline.http import HttpResult, build_async_client
from hookline.signing import generate_secret, github_signature, stripe_signature
from resilience.breaker import BreakerConfig, BreakerRegistry, BreakerState, MemoryStateStore
from tests.support.timefakes import FakeClock

SECRET = generate_secret()
PLAN = DeliveryPlan(
    message_id="msg_1",
    event_type="a",
    label="acme",
    targets=("https://a.example/x", "https://b.example:8443/y"),
    secret_id="s",
)


class ScriptedSend:
    """A send_limited stand-in: answers or raises per URL, recording each call's timeout."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    async def __call__(self, client: Any, method: str, url: str, **kwargs: Any) -> HttpResult:
        self.calls.append((url, kwargs["timeout_s"], kwargs["headers"]))
        answer = self.script[url]
        if isinstance(answer, Exception):
            raise answer
        return HttpResult(answer, httpx.Headers(), b"", False, 12.0)


async def _attempt(send: ScriptedSend, **kwargs: Any) -> Any:
    async with build_async_client(
        allow_private=False, transport=httpx.MockTransport(lambda r: httpx.Response(599))
    ) as http:
        return await attempt_delivery(PLAN, (SECRET,), b"{}", http=http, send=send, wall_clock=lambda: 1000.0, **kwargs)


def test_origin_is_the_breaker_name() -> None:
    assert origin_of("https://Hooks.Acme.com/x?y=1") == "https://hooks.acme.com"
    assert origin_of("https://hooks.acme.com:443/x") == "https://hooks.acme.com"
    assert origin_of("http://[::1]:8080/x") == "http://[::1]:8080"
    assert PLAN.origins == ("https://a.example", "https://b.example:8443")


async def test_timeout_and_connection_errors_fall_back() -> None:
    send = ScriptedSend({PLAN.targets[0]: RequestTimeoutError("timeout", "slow"), PLAN.targets[1]: 200})
    result = await _attempt(send)
    assert result.outcome is Outcome.DELIVERED
    assert result.used_fallback
    send = ScriptedSend({PLAN.targets[0]: ConnectError("connection_refused", "no"), PLAN.targets[1]: 500})
    result = await _attempt(send)
    assert result.outcome is Outcome.FAILED
    assert [target.status for target in result.targets] == ["failed", "failed"]
    assert result.last_status == 500


async def test_last_status_and_error_describe_the_same_target() -> None:
    # The primary answers 503, the fallback refuses the connection: the last real answer is the refusal, so a dead
    # letter must not pair the primary's 503 with the fallback's error.
    refused = ConnectError("connection_refused", "connection refused by https://b.example:8443")
    result = await _attempt(ScriptedSend({PLAN.targets[0]: 503, PLAN.targets[1]: refused}))
    assert result.outcome is Outcome.FAILED
    assert result.last_status is None
    assert "connection refused by https://b.example:8443" in result.last_error
    result = await _attempt(ScriptedSend({PLAN.targets[0]: refused, PLAN.targets[1]: 503}))
    assert result.last_status == 503
    assert "503" in result.last_error


async def test_deadline_clips_the_request_and_stops_before_a_hopeless_one() -> None:
    clock = FakeClock()
    send = ScriptedSend({PLAN.targets[0]: RequestTimeoutError("timeout", "slow"), PLAN.targets[1]: 200})
    left = iter([5.0, 0.5])
    result = await _attempt(send, remaining_s=lambda: next(left), monotonic=clock)
    # 5 s left clipped the 15 s timeout; the timeout then counts as "out of time", not as the receiver's failure.
    assert send.calls[0][1] == 5.0
    assert result.outcome is Outcome.OUT_OF_TIME
    assert len(send.calls) == 1


async def test_fallback_without_time_makes_a_failed_attempt() -> None:
    send = ScriptedSend({PLAN.targets[0]: 503, PLAN.targets[1]: 200})
    left = iter([20.0, 0.2])
    result = await _attempt(send, remaining_s=lambda: next(left))
    assert result.outcome is Outcome.FAILED
    assert [target.status for target in result.targets] == ["failed", "out_of_time"]


@pytest.mark.parametrize(
    # A 429 shows the receiver alive: it slows the endpoint's pace down and is no breaker failure (408, 5xx are).
    ("status", "state"),
    [(503, BreakerState.OPEN), (408, BreakerState.OPEN), (429, BreakerState.CLOSED), (404, BreakerState.CLOSED)],
)
async def test_what_the_breaker_counts(status: int, state: BreakerState) -> None:
    clock = FakeClock()
    breakers = BreakerRegistry(MemoryStateStore(clock=clock), config=BreakerConfig(consecutive_failures=2), clock=clock)
    plan = DeliveryPlan("msg_1", "a", "acme", ("https://a.example/x",), "s")
    send = ScriptedSend({"https://a.example/x": status})
    async with build_async_client(allow_private=False) as http:
        for _ in range(3):
            await attempt_delivery(plan, (SECRET,), b"{}", http=http, send=send, breakers=breakers, monotonic=clock)
    breakers.flush()
    assert breakers.get("https://a.example").snapshot(refresh=True).state is state


def test_headers_carry_every_scheme_and_the_static_ones() -> None:
    plan = DeliveryPlan("msg_1", "a", "acme", ("https://a.example",), "s", scheme="stripe", headers={"X-Env": "prod"})
    headers = build_headers(plan, (SECRET,), 1_700_000_000, b'{"a":1}')
    assert headers["X-Env"] == "prod"
    assert headers["user-agent"] == USER_AGENT
    assert headers["content-type"] == "application/json"
    assert headers["Stripe-Signature"] == stripe_signature((SECRET,), 1_700_000_000, b'{"a":1}')
    github = build_headers(
        DeliveryPlan("msg_1", "a", "acme", ("https://a.example",), "s", scheme="github"), (SECRET,), 1, b"{}"
    )
    assert github["X-Hub-Signature-256"] == github_signature(SECRET, b"{}")
    assert github["webhook-timestamp"] == "1"
