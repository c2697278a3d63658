"""The health service end to end: moto tables from the template, real loopback HTTP(S) receivers, real breakers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpcore
import pytest

from hookline.health.factory import build_health_service
from hookline.health.store import HealthStore
from hookline.health.telemetry import RecordingMetricsSink
from hookline.http import build_async_client
from hookline.metrics import CERTIFICATE_DAYS_LEFT, INTEGRATION_HEALTHY, PROBE_LATENCY, UNHEALTHY_INTEGRATIONS
from hookline.registry import EndpointRegistry
from hookline.settings import Settings
from resilience.breaker import BreakerRegistry, BreakerState, DynamoDBStateStore, MemoryStateStore
from resilience.exceptions import CircuitOpenError
from tests.support.aws import client, free_port
from tests.support.breaker import serial_moto_server
from tests.support.health import StepClock, health_service, make_endpoint, register
from tests.support.loopback import Reply, loopback_server
from tests.support.network import RecordingBackend
from tests.support.template import create_stack_resources
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hookline.health.service import HealthService, RunSummary
    from tests.support.loopback import LoopbackServer
    from tests.support.template import StackResources


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return client("dynamodb", moto_endpoint)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


def status_of(stack: StackResources, dynamodb: Any, name: str) -> Any:
    return EndpointRegistry(stack.endpoints_table, client=dynamodb).get_integration_health(name)


def runs(service: HealthService, count: int) -> list[RunSummary]:
    return [service.run() for _ in range(count)]


def test_healthy_integration(stack: StackResources, dynamodb: Any, server: LoopbackServer) -> None:
    server.route("/ok", Reply(status=200, body=b"fine"))
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/ok")))
    metrics = RecordingMetricsSink()
    service = health_service(stack, dynamodb, metrics=metrics)
    first, second = runs(service, 2)
    assert (first.unknown, second.healthy) == (1, 1)
    assert second.changes[0]["old_state"] == "unknown"
    assert second.changes[0]["new_state"] == "healthy"
    status = status_of(stack, dynamodb, "acme")
    assert status.state == "healthy"
    assert status.consecutive_successes == 2
    assert status.last_error is None
    assert status.last_latency_ms is not None
    # The probe went to the endpoint URL (no health.url), with GET and hookline's probe user agent.
    requests = server.requests_for("/ok")
    assert [request.method for request in requests] == ["GET", "GET"]
    assert requests[0].headers["user-agent"].startswith("hookline-health/")
    assert metrics.of(INTEGRATION_HEALTHY) == [(0.0, "acme"), (1.0, "acme")]
    assert len(metrics.of(PROBE_LATENCY)) == 2
    assert metrics.of(UNHEALTHY_INTEGRATIONS) == [(0.0, None), (0.0, None)]


def test_health_url_and_head_method(stack: StackResources, dynamodb: Any, server: LoopbackServer) -> None:
    server.route("/status", Reply(status=204))
    register(
        dynamodb,
        stack.endpoints_table,
        make_endpoint("acme", server.url("/hook"), url=server.url("/status"), method="HEAD", expect_status=(204,)),
    )
    summary = health_service(stack, dynamodb).run()
    assert summary.outcomes[0].passed
    assert [(request.method, request.path) for request in server.requests] == [("HEAD", "/status")]


@pytest.mark.parametrize(
    "case",
    [
        (Reply(status=200, delay_s=0.25), {"max_latency_ms": 100}, "ms over the 100 ms limit"),
        (Reply(status=503), {}, "status 503, expected 2xx"),
        (Reply(status=200), {"expect_status": (204,)}, "status 200, expected 204"),
        (Reply(status=302, headers={"location": "/elsewhere"}), {}, "status 302, expected 2xx"),
        (Reply(status=200, body=b'{"status":"degraded"}'), {"body_contains": '"ok"'}, "'\"ok\"' not in the response"),
    ],
    ids=["slow", "wrong-status", "unexpected-2xx", "redirect-not-followed", "body-mismatch"],
)
def test_failing_conditions_turn_unhealthy_after_the_threshold(
    stack: StackResources, dynamodb: Any, server: LoopbackServer, case: tuple[Reply, dict[str, Any], str]
) -> None:
    reply, health, reason = case
    server.route("/hook", reply)
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/hook"), **health))
    summaries = runs(health_service(stack, dynamodb), 3)
    assert [summary.unhealthy for summary in summaries] == [0, 0, 1]
    assert reason in (summaries[-1].outcomes[0].reason or "")
    status = status_of(stack, dynamodb, "acme")
    assert status.state == "unhealthy"
    assert status.consecutive_failures == 3
    assert reason in (status.last_error or "")


def test_connection_refused(stack: StackResources, dynamodb: Any) -> None:
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", f"http://127.0.0.1:{free_port()}/hook"))
    summary = health_service(stack, dynamodb).run()
    outcome = summary.outcomes[0]
    assert not outcome.passed
    assert outcome.latency_ms is None
    assert (outcome.reason or "").startswith("connection_refused")


def test_flapping_target_never_changes_state(stack: StackResources, dynamodb: Any, server: LoopbackServer) -> None:
    server.route("/hook", [Reply(200), Reply(200), *[Reply(503), Reply(503), Reply(200)] * 3])
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/hook")))
    service = health_service(stack, dynamodb)
    summaries = runs(service, 11)
    assert [change["new_state"] for summary in summaries for change in summary.changes] == ["healthy"]
    assert all(summary.healthy == 1 for summary in summaries[1:])
    history = HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb).history("acme", limit=50)
    assert len(history) == 11
    assert [entry.passed for entry in reversed(history)] == [True, True] + [False, False, True] * 3


def test_certificate_days_on_a_short_lived_loopback_certificate(stack: StackResources, dynamodb: Any) -> None:
    # TLS verification itself uses the real clock, so the certificate must really be valid now; the check's own
    # clock is then placed exactly 3 days before the certificate expires.
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    with loopback_server(tls=True, certificate_not_after=not_after) as tls_server:
        tls_server.route("/hook", Reply(status=200))
        register(
            dynamodb,
            stack.endpoints_table,
            make_endpoint("short", tls_server.url("/hook"), min_cert_days=14),
            make_endpoint("lenient", tls_server.url("/hook"), min_cert_days=2),
        )
        metrics = RecordingMetricsSink()
        clock = StepClock(start=not_after - timedelta(days=3), step=timedelta(microseconds=1))
        service = health_service(
            stack, dynamodb, metrics=metrics, now=clock, ssl_context=tls_server.client_ssl_context()
        )
        summary = service.run()
    by_name = {outcome.integration: outcome for outcome in summary.outcomes}
    assert not by_name["short"].passed
    assert by_name["short"].reason == "TLS certificate expires in 3.0 days (minimum 14)"
    assert by_name["lenient"].passed
    days = {name: value for value, name in metrics.of(CERTIFICATE_DAYS_LEFT)}
    assert days == {"short": pytest.approx(3.0, abs=0.01), "lenient": pytest.approx(3.0, abs=0.01)}


def test_sns_message_on_each_alert_worthy_change(
    stack: StackResources, dynamodb: Any, moto_endpoint: str, server: LoopbackServer
) -> None:
    sns, sqs = client("sns", moto_endpoint), client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName=f"alerts-{stack.endpoints_table[-8:]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.alert_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    server.route("/hook", [Reply(200), Reply(200), Reply(500), Reply(500), Reply(500), Reply(200), Reply(200)])
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/hook")))
    service = health_service(stack, dynamodb, sns=sns)
    sent = [summary.alerts_sent for summary in runs(service, 7)]
    assert sent == [0, 0, 0, 0, 1, 0, 1]  # unknown -> healthy is not alert-worthy
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    envelopes = sorted(
        (json.loads(message["Body"]) for message in messages), key=lambda envelope: envelope["Timestamp"]
    )
    assert [envelope["Subject"] for envelope in envelopes] == [
        "hookline: acme is UNHEALTHY",
        "hookline: acme recovered (healthy)",
    ]
    down = envelopes[0]["Message"]
    assert "State: healthy -> unhealthy" in down
    assert "Reason: status 500, expected 2xx" in down
    assert "Last latency: " in down
    assert f"Circuit breakers forced open by health: {server.base_url}" in down
    assert "State: unhealthy -> healthy" in envelopes[1]["Message"]


def test_health_forces_the_breaker_open_and_closes_it_again(
    stack: StackResources, dynamodb: Any, server: LoopbackServer
) -> None:
    """Real DynamoDB breaker store: delivery is refused while unhealthy and admitted at once after recovery."""
    clock = FakeClock(1_800_000_000.0)
    health_breakers = BreakerRegistry(DynamoDBStateStore(stack.breaker_table, client=dynamodb, clock=clock))
    delivery_breakers = BreakerRegistry(
        DynamoDBStateStore(stack.breaker_table, client=dynamodb, clock=clock, cache_ttl_s=0.0), writer="delivery"
    )
    server.route("/hook", [Reply(200), Reply(200), Reply(503), Reply(503), Reply(503), Reply(200), Reply(200)])
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/hook")))
    service = health_service(stack, dynamodb, breakers=health_breakers)
    summaries = runs(service, 5)
    assert summaries[-1].breakers_opened == [server.base_url]
    snapshot = delivery_breakers.get(server.base_url).snapshot(refresh=True)
    assert (snapshot.state, snapshot.forced_by) == (BreakerState.FORCED_OPEN, "health")
    with pytest.raises(CircuitOpenError):
        delivery_breakers.get(server.base_url).allow()
    summaries = runs(service, 2)
    assert summaries[-1].breakers_closed == [server.base_url]
    assert delivery_breakers.get(server.base_url).snapshot(refresh=True).state is BreakerState.CLOSED
    delivery_breakers.get(server.base_url).allow()
    history = health_breakers.store.history(server.base_url)
    assert {(transition.to_state, transition.source) for transition in history} >= {
        (BreakerState.FORCED_OPEN, "health"),
        (BreakerState.CLOSED, "health"),
    }


def test_operator_forced_open_survives_recovery(stack: StackResources, dynamodb: Any, server: LoopbackServer) -> None:
    breakers = BreakerRegistry(MemoryStateStore(clock=FakeClock(1_800_000_000.0)))
    breakers.get(server.base_url).force_open("maintenance window", source="operator")
    server.route("/hook", Reply(200))
    register(dynamodb, stack.endpoints_table, make_endpoint("acme", server.url("/hook")))
    summaries = runs(health_service(stack, dynamodb, breakers=breakers), 2)
    assert summaries[-1].breakers_closed == []
    assert breakers.get(server.base_url).snapshot().forced_by == "operator"


class _NoConnectBackend(RecordingBackend[httpcore.AsyncNetworkStream]):
    """The backend under the guard: any connect it is asked for is recorded (and fails)."""

    async def open(self, host: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("this test never connects")


def test_network_guard_refuses_private_targets_before_any_connect(stack: StackResources, dynamodb: Any) -> None:
    backend = _NoConnectBackend()

    async def resolver(host: str, port: int) -> list[str]:
        return {"internal.example": ["10.1.2.3"], "rebind.example": ["93.184.215.14", "192.168.0.10"]}[host]

    register(
        dynamodb,
        stack.endpoints_table,
        make_endpoint("metadata", "http://169.254.169.254/latest/meta-data"),
        make_endpoint("private-literal", "http://10.0.0.7/hook"),
        make_endpoint("private-name", "https://internal.example/hook"),
        make_endpoint("rebinding", "https://rebind.example/hook"),
    )
    settings = Settings(
        endpoints_table=stack.endpoints_table,
        health_history_table=stack.health_history_table,
        allow_private_targets=True,  # opens loopback only
    )
    service = build_health_service(
        settings,
        metrics=RecordingMetricsSink(),
        dynamodb=dynamodb,
        client_factory=lambda: build_async_client(allow_private=True, resolver=resolver, network_backend=backend),
        now=StepClock(),
    )
    summary = service.run()
    assert summary.checked == 4
    for outcome in summary.outcomes:
        assert not outcome.passed
        assert (outcome.reason or "").startswith("private_address"), outcome
    assert backend.connects == []


def test_disabled_and_invalid_items_are_not_probed(
    stack: StackResources, dynamodb: Any, server: LoopbackServer
) -> None:
    server.route("/on", Reply(200))
    server.route("/off", Reply(200))
    registry = register(
        dynamodb,
        stack.endpoints_table,
        make_endpoint("on", server.url("/on")),
        make_endpoint("off", server.url("/off")),
    )
    registry.disable("off", "paused")
    dynamodb.put_item(TableName=stack.endpoints_table, Item={"name": {"S": "broken"}, "url": {"N": "1"}})
    summary = health_service(stack, dynamodb).run()
    assert [outcome.integration for outcome in summary.outcomes] == ["on"]
    assert summary.invalid_items == ["broken"]
    assert server.requests_for("/off") == []


def test_items_with_malformed_numbers_are_skipped_and_counted_not_fatal(
    stack: StackResources, dynamodb: Any, server: LoopbackServer
) -> None:
    server.route("/on", Reply(200))
    register(dynamodb, stack.endpoints_table, make_endpoint("on", server.url("/on")))
    base = {"url": {"S": server.url("/on")}, "secret_id": {"S": "hookline/x"}}
    broken = {
        "bad-latency": {"last_latency_ms": {"S": "slow"}},
        "bad-counter": {"consecutive_failures": {"M": {}}},
        "bad-version": {"health_version": {"S": "seven"}},
    }
    for name, extra in broken.items():
        dynamodb.put_item(TableName=stack.endpoints_table, Item={"name": {"S": name}, **base, **extra})

    summary = health_service(stack, dynamodb).run()

    assert [outcome.integration for outcome in summary.outcomes] == ["on"]
    assert sorted(summary.invalid_items) == sorted(broken)
    assert summary.errors == 0


def test_probes_run_concurrently_within_the_bound(stack: StackResources, dynamodb: Any, server: LoopbackServer) -> None:
    server.route("/slow", Reply(200, delay_s=0.2))
    register(dynamodb, stack.endpoints_table, *(make_endpoint(f"i{index}", server.url("/slow")) for index in range(8)))
    summary = health_service(stack, dynamodb, concurrency=4).run()
    assert summary.checked == 8
    received = sorted(request.received_at for request in server.requests)
    # Two waves of four: the fifth request arrives only after the first wave's 200 ms answers.
    assert received[3] - received[0] < 0.15
    assert received[4] - received[0] >= 0.18


@pytest.fixture(scope="module")
def serial_endpoint() -> Iterator[str]:
    with serial_moto_server() as url:
        yield url


async def test_overlapping_runs_keep_counters_consistent(serial_endpoint: str) -> None:
    """Two runs of the whole service at once on one registry (linearizable moto): every applied check counts once."""
    dynamodb = client("dynamodb", serial_endpoint)
    stack = create_stack_resources(dynamodb, client("sqs", serial_endpoint), client("sns", serial_endpoint))
    with loopback_server() as receiver:
        receiver.route("/hook", Reply(503, delay_s=0.05))
        names = [f"i{index}" for index in range(4)]
        register(dynamodb, stack.endpoints_table, *(make_endpoint(name, receiver.url("/hook")) for name in names))
        first = health_service(stack, dynamodb, now=StepClock(step=timedelta(seconds=2)))
        second = health_service(
            stack,
            dynamodb,
            now=StepClock(start=datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC), step=timedelta(seconds=2)),
        )
        summaries = await asyncio.gather(first.run_async(), second.run_async(), first.run_async(), second.run_async())
    store = HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb)
    applied = dict.fromkeys(names, 0)
    for summary in summaries:
        for outcome in summary.outcomes:
            applied[outcome.integration] += outcome.applied
    for name in names:
        item = store.load(name)
        assert item is not None
        assert item.version == applied[name]
        assert item.endpoint.status.consecutive_failures == applied[name]
        assert len(store.history(name, limit=10)) == applied[name]
        # unknown -> unhealthy happens exactly once per integration however the runs interleave.
        changes = [c for summary in summaries for c in summary.changes if c["integration"] == name]
        assert len(changes) == (1 if applied[name] >= 3 else 0)


def test_probes_that_could_not_be_recorded_before_the_deadline_are_skipped(
    stack: StackResources, dynamodb: Any, server: LoopbackServer
) -> None:
    server.route("/hook", Reply(200))
    register(dynamodb, stack.endpoints_table, *(make_endpoint(f"i{index}", server.url("/hook")) for index in range(3)))
    remaining = iter([60_000, 24_000, 20_000])  # the reserve is probe timeout (10 s) + 15 s for the writes
    summary = health_service(stack, dynamodb, concurrency=1).run(remaining_ms=lambda: next(remaining))
    assert summary.checked == 1
    assert summary.skipped == {"deadline": 2}
    assert summary.errors == 0
    assert len(server.requests) == 1
