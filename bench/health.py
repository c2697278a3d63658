"""Health benchmark: one run over 100 integrations answering in 200 ms, concurrent versus serial.

Run: .venv/bin/python bench/health.py [--integrations 100] [--latency 0.2] [--concurrency 50] [--json out.json]

Everything is real except AWS: a moto server on loopback holds the tables created from template.yaml (registry,
history, breakers), a loopback HTTP server answers every probe after ``--latency`` seconds, and the service is
wired by the production factory (build_health_service) with the DynamoDB breaker store. DynamoDB requests are
counted with a botocore ``before-send`` hook (one count per HTTP request sent, retries included).

Each mode gets a fresh registry and first runs once unmeasured (the first check of a new registry), then the
measured run: the steady state of a scheduled function.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared")]  # tests.support (template, moto, loopback) and the layer

from hookline.health.factory import build_health_service  # noqa: E402
from hookline.health.telemetry import RecordingMetricsSink  # noqa: E402
from hookline.registry import Endpoint, EndpointRegistry  # noqa: E402
from hookline.settings import Settings  # noqa: E402
from resilience.breaker import BreakerRegistry, DynamoDBStateStore  # noqa: E402
from tests.support.aws import FAKE_ENV, client, free_port, moto_server  # noqa: E402
from tests.support.loopback import Reply, loopback_server  # noqa: E402
from tests.support.template import create_stack_resources  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def _moto_process() -> Iterator[str]:
    """moto_server in a child process on loopback; yields its URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()  # werkzeug's dev server may ignore SIGTERM while a keep-alive connection is open
            process.wait(timeout=5)


def _measure(moto_url: str, base_url: str, *, integrations: int, concurrency: int) -> dict[str, Any]:
    dynamodb = client("dynamodb", moto_url)
    stack = create_stack_resources(dynamodb, client("sqs", moto_url), client("sns", moto_url))
    registry = EndpointRegistry(stack.endpoints_table, client=dynamodb)
    for index in range(integrations):
        registry.register(Endpoint(name=f"integration-{index:03d}", url=f"{base_url}/hook/{index}", secret_id="s"))
    requests: Counter[str] = Counter()

    def count(**kwargs: Any) -> None:
        requests[kwargs["event_name"].rsplit(".", 1)[-1]] += 1

    dynamodb.meta.events.register("before-send.dynamodb", count)
    settings = Settings(
        endpoints_table=stack.endpoints_table,
        breaker_table=stack.breaker_table,
        health_history_table=stack.health_history_table,
        allow_private_targets=True,
    )
    service = build_health_service(
        settings,
        metrics=RecordingMetricsSink(),
        dynamodb=dynamodb,
        breaker_registry=BreakerRegistry(DynamoDBStateStore(stack.breaker_table, client=dynamodb)),
        concurrency=concurrency,
    )
    service.run()  # the first check of a new registry
    requests.clear()
    started = time.perf_counter()
    summary = service.run()
    wall_s = time.perf_counter() - started
    total = sum(requests.values())
    return {
        "mode": f"concurrent ({concurrency})" if concurrency > 1 else "serial",
        "concurrency": concurrency,
        "checked": summary.checked,
        "wall_s": round(wall_s, 3),
        "dynamodb_requests": total,
        "requests_per_integration": round(total / max(summary.checked, 1), 3),
        "by_operation": dict(sorted(requests.items())),
        "phases_ms": summary.phases,
    }


def main() -> None:
    """Run both modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--integrations", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--moto",
        choices=["process", "thread"],
        default="process",
        help="moto in its own process (default; like a remote DynamoDB, it does not share this process's GIL) "
        "or in a thread of this process",
    )
    args = parser.parse_args()

    os.environ.update(FAKE_ENV)
    server = _moto_process if args.moto == "process" else moto_server
    with server() as moto_url, loopback_server(default=Reply(status=200, delay_s=args.latency)) as receiver:
        rows = [
            _measure(moto_url, receiver.base_url, integrations=args.integrations, concurrency=concurrency)
            for concurrency in (args.concurrency, 1)
        ]
    print(
        f"{args.integrations} integrations, each answering in {args.latency * 1000:.0f} ms (loopback); "
        f"moto server ({args.moto}); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"| {'mode':<16} | wall time | probe phase | state writes | DynamoDB requests | per integration |")
    print(f"|{'-' * 18}|----------:|------------:|-------------:|------------------:|----------------:|")
    for row in rows:
        phases = row["phases_ms"]
        print(
            f"| {row['mode']:<16} | {row['wall_s']:>8.2f}s | {phases['probe_ms'] / 1000:>10.2f}s "
            f"| {phases['record_ms'] / 1000:>11.2f}s | {row['dynamodb_requests']:>17} "
            f"| {row['requests_per_integration']:>15.2f} |"
        )
    for row in rows:
        operations = ", ".join(f"{name} {count}" for name, count in row["by_operation"].items())
        print(f"{row['mode']}: {operations}; phases (ms) {row['phases_ms']}")
    print(f"speed-up over serial: {rows[1]['wall_s'] / rows[0]['wall_s']:.1f}x; target: a run under 1.5 s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
