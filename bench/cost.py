"""Cost model (issue 10): dollars per million messages, from counts measured in the local stack, at bench/prices.py.

Measured inputs:

* bench/scale.py's figures (``--scale FILE``, written by ``bench/scale.py --json FILE``): AWS requests per message by
  service and action, Lambda GB-s and invocations, log bytes, for the healthy path at 200 ms (scenario h), and for
  10 % of traffic to an endpoint answering after 5 s (scenario c);
* measured here, on a local stack of its own: what one receive of a dead endpoint's message costs (connections
  refused; and an endpoint that never answers, cut at the fast lane's budget and tried in the slow lane with the
  15 s timeout), what one hop costs (a wait longer than SQS's 900 s passing through), for a fleet (batches) and for a
  single message (every receive its own invocation).

From them: the healthy path with producers using SendMessage and SendMessageBatch; 5 % of traffic to a dead endpoint;
10 % to a slow one; the whole life of one dead message (2 KB, the default schedule) under each way of waiting longer
than 900 s: hops only, or parking waits longer than 900 s / 1 h / 2 h on EventBridge Scheduler, or (modelled, not
built) a DynamoDB parking table swept every minute; and what delivery history adds, payloads off and on
(bench/history_cost.py's rows).

    nice .venv/bin/python bench/cost.py --scale .hookline/scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import history_cost
import prices
from scale import prewarm, refused_url

from hookline.delivery.retrystate import RETRY_ATTRIBUTE, RetryState
from hookline.producer import build_message, new_message_id
from hookline.registry import Endpoint, EndpointRegistry
from hookline.settings import DEFAULT_RETRY_SCHEDULE
from hookline.signing import generate_secret
from hookline_local import LocalStack, MotoOptions, ReportOptions, RunOptions, TemplateOptions
from hookline_local.loopback import LoopbackServer, Reply
from hookline_local.sqs_control import SqsControl

ROOT = Path(__file__).resolve().parents[1]
MEMORY_MB = 512
PLATFORM_LINE_BYTES = 330
MESSAGE_BYTES = 2048
HOP_S = 900
X_RAY_SAMPLED = 0.05
"""Tracing: Active samples about 5 % of invocations beyond the first each second (priced at $5 per million traces)."""
X_RAY_USD_PER_TRACE = 5.0 / 1_000_000
# Request units per call, for items of about 1 KB (breaker, pacing, slow marks) read eventually consistently.
_READ_UNITS = {"GetItem": 0.5, "BatchGetItem": 1.0, "Query": 0.5}
_WRITE_UNITS = {"UpdateItem": 2.0, "PutItem": 1.0, "DeleteItem": 1.0}


@dataclass
class Counts:
    """What delivering (or holding) one message took: requests by service.Action, Lambda, logs, Scheduler."""

    requests: dict[str, float] = field(default_factory=dict)
    invocations: float = 0.0
    gb_s: float = 0.0
    log_bytes: float = 0.0
    scheduled: float = 0.0

    def plus(self, other: Counts, times: float = 1.0) -> Counts:
        """This plus ``times`` x ``other``."""
        requests = dict(self.requests)
        for key, value in other.requests.items():
            requests[key] = requests.get(key, 0.0) + value * times
        return Counts(
            requests,
            self.invocations + other.invocations * times,
            self.gb_s + other.gb_s * times,
            self.log_bytes + other.log_bytes * times,
            self.scheduled + other.scheduled * times,
        )

    def dollars(self) -> dict[str, float]:
        """USD per message, by line."""
        sqs = sum(n for key, n in self.requests.items() if key.startswith("sqs."))
        sqs += self.scheduled  # Scheduler's SendMessage when a parked message is due
        reads = sum(
            n * _READ_UNITS.get(key.split(".", 1)[1], 1.0)
            for key, n in self.requests.items()
            if key.startswith("dynamodb.") and key.split(".", 1)[1] in _READ_UNITS
        )
        writes = sum(
            n * _WRITE_UNITS.get(key.split(".", 1)[1], 1.0)
            for key, n in self.requests.items()
            if key.startswith("dynamodb.") and key.split(".", 1)[1] not in _READ_UNITS
        )
        secrets = sum(n for key, n in self.requests.items() if key.startswith("secretsmanager."))
        return {
            "SQS": sqs * prices.SQS_USD_PER_REQUEST * math.ceil(MESSAGE_BYTES / prices.SQS_BYTES_PER_REQUEST),
            "DynamoDB": reads * prices.DYNAMODB_USD_PER_READ_UNIT + writes * prices.DYNAMODB_USD_PER_WRITE_UNIT,
            "Secrets Manager": secrets * prices.SECRETS_MANAGER_USD_PER_CALL,
            "Lambda": self.invocations * prices.LAMBDA_USD_PER_REQUEST + self.gb_s * prices.LAMBDA_ARM_USD_PER_GB_S,
            "Logs": self.log_bytes / 1e9 * prices.LOGS_USD_PER_GB_INGESTED,
            "X-Ray": self.invocations * X_RAY_SAMPLED * X_RAY_USD_PER_TRACE,
            "Scheduler": self.scheduled * prices.SCHEDULER_USD_PER_INVOCATION,
        }

    def per_million(self) -> float:
        """USD per million messages."""
        return sum(self.dollars().values()) * 1_000_000


def _from_scale(figures: dict[str, Any]) -> Counts:
    sent = max(figures["sent"], 1)
    delivered = max(figures["delivered"], 1)
    log = figures["log_bytes"] + figures["emf_bytes"] + PLATFORM_LINE_BYTES * figures["invocations"]
    return Counts(
        requests={key: n / sent for key, n in figures["requests"].items()},
        invocations=figures["invocations"] / sent,
        gb_s=figures["billed_ms"] / 1000 * MEMORY_MB / 1024 / sent,
        log_bytes=log / delivered,
    )


class DeadLife:
    """Measures one receive of a dead endpoint's message and one hop, on a local stack of its own."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "cost.log"
        self.blackhole = LoopbackServer(default=Reply(status=200, delay_s=120.0))
        self.stack = LocalStack.start(
            ROOT,
            # The first retry waits 10 minutes: each message is received once while measured.
            template=TemplateOptions(parameters={"RetrySchedule": "600,3600", "DeliveryMaxConcurrency": "2"}),
            moto=MotoOptions(stack_name="hookline-cost"),
            run=RunOptions(schedule_intervals={"HealthFunction": 3600.0}),
            report=ReportOptions(log_path=self.log_path),
        )
        prewarm(self.stack)
        self.control = SqsControl(self.stack.endpoint_url)
        self.blackhole.start()
        self.stack.client("secretsmanager").create_secret(Name="hookline/cost", SecretString=generate_secret())
        registry = EndpointRegistry(self.stack.outputs["EndpointsTableName"], client=self.stack.client("dynamodb"))
        registry.register(Endpoint(name="refused", url=refused_url(), secret_id="hookline/cost"))
        registry.register(Endpoint(name="silent", url=self.blackhole.url("/silent"), secret_id="hookline/cost"))

    def close(self) -> None:
        """Stop the stack and the receiver."""
        self.stack.stop()
        self.blackhole.stop()

    def _measure(self, send: Any, count: int, *, settle: Any) -> Counts:
        stack = self.stack
        self.control.reset_requests()
        before = {m.spec.logical_id: (m.stats.batches, m.stats.billed_ms, m.stats.records) for m in stack.mappings}
        log_before = self._log_bytes()
        emf_before = stack.forwarder.bytes if stack.forwarder is not None else 0
        producer_calls = send(count)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not settle():
            time.sleep(0.5)
        requests, _received = self.control.requests()
        requests["sqs.SendMessageBatch"] = requests.get("sqs.SendMessageBatch", 0) - producer_calls
        for unbilled in ("monitoring.PutMetricData", "sqs.GetQueueAttributes", "scheduler.GET schedules"):
            requests.pop(unbilled, None)
        batches = sum(m.stats.batches - before[m.spec.logical_id][0] for m in stack.mappings)
        billed_ms = sum(m.stats.billed_ms - before[m.spec.logical_id][1] for m in stack.mappings)
        log_bytes = self._log_bytes() - log_before
        emf = (stack.forwarder.bytes if stack.forwarder is not None else 0) - emf_before
        return Counts(
            requests={key: n / count for key, n in requests.items()},
            invocations=batches / count,
            gb_s=billed_ms / 1000 * MEMORY_MB / 1024 / count,
            log_bytes=(log_bytes + emf + PLATFORM_LINE_BYTES * batches) / count,
        )

    def _log_bytes(self) -> int:
        """Bytes logged so far: the stack's log file, and the delivery functions' lines shipped to their log group."""
        shipped = self.stack.shipper.bytes if self.stack.shipper is not None else 0
        return shipped + (self.log_path.stat().st_size if self.log_path.exists() else 0)

    def _idle(self) -> bool:
        return all(
            state.visible + state.in_flight == 0 for name, state in self.stack.queues().items() if "Dead" not in name
        ) and all(m.in_flight == 0 for m in self.stack.mappings)

    def _send(
        self, endpoint: str, count: int, *, queue: str = "DeliveryQueueUrl", state: RetryState | None = None
    ) -> int:
        sqs, url = self.stack.client("sqs"), self.stack.outputs[queue]
        calls = 0
        for start in range(0, count, 10):
            entries = []
            for index in range(min(10, count - start)):
                entry: dict[str, Any] = {
                    "Id": str(index),
                    "MessageBody": build_message(
                        id=new_message_id(), event_type="cost", endpoint=endpoint, payload={"pad": "x" * 1800}
                    ),
                }
                if state is not None:
                    value = {"DataType": "String", "StringValue": state.encode()}
                    entry["MessageAttributes"] = {RETRY_ATTRIBUTE: value}
                entries.append(entry)
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
            calls += 1
        return calls

    def receive_refused(self, count: int) -> Counts:
        """One receive of a message to an endpoint refusing connections (an attempt, or a skip once its breaker is
        open), re-enqueued for its next attempt."""
        return self._measure(lambda n: self._send("refused", n), count, settle=self._idle)

    def receive_silent(self, count: int) -> Counts:
        """One attempt at an endpoint that never answers: cut at the fast lane's budget, then the slow lane's 15 s."""
        slow_before = next(m for m in self.stack.mappings if "Slow" in m.spec.logical_id).stats.records

        def settled() -> bool:
            slow = next(m for m in self.stack.mappings if "Slow" in m.spec.logical_id)
            return slow.stats.records - slow_before >= count and self._idle()

        return self._measure(lambda n: self._send("silent", n), count, settle=settled)

    def hop(self, count: int) -> Counts:
        """A message waiting longer than 900 s passing through: received, sent on with 900 s, deleted."""
        now = time.time()
        state = RetryState(first_seen=now, attempts=3, position=3, first_failure=now, due_at=now + 3 * HOP_S)
        return self._measure(
            lambda n: self._send("refused", n, queue="RetryQueueUrl", state=state), count, settle=self._idle
        )

    def single(self, measure: Any) -> Counts:
        """The same with one message at a time (nothing to share a batch with): the average of three."""
        runs = [measure(1) for _ in range(3)]
        total = Counts()
        for run in runs:
            total = total.plus(run, 1 / 3)
        return total


def life(
    receive: Counts, hop: Counts, *, park_after_s: float | None, table: bool = False, first: Counts | None = None
) -> Counts:
    """One dead message over the default schedule (mean jitter): every attempt's receive (``first`` for the first
    one), the hops of waits longer than 900 s that are not parked, one park per parked wait; or, ``table``, a DynamoDB
    item per parked wait."""
    total = first or receive  # the first attempt
    for wait in DEFAULT_RETRY_SCHEDULE:
        if park_after_s is not None and wait > park_after_s:
            if table:  # put + delete of a ~2.3 KB item (3 write units each), a Query to find it, the send back
                total = total.plus(
                    Counts(
                        requests={
                            "dynamodb.PutItem": 3,
                            "dynamodb.DeleteItem": 3,
                            "dynamodb.Query": 1,
                            "sqs.SendMessageBatch": 0.1,
                        }
                    )
                )
            else:
                total = total.plus(Counts(scheduled=1))
        elif wait > HOP_S:
            total = total.plus(hop, math.ceil(wait / HOP_S) - 1)
        total = total.plus(receive)  # the next attempt (the last one dead-letters instead of re-enqueueing)
    return total.plus(Counts(requests={"sqs.SendMessage": 1}))  # the dead letter


def _row(name: str, counts: Counts) -> str:
    dollars = counts.dollars()
    cells = " | ".join(f"{dollars[key] * 1e6:.3f}" for key in dollars)
    return f"| {name} | {cells} | **{counts.per_million():.2f}** |"


def _header(first: str) -> list[str]:
    keys = list(Counts().dollars())
    return [f"| {first} | " + " | ".join(keys) + " | total $/M |", "|---" * (len(keys) + 2) + "|"]


PARK_AFTER_S = 3600.0
"""The chosen threshold: waits longer than an hour park on EventBridge Scheduler, shorter ones hop."""


def main() -> None:
    """Measure, then print the cost tables."""
    args = _parse_args()
    figures = {entry["scenario"]: entry for entry in json.loads(args.scale.read_text(encoding="utf-8"))}
    healthy = _from_scale(figures["h"])
    fleet, single = _measure_dead(args.fleet)
    lines = [
        *_healthy_table(healthy, args.sized_gb_s),
        "",
        *_mixed_table(healthy, figures, fleet),
        "",
        *_dead_life_table(fleet, single),
        "",
        *_history_table(),
    ]
    print("\n".join(lines))
    print(
        "\nScheduler is priced at its list price; its first 14 million invocations a month are free, which takes "
        "$1 per million off a dead message's life for each parked wait while under it."
    )
    receive, hop = fleet["refused"], fleet["hop"]
    print(
        f"\nprices as of {prices.PRICES_AS_OF}; one receive of a dead message (fleet): {_rounded(receive.requests)}, "
        f"{receive.gb_s:.5f} GB-s; one hop: {_rounded(hop.requests)}, {hop.gb_s:.5f} GB-s"
    )


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=Path, required=True, help="bench/scale.py --json output (scenarios h and c)")
    parser.add_argument("--fleet", type=int, default=300, help="messages per fleet measurement")
    parser.add_argument(
        "--sized-gb-s",
        type=float,
        default=0.00217,
        help="GB-s per message at 200 ms, batch 100, 512 MB from bench/delivery.py --only sizing (the local stack's "
        "figure also pays moto's latency on every store call of a batch)",
    )
    return parser.parse_args()


def _measure_dead(fleet_size: int) -> tuple[dict[str, Counts], dict[str, Counts]]:
    """A dead endpoint's receives and hops, for a fleet (``fleet_size`` messages) and for a single message."""
    with tempfile.TemporaryDirectory(prefix="hookline-cost-") as log_dir:
        dead = DeadLife(Path(log_dir))
        try:
            fleet = {
                "refused": dead.receive_refused(fleet_size),
                "hop": dead.hop(fleet_size),
                "silent": dead.receive_silent(100),
            }
            single = {"refused": dead.single(dead.receive_refused), "hop": dead.single(dead.hop)}
        finally:
            dead.close()
    return fleet, single


def _healthy_table(healthy: Counts, sized_gb_s: float) -> list[str]:
    """The healthy path with each way producers send, at the local stack's GB-s and at the sizing run's."""
    producers = {"SendMessageBatch": 0.1, "SendMessage": 1.0}
    sized = Counts(healthy.requests, healthy.invocations, sized_gb_s, healthy.log_bytes, healthy.scheduled)
    lines = ["Healthy path (200 ms receivers, scenario h), per million messages:", *_header("producers use")]
    for action, share in producers.items():
        producer = Counts(requests={f"sqs.{action}": share})
        lines.append(_row(f"{action}, GB-s as measured in the local stack", healthy.plus(producer)))
        lines.append(_row(f"{action}, GB-s of bench/delivery.py's sizing run", sized.plus(producer)))
    return lines


def _mixed_table(healthy: Counts, figures: dict[str, Any], fleet: dict[str, Counts]) -> list[str]:
    """Healthy traffic with a share to a dead endpoint, and (scenario c, when measured) a share to a slow one."""
    batched = healthy.plus(Counts(requests={"sqs.SendMessageBatch": 0.1}))
    dead_fleet = life(fleet["refused"], fleet["hop"], park_after_s=PARK_AFTER_S)
    lines = ["Mixed traffic (producers batch), per million messages:", *_header("traffic")]
    lines.append(_row("5 % to a dead endpoint (refused)", batched.plus(dead_fleet.plus(batched, -1), 0.05)))
    if "c" in figures:
        lines.append(
            _row(
                "10 % to an endpoint answering after 5 s (scenario c)",
                _from_scale(figures["c"]).plus(Counts(requests={"sqs.SendMessageBatch": 0.1})),
            )
        )
    return lines


def _dead_life_table(fleet: dict[str, Counts], single: dict[str, Counts]) -> list[str]:
    """One dead message's whole life under each way of holding waits over 900 s, and with 15 s timeouts."""
    lines = [
        "Whole life of one dead message (2 KB, default schedule, 9 attempts over ~27.5 h):",
        *_header("how waits over 900 s are held"),
    ]
    for label, receive, hop in (
        ("fleet (batched)", fleet["refused"], fleet["hop"]),
        ("single message", single["refused"], single["hop"]),
    ):
        for name, after, table in (
            ("hops only", None, False),
            ("park > 900 s", 900.0, False),
            ("park > 1 h (chosen)", PARK_AFTER_S, False),
            ("park > 2 h", 7200.0, False),
            ("DynamoDB table > 1 h (model)", PARK_AFTER_S, True),
        ):
            lines.append(_row(f"{label}, {name}", life(receive, hop, park_after_s=after, table=table)))
    silent = fleet["silent"]
    lines.append(
        _row(
            "fleet, 15 s timeouts, every attempt real (no breaker), park > 1 h",
            life(silent, fleet["hop"], park_after_s=PARK_AFTER_S),
        )
    )
    lines.append(
        _row(
            "fleet, 15 s timeouts, first attempt real, then skipped (breaker open), park > 1 h",
            life(fleet["refused"], fleet["hop"], park_after_s=PARK_AFTER_S, first=silent),
        )
    )
    return lines


def _history_table() -> list[str]:
    """What delivery history adds (bench/history_cost.py's rows), at 30 and 90 days of retention."""
    lines = ["History (docs/history.md), added per million messages:", "| case | $/M | how |", "|---|---|---|"]
    for retention_days in (30, 90):
        lines += [
            f"| {row.case} | {row.per_million:.3f} | {row.note} |"
            for row in history_cost.history_rows(retention_days=retention_days)
            if row.case.startswith("history")
        ]
    return lines


def _rounded(requests: dict[str, float]) -> str:
    return json.dumps({key: round(value, 3) for key, value in sorted(requests.items())})


if __name__ == "__main__":
    main()
