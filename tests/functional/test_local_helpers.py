"""The Python helpers (send_webhook, integration_service) against a local stack: only when told, never by finding it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hookline.integrations import IntegrationService, integration_service
from hookline.local import LOCAL_ENV, LocalStackError, stop_using_local_stack, use_local_stack
from hookline.producer import send_webhook
from hookline.registry import TargetNotAllowedError
from hookline.settings import SettingsError
from tests.support.aws import client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.template import StackResources

_DEAD_PID = 4_194_305  # above Linux's pid_max: never a live process


@pytest.fixture
def no_aws_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A process with no region, no credentials and no HOOKLINE_LOCAL, running in an empty directory."""
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    stop_using_local_stack()


def _write_local_json(directory: Path, stack: StackResources, moto_endpoint: str, *, pid: int | None = None) -> Path:
    """A .hookline/local.json as `hookline local up` writes it (the parts the helpers read)."""
    path = directory / ".hookline" / "local.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "pid": os.getpid() if pid is None else pid,
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        "allow_private_targets": True,
        "outputs": {
            "EndpointsTableName": stack.endpoints_table,
            "BreakerTableName": stack.breaker_table,
            "HealthHistoryTableName": stack.health_history_table,
            "DeliveryQueueUrl": stack.delivery_queue_url,
            "SigningSecretPrefix": "hookline/",
        },
    }
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def _received(stack: StackResources, moto_endpoint: str) -> list[dict[str, Any]]:
    sqs = client("sqs", moto_endpoint)
    messages = sqs.receive_message(QueueUrl=stack.delivery_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_send_webhook_uses_the_local_stack_named_by_the_environment(
    no_aws_configuration: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_local_json(no_aws_configuration / "elsewhere", stack, moto_endpoint)
    monkeypatch.setenv(LOCAL_ENV, str(path))

    webhook_id = send_webhook(endpoint="acme", event_type="invoice.paid", payload={"n": 1})

    assert [message["id"] for message in _received(stack, moto_endpoint)] == [webhook_id]


def test_use_local_stack_points_send_webhook_and_integration_service_at_it(
    no_aws_configuration: Path, stack: StackResources, moto_endpoint: str
) -> None:
    target = use_local_stack(_write_local_json(no_aws_configuration, stack, moto_endpoint))

    created = integration_service.register_integration(
        name="billing", service_type="payments", endpoint="http://127.0.0.1:9/billing"
    )
    webhook_id = send_webhook(target.output("DeliveryQueueUrl"), endpoint="billing", event_type="a.b", payload={})

    assert created.endpoint.secret_id == "hookline/billing"
    assert integration_service.get_integration_health("billing").state == "unknown"
    assert integration_service.get_integration("billing").service_type == "payments"
    assert [message["id"] for message in _received(stack, moto_endpoint)] == [webhook_id]


def test_a_local_json_in_the_working_directory_is_never_picked_up(
    no_aws_configuration: Path, stack: StackResources, moto_endpoint: str
) -> None:
    _write_local_json(no_aws_configuration, stack, moto_endpoint)

    with pytest.raises(SettingsError, match="needs queue_url, or a local stack"):
        send_webhook(endpoint="acme", event_type="a.b", payload={})
    with pytest.raises(SettingsError, match="ENDPOINTS_TABLE"):
        IntegrationService().get_integration_health("acme")
    assert _received(stack, moto_endpoint) == []


def test_a_local_stack_that_is_not_running_is_an_error_not_a_fall_back(
    no_aws_configuration: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_local_json(no_aws_configuration, stack, moto_endpoint, pid=_DEAD_PID)

    with pytest.raises(LocalStackError, match="is not running"):
        use_local_stack(path)
    monkeypatch.setenv(LOCAL_ENV, str(path))
    with pytest.raises(LocalStackError, match="is not running"):
        send_webhook("https://sqs.us-east-1.amazonaws.com/123456789012/q", endpoint="a", event_type="a.b", payload={})
    with pytest.raises(LocalStackError, match=r"cannot read local stack state .*missing\.json"):
        use_local_stack(no_aws_configuration / "missing.json")


def test_integration_service_from_the_function_environment(
    stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOCAL_ENV, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    environ = {**stack.environment(), "SIGNING_SECRET_PREFIX": "acme/"}
    service = IntegrationService(environ=environ)

    created = service.register_integration(name="crm", service_type="crm", endpoint="https://crm.example/hook")

    assert created.endpoint.secret_id == "acme/crm"
    assert service.health_history("crm") == []
    assert service.breaker_status("crm").name == "https://crm.example"
    with pytest.raises(TargetNotAllowedError):  # ALLOW_PRIVATE_TARGETS is not set: a deployed stack's rules
        service.register_integration(name="local", service_type="crm", endpoint="http://127.0.0.1:9/")


def _readme_local_stack_example() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Against the local stack, say so once") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    return code[: code.index("```")]


def test_the_readme_example_runs_as_written(
    no_aws_configuration: Path, stack: StackResources, moto_endpoint: str
) -> None:
    _write_local_json(no_aws_configuration, stack, moto_endpoint)  # the example names .hookline/local.json

    exec(compile(_readme_local_stack_example(), "README.md", "exec"), {})  # noqa: S102 - our own documentation

    assert integration_service.get_integration("billing").service_type == "payments"
    assert [message["event_type"] for message in _received(stack, moto_endpoint)] == ["invoice.paid"]
