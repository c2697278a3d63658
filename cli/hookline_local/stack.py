"""LocalStack: moto + the real template + the function emulators, as one object (in-process API and `local up`)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from hookline_local.clients import ACCOUNT_ID, moto_client
from hookline_local.deploy import DeployedStack, StackTarget, deploy_stack
from hookline_local.emf import MetricForwarder
from hookline_local.esm import SqsEventSourceMapping
from hookline_local.invoke import Invoker, InvokeResult, SubprocessInvoker
from hookline_local.logs import LogSink, SinkHandler
from hookline_local.requirements import require_local_extra
from hookline_local.resolve import (
    FunctionSpec,
    SqsMappingSpec,
    resolve_functions,
    resolve_schedules,
    resolve_sqs_mappings,
)
from hookline_local.schedule import ScheduleRunner
from hookline_local.server import MotoServer
from hookline_local.sqs_control import queue_arn
from hookline_local.state import remove_state, write_state
from hookline_local.template import TemplateError, load_template, parameter_values, translate

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

__all__ = ["LocalStack", "find_root"]

_log = logging.getLogger("hookline.local")

type InvokerFactory = Callable[[FunctionSpec], Invoker]

_PREWARMED = 2
# Top-level local.json keys the CLI reads directly (hookline_cli.resources), from the template's outputs.
_STATE_NAMES = {
    "endpoints_table": "EndpointsTableName",
    "breaker_table": "BreakerTableName",
    "health_history_table": "HealthHistoryTableName",
    "delivery_queue_url": "DeliveryQueueUrl",
    "dead_letter_queue_url": "DeadLetterQueueUrl",
    "alert_topic_arn": "AlertTopicArn",
}


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (the working directory) that holds template.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise TemplateError(f"no template.yaml in {here} or any parent directory")


class LocalStack:
    """The embedded local stack. Use ``LocalStack.start(...)`` (a context manager) and ``stop()``."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        template: Path | None = None,
        port: int = 0,
        stack_name: str = "hookline-local",
        region: str = "us-east-1",
        parameters: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        property_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        schedule_intervals: Mapping[str, float] | None = None,
        run_functions: bool = True,
        invoker_factory: InvokerFactory | None = None,
        log_path: Path | None = None,
        console: IO[str] | None = None,
        state_file: Path | None = None,
        poll_wait_s: int = 1,
        max_pollers: int | None = None,
    ) -> None:
        self.root = (root or find_root()).resolve()
        self.template_path = template or self.root / "template.yaml"
        self.port = port
        self.stack_name = stack_name
        self.region = region
        self.account_id = ACCOUNT_ID
        self._parameter_overrides = {key: str(value) for key, value in (parameters or {}).items()}
        self._environment = dict(environment or {})
        self._property_overrides = property_overrides or {}
        self._schedule_intervals = dict(schedule_intervals or {})
        self._run_functions = run_functions
        self._invoker_factory = invoker_factory
        self._poll_wait_s = poll_wait_s
        self._max_pollers = max_pollers
        self.state_file = state_file
        self.log = LogSink(log_path, console=console)
        self._log_handler = SinkHandler(self.log)
        self._moto_log: IO[bytes] | None = None
        self._server: MotoServer | None = None
        self._direct: dict[str, Invoker] = {}
        self._direct_lock = threading.Lock()
        self._stopped = False
        self.started_at: datetime | None = None
        self.endpoint_url = ""
        self.deployed: DeployedStack | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.mappings: list[SqsEventSourceMapping] = []
        self.schedules: list[ScheduleRunner] = []
        self.forwarder: MetricForwarder | None = None

    # ----------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def start(cls, root: Path | None = None, **options: Any) -> LocalStack:
        """Start a local stack (options as for the constructor); stop it with stop() or a ``with`` block."""
        stack = cls(root, **options)
        try:
            stack._start()
        except BaseException:
            stack.stop()
            raise
        return stack

    def _start(self) -> None:
        require_local_extra()
        _log.addHandler(self._log_handler)
        if _log.level == logging.NOTSET or _log.level > logging.INFO:
            _log.setLevel(logging.INFO)
        self.started_at = datetime.now(UTC)
        # Cheap checks first: a bad template or parameter should not cost a server start.
        template = load_template(self.template_path)
        parameter_values(template, self._parameter_overrides)
        if self.log.path is not None:
            self._moto_log = self.log.path.with_name("moto.log").open("ab")
        # The server warms up its services while the template is translated here (both take seconds).
        self._server = MotoServer(port=self.port, region=self.region, log=self._moto_log)
        self.endpoint_url = self._server.start()
        _log.info("moto listening on %s", self.endpoint_url)
        translated = translate(
            template,
            base_dir=self.template_path.parent,
            parameters=self._parameter_overrides,
            region=self.region,
            account_id=self.account_id,
            stack_name=self.stack_name,
        )
        self.deployed = deploy_stack(
            translated,
            StackTarget(self.stack_name, self.region, self.account_id, self.endpoint_url),
            client=self.client,
            property_overrides=self._property_overrides,
        )
        self.functions = resolve_functions(
            self.deployed, translated, endpoint_url=self.endpoint_url, environment_overrides=self._environment
        )
        self.forwarder = MetricForwarder(self.client("cloudwatch"))
        if self._run_functions:
            self._start_emulators()
        if self.state_file is not None:
            write_state(self.state_file, self.state())

    def _start_emulators(self) -> None:
        assert self.deployed is not None
        runnable = {
            logical_id: spec
            for logical_id, spec in self.functions.items()
            if self._invoker_factory is not None or (spec.code_dir is not None and spec.code_dir.is_dir())
        }
        for logical_id in self.functions.keys() - runnable.keys():
            _log.warning(
                "%s: no code at %s; its events are not emulated", logical_id, self.functions[logical_id].code_dir
            )
        sqs = self.client("sqs")
        for declared in resolve_sqs_mappings(self.deployed, self.functions, endpoint_url=self.endpoint_url):
            function = runnable.get(declared.function_logical_id)
            if function is None:
                continue
            mapping_spec = declared
            _warn_short_visibility(sqs, declared, function)
            if self._max_pollers is not None and declared.maximum_concurrency > self._max_pollers:
                mapping_spec = replace(declared, maximum_concurrency=max(1, self._max_pollers))
            mapping = SqsEventSourceMapping(
                mapping_spec,
                sqs=sqs,
                invoker_factory=lambda function=function: self.new_invoker(function),  # type: ignore[misc]
                region=self.region,
                poll_wait_s=self._poll_wait_s,
            )
            mapping.start()
            self.mappings.append(mapping)
            _log.info(
                "%s: %s -> %s (batch %d, window %.1fs, concurrency %d, ReportBatchItemFailures %s)",
                mapping_spec.logical_id,
                mapping_spec.queue_url,
                function.logical_id,
                mapping_spec.batch_size,
                mapping_spec.maximum_batching_window_s,
                mapping_spec.maximum_concurrency,
                mapping_spec.report_batch_item_failures,
            )
        for schedule_spec in resolve_schedules(self.deployed, self.functions):
            function = runnable.get(schedule_spec.function_logical_id)
            if function is None:
                continue
            interval = self._schedule_intervals.get(
                schedule_spec.logical_id, self._schedule_intervals.get(function.logical_id)
            )
            runner = ScheduleRunner(
                schedule_spec,
                invoker=self.new_invoker(function),
                region=self.region,
                account_id=self.account_id,
                interval_s=interval,
            )
            if runner.start():
                _log.info("%s: %s every %.0fs", schedule_spec.logical_id, function.logical_id, runner.interval_s or 0)
            self.schedules.append(runner)
        self._prewarm()

    def _prewarm(self) -> None:
        # Cold starts overlap with whatever the caller does next (send messages, start receivers). Only the first
        # environments of each mapping: the others start when a batch needs them, as Lambda scales up.
        invokers = [inv for mapping in self.mappings for inv in mapping.invokers[:_PREWARMED]]
        invokers += [runner.invoker for runner in self.schedules]
        for invoker in invokers:
            start = getattr(invoker, "start", None)
            if callable(start):
                threading.Thread(target=start, name="prewarm", daemon=True).start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop emulators (in-flight batches get ``grace_s``), the server, and remove local.json. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _log.info("stopping")
        for mapping in self.mappings:
            mapping.stop(grace_s)
        for runner in self.schedules:
            runner.stop(grace_s)
        with self._direct_lock:
            for invoker in self._direct.values():
                invoker.close()
            self._direct.clear()
        _log.info("functions stopped")
        if self._server is not None:
            self._server.stop()
            _log.info("moto stopped")
        if self.state_file is not None:
            remove_state(self.state_file, pid=os.getpid())
        if self._moto_log is not None:
            self._moto_log.close()
        _log.removeHandler(self._log_handler)
        self.log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------- queries
    def _require(self) -> DeployedStack:
        if self.deployed is None:
            raise RuntimeError("the local stack is not started")
        return self.deployed

    @property
    def outputs(self) -> dict[str, str]:
        """The stack outputs (template Outputs, resolved by moto)."""
        return dict(self._require().outputs)

    @property
    def parameters(self) -> dict[str, str]:
        """The template parameters the stack was created with."""
        return dict(self._require().parameters)

    def physical_id(self, logical_id: str) -> str:
        """A resource's physical id: queue URL, table name, topic ARN, function name ..."""
        return self._require().physical_id(logical_id)

    def env_for(self, function_logical_id: str) -> dict[str, str]:
        """The complete environment a function runs with (template variables resolved + local additions)."""
        return dict(self.functions[function_logical_id].environment)

    def client(self, service: str) -> Any:
        """A boto3 client for the local moto server."""
        if not self.endpoint_url:
            raise RuntimeError("the local stack is not started")
        return moto_client(service, self.endpoint_url, self.region)

    def new_invoker(self, function: FunctionSpec) -> Invoker:
        """A new execution environment for a function (a worker process, unless an invoker_factory was given)."""
        if self._invoker_factory is not None:
            return self._invoker_factory(function)
        name = function.logical_id
        forwarder = self.forwarder

        def on_output(stream: str, line: str) -> None:
            if stream == "stdout" and forwarder is not None and forwarder.forward_line(line):
                return
            self.log.write(name, line)

        return SubprocessInvoker(function, on_output=on_output)

    # ----------------------------------------------------------------------------------------------- actions
    def invoke(self, function_logical_id: str, event: Any) -> InvokeResult:
        """Invoke a function synchronously (like `aws lambda invoke`) in its own execution environment."""
        function = self.functions[function_logical_id]
        with self._direct_lock:
            invoker = self._direct.get(function_logical_id)
            if invoker is None:
                invoker = self._direct[function_logical_id] = self.new_invoker(function)
        return invoker.invoke(event)

    def run_schedule(self, logical_id: str) -> InvokeResult:
        """Run a schedule now (by schedule or function logical id), as if it had ticked."""
        for runner in self.schedules:
            if logical_id in {runner.spec.logical_id, runner.spec.function_logical_id}:
                return runner.run_now()
        raise KeyError(f"no schedule for {logical_id}")

    def kill_function(self, function_logical_id: str, *, busy_only: bool = True) -> int:
        """Crash the function's execution environments (SIGKILL) mid-invocation; return how many were busy."""
        invokers = [
            invoker
            for mapping in self.mappings
            if mapping.spec.function_logical_id == function_logical_id
            for invoker in mapping.invokers
        ]
        invokers += [r.invoker for r in self.schedules if r.spec.function_logical_id == function_logical_id]
        killed = 0
        for invoker in invokers:
            if invoker.busy or not busy_only:
                killed += int(invoker.kill())
        return killed

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until every emulated queue is empty with no batch in flight and no scheduled run in progress."""
        deadline = time.monotonic() + timeout_s
        while True:
            idle = all(mapping.wait_idle(max(0.0, deadline - time.monotonic())) for mapping in self.mappings)
            if idle and not any(runner.busy for runner in self.schedules):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def stats(self) -> dict[str, Any]:
        """Counters of every emulator (batches, deletions, failures, schedule runs, metrics forwarded)."""
        return {
            "mappings": {
                m.spec.logical_id: {
                    "batches": m.stats.batches,
                    "records": m.stats.records,
                    "deleted": m.stats.deleted,
                    "item_failures": m.stats.item_failures,
                    "batch_failures": m.stats.batch_failures,
                    "timeouts": m.stats.timeouts,
                    "crashes": m.stats.crashes,
                    "last_error": m.stats.last_error,
                }
                for m in self.mappings
            },
            "schedules": {
                r.spec.logical_id: {"runs": r.runs, "failures": r.failures, "skipped": r.skipped}
                for r in self.schedules
            },
            "metrics_forwarded": self.forwarder.forwarded if self.forwarder else 0,
        }

    def state(self) -> dict[str, Any]:
        """The content of .hookline/local.json (see docs/local-stack.md for the schema)."""
        deployed = self._require()
        by_type: dict[str, dict[str, str]] = {}
        for resource in deployed.resources.values():
            by_type.setdefault(resource.type, {})[resource.logical_id] = resource.physical_id
        queues = {
            logical_id: {"url": url, "arn": queue_arn(url, self.region)}
            for logical_id, url in by_type.get("AWS::SQS::Queue", {}).items()
        }
        names = {key: deployed.outputs[output] for key, output in _STATE_NAMES.items() if output in deployed.outputs}
        if "HealthFunction" in self.functions:
            names["health_function"] = self.functions["HealthFunction"].name
        return {
            **names,
            "allow_private_targets": True,
            "pid": os.getpid(),
            "started_at": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.started_at else None,
            "root": str(self.root),
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "account_id": self.account_id,
            "stack_name": self.stack_name,
            "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            "parameters": deployed.parameters,
            "outputs": deployed.outputs,
            "queues": queues,
            "tables": by_type.get("AWS::DynamoDB::Table", {}),
            "topics": by_type.get("AWS::SNS::Topic", {}),
            "functions": {
                spec.logical_id: {"name": spec.name, "arn": spec.arn, "environment": spec.environment}
                for spec in self.functions.values()
            },
            "event_source_mappings": [
                {
                    "logical_id": m.spec.logical_id,
                    "function": m.spec.function_logical_id,
                    "queue_url": m.spec.queue_url,
                    "batch_size": m.spec.batch_size,
                    "maximum_batching_window_s": m.spec.maximum_batching_window_s,
                    "maximum_concurrency": m.spec.maximum_concurrency,
                    "report_batch_item_failures": m.spec.report_batch_item_failures,
                }
                for m in self.mappings
            ],
            "schedules": [
                {
                    "logical_id": r.spec.logical_id,
                    "function": r.spec.function_logical_id,
                    "expression": r.spec.expression,
                    "interval_s": r.interval_s,
                }
                for r in self.schedules
            ],
            "resources": {
                r.logical_id: {"type": r.type, "physical_id": r.physical_id, "handling": str(r.handling)}
                for r in deployed.resources.values()
            },
            "log_file": str(self.log.path) if self.log.path else None,
        }


def _warn_short_visibility(sqs: Any, spec: SqsMappingSpec, function: FunctionSpec) -> None:
    """Lambda refuses a mapping whose queue hides messages for less than the function may run; warn locally."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=spec.queue_url, AttributeNames=["VisibilityTimeout"])
        visibility = float(attributes["Attributes"]["VisibilityTimeout"])
    except Exception:  # noqa: BLE001 - only a warning
        return
    if visibility < function.timeout_s + spec.maximum_batching_window_s:
        _log.warning(
            "%s: the queue's visibility timeout (%gs) is shorter than the function timeout plus batching window "
            "(%gs): messages may come back while their batch runs (Lambda refuses one below the function timeout)",
            spec.logical_id,
            visibility,
            function.timeout_s + spec.maximum_batching_window_s,
        )
