"""`make sam-local`'s own logic: the generated env file and events, the loopback guard, SAM's host-network patches,
mount bookkeeping and the report. The whole run needs root and Docker: `make sam-local` itself runs it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import ContainerCollection
from samcli.lib.utils import version_checker
from samcli.local.docker.container import Container
from samcli.local.docker.lambda_container import LambdaContainer
from samcli.local.lambdafn.env_vars import EnvironmentVariables

from scripts.sam_local import sam_hostnet
from scripts.sam_local.environment import (
    CONFINED,
    EVENTS_DIR,
    WebhookTarget,
    confinement_problems,
    env_file,
    function_environment,
    is_loopback_url,
    local_event,
    webhook_targets,
    write_files,
)
from scripts.sam_local.run import Aborted, Report
from scripts.sam_local.system import Mount, mounts_under

ENDPOINT = "http://127.0.0.1:4566"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:hookline-local-DeliveryQueue-ABC"


def _state() -> dict[str, Any]:
    environment = {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ACCESS_KEY_ID": "testing",
        "ENDPOINTS_TABLE": "hookline-local-EndpointsTable-X",
        "ALLOW_PRIVATE_TARGETS": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LAMBDA_TASK_ROOT": "/home/me/hookline/functions/delivery",
        "AWS_LAMBDA_FUNCTION_NAME": "hookline-local-DeliveryFunction",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]x",
        "MAX_CONCURRENCY": 10,
    }
    return {
        "region": "eu-west-1",
        "endpoint_url": ENDPOINT,
        "queues": {"DeliveryQueue": {"url": f"{ENDPOINT}/123456789012/q", "arn": QUEUE_ARN}},
        "functions": {
            "DeliveryFunction": {"environment": environment},
            "HealthFunction": {"environment": {**environment, "POWERTOOLS_SERVICE_NAME": "hookline-health"}},
        },
    }


def _confined_environment() -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": ENDPOINT, **CONFINED}


# --- the env file ---------------------------------------------------------------------------------------------------


def test_function_environment_is_the_local_stacks_less_what_sam_sets_with_tracing_off() -> None:
    environment = function_environment(_state(), "DeliveryFunction")
    assert environment["AWS_ENDPOINT_URL"] == ENDPOINT
    assert environment["ENDPOINTS_TABLE"] == "hookline-local-EndpointsTable-X"
    assert environment["MAX_CONCURRENCY"] == "10"
    assert not {"LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_LOG_STREAM_NAME"} & environment.keys()
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert environment["AWS_XRAY_SDK_ENABLED"] == "false"
    assert confinement_problems(environment) == []


def test_env_file_has_one_section_per_function() -> None:
    document = env_file(_state())
    assert sorted(document) == ["DeliveryFunction", "HealthFunction"]
    assert document["HealthFunction"]["POWERTOOLS_SERVICE_NAME"] == "hookline-health"


# --- the loopback guard ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://127.9.9.9", True),
        ("http://[::1]:8000/x", True),
        ("http://localhost:1", True),
        ("https://sqs.us-east-1.amazonaws.com", False),
        ("http://10.0.0.1", False),
        ("http://0.0.0.0:1", False),
        ("not a url", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"AWS_ENDPOINT_URL": None}, "AWS_ENDPOINT_URL is not set"),
        ({"AWS_ENDPOINT_URL": "https://dynamodb.eu-west-1.amazonaws.com"}, "is not a loopback address"),
        ({"AWS_ENDPOINT_URL_SQS": "https://sqs.eu-west-1.amazonaws.com"}, "AWS_ENDPOINT_URL_SQS="),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, "POWERTOOLS_TRACE_DISABLED must be 'true'"),
        ({"AWS_XRAY_SDK_ENABLED": None}, "AWS_XRAY_SDK_ENABLED must be 'false'"),
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, "HTTPS_PROXY is set"),
        ({"https_proxy": "http://proxy.example:3128"}, "https_proxy is set"),
        ({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}, "AWS_XRAY_DAEMON_ADDRESS="),
    ],
)
def test_confinement_problems_name_every_way_out(change: dict[str, str | None], problem: str) -> None:
    environment = _confined_environment()
    for name, value in change.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    problems = confinement_problems(environment)
    assert len(problems) == 1
    assert problem in problems[0]


def test_a_loopback_service_endpoint_and_xray_daemon_are_fine() -> None:
    environment = {
        **_confined_environment(),
        "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }
    assert confinement_problems(environment) == []


# --- the events -----------------------------------------------------------------------------------------------------


def _sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return event


def test_local_event_moves_queue_region_and_message_urls_to_the_stack_and_receiver() -> None:
    sample = _sample("sqs-delivery.json")
    local = local_event(sample, queue_arn=QUEUE_ARN, region="eu-west-1", target_url=lambda path: f"{ENDPOINT}{path}")
    assert {record["eventSourceARN"] for record in local["Records"]} == {QUEUE_ARN}
    assert {record["awsRegion"] for record in local["Records"]} == {"eu-west-1"}
    by_endpoint, inline = (json.loads(record["body"]) for record in local["Records"])
    assert by_endpoint == json.loads(sample["Records"][0]["body"])
    assert inline["url"] == f"{ENDPOINT}/orders"
    assert inline["fallback_urls"] == [f"{ENDPOINT}/orders"]
    assert inline["secret_id"] == "hookline/example-orders"
    for record in local["Records"]:
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
    assert sample["Records"][1]["eventSourceARN"] != QUEUE_ARN, "the sample itself is left alone"


def test_local_event_keeps_bodies_that_are_not_json() -> None:
    sample = _sample("sqs-poison.json")
    local = local_event(sample, queue_arn=QUEUE_ARN, region="eu-west-1", target_url=lambda path: f"{ENDPOINT}{path}")
    assert local["Records"][0]["body"] == sample["Records"][0]["body"]
    assert json.loads(local["Records"][2]["body"])["url"] == f"{ENDPOINT}/latest/meta-data/"


def test_webhook_targets_of_the_delivery_sample() -> None:
    assert webhook_targets(_sample("sqs-delivery.json")) == [
        WebhookTarget(endpoint="acme-billing"),
        WebhookTarget(secret_id="hookline/example-orders", url_paths=("/orders",)),
    ]


def test_write_files_generates_the_env_file_and_every_sample_event(tmp_path: Path) -> None:
    files = write_files(_state(), target_url=lambda path: f"http://127.0.0.1:8000{path}", output_dir=tmp_path)
    assert json.loads(files.env_file.read_text(encoding="utf-8")) == env_file(_state())
    assert sorted(path.name for path in files.events_dir.iterdir()) == sorted(p.name for p in EVENTS_DIR.glob("*.json"))
    assert json.loads(files.event("schedule-health.json").read_text()) == _sample("schedule-health.json")
    delivery = json.loads(files.event("sqs-delivery.json").read_text())
    assert delivery["Records"][0]["eventSourceARN"] == QUEUE_ARN


# --- SAM's host-network patches -------------------------------------------------------------------------------------


def test_host_network_entrypoint_puts_both_emulator_listeners_on_loopback() -> None:
    entrypoint = sam_hostnet.host_network_entrypoint(
        ["/var/rapid/aws-lambda-rie", "--log-level", "error"], invoke_port=5001, runtime_api_port=40001
    )
    assert entrypoint == [
        "/var/rapid/aws-lambda-rie",
        "--runtime-interface-emulator-address",
        "127.0.0.1:5001",
        "--runtime-api-address",
        "127.0.0.1:40001",
        "--log-level",
        "error",
    ]
    with pytest.raises(sam_hostnet.ConfinementError):
        sam_hostnet.host_network_entrypoint(["/tmp/lambci/debugger"], invoke_port=1, runtime_api_port=2)


@pytest.fixture
def patched_sam(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Install the patches over recording stand-ins of SAM's and docker-py's Docker calls; all restored after."""
    created: list[Any] = []
    monkeypatch.setattr(Container, "create", lambda self, context: created.append(self) or "container-id")
    monkeypatch.setattr(
        ContainerCollection, "create", lambda self, image, command=None, **kwargs: created.append(kwargs)
    )
    monkeypatch.setattr(EnvironmentVariables, "resolve", EnvironmentVariables.resolve)
    monkeypatch.setattr(version_checker, "fetch_and_compare_versions", version_checker.fetch_and_compare_versions)
    sam_hostnet.install()
    return created


def _lambda_container(environment: dict[str, str]) -> Any:
    container = LambdaContainer.__new__(LambdaContainer)
    container._env_vars = environment
    container._entrypoint = ["/var/rapid/aws-lambda-rie", "--log-level", "error"]
    container._container_opts = None
    container._exposed_ports = {"5858": 5858}
    container.rapid_port_host = 5123
    return container


def test_a_lambda_container_runs_on_the_host_network_with_its_emulator_on_loopback(patched_sam: list[Any]) -> None:
    container = _lambda_container(_confined_environment())
    assert Container.create(container, None) == "container-id"
    assert patched_sam == [container]
    assert container._container_opts == {"network_mode": "host"}
    assert container._exposed_ports is None
    assert container._entrypoint[1:3] == ["--runtime-interface-emulator-address", "127.0.0.1:5123"]


def test_docker_gets_no_published_port_for_a_host_network_container(patched_sam: list[Any]) -> None:
    ContainerCollection.create(None, "image", None, network_mode="host", ports={"8080": ("127.0.0.1", 5123)})
    ContainerCollection.create(None, "image", None, ports={"8080": ("127.0.0.1", 5124)})
    assert patched_sam == [{"network_mode": "host"}, {"ports": {"8080": ("127.0.0.1", 5124)}}]


def test_a_lambda_container_that_could_leave_loopback_is_never_created(patched_sam: list[Any]) -> None:
    container = _lambda_container({**_confined_environment(), "AWS_ENDPOINT_URL": "https://sqs.amazonaws.com"})
    with pytest.raises(sam_hostnet.ConfinementError, match="is not a loopback address"):
        Container.create(container, None)
    assert patched_sam == []


def test_env_file_variables_reach_the_function_even_when_the_template_does_not_declare_them(
    patched_sam: list[Any],
) -> None:
    variables = EnvironmentVariables(
        "DeliveryFunction",
        512,
        60,
        "app.lambda_handler",
        variables={"ENDPOINTS_TABLE": "from-template"},
        override_values={"ENDPOINTS_TABLE": "from-file", "AWS_ENDPOINT_URL": ENDPOINT, "MAX_CONCURRENCY": 10},
    ).resolve()
    assert variables["ENDPOINTS_TABLE"] == "from-file"
    assert variables["AWS_ENDPOINT_URL"] == ENDPOINT
    assert variables["MAX_CONCURRENCY"] == "10"
    assert variables["AWS_LAMBDA_FUNCTION_NAME"] == "DeliveryFunction"


# --- mounts and the report ------------------------------------------------------------------------------------------


def test_mounts_under_lists_a_directory_and_below_deepest_first(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 254:0 / / rw - ext4 /dev/vda rw\n"
        "41 22 0:4 net:[4026531840] /run/hookline-sam-local-x/netns/default rw shared:5 - nsfs nsfs rw\n"
        "42 22 254:0 /a /run/hookline-sam-local-x rw - ext4 /dev/vda rw\n"
        "43 22 0:50 / /run/hookline-sam-local-x/with\\040space rw - overlay overlay rw\n"
        "44 22 0:51 / /run/hookline-sam-local-xy rw - tmpfs tmpfs rw\n"
    )
    root = Path("/run/hookline-sam-local-x")
    assert mounts_under(root, mountinfo=mountinfo) == [
        Mount(root / "netns" / "default", "nsfs"),
        Mount(root / "with space", "overlay"),
        Mount(root, "ext4"),
    ]


def test_report_counts_checks_and_closes_with_the_plain_line() -> None:
    lines: list[str] = []
    ticks = iter(range(100))
    report = Report(clock=lambda: float(next(ticks)), write=lines.append)
    assert report.check("passes", lambda: "detail")
    assert not report.check("fails", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(Aborted):
        report.check("required", lambda: (_ for _ in ()).throw(RuntimeError("stop")), required=True)
    assert report.close() == 2
    assert lines[0].startswith("ok   passes") and lines[0].rstrip().endswith(": detail")
    assert lines[1].startswith("FAIL fails") and "boom" in lines[1]
    assert lines[-1].splitlines()[-1] == "1 passed, 2 failed"
