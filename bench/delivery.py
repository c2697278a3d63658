"""Delivery benchmark: the real handler against moto (resources from template.yaml) and loopback receivers.

Every figure is measured side by side in one run; moto, each receiver and each sizing run live in their own
processes, so the handler's process holds only the handler (its CPU time is the handler's own).

* transport: a batch of 10 at 10 in flight and a batch of 100 at 100 in flight against a receiver answering in
  200 ms: bare httpx, bare aiohttp, httpx with hookline's transport (no handler), the handler, and the ideal
  (200 ms x ceil(N / in flight)); wall time per batch and CPU per message in this process.
* alternatives: the transports considered under the httpx API, bare, in the same cases: httpx's stock pool, stock
  pools of 10 dealt round-robin, the httpx-aiohttp transport, hookline's transport, and bare aiohttp.
* requests: AWS requests per delivered message (botocore ``before-send`` hooks) and peak traced memory.
* sizing: Lambda GB-s per message at 0.2 s and 2 s receivers for batch = MAX_CONCURRENCY = 10 and 100, at several
  memory sizes. The handler runs in a worker process held to the CPU share Lambda gives that memory size
  (MemorySize / 1,769 of one core) by a cgroup CPU quota; where no cgroup can be made (not root, no cpu controller)
  the share is modelled instead (wall + CPU x (1 / share - 1)) and the table says so.
* cold-start: handler import + first client build against importing boto3 + httpx, each in fresh interpreters with
  a Lambda-like sys.path (``python -S``: the layer, then the runtime's boto3 family; no pyc writes; tracing on as
  with Tracing: Active). From the source tree (compiled into a scratch copy, as the layer build ships bytecode) or
  from a built layer (``--layer-path .aws-sam/build/SharedLayer/python``).
* log-bytes: bytes logged per delivered message (the function's lines, its EMF, Lambda's platform lines), measured
  by bench/logbytes.py's child interpreter on this checkout (``bench/logbytes.py --other`` compares two).

    nice .venv/bin/python bench/delivery.py                       # everything, a few minutes; prints the tables
    nice .venv/bin/python bench/delivery.py --only transport      # one section (see SECTIONS)
    nice .venv/bin/python bench/delivery.py --only cold-start --layer-path .aws-sam/build/SharedLayer/python \
        --runtime-path .hookline/runtime-python      # after `make build runtime-site`: the built artifact
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import logbytes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "layers" / "shared", ROOT / "cli", ROOT, ROOT / "bench"):
    sys.path.insert(0, str(path))

from prices import LAMBDA_ARM_USD_PER_GB_S, LAMBDA_MB_PER_VCPU, LAMBDA_USD_PER_REQUEST  # noqa: E402

LATENCY_S = 0.2
SLOW_LATENCY_S = 2.0
TRANSPORT_CASES = ((10, 10), (100, 100))
SIZING_CASES = (10, 100)
SIZING_MEMORY_MB = (256, 512, 1024, 1769)
_CGROUP_PERIOD_US = 10_000  # a short CFS period: the share is spread evenly, not granted in 100 ms bursts

_ENDPOINT = "bench"
SECTIONS = ("transport", "alternatives", "requests", "sizing", "cold-start", "log-bytes")

# ---------------------------------------------------------------------------------------------------- processes

_RECEIVER_SNIPPET = """
import sys
sys.path[:0] = ["cli", "."]
from tests.support.loopback import Reply, loopback_server
with loopback_server(default=Reply(status=204, delay_s=float(sys.argv[1]))) as server:
    print(server.url("/hook"), flush=True)
    sys.stdin.read()
"""

_MOTO_SNIPPET = """
import socket, sys
from moto.server import ThreadedMotoServer
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print(f"http://127.0.0.1:{port}", flush=True)
sys.stdin.read()
server.stop()
"""


@contextmanager
def _server_process(snippet: str, *args: str) -> Iterator[str]:
    """A server in its own process (its own GIL); yields the URL it prints, stops it when stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", snippet, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # moto's request log
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def receiver_process(latency_s: float) -> contextlib.AbstractContextManager[str]:
    """The loopback receiver, answering 204 after ``latency_s``; yields its webhook URL."""
    return _server_process(_RECEIVER_SNIPPET, str(latency_s))


def moto_process() -> contextlib.AbstractContextManager[str]:
    """moto in server mode in its own process; yields its endpoint URL."""
    return _server_process(_MOTO_SNIPPET)


# ---------------------------------------------------------------------------------------------------- the handler


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


@dataclass(frozen=True)
class Deployment:
    """What the handler needs to find: the stack's environment and the delivery queue's ARN."""

    environment: dict[str, str]
    queue_arn: str


def deploy(moto_endpoint: str, receiver_urls: dict[str, str]) -> Deployment:
    """Create the template's resources in moto and register one endpoint per receiver URL (name -> URL)."""
    from hookline.registry import Endpoint, EndpointRegistry
    from hookline.signing import generate_secret
    from tests.support.aws import FAKE_ENV, client
    from tests.support.template import create_stack_resources

    resources = create_stack_resources(
        client("dynamodb", moto_endpoint), client("sqs", moto_endpoint), client("sns", moto_endpoint)
    )
    secret_id = "hookline/bench"
    client("secretsmanager", moto_endpoint).create_secret(Name=secret_id, SecretString=generate_secret())
    registry = EndpointRegistry(resources.endpoints_table, client=client("dynamodb", moto_endpoint))
    for name, url in receiver_urls.items():
        registry.register(Endpoint(name=name, url=url, secret_id=secret_id))
    sqs = client("sqs", moto_endpoint)
    queue_arn = sqs.get_queue_attributes(QueueUrl=resources.delivery_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    environment = {
        **FAKE_ENV,
        **resources.environment(),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "ALLOW_PRIVATE_TARGETS": "true",
        "POWERTOOLS_SERVICE_NAME": "hookline-delivery",
        "POWERTOOLS_METRICS_NAMESPACE": "Hookline",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
    }
    return Deployment(environment=environment, queue_arn=queue_arn)


class Handler:
    """The delivery handler in this process, configured from a Deployment."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.app: Any = None
        self.counter = RequestCounter()
        self.failed = 0
        self.cpu: list[float] = []

    def configure(self, concurrency: int) -> None:
        """(Re)build the cached environment for ``concurrency`` requests in flight."""
        from hookline.delivery.factory import get_delivery_environment, reset_delivery_environment

        os.environ.update({**self.deployment.environment, "MAX_CONCURRENCY": str(concurrency)})
        reset_delivery_environment()
        self.app = _delivery_app()
        self.counter = RequestCounter()
        # Built here with the handler's own Logger and Metrics (exactly what its first call would build).
        environment = get_delivery_environment(logger=self.app.logger, metrics=self.app.metrics)
        self.counter.attach(dict(environment.clients))

    def event(self, size: int, endpoint: str = _ENDPOINT) -> dict[str, Any]:
        from hookline.producer import build_message
        from tests.support.events import make_record, make_sqs_event

        records = [
            make_record(
                build_message(endpoint=endpoint, event_type="bench.tick", payload={"n": index}),
                queue_arn=self.deployment.queue_arn,
            )
            for index in range(size)
        ]
        return make_sqs_event(*records)

    def invoke(self, event: dict[str, Any]) -> float:
        """One invocation; returns its wall time and appends its CPU time (this process) to ``cpu``."""
        from tests.support.events import FakeLambdaContext

        started, cpu_started = time.perf_counter(), time.process_time()
        with _quiet():
            response = self.app.lambda_handler(event, FakeLambdaContext(remaining_ms=lambda: 60_000))
        elapsed = time.perf_counter() - started
        self.cpu.append(time.process_time() - cpu_started)
        # A record that did not get through (a timeout on an overloaded machine) is counted, not hidden.
        self.failed += len(response["batchItemFailures"])
        return elapsed

    def close(self) -> None:
        from hookline.delivery.factory import reset_delivery_environment

        reset_delivery_environment()


@functools.cache
def _delivery_app() -> Any:
    """functions/delivery/app.py, imported by path once (its Powertools objects are module globals, as in Lambda).

    Not through tests.support.delivery, which imports moto: the sizing workers' peak RSS must be the handler's."""
    spec = importlib.util.spec_from_file_location("hookline_delivery_app", ROOT / "functions" / "delivery" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def _quiet() -> Iterator[None]:
    """The handler's EMF metrics and logs go to stdout; keep the tables readable."""
    stdout = sys.stdout
    with Path(os.devnull).open("w") as sink:
        sys.stdout = sink
        try:
            yield
        finally:
            sys.stdout = stdout


# ---------------------------------------------------------------------------------------------------- bare clients


class BareClient:
    """One HTTP client used bare (no handler) on its own event loop, kept open across batches."""

    def __init__(self, label: str, concurrency: int, build: Callable[[], Any], post: Callable[..., Awaitable[Any]]):
        self.label = label
        self.concurrency = concurrency
        self._runner = asyncio.Runner()
        self._client = self._runner.run(_call_async(build))
        self._post = post
        self.cpu: list[float] = []

    def batch(self, url: str, size: int) -> float:
        """Post ``size`` requests, at most ``concurrency`` at once; returns the wall time, appends the CPU time."""

        async def run() -> None:
            slots = asyncio.Semaphore(self.concurrency)

            async def one() -> None:
                async with slots:
                    await self._post(self._client, url)

            await asyncio.gather(*(one() for _ in range(size)))

        started, cpu_started = time.perf_counter(), time.process_time()
        self._runner.run(run())
        self.cpu.append(time.process_time() - cpu_started)
        return time.perf_counter() - started

    def close(self) -> None:
        self._runner.run(self._client.aclose() if hasattr(self._client, "aclose") else self._client.close())
        self._runner.close()


async def _call_async(build: Callable[[], Any]) -> Any:
    return build()  # inside the loop: aiohttp binds its session to the running loop


async def _post_httpx(client: Any, url: str) -> None:
    await client.post(url, content=b"{}")


async def _post_aiohttp(session: Any, url: str) -> None:
    async with session.post(url, data=b"{}") as response:
        await response.read()


def _hookline_transport(concurrency: int) -> BareClient:
    from hookline.http import build_async_client

    return BareClient(
        "httpx + hookline transport",
        concurrency,
        lambda: build_async_client(allow_private=True, max_connections=concurrency),
        _post_httpx,
    )


def _bare_aiohttp(concurrency: int) -> BareClient:
    import aiohttp

    return BareClient(
        "bare aiohttp",
        concurrency,
        lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)),
        _post_aiohttp,
    )


def bare_clients(concurrency: int) -> list[BareClient]:
    """Bare httpx, bare aiohttp and httpx with hookline's transport, each pooled for ``concurrency`` in flight."""
    return [_stock_httpx(concurrency, "bare httpx"), _bare_aiohttp(concurrency), _hookline_transport(concurrency)]


def _stock_httpx(concurrency: int, label: str) -> BareClient:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return BareClient(label, concurrency, lambda: httpx.AsyncClient(limits=limits), _post_httpx)


class _ShardedTransport:
    """httpx's stock transport split into pools of ``shard_size`` connections, requests dealt round-robin."""

    def __init__(self, concurrency: int, shard_size: int = 10) -> None:
        import httpx

        limits = httpx.Limits(max_connections=shard_size, max_keepalive_connections=shard_size)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(max(1, concurrency // shard_size))]
        self._next = 0

    async def handle_async_request(self, request: Any) -> Any:
        self._next = (self._next + 1) % len(self._shards)
        return await self._shards[self._next].handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def alternative_clients(concurrency: int) -> list[BareClient]:
    """The transports considered under the httpx API, and bare aiohttp as the reference."""
    import aiohttp
    import httpx

    def sharded() -> httpx.AsyncClient:
        transport: Any = _ShardedTransport(concurrency)
        return httpx.AsyncClient(transport=transport)

    def httpx_aiohttp() -> httpx.AsyncClient:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(
            client=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        )
        return httpx.AsyncClient(transport=transport)

    return [
        _stock_httpx(concurrency, "httpx (stock pool)"),
        BareClient("httpx, stock pools of 10", concurrency, sharded, _post_httpx),
        BareClient("httpx + httpx-aiohttp", concurrency, httpx_aiohttp, _post_httpx),
        _hookline_transport(concurrency),
        _bare_aiohttp(concurrency),
    ]


# ---------------------------------------------------------------------------------------------------- sections


@dataclass
class Measured:
    """Wall time per batch and CPU time per message of one contender in one case."""

    label: str
    walls: list[float]
    cpu_per_message_s: list[float]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu_per_message_s) * 1000


def race(
    url: str, repeats: int, make_clients: Callable[[int], list[BareClient]], handler: Handler | None = None
) -> dict[tuple[int, int], list[Measured]]:
    """Each contender (and the handler, if given) in each case, interleaved batch by batch so that load on the
    machine falls on all of them alike."""
    results: dict[tuple[int, int], list[Measured]] = {}
    for size, concurrency in TRANSPORT_CASES:
        clients = make_clients(concurrency)
        labels = [client.label for client in clients]
        if handler is not None:
            handler.configure(concurrency)
            handler.invoke(handler.event(concurrency))  # warm: clients built, connections open
            handler.cpu.clear()
            labels.append("hookline handler")
        for client in clients:
            client.batch(url, concurrency)
            client.cpu.clear()
        measured = {label: Measured(label, [], []) for label in labels}
        for _ in range(repeats):
            for client in clients:
                measured[client.label].walls.append(client.batch(url, size))
                measured[client.label].cpu_per_message_s.append(client.cpu[-1] / size)
            if handler is not None:
                measured["hookline handler"].walls.append(handler.invoke(handler.event(size)))
                measured["hookline handler"].cpu_per_message_s.append(handler.cpu[-1] / size)
        for client in clients:
            client.close()
        results[size, concurrency] = list(measured.values())
    return results


def print_alternatives(results: dict[tuple[int, int], list[Measured]]) -> None:
    labels = [measured.label for measured in next(iter(results.values()))]
    print("\nTransports under the httpx API, bare (wall time per batch x ideal / CPU ms per message):\n")
    print("| requests in flight | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for (size, concurrency), row in results.items():
        ideal = LATENCY_S * math.ceil(size / concurrency)
        cells = [f"{m.wall / ideal:.2f}x / {m.cpu_ms:.2f} ms" for m in row]
        print(f"| {concurrency} (batch {size}) | " + " | ".join(cells) + " |")


def print_transport(results: dict[tuple[int, int], list[Measured]]) -> None:
    labels = [measured.label for measured in next(iter(results.values()))]
    print(f"\nBatch wall time against a receiver answering in {LATENCY_S * 1000:.0f} ms (median; x ideal):\n")
    print("| requests in flight | " + " | ".join(labels) + " | ideal |")
    print("|---|" + "---:|" * (len(labels) + 1))
    for (size, concurrency), row in results.items():
        ideal = LATENCY_S * math.ceil(size / concurrency)
        cells = [f"{m.wall:.3f} s ({m.wall / ideal:.2f}x)" for m in row]
        print(f"| {concurrency} (batch {size}) | " + " | ".join(cells) + f" | {ideal:.3f} s |")
    print("\nCPU per message in this process (median, ms); the handler against each bare client:\n")
    print("| requests in flight | " + " | ".join(labels) + " | handler / hookline's transport | handler / aiohttp |")
    print("|---|" + "---:|" * (len(labels) + 2))
    for (size, concurrency), row in results.items():
        by_label = {m.label: m.cpu_ms for m in row}
        handler_ms = by_label["hookline handler"]
        cells = [f"{ms:.2f}" for ms in by_label.values()]
        print(
            f"| {concurrency} (batch {size}) | " + " | ".join(cells) + f" | "
            f"{handler_ms / by_label['httpx + hookline transport']:.2f}x | "
            f"{handler_ms / by_label['bare aiohttp']:.2f}x |"
        )


def requests_section(handler: Handler) -> None:
    """AWS requests per delivered message (cold first batch of 10, steady state of 1,000) and peak memory."""
    handler.configure(10)
    handler.invoke(handler.event(10))
    cold = handler.counter.reset()
    handler.configure(100)
    handler.invoke(handler.event(100))
    handler.counter.reset()
    for _ in range(10):
        handler.invoke(handler.event(100))
    steady = handler.counter.reset()
    tracemalloc.start()
    handler.invoke(handler.event(100))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("\n| AWS requests per delivered message | DynamoDB | Secrets Manager | SQS |")
    print("|---|---|---|---|")
    for label, seen, messages in (
        ("cold environment, first batch of 10", cold, 10),
        ("steady state, 1,000 messages in batches of 100", steady, 1000),
    ):
        print(
            f"| {label} | {seen['dynamodb'] / messages:.3f} | {seen['secretsmanager'] / messages:.3f} | "
            f"{seen['sqs'] / messages:.3f} |"
        )  # fmt: skip
    print(f"\npeak traced memory, one batch of 100: {peak / 1024 / 1024:.1f} MiB")


# ---------------------------------------------------------------------------------------------------- sizing


@contextmanager
def cpu_share_cgroup(share: float) -> Iterator[Path | None]:
    """A cgroup whose processes together get ``share`` of one core (CFS quota); None where none can be made."""
    candidates = (
        (Path("/sys/fs/cgroup/cpu"), "cpu.cfs_quota_us"),  # cgroup v1
        (Path("/sys/fs/cgroup"), "cpu.max"),  # cgroup v2 with the cpu controller enabled
    )
    for root, control in candidates:
        if not (root / control).exists() and not (root / "cgroup.controllers").exists():
            continue
        group = root / f"hookline-bench-{os.getpid()}-{int(share * 10_000)}"
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            quota = max(1000, int(_CGROUP_PERIOD_US * share))
            if control == "cpu.max":
                (group / "cpu.max").write_text(f"{quota} {_CGROUP_PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(_CGROUP_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError:
            group.rmdir()
            continue
        try:
            yield group
        finally:
            with contextlib.suppress(OSError):
                group.rmdir()
        return
    yield None


def sizing_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a worker process: join the cgroup, deliver batches, report wall and CPU per batch."""
    if spec["cgroup"]:
        (Path(spec["cgroup"]) / "cgroup.procs").write_text(str(os.getpid()))
    logging.getLogger().setLevel(logging.ERROR)
    handler = Handler(Deployment(environment=spec["environment"], queue_arn=spec["queue_arn"]))
    handler.configure(spec["concurrency"])
    handler.invoke(handler.event(spec["concurrency"], spec["endpoint"]))
    handler.cpu.clear()
    walls = [handler.invoke(handler.event(spec["size"], spec["endpoint"])) for _ in range(spec["repeats"])]
    result = {"walls": walls, "cpu": list(handler.cpu), "failed": handler.failed, "peak_rss_mib": _peak_rss_mib()}
    handler.close()
    return result


def _peak_rss_mib() -> float:
    """This process's peak resident memory, to check MemorySize has room.

    Linux's VmHWM belongs to the process image; ru_maxrss would carry over the forking parent's peak across exec."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class SizingRow:
    """GB-s and dollars per message of one memory size, batch size and receiver latency."""

    memory_mb: int
    batch: int
    latency_s: float
    duration_s: float
    cpu_per_message_ms: float
    peak_rss_mib: float
    emulated: bool

    @property
    def gb_s_per_message(self) -> float:
        # Lambda bills each invocation's duration, rounded up to the millisecond, times its memory.
        return self.memory_mb / 1024 * math.ceil(self.duration_s * 1000) / 1000 / self.batch

    @property
    def usd_per_million(self) -> float:
        return 1_000_000 * (self.gb_s_per_message * LAMBDA_ARM_USD_PER_GB_S + LAMBDA_USD_PER_REQUEST / self.batch)


def sizing_section(deployment: Deployment, repeats: int, memories: Sequence[int]) -> list[SizingRow]:
    """Batch duration at each memory size's CPU share, for both receivers and both batch sizes."""
    rows: list[SizingRow] = []
    for latency_s, endpoint in ((LATENCY_S, _ENDPOINT), (SLOW_LATENCY_S, "bench-slow")):
        for batch in SIZING_CASES:
            for memory_mb in memories:
                share = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
                with cpu_share_cgroup(share) as group:
                    spec = {
                        "cgroup": str(group) if group else None,
                        "environment": deployment.environment,
                        "queue_arn": deployment.queue_arn,
                        "endpoint": endpoint,
                        "size": batch,
                        "concurrency": batch,
                        "repeats": repeats,
                    }
                    output = subprocess.run(
                        [sys.executable, str(Path(__file__).resolve()), "--sizing-worker", json.dumps(spec)],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                result = json.loads(output.stdout.strip().splitlines()[-1])
                wall, cpu = statistics.median(result["walls"]), statistics.median(result["cpu"])
                # Without a cgroup the worker ran on a whole core: stretch its CPU time to the memory size's share.
                duration = wall if group else wall + cpu * (1 / share - 1)
                rows.append(
                    SizingRow(
                        memory_mb,
                        batch,
                        latency_s,
                        duration,
                        cpu / batch * 1000,
                        result["peak_rss_mib"],
                        emulated=group is not None,
                    )
                )
    return rows


def print_sizing(rows: list[SizingRow]) -> None:
    emulated = all(row.emulated for row in rows)
    how = (
        "a cgroup CPU quota held the handler's process to MemorySize / 1,769 of one core"
        if emulated
        else "CPU share modelled as wall + CPU x (1 / share - 1): no cgroup could be made here"
    )
    print(f"\nLambda cost per message, batch = MAX_CONCURRENCY ({how}); arm64 list prices:\n")
    print(
        "| receiver | batch = in flight | MemorySize | batch duration | GB-s per message | $ per million messages "
        "| CPU per message | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.latency_s:g} s | {row.batch} | {row.memory_mb} MB | {row.duration_s:.3f} s | "
            f"{row.gb_s_per_message:.5f} | {row.usd_per_million:.2f} | {row.cpu_per_message_ms:.2f} ms | "
            f"{row.peak_rss_mib:.0f} MiB |"
        )
    print("\n$ per million messages: Lambda GB-s and requests only (SQS, DynamoDB and logs do not depend on the size).")


# ---------------------------------------------------------------------------------------------------- cold start

_BASE_SNIPPET = "import time; t = time.perf_counter(); import boto3, httpx; print(time.perf_counter() - t)"
_HANDLER_SNIPPET = """
import importlib.util, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
from hookline.delivery.factory import get_delivery_environment
get_delivery_environment()
print(time.perf_counter() - t, imported - t)
"""
_NOT_INHERITED = ("PYTHON", "AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN")
# The Lambda python runtime provides these (and their dependencies); the layer leaves them out.
_RUNTIME_DISTRIBUTIONS = ("boto3",)


def _requirement_names(requirements: Path) -> list[str]:
    """Distribution names (with extras) of a requirements file, options and hashes skipped."""
    names = []
    for line in requirements.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)", line.split("#", 1)[0])
        if match:
            names.append(match.group(1))
    return names


def _closure(names: Sequence[str]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions ``names`` need, with their dependencies (markers and extras evaluated)."""
    from packaging.requirements import Requirement

    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [Requirement(name) for name in names]
    while pending:
        requirement = pending.pop()
        key = requirement.name.lower().replace("_", "-")
        if key in found:
            continue
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[key] = distribution
        for text in distribution.requires or []:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return found


def _link_distributions(target: Path, distributions: Sequence[importlib.metadata.Distribution]) -> None:
    """Symlink each distribution's top-level packages and modules from the venv into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for distribution in distributions:
        for file in distribution.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".egg-info", ".pth")) or top in ("..", "__pycache__", "bin"):
                continue
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)


def lambda_like_path(workdir: Path, layer_path: Path | None, runtime_path: Path | None = None) -> list[Path]:
    """sys.path as Lambda has it: the layer (/opt/python), then the runtime's boto3 family (/var/runtime): the
    given ``runtime_path`` (``make runtime-site``), else the venv's own boto3 family linked into a scratch folder."""
    runtime_closure = _closure(_RUNTIME_DISTRIBUTIONS)
    runtime = workdir / "runtime"
    if runtime_path is not None:
        runtime = runtime_path.resolve()
    else:
        _link_distributions(runtime, list(runtime_closure.values()))
    if layer_path is not None:
        return [layer_path.resolve(), runtime]
    # From the source tree: hookline and resilience compiled in a scratch copy (the layer build ships bytecode and
    # Lambda cannot write any), and the layer's requirements minus what the runtime already has.
    layer = workdir / "layer"
    shared = ROOT / "layers" / "shared"
    for package in ("hookline", "resilience"):
        shutil.copytree(shared / package, layer / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(layer)], check=True)
    layer_closure = _closure(_requirement_names(shared / "requirements.txt"))
    _link_distributions(layer, [dist for key, dist in layer_closure.items() if key not in runtime_closure])
    return [layer, runtime]


def cold_start(
    repeats: int, layer_path: Path | None, runtime_path: Path | None = None
) -> tuple[list[float], list[float], list[float]]:
    """Fresh-interpreter timings, interleaved: boto3 + httpx import; handler import + first client build; of that,
    the handler import alone."""
    from tests.support.aws import FAKE_ENV

    with tempfile.TemporaryDirectory(prefix="hookline-cold-") as scratch:
        sys_path = lambda_like_path(Path(scratch), layer_path, runtime_path)
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(_NOT_INHERITED)},
            **FAKE_ENV,
            "PYTHONPATH": os.pathsep.join(str(entry) for entry in sys_path),
            "PYTHONDONTWRITEBYTECODE": "1",
            "ENDPOINTS_TABLE": "endpoints",
            "BREAKER_TABLE": "breakers",
            "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            "POWERTOOLS_SERVICE_NAME": "hookline-delivery",
            "POWERTOOLS_METRICS_NAMESPACE": "Hookline",
            # As in Lambda with Tracing: Active. Without LAMBDA_TASK_ROOT, Powertools disables tracing (no botocore
            # patching) while the X-Ray SDK still builds its non-Lambda recorder, whose centralized sampler creates
            # two botocore X-Ray clients (~200 ms): a cost no Lambda pays, in place of one every traced Lambda pays.
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "delivery"),
            "AWS_LAMBDA_FUNCTION_NAME": "hookline-delivery",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # loopback; nothing is emitted outside an invocation anyway
        }
        app = str(ROOT / "functions" / "delivery" / "app.py")
        base: list[float] = []
        handler: list[float] = []
        imports: list[float] = []
        for _ in range(repeats):
            for command, into in (([_BASE_SNIPPET], base), ([_HANDLER_SNIPPET, app], handler)):
                output = subprocess.run(
                    [sys.executable, "-S", "-c", *command],
                    check=False,
                    cwd=scratch,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if output.returncode != 0:
                    raise SystemExit(f"cold-start run failed:\n{output.stderr}")
                values = [float(value) for value in output.stdout.strip().splitlines()[-1].split()]
                into.append(values[0])
                if len(values) > 1:
                    imports.append(values[1])
    return base, handler, imports


def print_cold_start(  # noqa: PLR0913 - three measured series and the paths they were measured from
    base: list[float],
    handler: list[float],
    imports: list[float],
    *,
    repeats: int,
    layer_path: Path | None,
    runtime_path: Path | None = None,
) -> None:
    """Print the cold-start line: handler import + first client build against importing boto3 + httpx."""
    source = f"built layer {layer_path}" if layer_path else "source tree, compiled"
    source += f", runtime {runtime_path}" if runtime_path else ", the venv's boto3 as runtime"
    print(
        f"\ncold start ({source}; Lambda-like sys.path, tracing on, {repeats} fresh interpreters each): handler "
        f"import + first client build {statistics.median(handler):.3f} s (median) / {min(handler):.3f} s (min) vs "
        f"boto3 + httpx import {statistics.median(base):.3f} s / {min(base):.3f} s: "
        f"{statistics.median(handler) / statistics.median(base):.2f}x (median), {min(handler) / min(base):.2f}x "
        f"(min); of the handler's, the import alone took {statistics.median(imports):.3f} s (median)"
    )


def print_log_bytes(figures: dict[str, object]) -> None:
    """Print bytes logged per delivered message: log lines, EMF and Lambda's platform lines."""
    messages = int(str(figures["messages"]))
    lines = int(str(figures["log_bytes"])) / messages
    emf = int(str(figures["emf_bytes"])) / messages
    platform = logbytes.PLATFORM_LINE_BYTES * int(str(figures["invocations"])) / messages
    print(
        f"\nbytes logged per delivered message (batches of 10, healthy): {lines + emf + platform:.0f} "
        f"(log lines {lines:.0f}, EMF {emf:.0f}, Lambda's platform lines {platform:.0f}, estimated)"
    )


# ---------------------------------------------------------------------------------------------------- main


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _arguments() -> argparse.Namespace:
    """The command line, checked (argparse's exit 2 with the problem when it is not usable)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per contender and case (median)")
    parser.add_argument("--sizing-repeats", type=int, default=3, help="timed batches per sizing run (median)")
    parser.add_argument("--cold-repeats", type=int, default=7, help="fresh interpreters per cold-start side")
    parser.add_argument(
        "--memory",
        type=int,
        nargs="+",
        default=list(SIZING_MEMORY_MB),
        help="Lambda memory sizes (MB) for the sizing table",
    )
    parser.add_argument("--only", choices=SECTIONS, help="one section only")
    parser.add_argument("--layer-path", type=Path, help="cold start from a built layer's python/ folder")
    parser.add_argument(
        "--runtime-path", type=Path, help="the runtime's own packages for the cold start (`make runtime-site`)"
    )
    args = parser.parse_args()
    if args.layer_path is not None and not (args.layer_path / "hookline").is_dir():
        parser.error(f"--layer-path {args.layer_path}: no hookline package there (run `sam build` first?)")
    if args.runtime_path is not None and not (args.runtime_path / "boto3").is_dir():
        parser.error(f"--runtime-path {args.runtime_path}: no boto3 there (run `make runtime-site` first?)")
    if min(args.repeats, args.sizing_repeats, args.cold_repeats) < 1 or min(args.memory) < 128:
        parser.error("repeats must be at least 1 and memory sizes at least 128 MB")
    return args


def main() -> None:
    # A warm-up batch can end with no metric to flush: Powertools warns, which says nothing about the benchmark.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if len(sys.argv) == 3 and sys.argv[1] == "--sizing-worker":
        print(json.dumps(sizing_worker(json.loads(sys.argv[2]))))
        return
    args = _arguments()
    started = time.perf_counter()
    print(f"load average at start: {_load_average()}")
    sections = [args.only] if args.only else list(SECTIONS)
    if set(sections) - {"cold-start", "log-bytes"}:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        with (
            moto_process() as moto_endpoint,
            receiver_process(LATENCY_S) as url,
            receiver_process(SLOW_LATENCY_S) as slow_url,
        ):
            deployment = deploy(moto_endpoint, {_ENDPOINT: url, "bench-slow": slow_url})
            handler = Handler(deployment)
            if "transport" in sections:
                print_transport(race(url, args.repeats, bare_clients, handler))
            if "alternatives" in sections:
                print_alternatives(race(url, args.repeats, alternative_clients))
            if "requests" in sections:
                requests_section(handler)
            handler.close()
            if "sizing" in sections:
                print_sizing(sizing_section(deployment, args.sizing_repeats, args.memory))
            print(f"\nrecords not delivered on the first try in this process: {handler.failed}")
    if "cold-start" in sections:
        base, handler_times, imports = cold_start(args.cold_repeats, args.layer_path, args.runtime_path)
        print_cold_start(
            base,
            handler_times,
            imports,
            repeats=args.cold_repeats,
            layer_path=args.layer_path,
            runtime_path=args.runtime_path,
        )
    if "log-bytes" in sections:
        print_log_bytes(logbytes.measure(ROOT, batches=20))
    print(f"\nload average at end: {_load_average()}; benchmark run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
