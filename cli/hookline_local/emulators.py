"""Every SQS event source mapping and every schedule of a deployed stack, run locally, whatever the template declares.

Nothing here knows a function by name: the mappings and schedules come from the template (resolve.py), each runs its
own function, and a template that adds a queue, a function or a schedule gets it emulated with no code change.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hookline_local.esm import SqsEventSourceMapping
from hookline_local.resolve import resolve_schedules, resolve_sqs_mappings
from hookline_local.schedule import ScheduleRunner
from hookline_local.scheduler_api import RuntimeSchedules

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hookline_local.deploy import DeployedStack
    from hookline_local.invoke import Invoker, InvokeResult
    from hookline_local.options import RunOptions
    from hookline_local.resolve import FunctionSpec, ScheduleSpec, SqsMappingSpec

__all__ = ["Emulators"]

_log = logging.getLogger("hookline.local")
_PREWARMED = 2


class Emulators:
    """The running event source mappings and schedules of one stack."""

    def __init__(  # noqa: PLR0913 - the deployed stack and its functions, the run options and injected factories
        self,
        deployed: DeployedStack,
        functions: Mapping[str, FunctionSpec],
        *,
        run: RunOptions,
        client: Callable[[str], Any],
        endpoint_url: str,
        new_invoker: Callable[[FunctionSpec], Invoker],
    ) -> None:
        self._deployed = deployed
        self._functions = functions
        self._run = run
        self._client = client
        self._sqs = client("sqs")
        self._endpoint_url = endpoint_url
        self._new_invoker = new_invoker
        self.mappings: list[SqsEventSourceMapping] = []
        self.schedules: list[ScheduleRunner] = []
        self.runtime_schedules: RuntimeSchedules | None = None

    def _runnable(self) -> dict[str, FunctionSpec]:
        runnable = {
            logical_id: spec
            for logical_id, spec in self._functions.items()
            if self._run.invoker_factory is not None or (spec.code_dir is not None and spec.code_dir.is_dir())
        }
        for logical_id in self._functions.keys() - runnable.keys():
            code = self._functions[logical_id].code_dir
            _log.warning("%s: no code at %s; its events are not emulated", logical_id, code)
        return runnable

    def start(self) -> None:
        """Start a poller set per SQS mapping and a ticker per schedule, then pre-warm their first environments."""
        runnable = self._runnable()
        for declared in resolve_sqs_mappings(self._deployed, self._functions, endpoint_url=self._endpoint_url):
            if declared.function_logical_id in runnable:
                self._start_mapping(declared, runnable[declared.function_logical_id])
        for spec in resolve_schedules(self._deployed, self._functions):
            if spec.function_logical_id in runnable:
                self._start_schedule(spec, runnable[spec.function_logical_id])
        self.runtime_schedules = RuntimeSchedules(
            scheduler=self._client("scheduler"),
            sqs=self._sqs,
            functions=runnable,
            new_invoker=self._new_invoker,
            endpoint_url=self._endpoint_url,
            region=self._deployed.region,
            account_id=self._deployed.account_id,
        )
        self.runtime_schedules.start()
        self._prewarm()

    def _start_mapping(self, declared: SqsMappingSpec, function: FunctionSpec) -> None:
        _warn_short_visibility(self._sqs, declared, function)
        spec = declared
        if self._run.max_pollers is not None and declared.maximum_concurrency > self._run.max_pollers:
            spec = replace(declared, maximum_concurrency=max(1, self._run.max_pollers))
        mapping = SqsEventSourceMapping(
            spec,
            sqs=self._sqs,
            invoker_factory=lambda: self._new_invoker(function),
            region=self._deployed.region,
            poll_wait_s=self._run.poll_wait_s,
        )
        mapping.start()
        self.mappings.append(mapping)
        _log.info(
            "%s: %s -> %s (batch %d, window %.1fs, concurrency %d, ReportBatchItemFailures %s)",
            spec.logical_id,
            spec.queue_url,
            function.logical_id,
            spec.batch_size,
            spec.maximum_batching_window_s,
            spec.maximum_concurrency,
            spec.report_batch_item_failures,
        )

    def _interval_for(self, spec: ScheduleSpec) -> float | None:
        intervals = self._run.schedule_intervals
        for key in (spec.logical_id, spec.function_logical_id):
            if key in intervals:
                return intervals[key]
        return self._run.schedule_interval_s

    def _start_schedule(self, spec: ScheduleSpec, function: FunctionSpec) -> None:
        runner = ScheduleRunner(
            spec,
            invoker=self._new_invoker(function),
            region=self._deployed.region,
            account_id=self._deployed.account_id,
            interval_s=self._interval_for(spec),
        )
        if runner.start():
            _log.info("%s: %s %s", spec.logical_id, function.logical_id, runner.describe())
        self.schedules.append(runner)

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
        """Stop every poller and ticker; a batch or run in progress gets ``grace_s``, then its environment is killed."""
        if self.runtime_schedules is not None:
            self.runtime_schedules.stop(grace_s)
        for mapping in self.mappings:
            mapping.stop(grace_s)
        for runner in self.schedules:
            runner.stop(grace_s)

    # ----------------------------------------------------------------------------------------------- actions
    def run_schedule(self, logical_id: str) -> InvokeResult:
        """Run a schedule now (by schedule or function logical id), as if it had ticked."""
        for runner in self.schedules:
            if logical_id in {runner.spec.logical_id, runner.spec.function_logical_id}:
                return runner.run_now()
        raise KeyError(f"no schedule for {logical_id}")

    def run_schedules(self) -> dict[str, InvokeResult]:
        """Run every enabled schedule once now, in template order; results by schedule logical id."""
        return {runner.spec.logical_id: runner.run_now() for runner in self.schedules if runner.spec.enabled}

    def kill_function(self, function_logical_id: str, *, busy_only: bool = True) -> int:
        """Crash the function's execution environments (SIGKILL) mid-invocation; return how many were busy."""
        invokers = [
            invoker
            for mapping in self.mappings
            if mapping.spec.function_logical_id == function_logical_id
            for invoker in mapping.invokers
        ]
        invokers += [r.invoker for r in self.schedules if r.spec.function_logical_id == function_logical_id]
        return sum(int(invoker.kill()) for invoker in invokers if invoker.busy or not busy_only)

    def _parked(self) -> bool:
        """Whether a one-time schedule created at run time fired just now or is still to fire."""
        runtime = self.runtime_schedules
        return runtime is not None and (runtime.poll_once() > 0 or runtime.waiting > 0)

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until every emulated queue is empty with no batch in flight, no scheduled run in progress and no
        one-time schedule created at run time still to fire."""
        deadline = time.monotonic() + timeout_s
        while True:
            idle = all(mapping.wait_idle(max(0.0, deadline - time.monotonic())) for mapping in self.mappings)
            if idle and not self._parked() and not any(runner.busy for runner in self.schedules):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    # ----------------------------------------------------------------------------------------------- reports
    def stats(self) -> dict[str, Any]:
        """Counters per mapping (batches, records, deletions, failures) and per schedule (runs, failures, skips)."""
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
        }

    def describe(self) -> dict[str, list[dict[str, Any]]]:
        """The mappings and schedules as local.json lists them."""
        return {
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
