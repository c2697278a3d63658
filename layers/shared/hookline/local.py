"""Point hookline's Python helpers at a local stack (``hookline local up``), explicitly and only when asked.

The CLI looks for ``.hookline/local.json`` by itself. Library code must not: layer code that picked the file up
from its working directory could send real traffic to a stale local stack, or local traffic to AWS. So
``hookline.producer.send_webhook`` and ``hookline.integrations`` (``IntegrationService()``, ``integration_service``)
use a local stack only when one of these says so:

- ``HOOKLINE_LOCAL=path/to/.hookline/local.json`` in the environment, or
- ``hookline.local.use_local_stack("path/to/.hookline/local.json")`` in the process (it wins over the variable).

A named file that is missing, unreadable, or whose stack process is gone is a LocalStackError, never a silent
fall back to AWS.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookline.exceptions import HooklineError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LOCAL_ENV",
    "STATE_OUTPUT_KEYS",
    "LocalStackError",
    "LocalStackTarget",
    "pid_alive",
    "read_local_state",
    "selected_local_stack",
    "stop_using_local_stack",
    "use_local_stack",
]

LOCAL_ENV = "HOOKLINE_LOCAL"
# local.json's top-level resource names (docs/local-stack.md) and the template output each copies: `hookline local
# up` writes them, the CLI reads them (hookline_cli.resources.OUTPUT_KEYS extends this table with the other outputs).
STATE_OUTPUT_KEYS: dict[str, str] = {
    "endpoints_table": "EndpointsTableName",
    "breaker_table": "BreakerTableName",
    "health_history_table": "HealthHistoryTableName",
    "delivery_queue_url": "DeliveryQueueUrl",
    "dead_letter_queue_url": "DeadLetterQueueUrl",
    "alert_topic_arn": "AlertTopicArn",
}
_lock = threading.Lock()
_selected: LocalStackTarget | None = None


class LocalStackError(HooklineError):
    """The local stack that was asked for cannot be used: its state file is missing or broken, or it is not running."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 only checks)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_local_state(path: Path) -> dict[str, Any]:
    """The document ``hookline local up`` writes; LocalStackError if it is unreadable or its process is gone."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LocalStackError(f"cannot read local stack state {path}: {error}") from None
    if not isinstance(document, dict):
        raise LocalStackError(f"local stack state {path} must be a JSON object")
    pid = document.get("pid")
    if isinstance(pid, int) and not pid_alive(pid):
        raise LocalStackError(f"the local stack of {path} is not running (start it with `hookline local up`)")
    return document


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise LocalStackError(f"local stack state has no {key!r}")
    return value


@dataclass(frozen=True)
class LocalStackTarget:
    """A running local stack: where its AWS endpoint is, its fake credentials and its stack outputs."""

    path: Path
    endpoint_url: str
    region: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict)
    allow_private_targets: bool = True

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LocalStackTarget:
        """Read a local.json; LocalStackError if it is not a running local stack's."""
        resolved = Path(path).expanduser().resolve()
        document = read_local_state(resolved)
        outputs = document.get("outputs") if isinstance(document.get("outputs"), dict) else {}
        credentials = document.get("credentials") if isinstance(document.get("credentials"), dict) else {}
        return cls(
            path=resolved,
            endpoint_url=_text(document, "endpoint_url"),
            region=_text(document, "region"),
            outputs={str(key): str(value) for key, value in (outputs or {}).items()},
            credentials={str(key): str(value) for key, value in (credentials or {}).items()},
            # The local stack runs its functions with ALLOW_PRIVATE_TARGETS=true: receivers listen on loopback.
            allow_private_targets=document.get("allow_private_targets", True) is not False,
        )

    def output(self, key: str) -> str:
        """One stack output (``DeliveryQueueUrl``, ``EndpointsTableName`` ...); LocalStackError if it is missing."""
        value = self.outputs.get(key)
        if not value:
            raise LocalStackError(f"the local stack of {self.path} has no {key} output")
        return value

    def client(self, service: str) -> Any:
        """A boto3 client bound to the local stack (its endpoint, region and fake credentials)."""
        import boto3

        keys = ("aws_access_key_id", "aws_secret_access_key")
        credentials = {key: self.credentials[key] for key in keys if key in self.credentials}
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            **credentials,
        )


def use_local_stack(path: str | os.PathLike[str] = Path(".hookline") / "local.json") -> LocalStackTarget:
    """Make this process's helpers use the local stack of ``path`` (resolved now); returns it."""
    global _selected  # noqa: PLW0603 - one explicit, process-wide switch is the point
    target = LocalStackTarget.load(path)
    with _lock:
        _selected = target
    return target


def stop_using_local_stack() -> None:
    """Undo ``use_local_stack`` (``HOOKLINE_LOCAL``, when set, still applies)."""
    global _selected  # noqa: PLW0603 - see use_local_stack
    with _lock:
        _selected = None


def selected_local_stack(environ: Mapping[str, str] | None = None) -> LocalStackTarget | None:
    """The local stack chosen by ``use_local_stack`` or else ``HOOKLINE_LOCAL``; None when neither says one."""
    with _lock:
        if _selected is not None:
            return _selected
    path = (os.environ if environ is None else environ).get(LOCAL_ENV, "").strip()
    return LocalStackTarget.load(path) if path else None
