"""LocalStack: moto + the real template + the function emulators, as one object (in-process API and `local up`)."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from hookline.local import STATE_OUTPUT_KEYS
from hookline_local.clients import ACCOUNT_ID, moto_client
from hookline_local.cloudwatch_logs import LogShipper
from hookline_local.deploy import DeployedStack, StackTarget, deploy_stack
from hookline_local.emf import MetricForwarder
from hookline_local.emulators import Emulators
from hookline_local.invoke import Invoker, InvokeResult, SubprocessInvoker
from hookline_local.logs import LogSink, SinkHandler
from hookline_local.options import MotoOptions, ReportOptions, RunOptions, TemplateOptions
from hookline_local.requirements import require_local_extra
from hookline_local.resolve import FunctionSpec, resolve_functions
from hookline_local.server import MotoServer
from hookline_local.sqs_control import QueueState, SqsControl, queue_arn, queue_name
from hookline_local.state import remove_state, write_state
from hookline_local.template import TemplateError, TranslatedTemplate, load_template, parameter_values, translate

if TYPE_CHECKING:
    from types import TracebackType

    from hookline_local.esm import SqsEventSourceMapping
    from hookline_local.schedule import ScheduleRunner

__all__ = ["LocalStack", "find_root"]

_log = logging.getLogger("hookline.local")
_QUEUE = "AWS::SQS::Queue"
# local.json's health_function (the CLI's `health run`) names the function of this logical id, when there is one.
_HEALTH_FUNCTION = "HealthFunction"


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
        template: TemplateOptions | None = None,
        moto: MotoOptions | None = None,
        run: RunOptions | None = None,
        report: ReportOptions | None = None,
    ) -> None:
        self.root = (root or find_root()).resolve()
        self.template = template or TemplateOptions()
        self.moto = moto or MotoOptions()
        self.run = run or RunOptions()
        self.report = report or ReportOptions()
        self.template_path = self.template.path or self.root / "template.yaml"
        self.stack_name = self.moto.stack_name
        self.region = self.moto.region
        self.account_id = ACCOUNT_ID
        self.state_file = self.report.state_file
        self.log = LogSink(self.report.log_path, console=self.report.console)
        self._log_handler = SinkHandler(self.log)
        self._moto_log: IO[bytes] | None = None
        self._server: MotoServer | None = None
        self._sqs_control: SqsControl | None = None
        self._direct: dict[str, Invoker] = {}
        self._direct_lock = threading.Lock()
        self._stopped = False
        self.started_at: datetime | None = None
        self.endpoint_url = ""
        self.deployed: DeployedStack | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.emulators: Emulators | None = None
        self.forwarder: MetricForwarder | None = None
        self.shipper: LogShipper | None = None

    # ----------------------------------------------------------------------------------------------- lifecycle
    @classmethod
    def start(
        cls,
        root: Path | None = None,
        *,
        template: TemplateOptions | None = None,
        moto: MotoOptions | None = None,
        run: RunOptions | None = None,
        report: ReportOptions | None = None,
    ) -> LocalStack:
        """Start a local stack; stop it with stop() or a ``with`` block."""
        stack = cls(root, template=template, moto=moto, run=run, report=report)
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
        parameters = {key: str(value) for key, value in self.template.parameters.items()}
        # Cheap checks first: a bad template or parameter should not cost a server start.
        sam_template = load_template(self.template_path)
        parameter_values(sam_template, parameters)
        self._start_server()
        translated = translate(
            sam_template,
            base_dir=self.template_path.parent,
            parameters=parameters,
            region=self.region,
            account_id=self.account_id,
            stack_name=self.stack_name,
        )
        self._deploy(translated)
        if self.run.run_functions:
            self._start_emulators()
        if self.state_file is not None:
            write_state(self.state_file, self.state())

    def _start_server(self) -> None:
        """moto in its child process; it warms up its services while the template is translated here."""
        if self.log.path is not None:
            self._moto_log = self.log.path.with_name("moto.log").open("ab")
        self._server = MotoServer(
            port=self.moto.port, region=self.region, log=self._moto_log, inflight_quota=self.moto.inflight_quota
        )
        self.endpoint_url = self._server.start()
        self._sqs_control = self._server.sqs_control()
        _log.info("moto listening on %s", self.endpoint_url)

    def _deploy(self, translated: TranslatedTemplate) -> None:
        target = StackTarget(self.stack_name, self.region, self.account_id, self.endpoint_url)
        self.deployed = deploy_stack(
            translated, target, client=self.client, property_overrides=self.template.property_overrides
        )
        self._apply_inflight_quotas(self.deployed)
        self.functions = resolve_functions(
            self.deployed, translated, endpoint_url=self.endpoint_url, environment_overrides=self.template.environment
        )
        self.forwarder = MetricForwarder(self.client("cloudwatch"))
        # The functions' output goes to their log groups too, as on Lambda: delivery history reads it there.
        self.shipper = LogShipper(self.client("logs"))
        self.shipper.start()

    def _apply_inflight_quotas(self, deployed: DeployedStack) -> None:
        queues = {item.logical_id: item.physical_id for item in deployed.of_type(_QUEUE)}
        unknown = sorted(set(self.moto.inflight_quotas) - set(queues))
        if unknown:
            known = ", ".join(sorted(queues)) or "none"
            raise TemplateError(f"in-flight quota for {', '.join(unknown)}: no such queue in the template ({known})")
        if self.moto.inflight_quotas and self._sqs_control is not None:
            self._sqs_control.configure(quotas={queues[lid]: quota for lid, quota in self.moto.inflight_quotas.items()})

    def _start_emulators(self) -> None:
        assert self.deployed is not None
        self.emulators = Emulators(
            self.deployed,
            self.functions,
            run=self.run,
            client=self.client,
            endpoint_url=self.endpoint_url,
            new_invoker=self.new_invoker,
        )
        self.emulators.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop emulators (in-flight batches get ``grace_s``), the server, and remove local.json. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _log.info("stopping")
        if self.emulators is not None:
            self.emulators.stop(grace_s)
        with self._direct_lock:
            for invoker in self._direct.values():
                invoker.close()
            self._direct.clear()
        _log.info("functions stopped")
        if self.shipper is not None:
            self.shipper.close()
        if self._sqs_control is not None:
            self._sqs_control.close()
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

    @property
    def mappings(self) -> list[SqsEventSourceMapping]:
        """The running SQS event source mappings (every one the template declares)."""
        return list(self.emulators.mappings) if self.emulators else []

    @property
    def schedules(self) -> list[ScheduleRunner]:
        """The schedule runners (every schedule the template declares)."""
        return list(self.emulators.schedules) if self.emulators else []

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

    def queues(self, *, messages: bool = False) -> dict[str, QueueState]:
        """Every queue of the template by logical id: visible, in flight, delayed, peak in flight, quota."""
        if self._sqs_control is None:
            raise RuntimeError("the local stack is not started")
        states = self._sqs_control.queues(messages=messages)
        named = {item.logical_id: queue_name(item.physical_id) for item in self._require().of_type(_QUEUE)}
        return {logical_id: states[name] for logical_id, name in named.items() if name in states}

    def new_invoker(self, function: FunctionSpec) -> Invoker:
        """A new execution environment for a function (a worker process, unless an invoker_factory was given)."""
        if self.run.invoker_factory is not None:
            return self.run.invoker_factory(function)
        name = function.logical_id
        forwarder = self.forwarder
        # Only the log groups delivery history reads (HistoryLogGroups) are filled: moto serves one request at a
        # time, and every other line goes to the stack's log file anyway.
        shipper = self.shipper if function.log_group in self._history_log_groups() else None

        def on_output(stream: str, line: str) -> None:
            if stream == "stdout" and forwarder is not None and forwarder.forward_line(line):
                return  # an EMF document: metrics, not history
            if shipper is not None:
                shipper.add(function.log_group, line)
                return
            self.log.write(name, line)

        return SubprocessInvoker(function, on_output=on_output)

    def _history_log_groups(self) -> set[str]:
        outputs = self.deployed.outputs if self.deployed is not None else {}
        return {group for group in outputs.get("HistoryLogGroups", "").split(",") if group}

    # ----------------------------------------------------------------------------------------------- actions
    def _emulators(self) -> Emulators:
        if self.emulators is None:
            raise RuntimeError("the local stack runs no functions (not started, or run_functions=False)")
        return self.emulators

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
        return self._emulators().run_schedule(logical_id)

    def run_schedules(self) -> dict[str, InvokeResult]:
        """Run every enabled schedule of the template once now; results by schedule logical id."""
        return self._emulators().run_schedules()

    def kill_function(self, function_logical_id: str, *, busy_only: bool = True) -> int:
        """Crash the function's execution environments (SIGKILL) mid-invocation; return how many were busy."""
        return self._emulators().kill_function(function_logical_id, busy_only=busy_only)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until every emulated queue is empty with no batch in flight and no scheduled run in progress."""
        return self._emulators().wait_idle(timeout_s)

    def stats(self) -> dict[str, Any]:
        """Counters of every emulator (batches, deletions, failures, schedule runs, metrics forwarded)."""
        counters = self.emulators.stats() if self.emulators else {"mappings": {}, "schedules": {}}
        return {**counters, "metrics_forwarded": self.forwarder.forwarded if self.forwarder else 0}

    # ----------------------------------------------------------------------------------------------- local.json
    def _resource_names(self, deployed: DeployedStack) -> dict[str, Any]:
        by_type: dict[str, dict[str, str]] = {}
        for resource in deployed.resources.values():
            by_type.setdefault(resource.type, {})[resource.logical_id] = resource.physical_id
        quotas = {state.name: state.quota for state in self.queues().values()} if self._sqs_control else {}
        queues = {
            logical_id: {"url": url, "arn": queue_arn(url, self.region), "inflight_quota": quotas.get(queue_name(url))}
            for logical_id, url in by_type.get(_QUEUE, {}).items()
        }
        names = {
            key: deployed.outputs[output] for key, output in STATE_OUTPUT_KEYS.items() if output in deployed.outputs
        }
        if _HEALTH_FUNCTION in self.functions:
            names["health_function"] = self.functions[_HEALTH_FUNCTION].name
        return {
            **names,
            "queues": queues,
            "tables": by_type.get("AWS::DynamoDB::Table", {}),
            "topics": by_type.get("AWS::SNS::Topic", {}),
        }

    def state(self) -> dict[str, Any]:
        """The content of .hookline/local.json (see docs/local-stack.md for the schema)."""
        deployed = self._require()
        emulated = self.emulators.describe() if self.emulators else {"event_source_mappings": [], "schedules": []}
        return {
            **self._resource_names(deployed),
            **emulated,
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
            "functions": {
                spec.logical_id: {"name": spec.name, "arn": spec.arn, "environment": spec.environment}
                for spec in self.functions.values()
            },
            "resources": {
                r.logical_id: {"type": r.type, "physical_id": r.physical_id, "handling": str(r.handling)}
                for r in deployed.resources.values()
            },
            "log_file": str(self.log.path) if self.log.path else None,
        }
