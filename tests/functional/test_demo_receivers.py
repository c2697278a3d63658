"""The demo's loopback receivers: signature verification, recording, seeded faults and a clean stop."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from hookline.signing import generate_secret, signature_headers
from hookline_cli.demo.receivers import HOOK_PATH, Flaky, Receiver, always, closed_port


def _signed(secret: str, webhook_id: str, body: bytes) -> dict[str, str]:
    headers = signature_headers("standard", secret, webhook_id, int(time.time()), body)
    return {**headers, "content-type": "application/json"}


def test_verifies_records_and_answers() -> None:
    secret = generate_secret()
    body = b'{"n":1}'
    with Receiver("ok", always(200), secret=secret) as receiver, httpx.Client() as client:
        first = client.post(receiver.url, content=body, headers=_signed(secret, "msg_1", body))
        again = client.post(receiver.url, content=body, headers=_signed(secret, "msg_1", body))
        forged = client.post(receiver.url, content=body, headers=_signed(generate_secret(), "msg_2", body))
        health = client.get(receiver.health_url)
    assert (first.status_code, again.status_code, forged.status_code, health.status_code) == (200, 200, 401, 200)
    records = receiver.records
    assert [(r.webhook_id, r.attempt, r.verified, r.status) for r in records] == [
        ("msg_1", 1, True, 200),
        ("msg_1", 2, True, 200),
        ("msg_2", 1, False, 401),
    ]
    assert receiver.delivered_ids() == {"msg_1"}
    assert receiver.failed_ids() == {"msg_2"}


def test_flaky_is_seeded_and_sends_retry_after() -> None:
    draws_a = Flaky(seed=3, error_rate=0.3, throttle_rate=0.2)
    draws_b = Flaky(seed=3, error_rate=0.3, throttle_rate=0.2)
    answers_a = [draws_a("x") for _ in range(200)]
    answers_b = [draws_b("x") for _ in range(200)]
    assert answers_a == answers_b
    statuses = {answer.status for answer in answers_a}
    assert statuses >= {200, 429} and statuses & {500, 502, 503}
    throttled = [answer for answer in answers_a if answer.status == 429]
    assert all(answer.headers == {"Retry-After": "1"} for answer in throttled)
    share = sum(answer.status != 200 for answer in answers_a) / len(answers_a)
    assert 0.35 < share < 0.65


def test_closed_port_refuses_connections() -> None:
    port = closed_port()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_stop_closes_keep_alive_connections_and_joins_threads() -> None:
    secret = generate_secret()
    before = threading.active_count()
    receiver = Receiver("ka", always(200), secret=secret).start()
    client = httpx.Client()  # keeps its connection open after the request
    body = b"{}"
    assert client.post(receiver.url, content=body, headers=_signed(secret, "msg_ka", body)).status_code == 200
    port = receiver.port
    receiver.stop()
    client.close()
    assert threading.active_count() == before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_unknown_path_is_404() -> None:
    secret = generate_secret()
    with Receiver("p", always(200), secret=secret) as receiver, httpx.Client() as client:
        assert client.post(receiver.origin + HOOK_PATH + "/other", content=b"{}").status_code == 404
    assert receiver.records == []


def test_flaky_throttles_beyond_its_rate_limit_with_retry_after() -> None:
    now = [100.0]
    receiver = Flaky(seed=3, error_rate=0.0, throttle_rate=0.0, rate_limit_per_s=5, clock=lambda: now[0])
    first_second = [receiver("x").status for _ in range(8)]
    assert first_second == [200] * 5 + [429] * 3
    assert receiver("x").headers == {"Retry-After": "1"}
    now[0] += 1.0  # the window has moved on: the five counted requests no longer count
    assert [receiver("x").status for _ in range(6)] == [200] * 5 + [429]


def test_flaky_refuses_a_rate_limit_below_one() -> None:
    with pytest.raises(ValueError, match="rate_limit_per_s"):
        Flaky(seed=1, rate_limit_per_s=0)
