"""The seed-parity IntegrationService and the HealthFunction handler, against moto and a loopback receiver."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hookline.health.factory import get_health_service
from hookline.health.store import HealthStore
from hookline.integrations import IntegrationService
from hookline.registry import (
    EndpointExistsError,
    EndpointNotFoundError,
    HealthCheck,
    RegistryItemError,
    SecretPrefixError,
    TargetNotAllowedError,
    WritePolicy,
)
from resilience.breaker import BreakerRegistry, BreakerState, MemoryStateStore
from tests.support.aws import client
from tests.support.health import health_service
from tests.support.loopback import Reply, loopback_server
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_ALLOWED = WritePolicy(allow_private_targets=True)  # the receivers here listen on loopback


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return client("dynamodb", moto_endpoint)


@pytest.fixture
def breakers() -> BreakerRegistry:
    return BreakerRegistry(MemoryStateStore(clock=FakeClock(1_800_000_000.0)))


@pytest.fixture
def integrations(stack: StackResources, dynamodb: Any, breakers: BreakerRegistry) -> IntegrationService:
    history = HealthStore(stack.endpoints_table, stack.health_history_table, client=dynamodb)
    return IntegrationService(
        stack.endpoints_table, client=dynamodb, breakers=breakers, history=history, write_policy=LOOPBACK_ALLOWED
    )


def test_register_with_a_label_service_type(integrations: IntegrationService) -> None:
    created = integrations.register_integration("billing", "payments", "https://hooks.acme.example/billing")
    assert created.service_type == "payments"
    assert created.endpoint.scheme == "standard"
    assert created.endpoint.secret_id == "hookline/billing"
    read = integrations.get_integration("billing")
    assert (read.service_type, read.endpoint.url, read.health.state) == (
        "payments",
        "https://hooks.acme.example/billing",
        "unknown",
    )
    assert read.breaker_name == "https://hooks.acme.example"


def test_service_type_naming_a_scheme_selects_it(integrations: IntegrationService) -> None:
    created = integrations.register_integration("gh", "github", url="https://hooks.example/gh", secret_id="hookline/gh")
    assert created.endpoint.scheme == "github"
    assert integrations.get_integration("gh").service_type == "github"


def test_register_validates(integrations: IntegrationService) -> None:
    with pytest.raises(RegistryItemError):
        integrations.register_integration("x", "webhook")
    with pytest.raises(RegistryItemError):
        integrations.register_integration("x", "webhook", "https://a.example", url="https://b.example")
    with pytest.raises(RegistryItemError):
        integrations.register_integration("x", "bad type!", "https://a.example")
    integrations.register_integration("x", "webhook", "https://a.example")
    with pytest.raises(EndpointExistsError):
        integrations.register_integration("x", "webhook", "https://a.example")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "private_address"),
        ("http://u:p4ss@hooks.example/in", "credentials"),
        ("http://127.0.0.1:9/in", "private_address"),
        ("ftp://hooks.example/in", "scheme"),
        ("https://hooks.example/" + "x" * 2048, "too_long"),
        ("https://" + "a" * 300 + ".example/in", "too_long"),
    ],
)
def test_register_refuses_what_the_cli_refuses(stack: StackResources, dynamodb: Any, url: str, reason: str) -> None:
    strict = IntegrationService(stack.endpoints_table, client=dynamodb)  # the default: a deployed stack's rules

    with pytest.raises(TargetNotAllowedError) as refused:
        strict.register_integration("meta", "webhook", url)

    assert (refused.value.field, refused.value.reason) == ("url", reason)
    assert "p4ss" not in str(refused.value)
    with pytest.raises(EndpointNotFoundError):
        strict.get_integration("meta")


def test_updates_and_fallbacks_go_through_the_same_guard(integrations: IntegrationService) -> None:
    integrations.register_integration("a", "crm", "https://a.example/in")

    with pytest.raises(TargetNotAllowedError, match="fallback_urls"):
        integrations.register_integration("b", "crm", "https://b.example/in", fallback_urls=["http://10.0.0.7/"])
    with pytest.raises(TargetNotAllowedError, match="health.url"):
        integrations.update_integration("a", health=HealthCheck(url="http://[::ffff:10.0.0.1]/"))
    with pytest.raises(SecretPrefixError, match="'other/a'"):
        integrations.update_integration("a", secret_id="other/a")
    assert integrations.get_integration("a").endpoint.secret_id == "hookline/a"
    assert integrations.get_integration("a").endpoint.health == HealthCheck()


def test_secret_prefix_of_the_stack(stack: StackResources, dynamodb: Any) -> None:
    service = IntegrationService(
        stack.endpoints_table, client=dynamodb, write_policy=WritePolicy(secret_prefix="acme/webhooks/")
    )

    created = service.register_integration("billing", "payments", "https://hooks.acme.example/billing")

    assert created.endpoint.secret_id == "acme/webhooks/billing"
    with pytest.raises(SecretPrefixError, match="outside the stack's signing-secret prefix 'acme/webhooks/'"):
        service.register_integration("crm", "crm", "https://hooks.acme.example/crm", secret_id="hookline/crm")


def test_update_enable_disable_list_remove(integrations: IntegrationService) -> None:
    integrations.register_integration("a", "crm", "https://a.example/in")
    integrations.register_integration("b", "webhook", "https://b.example/in")
    updated = integrations.update_integration("a", health=HealthCheck(url="https://a.example/health", method="HEAD"))
    assert updated.endpoint.health.url == "https://a.example/health"
    assert updated.service_type == "crm"
    integrations.disable("b", "paused by ops")
    assert [item.name for item in integrations.list_integrations()] == ["a", "b"]
    assert [item.name for item in integrations.list_integrations(enabled_only=True)] == ["a"]
    assert integrations.get_integration("b").endpoint.disabled_reason == "paused by ops"
    integrations.enable("b")
    assert integrations.get_integration("b").endpoint.enabled
    integrations.remove("b")
    with pytest.raises(EndpointNotFoundError):
        integrations.get_integration("b")


def test_listing_skips_malformed_items(integrations: IntegrationService, stack: StackResources, dynamodb: Any) -> None:
    integrations.register_integration("a", "crm", "https://a.example/in")
    dynamodb.put_item(
        TableName=stack.endpoints_table,
        Item={
            "name": {"S": "broken"},
            "url": {"S": "https://b.example/in"},
            "secret_id": {"S": "hookline/broken"},
            "last_latency_ms": {"S": "slow"},
        },
    )

    assert [item.name for item in integrations.list_integrations()] == ["a"]


def test_health_history_and_breaker_status_after_checks(
    stack: StackResources, dynamodb: Any, integrations: IntegrationService, breakers: BreakerRegistry
) -> None:
    with loopback_server() as receiver:
        receiver.route("/in", Reply(status=500))
        integrations.register_integration("acme", "payments", receiver.url("/in"))
        service = health_service(stack, dynamodb, breakers=breakers)
        for _ in range(3):
            service.run()
    health = integrations.get_integration_health("acme")
    assert health.state == "unhealthy"
    assert health.last_error == "status 500, expected 2xx"
    history = integrations.health_history("acme", limit=5)
    assert [entry.state for entry in history] == ["unhealthy", "unknown", "unknown"]
    snapshot = integrations.breaker_status("acme")
    assert (snapshot.state, snapshot.forced_by) == (BreakerState.FORCED_OPEN, "health")


@pytest.fixture
def handler_env(stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in stack.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "hookline-health")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Hookline")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    get_health_service.cache_clear()
    yield
    get_health_service.cache_clear()


class _Context:
    function_name = "HealthFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:HealthFunction"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 290_000


def test_handler_runs_one_check_and_emits_emf(
    handler_env: None, stack: StackResources, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("health_app", ROOT / "functions" / "health" / "app.py")
    assert spec is not None
    assert spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    event = json.loads((ROOT / "events" / "schedule-health.json").read_text(encoding="utf-8"))
    with loopback_server() as receiver:
        IntegrationService(stack.endpoints_table, client=dynamodb, write_policy=LOOPBACK_ALLOWED).register_integration(
            "acme", "webhook", receiver.url("/in")
        )
        result = app.lambda_handler(event, _Context())
    assert result["checked"] == 1
    assert result["unknown"] == 1
    assert result["errors"] == 0
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    per_integration = [blob for blob in emf if blob.get("Integration") == "acme"]
    assert per_integration[0]["IntegrationHealthy"] == [0.0]
    assert per_integration[0]["service"] == "hookline-health"
    fleet = [blob for blob in emf if "UnhealthyIntegrations" in blob]
    assert fleet[0]["UnhealthyIntegrations"] == [0.0]
    assert fleet[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Hookline"
    assert "ProbeLatency" in fleet[0]
