"""`hookline demo` end to end: local stack + receivers + scenario + summary, and a clean shutdown.

Everything started here is stopped here, in reverse order, whatever happens (Ctrl-C included): the stack (its
pollers, worker processes and moto child process; .hookline/local.json removed) and then the receivers (their
threads joined, their ports closed).
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.live import Live

from hookline.registry import EndpointRegistry
from hookline_cli.demo.history import dead_message_history
from hookline_cli.demo.scenario import (
    DemoFleet,
    ScenarioConfig,
    render_progress,
    send_all,
    snapshot_progress,
    wait_until_settled,
)
from hookline_cli.demo.summary import (
    DemoSummary,
    breaker_rows,
    build_summary,
    dead_letters,
    health_rows,
    metric_totals,
    queue_rows,
)
from hookline_cli.resources import ResourceNames
from hookline_local.sqs_control import SQS_INFLIGHT_QUOTA
from hookline_local.template import sqs_event_sources

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from rich.console import Console

    from hookline_local import LocalStack

__all__ = ["DEMO_PARAMETERS", "DemoOptions", "StackView", "demo_property_overrides", "run_demo"]

# A compressed schedule: 5 attempts within about 4 s (plus Retry-After), instead of 27.5 h.
DEMO_RETRY_SCHEDULE = "0,1,1,2"
DEMO_PARAMETERS: dict[str, str] = {
    "RetrySchedule": DEMO_RETRY_SCHEDULE,
    # The queue's own redrive stays the safety net: attempts + 2, as the template asks.
    "MaxReceiveCount": str(len(DEMO_RETRY_SCHEDULE.split(",")) + 1 + 2),
}
# Each concurrent batch is a worker process locally; three per event source keep a 2-core laptop responsive.
DEMO_MAX_POLLERS = 3
# Every schedule of the template runs every 3 s (the health checks, and any schedule a template adds).
DEMO_SCHEDULE_INTERVAL_S = 3.0
# Breakers open for 5 s (not 30 s), in step with the compressed schedule: a message skipped by an open breaker
# waits for it, so a tripped flaky target recovers within the demo.
DEMO_ENVIRONMENT: dict[str, str] = {"BREAKER_OPEN_S": "5"}
# Every queue that feeds a function, and that function: a message handed back (a crash, a deferral) returns in
# seconds, not minutes. The visibility timeout stays above the function timeout, as Lambda requires.
DEMO_VISIBILITY_TIMEOUT_S = 20
DEMO_FUNCTION_TIMEOUT_S = 15


def demo_property_overrides(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Shorter visibility and function timeouts for every SQS event source the template declares."""
    overrides: dict[str, dict[str, Any]] = {}
    for source in sqs_event_sources(dict(template)):
        overrides[source.queue] = {"VisibilityTimeout": DEMO_VISIBILITY_TIMEOUT_S}
        overrides[source.function] = {"Timeout": DEMO_FUNCTION_TIMEOUT_S}
    return overrides


class StackView:
    """The scenario's view of a running LocalStack: cached clients, names from its outputs, the registry."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self._names = ResourceNames.from_outputs(stack.outputs)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """A cached boto3 client for the stack's moto server."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._stack.client(service)
            return self._clients[service]

    def require(self, name: str) -> str:
        """A resource name from the stack outputs."""
        value = getattr(self._names, name)
        if not value:
            raise KeyError(f"the local stack has no {name}")
        return str(value)

    def registry(self) -> EndpointRegistry:
        """The registry, uncached (every read is fresh)."""
        return EndpointRegistry(self.require("endpoints_table"), client=self.client("dynamodb"), cache_ttl_s=0.0)

    def source_queue_urls(self) -> list[str]:
        """Every queue that feeds a function (each SQS event source of the template)."""
        return sorted({mapping.spec.queue_url for mapping in self._stack.mappings})


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    root: Path | None = None
    write_state: bool = True
    log_dir: Path | None = None
    inflight_quota: int = SQS_INFLIGHT_QUOTA


def _start_stack(options: DemoOptions, console: Console) -> LocalStack:
    from hookline_local import (
        LocalStack,
        MotoOptions,
        ReportOptions,
        RunOptions,
        TemplateOptions,
        find_root,
        read_state,
        state_path,
    )
    from hookline_local.template import load_template

    root = (options.root or find_root()).resolve()
    state_file: Path | None = state_path(root) if options.write_state else None
    if state_file is not None and read_state(state_file) is not None:
        # Another stack (`hookline local up`) owns local.json; the demo runs its own stack beside it.
        console.print("[dim]a local stack is already running; the demo starts its own and leaves local.json alone[/]")
        state_file = None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    template = TemplateOptions(
        parameters=DEMO_PARAMETERS,
        property_overrides=demo_property_overrides(load_template(root / "template.yaml")),
        environment=DEMO_ENVIRONMENT,
    )
    with console.status("starting the local stack (moto + template.yaml + functions) ..."):
        return LocalStack.start(
            root,
            template=template,
            moto=MotoOptions(stack_name="hookline-demo", inflight_quota=options.inflight_quota),
            run=RunOptions(max_pollers=DEMO_MAX_POLLERS, schedule_interval_s=DEMO_SCHEDULE_INTERVAL_S),
            report=ReportOptions(
                log_path=(options.log_dir or root / ".hookline" / "logs") / f"demo-{stamp}.log", state_file=state_file
            ),
        )


def _summarize(  # noqa: PLR0913 - the demo's end state: stack, view, receivers, ids sent, start and outcome
    stack: LocalStack,
    view: StackView,
    fleet: DemoFleet,
    sent: list[str],
    *,
    started: float,
    since: datetime,
    timed_out: bool,
) -> DemoSummary:
    from resilience.breaker import DynamoDBStateStore

    store = DynamoDBStateStore(view.require("breaker_table"), client=view.client("dynamodb"))
    queues = queue_rows(stack.queues())  # before the dead letters are peeked at (a peek puts them in flight)
    letters = dead_letters(view.client("sqs"), view.require("dead_letter_queue_url"))
    counts = build_summary(
        sent=sent,
        records=fleet.records(),
        fallback_receivers=fleet.fallback_receivers,
        letters=letters,
        elapsed_s=time.monotonic() - started,
    )
    return replace(
        counts,
        breakers=breaker_rows(store, fleet.origin_labels()),
        health=health_rows(view.registry()),
        metrics=metric_totals(view.client("cloudwatch"), since=since, until=datetime.now(UTC)),
        queues=queues,
        timed_out=timed_out,
        # The demo ends by answering "what happened to this dead message?" from delivery history.
        dead_example=dead_message_history(stack, letters),
    )


class _Producer:
    """Sends the scenario's webhooks on a thread; the ids sent so far and any error, for the progress poll."""

    def __init__(self, view: StackView, config: ScenarioConfig) -> None:
        self._lock = threading.Lock()
        self._sent: list[str] = []
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(view, config), name="demo-producer")

    def _run(self, view: StackView, config: ScenarioConfig) -> None:
        def on_sent(webhook_id: str, _endpoint: str) -> None:
            with self._lock:
                self._sent.append(webhook_id)

        try:
            send_all(view, config, on_sent=on_sent)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.errors.append(error)

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def wait(self) -> None:
        """Wait until the sending thread ends (every webhook sent, or an error recorded)."""
        self._thread.join()

    def sent(self) -> list[str]:
        """The webhook ids sent so far (raises what stopped the sending, if anything did)."""
        if self.errors:
            raise self.errors[0]
        with self._lock:
            return list(self._sent)


def run_demo(options: DemoOptions, *, console: Console) -> DemoSummary:
    """Run the whole demo and return its summary; everything it started is stopped before it returns."""
    config = options.scenario
    started = time.monotonic()
    since = datetime.now(UTC)
    with ExitStack() as cleanup:
        fleet = cleanup.enter_context(
            DemoFleet(
                seed=config.seed,
                flaky_error_rate=config.flaky_error_rate,
                flaky_rate_limit_per_s=config.flaky_rate_limit_per_s,
            )
        )
        stack = _start_stack(options, console)
        cleanup.callback(stack.stop)  # runs before the receivers stop: no delivery meets a closed receiver
        view = StackView(stack)
        fleet.register(view)
        console.print(
            f"[bold]local stack[/] {stack.endpoint_url}  retry schedule {DEMO_RETRY_SCHEDULE} s  "
            f"receivers: {', '.join(f'{e.name} ({e.kind})' for e in fleet.endpoints.values())}"
        )
        producer = _Producer(view, config)
        producer.start()
        cleanup.callback(producer.wait)

        def poll() -> Any:
            ids = producer.sent()
            return snapshot_progress(view, fleet, ids, total=config.messages, elapsed_s=time.monotonic() - started)

        with Live(console=console, refresh_per_second=8, transient=False) as live:
            _, settled = wait_until_settled(
                poll, timeout_s=config.timeout_s, on_progress=lambda p: live.update(render_progress(p))
            )
        console.print()
        producer.wait()
        sent = producer.sent()
        # One last tick of every schedule (the health checks), so the summary shows the state as of now.
        stack.run_schedules()
        return _summarize(stack, view, fleet, sent, started=started, since=since, timed_out=not settled)
