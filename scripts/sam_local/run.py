"""`make sam-local`: run the *built* functions as Lambda runs them, in containers, against the local stack.

Needs root (apt-get, dockerd, debootstrap) and reaches only loopback, apart from installs (Debian packages, the
Debian mirror for debootstrap, PyPI). In order, each step a check:

1. installs docker.io and debootstrap if missing; starts a private dockerd (scripts/sam_local/dockerd.py);
2. makes sure the local python3.13 base image exists (scripts/sam_local/base_image.py; built once, cached);
3. `sam build` with ``Architecture`` set to this host's (x86_64 here) into .aws-sam/sam-local/, and checks the built
   layer ships no boto3/botocore and no compiled code;
4. starts the local stack (`hookline local up`, .hookline/local.json) and a loopback receiver, registers what
   events/sqs-delivery.json delivers to, and generates the env file and the stack-specific events
   (scripts/sam_local/environment.py), checking every function stays on loopback with tracing off;
5. `sam local invoke DeliveryFunction` (every webhook verified with `standardwebhooks`, ``batchItemFailures: []``),
   `sam local invoke HealthFunction`, and `sam local start-lambda` with one boto3 ``lambda.invoke``;
6. stops everything it started, by PID, and checks that no process, container, network namespace or mount is left.

It prints one line per check and closes with ``N passed, M failed``; the exit status is 1 when a check failed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.sam_local.base_image import ensure_image, lambda_architecture
from scripts.sam_local.dockerd import Dockerd, dockerd_paths, leftovers, private_dockerd
from scripts.sam_local.environment import (
    EVENTS_DIR,
    LOCAL_STATE,
    SamLocalFiles,
    WebhookTarget,
    confinement_problems,
    function_environment,
    webhook_targets,
    write_files,
)
from scripts.sam_local.system import ensure_commands, free_loopback_port, stop_process

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.support.loopback import LoopbackServer

__all__ = ["Report", "main"]

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".hookline" / "sam-local"
BUILD_DIR = ROOT / ".aws-sam" / "sam-local"
BIN = Path(sys.executable).parent
_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
_COMMAND_TIMEOUT_S = 600.0
_STACK_TIMEOUT_S = 120.0


class Aborted(Exception):
    """A step the rest depends on failed; stop here (cleanup still runs)."""


def _print(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@dataclass
class Report:
    """The checks of one run: one line each as they finish, then ``N passed, M failed``."""

    clock: Callable[[], float] = time.monotonic
    write: Callable[[str], object] = _print
    passed: int = 0
    failed: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def check(self, name: str, step: Callable[[], str | None], *, required: bool = False) -> bool:
        """Run one check; ``step`` returns a detail or raises. A failed ``required`` check raises Aborted."""
        began = self.clock()
        try:
            detail = step()
        except Exception as error:  # noqa: BLE001 - every failure of a step is reported as that check failing
            self.failed += 1
            self.write(f"FAIL {name} ({self.clock() - began:.1f} s): {error}\n")
            if required:
                raise Aborted(name) from error
            return False
        self.passed += 1
        self.write(f"ok   {name} ({self.clock() - began:.1f} s){': ' + detail if detail else ''}\n")
        return True

    def close(self) -> int:
        """Print the total time and the closing line; the number of failed checks."""
        self.write(f"sam-local took {self.clock() - self.started:.0f} s\n{self.passed} passed, {self.failed} failed\n")
        return self.failed


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


def _run_logged(command: list[str], *, log: Path, env: dict[str, str]) -> str:
    """Run a command, its stderr into ``log``; its stdout, or an error with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as stderr:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
    if result.returncode:
        raise RuntimeError(f"{' '.join(command[:6])} ... exited {result.returncode}; {log}:\n{_tail(log)}")
    return result.stdout


@dataclass
class Run:
    """State shared by the steps of one run."""

    architecture: str = field(default_factory=lambda_architecture)
    daemon: Dockerd = field(default_factory=lambda: dockerd_paths(ROOT))
    image: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    files: SamLocalFiles | None = None
    receiver: LoopbackServer | None = None
    secrets_by_path: dict[str, str] = field(default_factory=dict)
    targets: list[WebhookTarget] = field(default_factory=list)
    started: list[subprocess.Popen[Any]] = field(default_factory=list)

    def sam_environment(self) -> dict[str, str]:
        """The environment of every `sam` command: our dockerd, fake credentials, no telemetry, no AWS profile."""
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "DOCKER_"))}
        return inherited | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_HOST": self.daemon.host,
            "SAM_CLI_TELEMETRY": "0",
            "__SAM_CLI_APP_DIR": str(WORK / "sam-config"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.state.get("region", "us-east-1"),
            "AWS_REGION": self.state.get("region", "us-east-1"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def sam(self, *arguments: str, log: str) -> str:
        """Run `sam` (with the host-network patches of sam_hostnet); its stdout."""
        command = [sys.executable, "-m", "scripts.sam_local.sam_hostnet", *arguments]
        return _run_logged(command, log=WORK / "logs" / f"{log}.log", env=self.sam_environment())

    def local_arguments(self) -> list[str]:
        """What every `sam local` command of this run takes."""
        assert self.files is not None
        return [
            "--template", str(BUILD_DIR / "build" / "template.yaml"),
            "--parameter-overrides", f"Architecture={self.architecture}",
            "--env-vars", str(self.files.env_file),
            "--invoke-image", self.image,
            "--skip-pull-image",
        ]  # fmt: skip


# --- steps ---------------------------------------------------------------------------------------------------------


def _require_root() -> str:
    if os.geteuid() != 0:
        raise PermissionError("make sam-local needs root (apt-get, dockerd, debootstrap)")
    installed = ensure_commands({"dockerd": "docker.io", "docker": "docker.io", "debootstrap": "debootstrap"})
    return f"installed {', '.join(installed)}" if installed else "docker.io and debootstrap present"


def _build(run: Run) -> str:
    run.sam(
        "build",
        "--template", str(ROOT / "template.yaml"),
        "--build-dir", str(BUILD_DIR / "build"),
        "--cache-dir", str(BUILD_DIR / "cache"),
        "--parameter-overrides", f"Architecture={run.architecture}",
        log="build",
    )  # fmt: skip
    site = BUILD_DIR / "build" / "SharedLayer" / "python"
    shipped = sorted(name for name in _RUNTIME_PACKAGES if (site / name).exists() or (site / f"{name}.py").exists())
    compiled = sorted(str(path.relative_to(site)) for path in site.rglob("*.so"))
    if shipped or compiled:
        raise RuntimeError(f"the built layer ships {shipped or ''} {compiled or ''}".strip())
    size = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    return f"Architecture={run.architecture}; layer {size / 1e6:.1f} MB, no boto3/botocore, no compiled code"


@contextmanager
def _local_stack(run: Run) -> Iterator[None]:
    """`hookline local up` as a child process, until its .hookline/local.json names it; stopped by its PID."""
    log = WORK / "logs" / "local-stack.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(BIN / "hookline"), "local", "up"], cwd=ROOT, stdout=output, stderr=output, stdin=subprocess.DEVNULL
        )
    run.started.append(process)
    try:
        deadline = time.monotonic() + _STACK_TIMEOUT_S
        while not run.state:
            if process.poll() is not None:
                raise RuntimeError(f"hookline local up exited {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start within {_STACK_TIMEOUT_S:.0f} s:\n{_tail(log)}")
            state = _read_json(LOCAL_STATE)
            if state.get("pid") == process.pid:
                run.state = state
            else:
                time.sleep(0.5)
        yield
    finally:
        stop_process(process, timeout_s=30.0)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON document, or {} while it does not exist or is still being written."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return document


def _hookline(*arguments: str) -> str:
    """Run the `hookline` CLI against the local stack (found through .hookline/local.json); its stdout."""
    result = subprocess.run(
        [str(BIN / "hookline"), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode:
        raise RuntimeError(f"hookline {' '.join(arguments[:4])} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _register(run: Run) -> str:
    """Register every target events/sqs-delivery.json names, with the receiver's URLs and fresh secrets."""
    import boto3

    from hookline.signing import generate_secret

    assert run.receiver is not None
    event = json.loads((EVENTS_DIR / "sqs-delivery.json").read_text(encoding="utf-8"))
    run.targets = webhook_targets(event)
    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=run.state["endpoint_url"],
        region_name=run.state["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for target in run.targets:
        if target.endpoint:
            path = f"/{target.endpoint}"
            added = _hookline("--json", "endpoints", "add", target.endpoint, "--url", run.receiver.url(path),
                              "--generate-secret")  # fmt: skip
            run.secrets_by_path[path] = json.loads(added)["secret"]
        elif target.secret_id:
            secret = generate_secret()
            secrets.create_secret(Name=target.secret_id, SecretString=secret)
            run.secrets_by_path.update(dict.fromkeys(target.url_paths, secret))
    run.files = write_files(run.state, target_url=run.receiver.url, output_dir=WORK)
    return f"{len(run.targets)} webhook targets on {run.receiver.base_url}; {run.files.env_file.relative_to(ROOT)}"


def _confined(run: Run) -> str:
    problems = {
        function: confinement_problems(function_environment(run.state, function)) for function in run.state["functions"]
    }
    problems = {function: found for function, found in problems.items() if found}
    if problems:
        raise RuntimeError(f"a function could leave loopback: {problems}")
    return (
        f"AWS_ENDPOINT_URL={run.state['endpoint_url']} and tracing off for {', '.join(sorted(run.state['functions']))}"
    )


def _verified_webhooks(run: Run, *, since: int) -> str:
    """Every webhook the receiver got after the first ``since`` requests verifies with its path's secret."""
    from standardwebhooks.webhooks import Webhook

    assert run.receiver is not None
    received = [request for request in run.receiver.requests[since:] if request.method == "POST"]
    if len(received) != len(run.targets):
        raise RuntimeError(f"the receiver got {len(received)} webhooks, expected {len(run.targets)}")
    ids = []
    for request in received:
        secret = run.secrets_by_path.get(request.path)
        if secret is None:
            raise RuntimeError(f"a webhook came to {request.path}, which no target uses")
        Webhook(secret).verify(request.body, request.headers)
        ids.append(request.headers["webhook-id"])
    return f"{len(received)} webhooks verified ({', '.join(ids)})"


def _delivery_result(output: str) -> str:
    result = json.loads(output.strip().splitlines()[-1])
    if result != {"batchItemFailures": []}:
        raise RuntimeError(f"DeliveryFunction returned {result}")
    return "batchItemFailures: []"


def _invoke_delivery(run: Run) -> str:
    assert run.files is not None and run.receiver is not None
    since = len(run.receiver.requests)
    output = run.sam(
        "local", "invoke", "DeliveryFunction", "--event", str(run.files.event("sqs-delivery.json")),
        *run.local_arguments(), log="invoke-delivery",
    )  # fmt: skip
    return f"{_delivery_result(output)}; {_verified_webhooks(run, since=since)}"


def _invoke_health(run: Run) -> str:
    assert run.files is not None
    output = run.sam(
        "local", "invoke", "HealthFunction", "--event", str(run.files.event("schedule-health.json")),
        *run.local_arguments(), log="invoke-health",
    )  # fmt: skip
    result = json.loads(output.strip().splitlines()[-1])
    endpoints = sum(1 for target in run.targets if target.endpoint)
    if result.get("errors") != 0 or result.get("checked") != endpoints:
        raise RuntimeError(f"HealthFunction returned {result} (expected {endpoints} checked, no errors)")
    return f"checked {result['checked']}, healthy {result['healthy']}, errors 0"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _start_lambda(run: Run) -> str:
    """`sam local start-lambda` on a loopback port, one boto3 invoke of DeliveryFunction, then stopped by PID."""
    import boto3
    from botocore.config import Config

    assert run.files is not None and run.receiver is not None
    port = free_loopback_port()
    log = WORK / "logs" / "start-lambda.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.sam_local.sam_hostnet", "local", "start-lambda",
             "--host", "127.0.0.1", "--port", str(port), *run.local_arguments()],
            cwd=ROOT, env=run.sam_environment(), stdout=output, stderr=output, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    run.started.append(process)
    try:
        deadline = time.monotonic() + _STACK_TIMEOUT_S
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sam local start-lambda did not listen on {port}:\n{_tail(log)}")
            time.sleep(0.5)
        client = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=run.state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=300, retries={"total_max_attempts": 1}),
        )
        since = len(run.receiver.requests)
        response = client.invoke(
            FunctionName="DeliveryFunction", Payload=run.files.event("sqs-delivery.json").read_bytes()
        )
        payload = response["Payload"].read().decode()
        if response.get("FunctionError"):
            raise RuntimeError(f"DeliveryFunction failed: {payload}")
        return f"lambda.invoke on 127.0.0.1:{port}: {_delivery_result(payload)}; {_verified_webhooks(run, since=since)}"
    finally:
        stop_process(process, timeout_s=30.0)


def _nothing_left(run: Run) -> str:
    found = leftovers(run.daemon)
    found += [f"process {process.pid} (ours) still runs" for process in run.started if process.poll() is None]
    if LOCAL_STATE.exists():
        found.append(f"{LOCAL_STATE} is still there (the local stack did not stop cleanly)")
    if found:
        raise RuntimeError("; ".join(found))
    return "no process, container, network namespace or mount of this run is left"


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup like Ctrl-C


def main() -> None:
    """Run every step, print the checks and exit 1 if any failed."""
    from tests.support.loopback import loopback_server

    signal.signal(signal.SIGTERM, _terminate)
    report = Report()
    run = Run()
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            report.check("tools", _require_root, required=True)
            report.check(
                "private dockerd",
                lambda: f"{stack.enter_context(private_dockerd(run.daemon, log=WORK / 'logs' / 'dockerd.log')).host}",
                required=True,
            )

            def image() -> str:
                log = WORK / "logs" / "base-image.log"
                try:
                    run.image, how = ensure_image(run.daemon, log=log)
                except subprocess.CalledProcessError as error:
                    raise RuntimeError(f"{error}; {log}:\n{_tail(log)}") from error
                return f"{run.image} ({how})"

            report.check("base image", image, required=True)
            report.check("sam build", lambda: _build(run), required=True)

            def local_stack() -> str:
                stack.enter_context(_local_stack(run))
                run.receiver = stack.enter_context(loopback_server())
                return f"moto at {run.state['endpoint_url']}"

            report.check("local stack", local_stack, required=True)
            report.check("register receiver, generate env file and events", lambda: _register(run), required=True)
            report.check("every function confined to loopback", lambda: _confined(run), required=True)
            report.check("sam local invoke DeliveryFunction", lambda: _invoke_delivery(run))
            report.check("sam local invoke HealthFunction", lambda: _invoke_health(run))
            report.check("sam local start-lambda + lambda.invoke", lambda: _start_lambda(run))
            run.daemon.docker("image", "prune", "--force", check=False)  # SAM's superseded images of earlier runs
    except Aborted:
        pass
    report.check("cleanup", lambda: _nothing_left(run))
    shutil.rmtree(WORK / "sam-config", ignore_errors=True)
    sys.exit(1 if report.close() else 0)
