"""Pacing benchmark: accuracy and DynamoDB cost of hookline.pacing across a fleet sharing one table.

Run: .venv/bin/python bench/pacing.py [--envs 4]

Each scenario runs environments (one Pacer, store and boto3 client each) in rounds of fake time against one moto server
on loopback that answers one request at a time, so the table is linearizable (tests/support/pacing.py has the
simulation: Lambda-like batches of 10 that prefetch their keys and acquire per key, SQS whole-second delays for
re-enqueues, in-process waits under a second). DynamoDB requests are counted per operation with a botocore hook on
every client; "failed" counts conditional writes that lost a race (each still costs a write unit).

Scenarios:
  unpaced      2,000 messages over 20 s to 20 endpoints without limits (the healthy path)
  burst (d)    a burst of 500 to one endpoint with rate_limit_per_s=5 (issue 10, scenario d)
  steady       1,000 messages arriving at 40/s to an endpoint limited to 50/s
  in-flight    300 messages to an endpoint limited to 10/s and 3 in flight, answering in 0.6 s (a quarter 0.1 s)
  aimd         1,000 messages to an endpoint without limits whose receiver takes 20/s and answers 429 beyond
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the template's table, the serial moto server and the fleet simulation
sys.path.insert(0, str(ROOT / "layers" / "shared"))

from hookline.pacing import PaceLimits, Pacer, endpoint_key  # noqa: E402
from hookline.pacing.dynamodb import DynamoDBPaceStore  # noqa: E402
from tests.support.aws import client  # noqa: E402
from tests.support.breaker import serial_moto_server  # noqa: E402
from tests.support.pacing import (  # noqa: E402
    FleetResult,
    Scenario,
    TokenBucketReceiver,
    peak_concurrency,
    peak_in_window,
    simulate_fleet,
)
from tests.support.template import create_table  # noqa: E402
from tests.support.timefakes import FakeClock  # noqa: E402

START = 1_800_000_000.0


@dataclass
class _Counted:
    """DynamoDB requests of every client of one scenario, by operation."""

    calls: Counter[str]
    failed: int = 0

    def before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            self.failed += 1


def _client(endpoint: str, counted: _Counted) -> Any:
    dynamodb = client("dynamodb", endpoint)
    dynamodb.meta.events.register("before-call.dynamodb", counted.before)
    dynamodb.meta.events.register("after-call.dynamodb", counted.after)
    return dynamodb


def _run(endpoint: str, envs: int, scenario: Scenario) -> tuple[FleetResult, _Counted]:
    clock = FakeClock(start=START)
    table = create_table(_client(endpoint, _Counted(Counter())), "PacingTable")
    counted = _Counted(Counter())
    pacers = [Pacer(DynamoDBPaceStore(table, client=_client(endpoint, counted), clock=clock)) for _ in range(envs)]
    return simulate_fleet(pacers, clock, scenario), counted


def _scenarios(receiver: TokenBucketReceiver) -> dict[str, Scenario]:
    one = endpoint_key("acme")
    return {
        "unpaced": Scenario(
            messages=2000,
            key_of=lambda number: endpoint_key(f"e{number % 20}"),
            limits=PaceLimits(),
            latency_s=lambda number: 0.2,
            arrival_s=lambda number: number / 100,
        ),
        "burst (d)": Scenario(
            messages=500, key_of=lambda number: one, limits=PaceLimits(rate_limit_per_s=5), latency_s=lambda n: 0.05
        ),
        "steady": Scenario(
            messages=1000,
            key_of=lambda number: one,
            limits=PaceLimits(rate_limit_per_s=50),
            latency_s=lambda number: 0.2,
            arrival_s=lambda number: number / 40,
        ),
        "in-flight": Scenario(
            messages=300,
            key_of=lambda number: one,
            limits=PaceLimits(rate_limit_per_s=10, max_in_flight=3),
            latency_s=lambda number: 0.6 if number % 4 else 0.1,
        ),
        "aimd": Scenario(
            messages=1000, key_of=lambda number: one, limits=PaceLimits(), latency_s=lambda n: 0.1, receiver=receiver
        ),
    }


def main() -> None:
    """Run every scenario and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=4, help="concurrent environments (default 4)")
    args = parser.parse_args()
    receiver = TokenBucketReceiver(rate=20, burst=20)
    header = (
        f"{'scenario':<11} {'msgs':>5} {'lost':>4} {'time s':>7} {'peak 1s':>7} {'peak 5s':>7} {'in fl.':>6} "
        f"{'429s':>5} {'re-enq/msg':>10} {'reads/msg':>9} {'writes/msg':>10} {'lost races':>10}"
    )
    print(f"hookline.pacing, {args.envs} environments, one serial moto DynamoDB; figures per message delivered")
    print(header)
    print("-" * len(header))
    with serial_moto_server() as endpoint:
        for name, scenario in _scenarios(receiver).items():
            result, counted = _run(endpoint, args.envs, scenario)
            n = scenario.messages
            reads = counted.calls["BatchGetItem"] + counted.calls["GetItem"]
            writes = counted.calls["UpdateItem"]
            refused = receiver.refused if scenario.receiver is receiver else 0
            print(
                f"{name:<11} {n:>5} {n - result.delivered:>4} {result.finished_at - START:>7.1f} "
                f"{peak_in_window(result.starts, 1):>7} {peak_in_window(result.starts, 5):>7} "
                f"{peak_concurrency(result.spans):>6} {refused:>5} {result.deferrals / n:>10.2f} "
                f"{reads / n:>9.3f} {writes / n:>10.3f} {counted.failed:>10}"
            )
    print("limits: burst (d) 5/s -> at most 30 in any 5 s (1.2x); steady 50/s; in-flight 10/s and 3 at once;")
    print("        aimd: no limit configured, the receiver takes 20/s (ideal time 50 s)")


if __name__ == "__main__":
    main()
