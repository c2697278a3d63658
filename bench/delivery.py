"""Delivery benchmark: the real handler against moto (resources from template.yaml) and a loopback receiver.

The receiver answers every webhook after 200 ms. Measured: handler wall time for batches of 10, 100 and 1,000 (as the
event source mapping would split them) against the ideal ``latency x ceil(N / MAX_CONCURRENCY)`` and against serial
delivery; DynamoDB and Secrets Manager requests per delivered message (botocore ``before-send`` hooks on the
function's own clients); peak traced memory of a 100-message batch; cold start (handler import + first client
build) against importing boto3 + httpx alone, each in fresh subprocesses of the same run.

    .venv/bin/python bench/delivery.py            # about a minute; prints the table for docs/delivery.md
    .venv/bin/python bench/delivery.py --only cold-start   # the cold-start line alone, in seconds
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "layers" / "shared", ROOT / "cli", ROOT):
    sys.path.insert(0, str(path))

import asyncio  # noqa: E402
import logging  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import httpx  # noqa: E402

from hookline.delivery.factory import get_delivery_environment, reset_delivery_environment  # noqa: E402
from hookline.producer import build_message  # noqa: E402
from hookline.registry import Endpoint, EndpointRegistry  # noqa: E402
from hookline.signing import generate_secret  # noqa: E402
from tests.support.aws import FAKE_ENV, client, moto_server  # noqa: E402
from tests.support.delivery import load_delivery_app  # noqa: E402
from tests.support.events import FakeLambdaContext, make_record, make_sqs_event  # noqa: E402
from tests.support.template import create_stack_resources  # noqa: E402

LATENCY_S = 0.2

_BASE_SNIPPET = "import time; t = time.perf_counter(); import boto3, httpx; print(time.perf_counter() - t)"
_HANDLER_SNIPPET = """
import importlib.util, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", "functions/delivery/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
from hookline.delivery.factory import get_delivery_environment
get_delivery_environment()
print(time.perf_counter() - t, imported - t)
"""


_RECEIVER_SNIPPET = """
import sys
sys.path[:0] = ["cli", "."]
from tests.support.loopback import Reply, loopback_server
with loopback_server(default=Reply(status=204, delay_s=float(sys.argv[1]))) as server:
    print(server.url("/hook"), flush=True)
    sys.stdin.read()
"""


@contextmanager
def receiver_process(latency_s: float) -> Iterator[str]:
    """The loopback receiver in its own process (its own GIL), answering 204 after ``latency_s``; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _RECEIVER_SNIPPET, str(latency_s)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def plain_httpx_floor(url: str, size: int, concurrency: int, repeats: int) -> tuple[float, float]:
    """The same requests with a bare httpx.AsyncClient and nothing else: what this machine can do at best.

    Returns the median wall time of a batch and the median CPU time (this process) of a batch.
    """
    cpu: list[float] = []

    async def run() -> list[float]:
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=max(concurrency, 10))) as plain:

            async def one() -> None:
                async with slots:
                    await plain.post(url, content=b"{}")

            await asyncio.gather(*(one() for _ in range(min(size, concurrency))))  # warm the pool
            times = []
            for _ in range(repeats):
                started, cpu_started = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one() for _ in range(size)))
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - cpu_started)
            return times

    return statistics.median(asyncio.run(run())), statistics.median(cpu)


class RequestCounter:
    """Counts HTTP requests per AWS service with botocore's ``before-send`` event on the given clients."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def attach(self, clients: dict[str, Any]) -> None:
        for name, aws_client in clients.items():
            aws_client.meta.events.register("before-send", self._hook(name))

    def _hook(self, name: str) -> Any:
        def count(**_kwargs: Any) -> None:
            self.counts[name] += 1

        return count

    def reset(self) -> Counter[str]:
        seen = Counter(self.counts)
        self.counts.clear()
        return seen


class Bench:
    """The deployed pieces, the receiver and the handler."""

    def __init__(self, moto_endpoint: str, receiver_url: str) -> None:
        self.resources = create_stack_resources(
            client("dynamodb", moto_endpoint), client("sqs", moto_endpoint), client("sns", moto_endpoint)
        )
        self.moto_endpoint = moto_endpoint
        secret_id = "hookline/bench"
        client("secretsmanager", moto_endpoint).create_secret(Name=secret_id, SecretString=generate_secret())
        EndpointRegistry(self.resources.endpoints_table, client=client("dynamodb", moto_endpoint)).register(
            Endpoint(name="bench", url=receiver_url, secret_id=secret_id)
        )
        sqs = client("sqs", moto_endpoint)
        self.queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.resources.delivery_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.app = None
        self.counter = RequestCounter()
        self.failed = 0
        self.cpu: list[float] = []

    def configure(self, concurrency: int) -> None:
        os.environ.update(
            {
                **FAKE_ENV,
                **self.resources.environment(),
                "AWS_ENDPOINT_URL": self.moto_endpoint,
                "ALLOW_PRIVATE_TARGETS": "true",
                "MAX_CONCURRENCY": str(concurrency),
                "POWERTOOLS_SERVICE_NAME": "hookline-delivery",
                "POWERTOOLS_METRICS_NAMESPACE": "Hookline",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "LOG_LEVEL": "WARNING",
            }
        )
        reset_delivery_environment()
        self.app = load_delivery_app()
        self.counter = RequestCounter()
        # Built here with the handler's own Logger and Metrics (exactly what its first call would build).
        environment = get_delivery_environment(logger=self.app.logger, metrics=self.app.metrics)
        self.counter.attach(dict(environment.clients))

    def event(self, size: int) -> dict[str, Any]:
        records = [
            make_record(
                build_message(endpoint="bench", event_type="bench.tick", payload={"n": index}), queue_arn=self.queue_arn
            )
            for index in range(size)
        ]
        return make_sqs_event(*records)

    def invoke(self, event: dict[str, Any]) -> float:
        assert self.app is not None
        started, cpu_started = time.perf_counter(), time.process_time()
        response = self.app.lambda_handler(event, FakeLambdaContext(remaining_ms=lambda: 60_000))
        elapsed = time.perf_counter() - started
        self.cpu.append(time.process_time() - cpu_started)
        # A record that did not get through (a timeout on an overloaded machine) is counted, not hidden.
        self.failed += len(response["batchItemFailures"])
        return elapsed


def _quiet(function: Any, *args: Any) -> Any:
    # The handler's EMF metrics and logs go to stdout; keep the table readable.
    stdout = sys.stdout
    with Path(os.devnull).open("w") as sink:
        sys.stdout = sink
        try:
            return function(*args)
        finally:
            sys.stdout = stdout


def wall_times(bench: Bench, size: int, concurrency: int, repeats: int) -> list[float]:
    """Warm the environment (first call builds clients, opens connections), then time ``repeats`` batches."""
    bench.configure(concurrency)
    _quiet(bench.invoke, bench.event(min(size, concurrency)))
    bench.cpu.clear()
    return [_quiet(bench.invoke, bench.event(size)) for _ in range(repeats)]


def cold_start(repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Fresh-subprocess timings, interleaved: boto3 + httpx import; handler import + first client build; of that,
    the handler import alone."""
    env = {
        **os.environ,
        **FAKE_ENV,
        "PYTHONPATH": str(ROOT / "layers" / "shared"),
        "ENDPOINTS_TABLE": "endpoints",
        "BREAKER_TABLE": "breakers",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        "POWERTOOLS_SERVICE_NAME": "hookline-delivery",
        "POWERTOOLS_METRICS_NAMESPACE": "Hookline",
        # As in Lambda with Tracing: Active. Without LAMBDA_TASK_ROOT, Powertools disables tracing (no botocore
        # patching) while the X-Ray SDK still builds its non-Lambda recorder, whose centralized sampler creates two
        # botocore X-Ray clients (~200 ms): a cost no Lambda pays, in place of one every traced Lambda pays.
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "delivery"),
        "AWS_LAMBDA_FUNCTION_NAME": "hookline-delivery",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # loopback; nothing is emitted outside an invocation anyway
    }
    for name in ("POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    base: list[float] = []
    handler: list[float] = []
    imports: list[float] = []
    for _ in range(repeats):
        for snippet, into in ((_BASE_SNIPPET, base), (_HANDLER_SNIPPET, handler)):
            output = subprocess.run(
                [sys.executable, "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            values = [float(value) for value in output.stdout.strip().splitlines()[-1].split()]
            into.append(values[0])
            if len(values) > 1:
                imports.append(values[1])
    return base, handler, imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed batches per case (median reported)")
    parser.add_argument("--cold-repeats", type=int, default=5, help="fresh subprocesses per cold-start side")
    parser.add_argument("--only", choices=["cold-start"], help="run only this section (no moto, no receiver)")
    args = parser.parse_args()
    if args.only == "cold-start":
        print_cold_start(*cold_start(args.cold_repeats), repeats=args.cold_repeats)
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    rows: list[tuple[str, ...]] = []
    started = time.perf_counter()
    with moto_server() as moto_endpoint, receiver_process(LATENCY_S) as receiver_url:
        bench = Bench(moto_endpoint, receiver_url)

        floors: dict[tuple[int, int], tuple[float, float]] = {}

        def case(label: str, size: int, concurrency: int) -> float:
            measured = statistics.median(wall_times(bench, size, concurrency, args.repeats))
            cpu_ms = statistics.median(bench.cpu) / size * 1000
            floor, floor_cpu = plain_httpx_floor(receiver_url, size, concurrency, args.repeats)
            floors[size, concurrency] = (floor, floor_cpu)
            ideal = LATENCY_S * math.ceil(size / concurrency)
            rows.append(
                (label, f"{measured:.3f} s", f"{ideal:.3f} s", f"{measured / ideal:.2f}x", f"{floor:.3f} s",
                 f"{measured / floor:.2f}x", f"{cpu_ms:.2f} / {floor_cpu / size * 1000:.2f}")
            )  # fmt: skip
            return measured

        concurrent_10 = case("batch 10, MAX_CONCURRENCY=10", 10, 10)
        serial_10 = case("batch 10, MAX_CONCURRENCY=1 (serial)", 10, 1)
        concurrent_100 = case("batch 100, MAX_CONCURRENCY=10", 100, 10)
        case("batch 100, MAX_CONCURRENCY=100", 100, 100)

        # 1,000 messages as the event source mapping hands them over (BatchSize 100 + a batching window): ten
        # invocations of 100, one after the other in one environment (the steady state of one concurrent poller).
        bench.configure(100)
        _quiet(bench.invoke, bench.event(100))
        bench.counter.reset()
        bench.cpu.clear()
        thousand = sum(_quiet(bench.invoke, bench.event(100)) for _ in range(10))
        thousand_cpu_ms = sum(bench.cpu)
        steady = bench.counter.reset()
        ideal_thousand = LATENCY_S * 10
        floor_thousand = 10 * floors[100, 100][0]
        rows.append(
            ("1,000 as 10 batches of 100, MAX_CONCURRENCY=100", f"{thousand:.3f} s", f"{ideal_thousand:.3f} s",
             f"{thousand / ideal_thousand:.2f}x", f"{floor_thousand:.3f} s", f"{thousand / floor_thousand:.2f}x",
             f"{thousand_cpu_ms:.2f} / {floors[100, 100][1] * 10:.2f}")
        )  # fmt: skip

        # Requests from a cold environment: the first batch of 10 reads the endpoint, secret and breakers.
        bench.configure(10)
        _quiet(bench.invoke, bench.event(10))
        cold_requests = bench.counter.reset()

        # Peak traced memory of one warm 100-message batch.
        bench.configure(100)
        _quiet(bench.invoke, bench.event(100))
        tracemalloc.start()
        _quiet(bench.invoke, bench.event(100))
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        reset_delivery_environment()

    base, handler, imports = cold_start(args.cold_repeats)
    print(
        "\n| case | handler wall time | ideal: 200 ms x ceil(N / MAX_CONCURRENCY) | handler / ideal "
        "| bare httpx, same requests | handler / bare httpx | CPU ms per message: handler / bare httpx |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nserial / concurrent, batch of 10: {serial_10 / concurrent_10:.1f}x faster concurrently")
    print(f"batch of 100 at MAX_CONCURRENCY=10: {concurrent_100:.3f} s (serial would be {100 * LATENCY_S:.0f} s)")
    print("\n| AWS requests per delivered message | DynamoDB | Secrets Manager | SQS |")
    print("|---|---|---|---|")
    for label, seen, messages in (
        ("cold environment, first batch of 10", cold_requests, 10),
        ("steady state, 1,000 messages", steady, 1000),
    ):
        print(
            f"| {label} | {seen['dynamodb'] / messages:.3f} | {seen['secretsmanager'] / messages:.3f} | "
            f"{seen['sqs'] / messages:.3f} |"
        )  # fmt: skip
    print(f"\nrecords not delivered on the first try in the whole run: {bench.failed}")
    print(f"\npeak traced memory, one batch of 100: {peak / 1024 / 1024:.1f} MiB")
    print_cold_start(base, handler, imports, repeats=args.cold_repeats)
    print(f"\nbenchmark run time: {time.perf_counter() - started:.0f} s")


def print_cold_start(base: list[float], handler: list[float], imports: list[float], *, repeats: int) -> None:
    """Print the cold-start line: handler import + first client build against importing boto3 + httpx."""
    ratio_min = min(handler) / min(base)
    ratio_median = statistics.median(handler) / statistics.median(base)
    print(
        f"cold start: handler import + first client build {min(handler):.3f} s (min) / "
        f"{statistics.median(handler):.3f} s (median) vs boto3 + httpx import {min(base):.3f} s / "
        f"{statistics.median(base):.3f} s: {ratio_min:.2f}x (min) {ratio_median:.2f}x (median), "
        f"{repeats} fresh subprocesses each; of the handler's, the import alone took {min(imports):.3f} s "
        "(min), the rest is building the clients"
    )


if __name__ == "__main__":
    main()
