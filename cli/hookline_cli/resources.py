"""Which stack the CLI talks to: resource names and boto3 clients, from flags, .hookline/local.json or CloudFormation.

Resolution, first match wins for each name:
1. ``HOOKLINE_<NAME>`` environment variables (``HOOKLINE_ENDPOINTS_TABLE``, ``HOOKLINE_DELIVERY_QUEUE_URL`` ...);
2. ``--stack-name``: the stack's CloudFormation outputs (``EndpointsTableName``, ``DeliveryQueueUrl`` ...,
   ``SigningSecretPrefix``);
3. otherwise ``.hookline/local.json`` of the current directory or its nearest parent that has one (written by
   ``hookline local up``; ``HOOKLINE_CONFIG`` names another file): its ``endpoint_url``, ``region``, credentials
   and ``outputs`` apply, unless ``--endpoint-url`` names a different server (then the file is ignored).
Nothing is read until a command needs it, so ``hookline verify`` never touches AWS.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hookline.local import STATE_OUTPUT_KEYS, LocalStackError, read_local_state
from hookline_cli.context import get_context

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import typer

    from hookline.registry import EndpointRegistry, WritePolicy

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "OUTPUT_KEYS",
    "ClientFactory",
    "ResourceError",
    "ResourceNames",
    "Resources",
    "find_local_config",
    "get_resources",
    "is_loopback_url",
    "load_local_config",
]

DEFAULT_CONFIG_PATH = Path(".hookline") / "local.json"
CONFIG_ENV = "HOOKLINE_CONFIG"
ALLOW_PRIVATE_ENV = "HOOKLINE_ALLOW_PRIVATE_TARGETS"

# ResourceNames field -> CloudFormation output key of template.yaml (HealthFunction is a resource, not an output).
OUTPUT_KEYS: dict[str, str] = {
    **STATE_OUTPUT_KEYS,
    "health_function": "HealthFunctionName",
    "signing_secret_prefix": "SigningSecretPrefix",
    "history_retention_days": "HistoryRetentionDays",
    "history_log_groups": "HistoryLogGroups",
    "payload_table": "PayloadTableName",
}
_LOGICAL_IDS = {"health_function": "HealthFunction"}
_META_KEY = "hookline_cli.resources"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

type ClientFactory = Callable[[str], Any]


class ResourceError(Exception):
    """The CLI cannot tell which stack or resource to use, or cannot reach it (an operational failure, exit 1)."""


@dataclass(frozen=True)
class ResourceNames:
    """Physical names of the stack's resources the CLI uses (None = unknown)."""

    endpoints_table: str | None = None
    breaker_table: str | None = None
    health_history_table: str | None = None
    delivery_queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    alert_topic_arn: str | None = None
    health_function: str | None = None
    # Not a resource but a stack setting: where signing secrets live (stacks without the output: the default).
    signing_secret_prefix: str | None = None
    history_retention_days: str | None = None
    history_log_groups: str | None = None
    payload_table: str | None = None

    def merged(self, other: ResourceNames) -> ResourceNames:
        """These names, with the ones ``other`` knows taking precedence."""
        changes = {item.name: getattr(other, item.name) for item in fields(other) if getattr(other, item.name)}
        return replace(self, **changes)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> ResourceNames:
        """Names from CloudFormation outputs (``EndpointsTableName`` ...)."""
        return cls(**{name: _text(outputs.get(key)) for name, key in OUTPUT_KEYS.items()})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ResourceNames:
        """Names from ``HOOKLINE_ENDPOINTS_TABLE``-style environment variables."""
        return cls(**{item.name: environ.get(f"HOOKLINE_{item.name.upper()}") or None for item in fields(cls)})


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def is_loopback_url(url: str | None) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost): the embedded local stack."""
    if not url:
        return False
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def find_local_config(start: Path | None = None) -> Path:
    """``.hookline/local.json`` in the current directory or the nearest parent that has one (else the cwd's)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_CONFIG_PATH
        if candidate.is_file():
            return candidate
    return here / DEFAULT_CONFIG_PATH


def load_local_config(path: Path) -> dict[str, Any]:
    """The local stack's state file (``hookline local up`` writes it); ResourceError if it is unusable."""
    try:
        return read_local_state(path)
    except LocalStackError as error:
        raise ResourceError(str(error)) from None


def _names_from_local(document: Mapping[str, Any]) -> ResourceNames:
    """Names from local.json: its ``outputs`` (stack output keys) overlaid by top-level snake_case keys."""
    outputs = document.get("outputs")
    names = ResourceNames.from_outputs(outputs) if isinstance(outputs, dict) else ResourceNames()
    direct = {item.name: _text(document.get(item.name)) for item in fields(ResourceNames)}
    health = _local_function(document, _LOGICAL_IDS["health_function"])
    if not direct["health_function"] and health is not None:
        direct["health_function"] = _text(health.get("name"))
    return names.merged(ResourceNames(**direct))


def _local_function(document: Mapping[str, Any], logical_id: str) -> dict[str, Any] | None:
    functions = document.get("functions")
    function = functions.get(logical_id) if isinstance(functions, dict) else None
    return function if isinstance(function, dict) else None


@dataclass
class Resources:
    """Lazily resolved names plus cached boto3 clients for one CLI invocation."""

    endpoint_url: str | None = None
    region: str | None = None
    stack_name: str | None = None
    config_path: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    client_factory: ClientFactory | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    sqs_wait_s: int = 1
    _names: ResourceNames | None = field(default=None, init=False, repr=False)
    _local: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _config_error: ResourceError | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        path = self.config_path
        if path is None:
            path = Path(self.environ[CONFIG_ENV]) if self.environ.get(CONFIG_ENV) else find_local_config()
        self.config_path = path
        # local.json describes the embedded stack; a deployed stack (--stack-name) never uses it.
        if self.stack_name is None and path.is_file():
            try:
                self._local = load_local_config(path)
            except ResourceError as error:
                # Reported when a command needs the stack, so that `verify` still works next to a broken file.
                self._config_error = error
            else:
                local_url = _text(self._local.get("endpoint_url"))
                if self.endpoint_url and self.endpoint_url.rstrip("/") != (local_url or "").rstrip("/"):
                    # --endpoint-url names another server: the local stack's resource names do not apply there.
                    self._local = None
                else:
                    self.endpoint_url = local_url
                    self.region = self.region or _text(self._local.get("region"))
        self.region = self.region or self.environ.get("AWS_REGION") or self.environ.get("AWS_DEFAULT_REGION")

    # --- where ----------------------------------------------------------------------------------------------
    @property
    def local(self) -> bool:
        """Whether the CLI talks to the embedded local stack (an endpoint URL on loopback)."""
        return is_loopback_url(self.endpoint_url)

    @property
    def allow_private_targets(self) -> bool:
        """Whether endpoint URLs may point at private addresses: as the stack's delivery function would allow.

        The local stack runs its functions with ALLOW_PRIVATE_TARGETS=true (receivers on loopback; local.json says
        so), a deployed stack refuses private targets. ``HOOKLINE_ALLOW_PRIVATE_TARGETS`` overrides either way.
        """
        override = self.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
        if override in _TRUE:
            return True
        if override in _FALSE:
            return False
        environment = self.function_environment("DeliveryFunction") or {}
        configured = environment.get("ALLOW_PRIVATE_TARGETS", "").strip().lower()
        if configured in _TRUE | _FALSE:
            return configured in _TRUE
        return self.local

    def describe(self) -> str:
        """A short human description of the target stack, for error messages."""
        if self.stack_name:
            return f"stack {self.stack_name!r}"
        if self._local is not None:
            return f"the local stack ({self.config_path})"
        if self.endpoint_url:
            return f"the endpoint {self.endpoint_url}"
        return "AWS"

    # --- clients --------------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A cached boto3 client for ``service`` (endpoint URL and region applied)."""
        if self._config_error is not None:
            raise self._config_error
        if service not in self._clients:
            if self.client_factory is not None:
                self._clients[service] = self.client_factory(service)
            else:
                self._clients[service] = boto3.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
                    **self._local_credentials(),
                )
        return self._clients[service]

    def _local_credentials(self) -> dict[str, str]:
        """The local stack's fake credentials, so that it works on a machine without an AWS profile."""
        credentials = (self._local or {}).get("credentials")
        if not isinstance(credentials, dict) or self.endpoint_url != _text((self._local or {}).get("endpoint_url")):
            return {}
        keys = ("aws_access_key_id", "aws_secret_access_key")
        return {key: str(credentials[key]) for key in keys if isinstance(credentials.get(key), str)}

    def function_environment(self, logical_id: str) -> dict[str, str] | None:
        """A function's environment as the local stack resolved it (None for a deployed stack)."""
        function = _local_function(self._local, logical_id) if self._local is not None else None
        environment = function.get("environment") if function is not None else None
        if not isinstance(environment, dict):
            return None
        return {str(key): str(value) for key, value in environment.items()}

    # --- names ----------------------------------------------------------------------------------------------
    @property
    def names(self) -> ResourceNames:
        """Every resource name that is known (resolved on first use)."""
        if self._config_error is not None:
            raise self._config_error
        if self._names is None:
            names = ResourceNames()
            if self.stack_name:
                names = self._names_from_stack(self.stack_name)
            elif self._local is not None:
                names = _names_from_local(self._local)
            self._names = names.merged(ResourceNames.from_environ(self.environ))
        return self._names

    def require(self, name: str) -> str:
        """One resource name; ResourceError saying how to provide it when unknown."""
        value = getattr(self.names, name)
        if value:
            return str(value)
        variable = f"HOOKLINE_{name.upper()}"
        if self.stack_name:
            hint = f"stack {self.stack_name!r} has no {OUTPUT_KEYS.get(name, name)} output; set {variable}"
        else:
            hint = f"pass --stack-name, start the local stack (`hookline local up`), or set {variable}"
        raise ResourceError(f"{name.replace('_', ' ')} is not known: {hint}")

    def _names_from_stack(self, stack_name: str) -> ResourceNames:
        cloudformation = self.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as error:
            raise ResourceError(f"cannot describe stack {stack_name!r}: {_aws_message(error)}") from None
        except BotoCoreError as error:
            raise ResourceError(f"cannot reach CloudFormation: {error}") from None
        if not stacks:
            raise ResourceError(f"stack {stack_name!r} does not exist")
        outputs = {output["OutputKey"]: output.get("OutputValue") for output in stacks[0].get("Outputs", [])}
        names = ResourceNames.from_outputs(outputs)
        if not names.health_function:
            names = replace(names, health_function=self._physical_id(stack_name, _LOGICAL_IDS["health_function"]))
        return names

    def _physical_id(self, stack_name: str, logical_id: str) -> str | None:
        try:
            detail = self.client("cloudformation").describe_stack_resource(
                StackName=stack_name, LogicalResourceId=logical_id
            )
        except (ClientError, BotoCoreError):
            return None
        return _text(detail.get("StackResourceDetail", {}).get("PhysicalResourceId"))

    # --- layer objects --------------------------------------------------------------------------------------
    @property
    def secret_prefix(self) -> str:
        """The stack's signing-secret prefix (its SigningSecretPrefix output; ``hookline/`` for older stacks)."""
        from hookline.registry import DEFAULT_SECRET_PREFIX

        return self.names.signing_secret_prefix or DEFAULT_SECRET_PREFIX

    def write_policy(self) -> WritePolicy:
        """The rules registry writes must meet on this stack: its network guard setting and secret prefix."""
        from hookline.registry import WritePolicy

        return WritePolicy(allow_private_targets=self.allow_private_targets, secret_prefix=self.secret_prefix)

    def registry(self) -> EndpointRegistry:
        """The endpoint registry of this stack (no read cache: every CLI read is fresh; writes follow its policy)."""
        from hookline.registry import EndpointRegistry

        return EndpointRegistry(
            self.require("endpoints_table"),
            client=self.client("dynamodb"),
            clock=self.monotonic,
            cache_ttl_s=0.0,
            write_policy=self.write_policy(),
        )


def _aws_message(error: ClientError) -> str:
    detail = error.response.get("Error", {})
    return f"{detail.get('Code', 'Error')}: {detail.get('Message', '')}".rstrip(": ")


def get_resources(ctx: typer.Context) -> Resources:
    """The Resources of this invocation, built once from the root's global options.

    A test may inject a ready Resources (fake clients, fixed clock) as the root context object.
    """
    root = ctx.find_root()
    cached = root.meta.get(_META_KEY)
    if isinstance(cached, Resources):
        return cached
    if isinstance(root.obj, Resources):
        resources = root.obj
    else:
        options = get_context(ctx)
        resources = Resources(endpoint_url=options.endpoint_url, region=options.region, stack_name=options.stack_name)
    root.meta[_META_KEY] = resources
    return resources
