"""How the CLI finds its stack: .hookline/local.json, --stack-name (CloudFormation outputs), HOOKLINE_* variables."""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from hookline.registry import Endpoint, EndpointRegistry
from hookline_cli.resources import Resources, is_loopback_url
from tests.support.aws import client
from tests.support.cli import run, stack_environ

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import Result

    from tests.support.template import StackResources

_DEAD_PID = 4_194_305  # above Linux's pid_max: never a live process


def _run(*args: str) -> Result:
    """The CLI exactly as a user runs it: no injected objects, everything from options, files and environment."""
    return run(args)


def _register(stack: StackResources, moto_endpoint: str, name: str) -> None:
    registry = EndpointRegistry(stack.endpoints_table, client=client("dynamodb", moto_endpoint))
    registry.register(Endpoint(name=name, url="https://hooks.example.com/x", secret_id=f"hookline/{name}"))


def _outputs(stack: StackResources) -> dict[str, str]:
    return {
        "EndpointsTableName": stack.endpoints_table,
        "BreakerTableName": stack.breaker_table,
        "HealthHistoryTableName": stack.health_history_table,
        "DeliveryQueueUrl": stack.delivery_queue_url,
        "DeadLetterQueueUrl": stack.dead_letter_queue_url,
        "AlertTopicArn": stack.alert_topic_arn,
    }


def _local_state(stack: StackResources, moto_endpoint: str, *, pid: int | None = None) -> dict[str, Any]:
    """A .hookline/local.json as `hookline local up` writes it (the parts the CLI reads)."""
    return {
        "version": 1,
        "pid": os.getpid() if pid is None else pid,
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        "outputs": _outputs(stack),
        "functions": {
            "DeliveryFunction": {"name": "hookline-delivery", "environment": {"ALLOW_PRIVATE_TARGETS": "true"}},
            "HealthFunction": {"name": "hookline-health", "environment": {"ALLOW_PRIVATE_TARGETS": "true"}},
        },
    }


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty project directory, with no ambient AWS endpoint or HOOKLINE_* settings."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("HOOKLINE_"):
            monkeypatch.delenv(key)
    return tmp_path


def _write_state(directory: Path, state: dict[str, Any]) -> Path:
    path = directory / ".hookline" / "local.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def test_local_json_in_the_project_is_used_by_default(
    in_project: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No credentials in the environment: the local stack's own fake ones must be used.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(in_project / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(in_project / "no-config"))
    _write_state(in_project, _local_state(stack, moto_endpoint))
    _register(stack, moto_endpoint, "from-local")

    result = _run("endpoints", "list", "--json")

    assert result.exit_code == 0, result.stderr
    assert [item["name"] for item in json.loads(result.stdout)] == ["from-local"]


def test_global_json_option(in_project: Path, stack: StackResources, moto_endpoint: str) -> None:
    _write_state(in_project, _local_state(stack, moto_endpoint))
    _register(stack, moto_endpoint, "global-json")

    result = _run("--json", "endpoints", "list")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["name"] == "global-json"


def test_hookline_config_variable_names_another_state_file(
    in_project: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_state(in_project / "elsewhere", _local_state(stack, moto_endpoint))
    monkeypatch.setenv("HOOKLINE_CONFIG", str(path))
    _register(stack, moto_endpoint, "from-config")

    result = _run("health", "--json")

    assert result.exit_code == 0, result.stderr
    assert [item["name"] for item in json.loads(result.stdout)] == ["from-config"]


def test_a_stale_local_json_is_reported(in_project: Path, stack: StackResources, moto_endpoint: str) -> None:
    _write_state(in_project, _local_state(stack, moto_endpoint, pid=_DEAD_PID))

    result = _run("endpoints", "list")

    assert result.exit_code == 1
    assert "is not running" in result.stderr
    assert "hookline local up" in result.stderr


def test_stack_name_reads_cloudformation_outputs(in_project: Path, stack: StackResources, moto_endpoint: str) -> None:
    name = _stack_with_outputs(moto_endpoint, _outputs(stack))
    _register(stack, moto_endpoint, "from-stack")

    result = _run("--endpoint-url", moto_endpoint, "--stack-name", name, "--region", "us-east-1", "endpoints", "list")

    assert result.exit_code == 0, result.stderr
    assert "from-stack" in result.stdout


def test_unknown_stack_is_an_operational_error(in_project: Path, moto_endpoint: str) -> None:
    result = _run("--endpoint-url", moto_endpoint, "--stack-name", "no-such-stack", "endpoints", "list")

    assert result.exit_code == 1
    assert "cannot describe stack 'no-such-stack'" in result.stderr


def test_environment_variables_name_resources(
    in_project: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in stack_environ(stack).items():
        monkeypatch.setenv(key, value)
    _register(stack, moto_endpoint, "from-env")

    result = _run("--endpoint-url", moto_endpoint, "endpoints", "show", "from-env", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["url"] == "https://hooks.example.com/x"


def test_nothing_configured_says_how_to_configure(in_project: Path, moto_endpoint: str) -> None:
    result = _run("--endpoint-url", moto_endpoint, "dlq", "list")

    assert result.exit_code == 1
    assert "dead letter queue url is not known" in result.stderr
    assert "--stack-name" in result.stderr and "HOOKLINE_DEAD_LETTER_QUEUE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_endpoint_is_an_operational_error(in_project: Path, stack: StackResources) -> None:
    env = stack_environ(stack)

    result = run(["--endpoint-url", "http://127.0.0.1:9", "endpoints", "list"], env=env)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        ("http://127.9.9.9", True),
        ("https://dynamodb.us-east-1.amazonaws.com", False),
        ("http://10.0.0.1:4566", False),
        (None, False),
    ],
)
def test_is_loopback_url(url: str | None, expected: bool) -> None:
    assert is_loopback_url(url) is expected


def test_private_targets_follow_the_local_stack_and_the_override(tmp_path: Path, moto_endpoint: str) -> None:
    missing = tmp_path / "none.json"
    remote = Resources(endpoint_url=None, environ={}, config_path=missing)
    local = Resources(endpoint_url=moto_endpoint, environ={}, config_path=missing)
    forced = Resources(endpoint_url=None, environ={"HOOKLINE_ALLOW_PRIVATE_TARGETS": "true"}, config_path=missing)
    refused = Resources(
        endpoint_url=moto_endpoint, environ={"HOOKLINE_ALLOW_PRIVATE_TARGETS": "0"}, config_path=missing
    )

    assert (remote.allow_private_targets, local.allow_private_targets) == (False, True)
    assert (forced.allow_private_targets, refused.allow_private_targets) == (True, False)


def test_local_json_is_found_from_a_subdirectory(
    in_project: Path, stack: StackResources, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_state(in_project, _local_state(stack, moto_endpoint))
    _register(stack, moto_endpoint, "from-parent")
    (in_project / "functions" / "delivery").mkdir(parents=True)
    monkeypatch.chdir(in_project / "functions" / "delivery")

    result = run(["endpoints", "list", "--json"])

    assert result.exit_code == 0, result.stderr
    assert [item["name"] for item in json.loads(result.stdout)] == ["from-parent"]


def test_an_endpoint_url_of_another_server_ignores_local_json(
    in_project: Path, stack: StackResources, moto_endpoint: str
) -> None:
    _write_state(in_project, _local_state(stack, moto_endpoint))

    result = run(["--endpoint-url", "http://127.0.0.1:9", "endpoints", "list"])

    assert result.exit_code == 1
    assert "endpoints table is not known" in result.stderr


def _stack_with_outputs(moto_endpoint: str, outputs: dict[str, str]) -> str:
    name = f"hookline-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation", moto_endpoint).create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.mark.parametrize(("prefix", "expected"), [("acme/signing/", "acme/signing/"), (None, "hookline/")])
def test_secret_prefix_comes_from_the_deployed_stack(
    in_project: Path, stack: StackResources, moto_endpoint: str, prefix: str | None, expected: str
) -> None:
    outputs = _outputs(stack) if prefix is None else {**_outputs(stack), "SigningSecretPrefix": prefix}
    name = _stack_with_outputs(moto_endpoint, outputs)
    endpoint = f"acme-{uuid.uuid4().hex[:8]}"

    result = _run(
        "--endpoint-url", moto_endpoint, "--stack-name", name, "--region", "us-east-1",
        "endpoints", "add", endpoint, "--url", "https://hooks.example.com/in", "--generate-secret", "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["endpoint"]["secret_id"] == f"{expected}{endpoint}"
    secrets = client("secretsmanager", moto_endpoint).describe_secret(SecretId=f"{expected}{endpoint}")
    assert secrets["Name"] == f"{expected}{endpoint}"


def test_secret_prefix_comes_from_the_local_stack(in_project: Path, stack: StackResources, moto_endpoint: str) -> None:
    state = _local_state(stack, moto_endpoint)
    state["outputs"]["SigningSecretPrefix"] = "local/signing/"
    _write_state(in_project, state)
    endpoint = f"acme-{uuid.uuid4().hex[:8]}"

    result = _run("endpoints", "add", endpoint, "--url", "http://127.0.0.1:9/in", "--generate-secret", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["endpoint"]["secret_id"] == f"local/signing/{endpoint}"
