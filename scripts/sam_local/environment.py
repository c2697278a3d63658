"""What `sam local` needs from the running local stack, generated into .hookline/sam-local/ (never tracked).

    .venv/bin/hookline local up &        # the local stack writes .hookline/local.json
    .venv/bin/python -m scripts.sam_local.environment http://127.0.0.1:PORT   # your loopback receiver
                                         # -> .hookline/sam-local/env.json and .hookline/sam-local/events/

- ``env.json`` (``sam local ... --env-vars``): each function's environment as the local stack runs it (table names,
  queue URLs, ``AWS_ENDPOINT_URL`` of the moto server, fake credentials), minus what SAM itself sets for Lambda,
  plus tracing switched off. The Lambda container runs on the host's network, which nothing confines: traffic stays
  on loopback only because every AWS client goes to ``AWS_ENDPOINT_URL`` and no trace is sent (``confinement_problems``
  checks both before anything is invoked).
- ``events/<name>.json``: the sample events of events/ (the one source of them) with what is stack-specific
  replaced: the queue ARN and region of each SQS record, and the host of any ``url`` / ``fallback_urls`` in a message
  body, which must be a loopback receiver of ours (the samples name example.com hosts).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import ipaddress
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "CONFINED",
    "EVENTS_DIR",
    "SamLocalFiles",
    "WebhookTarget",
    "confinement_problems",
    "env_file",
    "function_environment",
    "is_loopback_url",
    "local_event",
    "main",
    "read_local_state",
    "webhook_targets",
    "write_files",
]

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
LOCAL_STATE = ROOT / ".hookline" / "local.json"
OUTPUT_DIR = ROOT / ".hookline" / "sam-local"

# Set in every function's environment for `sam local`: no X-Ray (Powertools' tracer off, the X-Ray SDK off), and no
# instance metadata lookups if a client ever looked for credentials beyond the ones given.
CONFINED = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_XRAY_SDK_ENABLED": "false", "AWS_EC2_METADATA_DISABLED": "true"}
# SAM sets Lambda's own variables for the container; the local stack's values name paths and streams of the host.
_SAM_SETS = ("AWS_LAMBDA_", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_HANDLER")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def read_local_state(path: Path = LOCAL_STATE) -> dict[str, Any]:
    """The running local stack's .hookline/local.json; a clear error when there is none."""
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: start the local stack first (hookline local up)") from None
    return state


def function_environment(state: Mapping[str, Any], function: str) -> dict[str, str]:
    """One function's environment for `sam local`: the local stack's, less what SAM sets, with tracing off."""
    environment = {
        name: str(value)
        for name, value in state["functions"][function]["environment"].items()
        if not name.startswith(_SAM_SETS)
    }
    return {**environment, **CONFINED}


def env_file(state: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The ``--env-vars`` document: one section per function logical id."""
    return {function: function_environment(state, function) for function in sorted(state["functions"])}


def is_loopback_url(url: str) -> bool:
    """True when ``url`` names a loopback host (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def confinement_problems(environment: Mapping[str, str]) -> list[str]:
    """Why a function with this environment could reach beyond loopback; empty when it cannot through its clients."""
    problems: list[str] = []
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not endpoint:
        problems.append("AWS_ENDPOINT_URL is not set: AWS clients would call AWS")
    elif not is_loopback_url(endpoint):
        problems.append(f"AWS_ENDPOINT_URL={endpoint} is not a loopback address")
    for name, value in sorted(environment.items()):
        if name.startswith("AWS_ENDPOINT_URL_") and not is_loopback_url(value):
            problems.append(f"{name}={value} is not a loopback address")
        if name.upper() in _PROXIES and value:
            problems.append(f"{name} is set: requests could go through a proxy")
    for name, value in CONFINED.items():
        if environment.get(name) != value:
            problems.append(f"{name} must be {value!r} (is {environment.get(name)!r})")
    daemon = environment.get("AWS_XRAY_DAEMON_ADDRESS")
    if daemon and not is_loopback_url(f"udp://{daemon}"):
        problems.append(f"AWS_XRAY_DAEMON_ADDRESS={daemon} is not a loopback address")
    return problems


@dataclass(frozen=True)
class WebhookTarget:
    """Where one message of a sample event goes: a registered endpoint, or inline URLs signed with a secret id."""

    endpoint: str | None = None
    secret_id: str | None = None
    url_paths: tuple[str, ...] = ()


def _bodies(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for record in event.get("Records", []):
        try:
            body = json.loads(record.get("body", ""))
        except json.JSONDecodeError:
            continue
        if isinstance(body, dict):
            bodies.append(body)
    return bodies


def webhook_targets(event: Mapping[str, Any]) -> list[WebhookTarget]:
    """One target per (JSON) message of the event: what to register before invoking it."""
    return [
        WebhookTarget(
            endpoint=body.get("endpoint"),
            secret_id=body.get("secret_id"),
            url_paths=tuple(
                dict.fromkeys(
                    urlsplit(url).path or "/" for url in [body.get("url"), *body.get("fallback_urls", [])] if url
                )
            ),
        )
        for body in _bodies(event)
    ]


def local_event(
    event: Mapping[str, Any], *, queue_arn: str, region: str, target_url: Callable[[str], str]
) -> dict[str, Any]:
    """A sample SQS event made stack-specific: queue ARN, region, and message URLs moved to ``target_url(path)``."""
    local = copy.deepcopy(dict(event))
    for record in local.get("Records", []):
        record["eventSourceARN"] = queue_arn
        record["awsRegion"] = region
        try:
            body = json.loads(record.get("body", ""))
        except json.JSONDecodeError:
            continue
        if not isinstance(body, dict) or not ({"url", "fallback_urls"} & body.keys()):
            continue
        if "url" in body:
            body["url"] = target_url(urlsplit(body["url"]).path or "/")
        if "fallback_urls" in body:
            body["fallback_urls"] = [target_url(urlsplit(url).path or "/") for url in body["fallback_urls"]]
        record["body"] = json.dumps(body)
        record["md5OfBody"] = hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
    return local


@dataclass(frozen=True)
class SamLocalFiles:
    """Where the generated files are: the env file and the directory of stack-specific events."""

    env_file: Path
    events_dir: Path

    def event(self, name: str) -> Path:
        """The generated copy of events/<name>."""
        return self.events_dir / name


def write_files(
    state: Mapping[str, Any],
    *,
    target_url: Callable[[str], str],
    output_dir: Path = OUTPUT_DIR,
    events_dir: Path = EVENTS_DIR,
) -> SamLocalFiles:
    """Write env.json and every sample event (SQS ones made stack-specific) under ``output_dir``."""
    files = SamLocalFiles(env_file=output_dir / "env.json", events_dir=output_dir / "events")
    files.events_dir.mkdir(parents=True, exist_ok=True)
    files.env_file.write_text(json.dumps(env_file(state), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    queue_arn = state["queues"]["DeliveryQueue"]["arn"]
    for source in sorted(events_dir.glob("*.json")):
        event = json.loads(source.read_text(encoding="utf-8"))
        if "Records" in event:
            event = local_event(event, queue_arn=queue_arn, region=state["region"], target_url=target_url)
        files.event(source.name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
    return files


def main(argv: list[str] | None = None) -> None:
    """Write the files for the running local stack; message URLs go to the loopback receiver given."""
    parser = argparse.ArgumentParser(prog="python -m scripts.sam_local.environment", description=__doc__)
    parser.add_argument("receiver", help="base URL of a loopback receiver, e.g. http://127.0.0.1:8000")
    receiver = parser.parse_args(argv).receiver
    if not is_loopback_url(receiver):
        parser.error(f"{receiver} is not a loopback URL (127.0.0.0/8, ::1 or localhost)")
    files = write_files(read_local_state(), target_url=lambda path: receiver.rstrip("/") + path)
    sys.stdout.write(f"wrote {files.env_file.relative_to(ROOT)} and {files.events_dir.relative_to(ROOT)}/\n")


if __name__ == "__main__":
    main()
