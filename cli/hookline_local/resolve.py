"""What the local stack runs, read from the deployed stack: functions, SQS event source mappings, schedules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hookline_local.server import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from hookline_local.deploy import DeployedStack
    from hookline_local.template import TranslatedTemplate
    from hookline_local.workarounds import KeptOut

__all__ = [
    "DEFAULT_MAXIMUM_CONCURRENCY",
    "FunctionSpec",
    "ScheduleSpec",
    "SqsMappingSpec",
    "local_environment",
    "resolve_functions",
    "resolve_schedules",
    "resolve_sqs_mappings",
]

_log = logging.getLogger("hookline.local")

# Lambda scales SQS pollers up to 1000 concurrent invocations; locally two concurrent batches show the same
# behaviour (parallel batches, interleaved retries) without crowding a laptop. ScalingConfig overrides it.
DEFAULT_MAXIMUM_CONCURRENCY = 2


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the local stack runs it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path | None
    layer_dirs: tuple[Path, ...] = ()
    runtime: str = "python3.13"
    timeout_s: float = 3.0
    memory_mb: int = 128
    template_environment: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    log_group: str = ""
    """Where Lambda would send the function's output: LoggingConfig.LogGroup, else /aws/lambda/<name>."""


@dataclass(frozen=True)
class SqsMappingSpec:
    """An SQS event source mapping (AWS::Lambda::EventSourceMapping) from the template."""

    logical_id: str
    function_logical_id: str
    queue_arn: str
    queue_url: str
    batch_size: int = 10
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = DEFAULT_MAXIMUM_CONCURRENCY
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule (EventBridge rule or Scheduler schedule) that invokes a function."""

    logical_id: str
    function_logical_id: str
    kind: Literal["events", "scheduler"]
    arn: str
    expression: str
    input: str | None = None
    enabled: bool = True
    timezone: str | None = None
    """ScheduleExpressionTimezone (Scheduler); None is UTC."""


def local_environment(  # noqa: PLR0913 - the values Lambda sets for a function, each a keyword
    template_environment: Mapping[str, str],
    *,
    name: str,
    memory_mb: int,
    code_dir: Path | None,
    endpoint_url: str,
    region: str,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The template's variables plus what the local stack adds (moto endpoint, fake credentials, Lambda's own)."""
    env = dict(template_environment)
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # Only the local stack sets this: its demo and test receivers listen on loopback.
            "ALLOW_PRIVATE_TARGETS": "true",
            # No X-Ray daemon locally; and POWERTOOLS_DEV would pretty-print (multi-line) or drop EMF metrics.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "false",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{name}",
        }
    )
    if code_dir is not None:
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
    env.pop("POWERTOOLS_DEV", None)
    env.update(overrides or {})
    return env


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _layer_dirs(layers: Any, stack: DeployedStack, translated: TranslatedTemplate) -> tuple[Path, ...]:
    by_arn = {item.arn: item for item in stack.kept_out.values() if item.type == "AWS::Lambda::LayerVersion"}
    dirs: list[Path] = []
    for layer in layers or []:
        item = by_arn.get(layer) if isinstance(layer, str) else None
        path = translated.local_code_path(item.resource.get("Properties", {}).get("Content")) if item else None
        if path is None:
            _log.warning("layer %s has no local directory; the function runs without it", layer)
            continue
        # A layer built by hand keeps its packages under python/; SAM's BuildMethod builds them from the root.
        dirs.append(path / "python" if (path / "python").is_dir() else path)
    return tuple(dirs)


def resolve_functions(
    stack: DeployedStack,
    translated: TranslatedTemplate,
    *,
    endpoint_url: str,
    environment_overrides: Mapping[str, str] | None = None,
) -> dict[str, FunctionSpec]:
    """Every AWS::Lambda::Function of the stack, its environment resolved against the created resources."""
    functions: dict[str, FunctionSpec] = {}
    for item in stack.kept_out.values():
        if item.type != "AWS::Lambda::Function":
            continue
        props: dict[str, Any] = item.resource.get("Properties", {})
        code_dir = translated.local_code_path(props.get("Code"))
        variables = (props.get("Environment") or {}).get("Variables") or {}
        template_env = {str(key): str(value) for key, value in variables.items()}
        memory = int(_number(props.get("MemorySize"), 128))
        log_group = (props.get("LoggingConfig") or {}).get("LogGroup")
        functions[item.logical_id] = FunctionSpec(
            logical_id=item.logical_id,
            name=item.name,
            arn=item.arn,
            handler=str(props.get("Handler", "app.lambda_handler")),
            code_dir=code_dir,
            layer_dirs=_layer_dirs(props.get("Layers"), stack, translated),
            runtime=str(props.get("Runtime", "python3.13")),
            timeout_s=_number(props.get("Timeout"), 3.0),
            memory_mb=memory,
            template_environment=template_env,
            environment=local_environment(
                template_env,
                name=item.name,
                memory_mb=memory,
                code_dir=code_dir,
                endpoint_url=endpoint_url,
                region=stack.region,
                overrides=environment_overrides,
            ),
            log_group=log_group if isinstance(log_group, str) and log_group else f"/aws/lambda/{item.name}",
        )
    return functions


def _function_for(target: Any, functions: Mapping[str, FunctionSpec]) -> str | None:
    for spec in functions.values():
        if target in {spec.name, spec.arn}:
            return spec.logical_id
    return None


def _queue_url(queue_arn: str, endpoint_url: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return f"{endpoint_url.rstrip('/')}/{account}/{name}"


def _enabled(value: Any) -> bool:
    return str(value).lower() != "false" if value is not None else True


def resolve_sqs_mappings(
    stack: DeployedStack, functions: Mapping[str, FunctionSpec], *, endpoint_url: str
) -> list[SqsMappingSpec]:
    """The template's SQS event source mappings (other event sources are not emulated and are logged)."""
    mappings: list[SqsMappingSpec] = []
    for item in stack.kept_out.values():
        if item.type != "AWS::Lambda::EventSourceMapping":
            continue
        props: dict[str, Any] = item.resource.get("Properties", {})
        source = str(props.get("EventSourceArn", ""))
        function = _function_for(props.get("FunctionName"), functions)
        if not source.startswith("arn:aws:sqs:") or function is None:
            _log.warning("event source mapping %s (%s) is not emulated", item.logical_id, source or "no source")
            continue
        scaling = props.get("ScalingConfig") or {}
        mappings.append(
            SqsMappingSpec(
                logical_id=item.logical_id,
                function_logical_id=function,
                queue_arn=source,
                queue_url=_queue_url(source, endpoint_url),
                batch_size=int(_number(props.get("BatchSize"), 10)),
                maximum_batching_window_s=_number(props.get("MaximumBatchingWindowInSeconds"), 0.0),
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                maximum_concurrency=int(_number(scaling.get("MaximumConcurrency"), DEFAULT_MAXIMUM_CONCURRENCY)),
                enabled=_enabled(props.get("Enabled")),
            )
        )
    return mappings


def _schedule_targets(item: KeptOut) -> list[tuple[Any, str | None]]:
    props: dict[str, Any] = item.resource.get("Properties", {})
    if item.type == "AWS::Scheduler::Schedule":
        target = props.get("Target") or {}
        return [(target.get("Arn"), target.get("Input"))]
    return [(target.get("Arn"), target.get("Input")) for target in props.get("Targets") or []]


def resolve_schedules(stack: DeployedStack, functions: Mapping[str, FunctionSpec]) -> list[ScheduleSpec]:
    """Schedules (EventBridge rules with a ScheduleExpression, Scheduler schedules) whose target is a function."""
    schedules: list[ScheduleSpec] = []
    for item in stack.kept_out.values():
        if item.type not in {"AWS::Events::Rule", "AWS::Scheduler::Schedule"}:
            continue
        props: dict[str, Any] = item.resource.get("Properties", {})
        expression = props.get("ScheduleExpression")
        if not isinstance(expression, str):
            _log.warning("%s has no schedule expression (event pattern rules are not emulated)", item.logical_id)
            continue
        state = str(props.get("State", "ENABLED")).upper()
        timezone = props.get("ScheduleExpressionTimezone")
        for target, payload in _schedule_targets(item):
            function = _function_for(target, functions)
            if function is None:
                _log.warning("%s targets %s, which is not a local function", item.logical_id, target)
                continue
            kind: Literal["events", "scheduler"] = "scheduler" if item.type == "AWS::Scheduler::Schedule" else "events"
            schedules.append(
                ScheduleSpec(
                    logical_id=item.logical_id,
                    function_logical_id=function,
                    kind=kind,
                    arn=item.arn,
                    expression=expression,
                    input=payload if isinstance(payload, str) else None,
                    enabled=state == "ENABLED",
                    timezone=timezone if isinstance(timezone, str) else None,
                )
            )
    return schedules
