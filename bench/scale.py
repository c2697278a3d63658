"""Scale simulation (issue 10): the real handler in the local stack, loopback receivers, and a table of figures.

Scenarios (each on a fresh local stack: the real template.yaml in moto, DeliveryFunction and SlowDeliveryFunction in
worker processes fed by the SQS event source mapping emulator, the default retry schedule):

* (a) 2,000 messages to 20 healthy endpoints answering in 50 ms;
* (b) (a) plus a dead endpoint (connections refused) taking 30 % of the traffic;
* (c) (a) plus an endpoint answering 2xx after 5 s, taking 10 %;
* (d) a burst of 500 to an endpoint with ``rate_limit_per_s = 5``, beside (a);
* (h) (a) with endpoints answering in 200 ms (bench/cost.py prices it);
* (b0), (c0): as many messages as (b) and (c), every one to the healthy endpoints. A burst fills the fast lane, so
  the dead or slow endpoint's messages cost the healthy ones their share of it whatever isolation does; the ratio
  to these says what the dead or slow endpoint costs beyond its volume.

Every execution environment is warmed by one invocation first; the clock starts before the producer's first send.

Figures: time until the healthy endpoints have everything (and its ratios to (a) and to the same volume); peak
in-flight per queue (from the local SQS model); the limited receiver's most requests in any 1 s and 5 s window;
messages lost (sent and neither delivered, dead-lettered, queued nor parked); duplicates (a webhook delivered twice:
botocore-retried sends, budget cuts); AWS requests per message by service (counted by the local moto, the producers'
own sends left out); Lambda GB-s per message (billed invocation time at the template's MemorySize); log bytes per
delivered message (function log lines + EMF + Lambda's START/END/REPORT lines, estimated). ``--json FILE`` keeps the
figures for bench/cost.py.

    nice .venv/bin/python bench/scale.py [--scenarios a,b,c,d,h,b0,c0] [--repeat 3] [--json .hookline/scale.json]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hookline.producer import build_message, new_message_id
from hookline.registry import Endpoint, EndpointRegistry
from hookline.signing import generate_secret
from hookline_local import LocalStack, MotoOptions, ReportOptions, RunOptions, TemplateOptions
from hookline_local.events import sqs_event
from hookline_local.loopback import LoopbackServer, Reply
from hookline_local.sqs_control import SqsControl
from hookline_local.template import load_template

if TYPE_CHECKING:
    from hookline_local.esm import SqsEventSourceMapping
    from hookline_local.invoke import Invoker

ROOT = Path(__file__).resolve().parents[1]
HEALTHY_ENDPOINTS = 20
LIMIT_PER_S = 5
MEMORY_MB = 512
PLATFORM_LINE_BYTES = 330
"""Lambda's START, END and REPORT lines of one invocation (text format), about 330 bytes together."""
# Requests the local stack's emulators make that AWS does not bill per message: the Scheduler emulator polls its
# schedules, the EMF forwarder calls PutMetricData (in AWS, metrics come from the log lines), the tooling reads queues.
_NOT_BILLED_PER_MESSAGE = {"scheduler.GET", "monitoring.PutMetricData", "sqs.GetQueueAttributes", "sqs.GetQueueUrl"}
BATCH_SIZE = 100
CONCURRENCY = 3
SLOW_CONCURRENCY = 2


@dataclass(frozen=True)
class Scenario:
    """Messages per kind of endpoint."""

    name: str
    title: str
    healthy: int
    dead: int = 0
    slow: int = 0
    burst: int = 0
    latency_s: float = 0.05
    """How long the healthy endpoints take to answer."""


@dataclass
class Result:
    """The figures of one scenario."""

    scenario: str
    title: str
    sent: int
    healthy_done_s: float
    produced_s: float
    """How long the producer's SendMessageBatch calls took (the clock starts before the first)."""
    settled_s: float
    delivered: int
    dead_lettered: int
    waiting: int
    lost: int
    duplicates: int
    peak_in_flight: dict[str, int]
    in_flight_bound: dict[str, int]
    limited_max_1s: int = 0
    limited_max_5s: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    billed_ms: int = 0
    log_bytes: int = 0
    emf_bytes: int = 0
    healthy_done_runs: list[float] = field(default_factory=list)
    """``healthy_done_s`` of every run of this scenario (``--repeat``), in run order; this result is the median's."""

    @property
    def gb_s_per_message(self) -> float:
        """Billed GB-s per message sent."""
        return self.billed_ms / 1000 * MEMORY_MB / 1024 / max(self.sent, 1)

    @property
    def log_bytes_per_delivered(self) -> float:
        """Bytes logged per delivered message: function lines, EMF, platform lines."""
        total = self.log_bytes + self.emf_bytes + PLATFORM_LINE_BYTES * self.invocations
        return total / max(self.delivered, 1)

    def per_message(self, service: str) -> float:
        """AWS requests of ``service`` per message sent."""
        return sum(n for key, n in self.requests.items() if key.startswith(f"{service}.")) / max(self.sent, 1)


def _scenarios(healthy: int) -> dict[str, Scenario]:
    dead, slow = round(healthy * 3 / 7), round(healthy / 9)
    return {
        "a": Scenario("a", f"{healthy:,} to 20 healthy endpoints (50 ms)", healthy),
        "b": Scenario("b", "(a) + a dead endpoint with 30 % of the traffic", healthy, dead=dead),
        "c": Scenario("c", "(a) + an endpoint answering after 5 s, 10 %", healthy, slow=slow),
        "d": Scenario("d", f"(a) + a burst of 500 at rate_limit_per_s={LIMIT_PER_S}", healthy, burst=500),
        # Not one of issue 10's four: the healthy path at 200 ms, which bench/cost.py prices.
        "h": Scenario("h", f"{healthy:,} to 20 healthy endpoints (200 ms)", healthy, latency_s=0.2),
        # (b) and (c)'s volumes, every message healthy: what the extra messages cost, whatever their endpoint does.
        "b0": Scenario("b0", f"{healthy + dead:,} healthy: (b)'s volume", healthy + dead),
        "c0": Scenario("c0", f"{healthy + slow:,} healthy: (c)'s volume", healthy + slow),
    }


_SAME_VOLUME = {"b": "b0", "c": "c0"}
"""The scenario with the same number of messages, all healthy, that each isolation scenario also compares with."""


def _known_parameters(root: Path, parameters: dict[str, str]) -> dict[str, str]:
    """The parameters ``root``'s template declares (an older checkout, compared with --root, lacks the slow lane)."""
    declared = load_template(root / "template.yaml").get("Parameters", {})
    return {key: value for key, value in parameters.items() if key in declared}


def prewarm(stack: LocalStack) -> None:
    """Start every execution environment now (processes up, code imported), so no batch waits for one to start."""
    invokers = [invoker for mapping in stack.mappings for invoker in mapping.invokers]
    with ThreadPoolExecutor(max_workers=max(1, len(invokers)), thread_name_prefix="prewarm") as pool:
        list(pool.map(lambda invoker: getattr(invoker, "start", lambda: None)(), invokers))


def warm_up(stack: LocalStack, endpoint: str) -> int:
    """Invoke every execution environment once with one record to ``endpoint``, so the figures are of warm environments:
    the first invocation in an environment builds its clients and reads its secret (1-2 s here), once in its life,
    not per message. Returns the environments warmed (their invocations are not in the mappings' figures)."""
    jobs = [(mapping, invoker) for mapping in stack.mappings for invoker in mapping.invokers]

    def invoke(job: tuple[SqsEventSourceMapping, Invoker]) -> bool:
        mapping, invoker = job
        now_ms = str(int(time.time() * 1000))
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": "warm-up",
            "Body": build_message(id=new_message_id(), event_type="warm-up", endpoint=endpoint, payload={}),
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms, "SenderId": "warm-up"},
        }
        event = sqs_event([message], queue_arn=mapping.spec.queue_arn, region=stack.region)
        result = invoker.invoke(event)
        return result.ok and not (result.payload or {}).get("batchItemFailures")

    with ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="warm-up") as pool:
        warmed = list(pool.map(invoke, jobs))
    if not all(warmed):
        raise RuntimeError(f"warm-up: {warmed.count(False)} of {len(jobs)} environments failed their first batch")
    return len(jobs)


def refused_url() -> str:
    """A loopback URL nobody listens on: every connection is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


class Rig:
    """The receivers and the local stack of one scenario."""

    def __init__(
        self, scenario: Scenario, log_dir: Path, root: Path = ROOT, parameters: dict[str, str] | None = None
    ) -> None:
        self.scenario = scenario
        self.root = root
        self.parameters = dict(parameters or {})
        self.healthy = LoopbackServer(default=Reply(status=204, delay_s=scenario.latency_s))
        self.slow = LoopbackServer(default=Reply(status=200, delay_s=5.0))
        self.limited = LoopbackServer(default=Reply(status=204, delay_s=0.05))
        self.log_path = log_dir / f"scale-{scenario.name}.log"
        self.stack: LocalStack | None = None

    def __enter__(self) -> Rig:
        for server in (self.healthy, self.slow, self.limited):
            server.start()
        self.stack = LocalStack.start(
            self.root,
            template=TemplateOptions(
                parameters=_known_parameters(
                    self.root,
                    {
                        "DeliveryBatchSize": str(BATCH_SIZE),
                        "DeliveryMaxConcurrency": str(CONCURRENCY),
                        "SlowLaneMaxConcurrency": str(SLOW_CONCURRENCY),
                        **self.parameters,
                    },
                ),
                environment={"LOG_LEVEL": "INFO"},
            ),
            moto=MotoOptions(stack_name=f"scale-{self.scenario.name}"),
            run=RunOptions(schedule_intervals={"HealthFunction": 3600.0}),
            report=ReportOptions(log_path=self.log_path),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stack is not None:
            self.stack.stop()
        for server in (self.healthy, self.slow, self.limited):
            server.stop()

    def register(self) -> None:
        assert self.stack is not None
        stack = self.stack
        secretsmanager = stack.client("secretsmanager")
        secretsmanager.create_secret(Name="hookline/scale", SecretString=generate_secret())
        registry = EndpointRegistry(stack.outputs["EndpointsTableName"], client=stack.client("dynamodb"))
        endpoints = [
            Endpoint(name=f"h{i:02d}", url=self.healthy.url(f"/h{i:02d}"), secret_id="hookline/scale")
            for i in range(HEALTHY_ENDPOINTS)
        ]
        endpoints += [
            Endpoint(name="warm", url=self.healthy.url("/warm"), secret_id="hookline/scale"),
            Endpoint(name="dead", url=refused_url(), secret_id="hookline/scale"),
            Endpoint(name="slow", url=self.slow.url("/slow"), secret_id="hookline/scale"),
            Endpoint(
                name="limited",
                url=self.limited.url("/limited"),
                secret_id="hookline/scale",
                rate_limit_per_s=LIMIT_PER_S,
            ),
        ]
        for endpoint in endpoints:
            registry.register(endpoint)

    def plan(self) -> list[tuple[str, str]]:
        """(webhook id, endpoint) in send order: the burst first, the rest shuffled with a fixed seed."""
        scenario, rng = self.scenario, random.Random(20261128)
        mixed = [f"h{i % HEALTHY_ENDPOINTS:02d}" for i in range(scenario.healthy)]
        mixed += ["dead"] * scenario.dead + ["slow"] * scenario.slow
        rng.shuffle(mixed)
        return [(new_message_id(), name) for name in ["limited"] * scenario.burst + mixed]

    def send(self, plan: list[tuple[str, str]]) -> int:
        """Produce the plan with SendMessageBatch, 8 calls at a time; returns the calls made."""
        assert self.stack is not None
        sqs, queue_url = self.stack.client("sqs"), self.stack.outputs["DeliveryQueueUrl"]

        def batch(start: int) -> None:
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": build_message(id=webhook_id, event_type="scale", endpoint=name, payload={}),
                }
                for i, (webhook_id, name) in enumerate(plan[start : start + 10])
            ]
            assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")

        starts = range(0, len(plan), 10)
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="produce") as pool:
            list(pool.map(batch, starts))
        return len(starts)

    def delivered(self) -> Counter[str]:
        """Webhook-id -> successful requests, over every receiver."""
        counts: Counter[str] = Counter()
        for server in (self.healthy, self.slow, self.limited):
            for request in server.requests:
                counts[request.headers.get("webhook-id", "")] += 1
        return counts


def _wait(condition: Any, timeout_s: float, poll_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False


def _drained(stack: LocalStack, *, delayed_ok: bool) -> bool:
    """Nothing to deliver or in flight on the delivery lanes (retries still waiting out a delay allowed or not)."""
    return all(
        state.visible + state.in_flight + (0 if delayed_ok else state.delayed) == 0
        for name, state in stack.queues().items()
        if "DeadLetter" not in name
    )


def _window_peak(times: list[float], width_s: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + width_s) for i, start in enumerate(times)), default=0)


@dataclass(frozen=True)
class _Timings:
    """When a run's milestones came, in seconds from its first send, and the producer's SendMessageBatch calls."""

    produced_s: float
    healthy_done_s: float
    settled_s: float
    producer_calls: int


def run(
    scenario: Scenario, log_dir: Path, *, timeout_s: float, root: Path = ROOT, parameters: dict[str, str] | None = None
) -> Result:
    """Run one scenario and collect its figures (``parameters``: template parameter overrides)."""
    with Rig(scenario, log_dir, root, parameters) as rig:
        assert rig.stack is not None
        stack = rig.stack
        rig.register()
        warm_up(stack, "warm")
        log_bytes_before = stack.shipper.bytes if stack.shipper is not None else 0
        emf_bytes_before = stack.forwarder.bytes if stack.forwarder is not None else 0
        control = SqsControl(stack.endpoint_url)
        control.configure(reset_peaks=True)
        control.reset_requests()
        plan = rig.plan()
        timings = _produce_and_settle(rig, plan, delayed_ok=bool(scenario.dead), timeout_s=timeout_s)
        requests = _billed_requests(control, timings.producer_calls)
        queues = stack.queues()
        delivered = rig.delivered()
        sent_ids = {webhook_id for webhook_id, _ in plan}
        dead_lettered = _dead_lettered(stack)
        waiting = _waiting(queues)
        parked = _parked(stack)
        delivered_ids = delivered.keys() & sent_ids
        limited_times = [request.received_at for request in rig.limited.requests]
        mappings = stack.mappings
        forwarder = stack.forwarder
        log_bytes = _function_log_bytes(rig, stack, log_bytes_before)
        return Result(
            scenario=scenario.name,
            title=scenario.title,
            sent=len(plan),
            healthy_done_s=round(timings.healthy_done_s, 1),
            produced_s=round(timings.produced_s, 1),
            settled_s=round(timings.settled_s, 1),
            delivered=len(delivered_ids),
            dead_lettered=dead_lettered,
            waiting=waiting + parked,
            lost=len(sent_ids) - len(delivered_ids) - dead_lettered - waiting - parked,
            duplicates=sum(1 for webhook_id in delivered_ids if delivered[webhook_id] > 1),
            peak_in_flight={name: state.peak_in_flight for name, state in queues.items()},
            in_flight_bound=_lane_bounds(),
            limited_max_1s=_window_peak(limited_times, 1.0),
            limited_max_5s=_window_peak(limited_times, 5.0),
            requests=requests,
            invocations=sum(m.stats.batches for m in mappings),
            billed_ms=sum(m.stats.billed_ms for m in mappings),
            log_bytes=log_bytes,
            emf_bytes=forwarder.bytes - emf_bytes_before if forwarder is not None else 0,
        )


def _produce_and_settle(rig: Rig, plan: list[tuple[str, str]], *, delayed_ok: bool, timeout_s: float) -> _Timings:
    """Send the plan, then wait for the healthy webhooks, then for the whole run to settle."""
    healthy_ids = {webhook_id for webhook_id, name in plan if name.startswith("h")}
    live_ids = {webhook_id for webhook_id, name in plan if name != "dead"}
    assert rig.stack is not None
    stack = rig.stack
    started = time.monotonic()
    producer_calls = rig.send(plan)
    produced = time.monotonic() - started
    _wait(lambda: healthy_ids <= rig.delivered().keys(), timeout_s)
    healthy_done = time.monotonic() - started
    # Settled: every live webhook delivered, and nothing left to deliver or in flight (a dead endpoint's messages
    # may keep waiting out their retry delays: they are counted as waiting, not lost).
    _wait(lambda: live_ids <= rig.delivered().keys() and _drained(stack, delayed_ok=delayed_ok), timeout_s)
    settled = time.monotonic() - started
    return _Timings(produced, healthy_done, settled, producer_calls)


def _billed_requests(control: SqsControl, producer_calls: int) -> dict[str, int]:
    """The AWS requests the run made, less the producer's and those not billed per message."""
    counted, _received = control.requests()
    counted["sqs.SendMessageBatch"] = counted.get("sqs.SendMessageBatch", 0) - producer_calls
    return {key: n for key, n in counted.items() if key.split(" ")[0] not in _NOT_BILLED_PER_MESSAGE}


def _dead_lettered(stack: LocalStack) -> int:
    dlq = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs["DeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(dlq["ApproximateNumberOfMessages"])


def _waiting(queues: dict[str, Any]) -> int:
    """Messages still on the delivery lanes: visible, in flight or waiting out a delay."""
    return sum(
        state.visible + state.in_flight + state.delayed for name, state in queues.items() if "DeadLetter" not in name
    )


def _parked(stack: LocalStack) -> int:
    """Messages parked on EventBridge Scheduler (one schedule each)."""
    return sum(
        len(stack.client("scheduler").list_schedules(GroupName=group["Name"])["Schedules"])
        for group in stack.client("scheduler").list_schedule_groups()["ScheduleGroups"]
    )


def _function_log_bytes(rig: Rig, stack: LocalStack, shipped_before: int) -> int:
    """Bytes the functions logged during the run."""
    # Function lines: the delivery functions' go to their (history) log group, the others' to the stack's log.
    return (
        (stack.shipper.bytes if stack.shipper is not None else 0)
        - shipped_before
        + sum(
            len(line.split("] ", 1)[1].encode()) + 1
            for line in rig.log_path.read_text(encoding="utf-8").splitlines()
            if "Function] " in line
        )
    )


def _lane_bounds() -> dict[str, int]:
    """The most messages each lane can hold in flight: batch size x maximum concurrency."""
    return {
        "DeliveryQueue": BATCH_SIZE * CONCURRENCY,
        "RetryQueue": BATCH_SIZE * CONCURRENCY,
        "SlowQueue": 10 * SLOW_CONCURRENCY,
    }


def _queue_peaks(result: Result) -> str:
    return ", ".join(
        f"{name.removesuffix('Queue')} {result.peak_in_flight.get(name, 0)}/{bound}"
        for name, bound in result.in_flight_bound.items()
    )


def _healthy_cell(result: Result) -> str:
    runs = result.healthy_done_runs
    spread = f" ({min(runs):.1f}-{max(runs):.1f})" if len(runs) > 1 else ""
    return f"{result.healthy_done_s:.1f} s{spread}"


def table(results: list[Result]) -> str:
    """The README table."""
    base = next((r.healthy_done_s for r in results if r.scenario == "a"), None)
    done = {r.scenario: r.healthy_done_s for r in results}
    lines = [
        "| scenario | healthy done (median; range) | vs (a) | vs the same volume all healthy "
        "| peak in flight (of batch x concurrency) "
        "| limited receiver, most in 1 s / 5 s | lost | duplicates "
        "| AWS requests per message: SQS / DynamoDB / Secrets Manager / Scheduler "
        "| GB-s per message | log bytes per delivered message |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.healthy_done_s / base:.2f}x" if base else "-"
        same = done.get(_SAME_VOLUME.get(r.scenario, ""))
        same_ratio = f"{r.healthy_done_s / same:.2f}x" if same else "-"
        limited = f"{r.limited_max_1s} / {r.limited_max_5s}" if r.limited_max_5s else "-"
        services = " / ".join(f"{r.per_message(s):.3f}" for s in ("sqs", "dynamodb", "secretsmanager", "scheduler"))
        lines.append(
            f"| ({r.scenario}) {r.title} | {_healthy_cell(r)} | {ratio} | {same_ratio} | {_queue_peaks(r)} "
            f"| {limited} "
            f"| {r.lost} | {r.duplicates} | {services} | {r.gb_s_per_message:.5f} | {r.log_bytes_per_delivered:.0f} |"
        )
    return "\n".join(lines)


def _median_run(results: list[Result]) -> Result:
    """The run whose healthy time is the median (the lower middle of an even count), with every run's time."""
    ordered = sorted(results, key=lambda result: result.healthy_done_s)
    middle = ordered[(len(ordered) - 1) // 2]
    middle.healthy_done_runs = [result.healthy_done_s for result in results]
    return middle


def main() -> None:
    """Run the scenarios asked for and print the table (and the raw figures as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="a,b,c,d,h,b0,c0")
    parser.add_argument("--healthy", type=int, default=2000, help="messages to the 20 healthy endpoints")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a scenario to settle")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario; the table shows the median")
    parser.add_argument("--once", default="d", help="scenarios run once however many rounds (d takes minutes)")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="K=V", help="template parameter (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here (bench/cost.py reads them)")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout whose template and code run (e.g. main's, to compare)"
    )
    args = parser.parse_args()
    malformed = [item for item in args.parameter if "=" not in item or not item.split("=", 1)[0]]
    if malformed:
        parser.error(f"a parameter is KEY=VALUE, not {malformed[0]!r}")
    parameters = dict(item.split("=", 1) for item in args.parameter)
    scenarios = _scenarios(args.healthy)
    names = [name.strip() for name in args.scenarios.split(",")]
    unknown = [name for name in names if name not in scenarios]
    if unknown:
        parser.error(f"no scenario {unknown[0]!r} (known: {', '.join(scenarios)})")
    once = {name.strip() for name in args.once.split(",")}
    runs: dict[str, list[Result]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="hookline-scale-") as log_dir:
        # Rounds, not one scenario N times in a row: a change of load on the machine then touches every scenario.
        for round_index in range(max(1, args.repeat)):
            for name in names:
                if round_index and name in once:
                    continue
                result = run(
                    scenarios[name], Path(log_dir), timeout_s=args.timeout, root=args.root, parameters=parameters
                )
                runs[name].append(result)
                print(
                    f"({result.scenario}) done: produced in {result.produced_s} s, healthy in "
                    f"{result.healthy_done_s} s, settled in {result.settled_s} s, lost {result.lost}, "
                    f"waiting {result.waiting}",
                    flush=True,
                )
    results = [_median_run(runs[name]) for name in names]
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
