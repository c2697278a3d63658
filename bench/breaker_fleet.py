"""Fleet benchmark: hookline's breaker against Powertools' circuit breaker, 20 environments sharing one DynamoDB.

Run: .venv/bin/python bench/breaker_fleet.py [--envs 20] [--json out.json]

A discrete-event simulation on a virtual clock drives both breakers over the same scripted targets, against one
moto server on loopback that answers one request at a time (so the store is linearizable). Every environment has its
own breaker objects, cache and client. Environments cold-start at random moments of the first 10 s (same seeds for
both), then each runs one invocation per second that sends CALLS messages to the target one after another, LATENCY
apart; a call's outcome is known when it returns (Powertools' decorator is synchronous, so both run the same way).
hookline prefetches at the start of an invocation and flushes at its end, as the delivery function does.

Powertools reads the wall clock directly (datetime.now) and keeps its counters in module globals, so this script
swaps in a virtual clock and per-environment counter dicts around its calls: a benchmark-only adaptation of the
baseline (its logic is untouched), without which 20 environments in one process would share one failure counter.
DynamoDB requests are counted with a botocore before-call hook on every client, the same way for both.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the template's table definition and the serial moto server

from aws_lambda_powertools.utilities.circuit_breaker import (  # noqa: E402
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitTransition,
    circuit_breaker,
)
from aws_lambda_powertools.utilities.circuit_breaker import base as pt_base  # noqa: E402
from aws_lambda_powertools.utilities.circuit_breaker.persistence import (  # noqa: E402
    CircuitBreakerDynamoDBPersistence,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence import base as pt_persistence_base  # noqa: E402
from aws_lambda_powertools.utilities.circuit_breaker.persistence import dynamodb as pt_dynamodb  # noqa: E402

from resilience import CircuitOpenError  # noqa: E402
from resilience.breaker import (  # noqa: E402
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    DynamoDBStateStore,
    Transition,
)
from tests.support.breaker import serial_moto_server  # noqa: E402
from tests.support.template import create_table  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

PERIOD_S = 1.0  # each environment runs one invocation per second
CALLS = 5  # messages per invocation, all to the scenario's target
LATENCY_S = 0.2  # how long one delivery takes: calls of an invocation are this far apart
COLD_STARTS_S = 10.0  # environments start at random moments of this span
T0 = 20.0  # the target goes down (or starts failing) here
T1 = 60.0  # scenario (d): the target recovers here
DURATION_S = 120.0
WARMUP_S = 15.0  # steady-state figures leave out the cold start
SEED = 7

OURS_CONFIG = BreakerConfig(
    window_s=60,
    bucket_s=10,
    min_calls=20,
    failure_rate=0.5,
    consecutive_failures=5,
    open_s=30,
    open_backoff=2.0,
    max_open_s=300,
    half_open_probes=2,
    probe_lease_s=30,
    success_threshold=2,
)
OURS_CACHE_TTL_S = 10.0
POWERTOOLS_CONFIG = CircuitBreakerConfig(
    failure_threshold=5, recovery_timeout=30, success_threshold=3, local_cache_max_age=5
)


class VirtualClock:
    """The simulation's wall clock."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> float:
        return self.now

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class _Stamp:
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def timestamp(self) -> float:
        return self._seconds


def install_powertools_clock(clock: VirtualClock) -> None:
    """Powertools calls datetime.now() itself; point its three modules at the virtual clock."""
    shim = SimpleNamespace(datetime=SimpleNamespace(now=lambda tz=None: _Stamp(clock.now)))
    for module in (pt_base, pt_persistence_base, pt_dynamodb):
        module.dt = shim  # type: ignore[attr-defined]


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    """A scripted target: whether a call at virtual time t succeeds."""

    kind: str
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def down(self, t: float) -> bool:
        if self.kind == "b-hard-down":
            return t >= T0
        if self.kind == "d-down-then-recovered":
            return T0 <= t < T1
        return False

    def succeeds(self, t: float) -> bool:
        if self.kind == "c-60pct-failing" and t >= T0:
            return self.rng.random() >= 0.6
        return not self.down(t)


@dataclass
class Run:
    """Everything observed in one scenario for one implementation."""

    impl: str
    scenario: str
    requests: list[float] = field(default_factory=list)  # virtual time of each DynamoDB request
    attempts: list[float] = field(default_factory=list)  # every message processed (sent or refused)
    sent: list[tuple[float, int, bool, bool]] = field(default_factory=list)  # (t, env, ok, probe)
    transitions: list[tuple[float, str, str]] = field(default_factory=list)


def powertools_store(endpoint: str, table: str, partition: str) -> CircuitBreakerDynamoDBPersistence:
    """Powertools' DynamoDB persistence on the template's BreakerTable (pk + sk, TTL attribute expires_at)."""
    return CircuitBreakerDynamoDBPersistence(
        table_name=table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=partition,
        expiry_attr="expires_at",
        boto3_client=make_client(endpoint),
    )


def count_requests(dynamodb: Any, run: Run, clock: VirtualClock) -> Any:
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda **_: run.requests.append(clock.elapsed))
    return dynamodb


def counted(
    store: CircuitBreakerDynamoDBPersistence, run: Run, clock: VirtualClock
) -> CircuitBreakerDynamoDBPersistence:
    count_requests(store.client, run, clock)
    return store


def make_client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )


# ---------------------------------------------------------------- the two fleets


@dataclass(frozen=True)
class Scene:
    """Where one fleet runs and what it records: the moto server and table, the run, the virtual clock, the breaker."""

    endpoint: str
    table: str
    run: Run
    clock: VirtualClock
    name: str


class OursFleet:
    """hookline: one BreakerRegistry + DynamoDBStateStore per environment."""

    impl = "hookline"

    def __init__(self, scene: Scene, *, envs: int, config: BreakerConfig = OURS_CONFIG) -> None:
        endpoint, table, run, clock = scene.endpoint, scene.table, scene.run, scene.clock
        self.run, self.clock, self.name = run, clock, scene.name

        def hook(transition: Transition) -> None:
            run.transitions.append((clock.elapsed, transition.from_state.value, transition.to_state.value))

        self.registries = [
            BreakerRegistry(
                DynamoDBStateStore(
                    table,
                    client=count_requests(make_client(endpoint), run, clock),
                    clock=clock,
                    cache_ttl_s=OURS_CACHE_TTL_S,
                ),
                config=config,
                on_transition=hook,
            )
            for _ in range(envs)
        ]

    def window_calls(self) -> int:
        """Calls the store counts in the window at the end: proof that buffered successes reach it."""
        store = self.registries[0].store
        record = store.load([self.name], consistent=True).get(self.name)
        return record.window(self.clock.now, OURS_CONFIG.window_s).calls if record is not None else 0

    def call(self, env: int, index: int, target: Target) -> None:
        registry = self.registries[env]
        if index == 0:
            registry.prefetch([self.name])
        breaker = registry.get(self.name)
        t = self.clock.elapsed
        self.run.attempts.append(t)
        try:
            permit = breaker.allow()
        except CircuitOpenError:
            permit = None
        if permit is not None:
            ok = target.succeeds(t)
            self.run.sent.append((t, env, ok, permit.probe_id is not None))
            if ok:
                permit.record_success(LATENCY_S)
            else:
                permit.record_failure(LATENCY_S, error="down")
        if index == CALLS - 1:
            registry.flush()


class PowertoolsFleet:
    """Powertools: one CircuitBreakerDynamoDBPersistence (its cache) and one set of module counters per environment."""

    impl = "powertools"

    def __init__(self, scene: Scene, *, envs: int) -> None:
        endpoint, table, run, clock = scene.endpoint, scene.table, scene.run, scene.clock
        self.run, self.clock, self.name = run, clock, scene.name
        self.envs = [
            SimpleNamespace(
                persistence=counted(powertools_store(endpoint, table, "powertools#bench"), run, clock),
                failures={},
                successes={},
                observed={},
                owner=threading.local(),
            )
            for _ in range(envs)
        ]
        self.probing = False

        def hook(transition: CircuitTransition) -> None:
            to_state = {"OPEN": "open", "HALF_OPEN": "half_open", "CLOSED": "closed"}[str(transition.to_state)]
            from_state = {"OPEN": "open", "HALF_OPEN": "half_open", "CLOSED": "closed"}[str(transition.from_state)]
            run.transitions.append((clock.elapsed, from_state, to_state))

        self.hook = hook
        original = pt_base.CircuitBreakerHandler._call_probe
        fleet = self

        def call_probe(handler: Any) -> Any:
            fleet.probing = True
            try:
                return original(handler)
            finally:
                fleet.probing = False

        pt_base.CircuitBreakerHandler._call_probe = call_probe  # type: ignore[method-assign]

    def call(self, env: int, index: int, target: Target) -> None:
        del index
        state = self.envs[env]
        # This environment's own module-level counters and probe owner (see the module docstring).
        pt_base._LOCAL_FAILURES = state.failures
        pt_base._LOCAL_SUCCESSES = state.successes
        pt_base._LAST_OBSERVED_STATE = state.observed
        pt_base._PROBE_OWNER = state.owner
        t = self.clock.elapsed

        @circuit_breaker(
            name=self.name, persistence_store=state.persistence, config=POWERTOOLS_CONFIG, on_transition=self.hook
        )
        def deliver() -> None:
            ok = target.succeeds(t)
            self.run.sent.append((t, env, ok, self.probing))
            if not ok:
                raise ConnectionError("down")

        self.run.attempts.append(t)
        with contextlib.suppress(CircuitBreakerOpenError, ConnectionError):
            deliver()


# ---------------------------------------------------------------- simulation and figures


def simulate(fleet: OursFleet | PowertoolsFleet, target: Target, envs: int, clock: VirtualClock) -> None:
    """Every environment: a cold start at a random moment, then one invocation per period, calls LATENCY apart."""
    starts = random.Random(SEED).sample(range(int(COLD_STARTS_S * 100)), envs)
    queue = [
        (start / 100 + period * PERIOD_S + index * LATENCY_S, env, index)
        for env, start in enumerate(starts)
        for period in range(int(DURATION_S / PERIOD_S))
        for index in range(CALLS)
    ]
    queue.sort()
    for at, env, index in queue:
        if at >= DURATION_S:
            break
        clock.now = clock.start + at
        fleet.call(env, index, target)


def fleet_stop(run: Run, start: float) -> float | None:
    """Seconds after ``start`` until a whole period passes with no call reaching the target (None: never)."""
    times = sorted(t for t, _, _, probe in run.sent if t >= start and not probe)
    edge = start
    for t in times:
        if t - edge >= PERIOD_S:
            return edge - start
        edge = t
    return edge - start if DURATION_S - edge >= PERIOD_S else None


def figures(run: Run, target: Target) -> dict[str, Any]:
    steady_requests = sum(1 for t in run.requests if WARMUP_S <= t < T0)
    steady_attempts = sum(1 for t in run.attempts if WARMUP_S <= t < T0)
    result: dict[str, Any] = {
        "requests": len(run.requests),
        "attempts": len(run.attempts),
        "requests_per_call": round(len(run.requests) / max(1, len(run.attempts)), 4),
        "steady_requests_per_call": round(steady_requests / max(1, steady_attempts), 4),
    }
    if target.kind == "a-healthy":
        steady_requests = sum(1 for t in run.requests if t >= WARMUP_S)
        steady_attempts = sum(1 for t in run.attempts if t >= WARMUP_S)
        result["steady_requests_per_call"] = round(steady_requests / max(1, steady_attempts), 4)
        result["refused"] = len(run.attempts) - len(run.sent)
        return result
    opens = [t for t, _, to_state in run.transitions if to_state == "open" and t >= T0]
    result["tripped_after_s"] = round(opens[0] - T0, 2) if opens else None
    stop = fleet_stop(run, T0)
    result["fleet_stopped_after_s"] = round(stop, 2) if stop is not None else None
    if stop is not None:
        result["calls_before_fleet_stopped"] = sum(1 for t, _, _, _ in run.sent if T0 <= t <= T0 + stop)
    result["failed_calls_total"] = sum(1 for t, _, ok, _ in run.sent if t >= T0 and not ok)
    if target.kind == "d-down-then-recovered":
        result["probe_calls"] = sum(1 for _, _, _, probe in run.sent if probe)
        closes = [t for t, from_state, to_state in run.transitions if to_state == "closed" and t >= T1]
        result["closed_after_recovery_s"] = round(closes[0] - T1, 2) if closes else None
        resumed = []
        for env in {env for _, env, _, _ in run.sent}:
            first = [t for t, e, ok, probe in run.sent if e == env and ok and not probe and t >= T1]
            resumed.append(first[0] if first else None)
        result["fleet_resumed_after_recovery_s"] = (
            round(max(resumed) - T1, 2) if resumed and None not in resumed else None  # type: ignore[type-var]
        )
    return result


def race(contenders: int, attempt: Callable[[int], bool]) -> int:
    """Run ``attempt`` in ``contenders`` threads released together; how many were admitted."""
    barrier = threading.Barrier(contenders)
    admitted: list[int] = []

    def run(index: int) -> None:
        barrier.wait()
        if attempt(index):
            admitted.append(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(admitted)


def contention_ours(endpoint: str, table: str, contenders: int) -> int:
    """hookline: trip, wait out the open period, then ``contenders`` environments ask for a probe at once."""
    clock = VirtualClock(1_800_000_000.0)
    name = f"https://contention-{contenders}.example"
    stores = [DynamoDBStateStore(table, client=make_client(endpoint), clock=clock) for _ in range(contenders)]
    breakers = [BreakerRegistry(store, config=OURS_CONFIG).get(name) for store in stores]
    for breaker in breakers[:5]:
        breaker.allow().record_failure()
        breaker.flush()
    assert breakers[0].snapshot(refresh=True).state is BreakerState.OPEN
    clock.now += OURS_CONFIG.open_s

    def attempt(index: int) -> bool:
        try:
            return breakers[index].allow().probe_id is not None
        except CircuitOpenError:
            return False

    return race(contenders, attempt)


def contention_powertools(endpoint: str, table: str, contenders: int) -> int:
    """Powertools: the same race; a contender is admitted when its call reaches the target."""
    clock = VirtualClock(1_800_000_000.0)
    install_powertools_clock(clock)
    name = f"https://contention-{contenders}.example"
    stores = [powertools_store(endpoint, table, "powertools#contention") for _ in range(contenders)]
    pt_base._LOCAL_FAILURES, pt_base._LOCAL_SUCCESSES, pt_base._LAST_OBSERVED_STATE = {}, {}, {}
    pt_base._PROBE_OWNER = threading.local()
    reached: list[int] = []

    def call(index: int, fail: bool) -> bool:
        @circuit_breaker(name=name, persistence_store=stores[index], config=POWERTOOLS_CONFIG)
        def deliver() -> None:
            reached.append(index)
            if fail:
                raise ConnectionError("down")
            time.sleep(0.05)  # the probe is in flight while the others arrive

        try:
            deliver()
        except (CircuitBreakerOpenError, ConnectionError):
            return False
        return True

    for _ in range(POWERTOOLS_CONFIG.failure_threshold):
        call(0, fail=True)
    clock.now += POWERTOOLS_CONFIG.recovery_timeout + 1
    reached.clear()
    race(contenders, lambda index: call(index, fail=False))
    return len(reached)


SCENARIOS = ("a-healthy", "b-hard-down", "c-60pct-failing", "d-down-then-recovered")
ROWS = (
    ("DynamoDB requests per call (whole run)", "requests_per_call"),
    ("DynamoDB requests per call (steady state, healthy part)", "steady_requests_per_call"),
    ("calls in the store's 60 s window at the end (fleet-wide)", "store_window_calls"),
    ("tripped after t0 (s)", "tripped_after_s"),
    ("calls to the target before the fleet stopped", "calls_before_fleet_stopped"),
    ("fleet stopped after t0 (s)", "fleet_stopped_after_s"),
    ("failed calls in the whole run", "failed_calls_total"),
    ("probe calls", "probe_calls"),
    ("closed after recovery (s)", "closed_after_recovery_s"),
    ("whole fleet sending again after recovery (s)", "fleet_resumed_after_recovery_s"),
)


def table_text(scenario: str, ours: dict[str, Any], baseline: dict[str, Any]) -> str:
    lines = [f"\n### {scenario}", "", "| figure | hookline | Powertools |", "| --- | --- | --- |"]
    for label, key in ROWS:
        if key in ours or key in baseline:
            lines.append(f"| {label} | {ours.get(key, '-')} | {baseline.get(key, '-')} |")
    return "\n".join(lines)


def compare_fleets(endpoint: str, table: str, envs: int) -> dict[str, dict[str, Any]]:
    """Every scenario run by both fleets on fresh clocks; prints each scenario's table."""
    results: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        pair = {}
        for fleet_class in (OursFleet, PowertoolsFleet):
            clock = VirtualClock(1_800_000_000.0)
            install_powertools_clock(clock)
            run = Run(fleet_class.impl, scenario)
            target = Target(scenario)
            fleet = fleet_class(Scene(endpoint, table, run, clock, f"https://{scenario}.example"), envs=envs)
            simulate(fleet, target, envs, clock)
            pair[fleet_class.impl] = figures(run, target)
            if isinstance(fleet, OursFleet) and scenario == "a-healthy":
                pair[fleet_class.impl]["store_window_calls"] = fleet.window_calls()
        results[scenario] = pair
        print(table_text(scenario, pair["hookline"], pair["powertools"]))
    return results


def rate_rule_only(endpoint: str, table: str, envs: int) -> dict[str, dict[str, Any]]:
    """hookline's rate rule alone (no consecutive-failure rule): how long the window takes to fill with failures."""
    results: dict[str, dict[str, Any]] = {}
    rate_only = dataclasses.replace(OURS_CONFIG, consecutive_failures=0)
    for scenario in ("c-60pct-failing",):
        clock = VirtualClock(1_800_000_000.0)
        run = Run("hookline", scenario)
        target = Target(scenario)
        scene = Scene(endpoint, table, run, clock, f"https://rate-{scenario}.example")
        simulate(OursFleet(scene, envs=envs, config=rate_only), target, envs, clock)
        results[f"{scenario} (hookline, rate rule only)"] = rate = figures(run, target)
        print(table_text(f"{scenario}, hookline with consecutive_failures=0 (rate rule only)", rate, {}))
    return results


def missed_targets(results: dict[str, Any], contenders: int) -> list[str]:
    """The targets hookline missed (empty when every one holds)."""
    problems: list[str] = []
    ours = {scenario: results[scenario]["hookline"] for scenario in SCENARIOS}
    base = {scenario: results[scenario]["powertools"] for scenario in SCENARIOS}
    healthy = ours["a-healthy"]["steady_requests_per_call"]
    if healthy > 0.05:
        problems.append(f"healthy path: {healthy} DynamoDB requests per call (target <= 0.05)")
    if healthy > base["a-healthy"]["steady_requests_per_call"]:
        problems.append("healthy path costs more DynamoDB requests than Powertools")
    limit = 2 * OURS_CONFIG.min_calls
    down_calls = ours["b-hard-down"].get("calls_before_fleet_stopped")
    if down_calls is None or down_calls > limit:
        problems.append(f"hard down: {down_calls} calls before the fleet stopped (target <= {limit})")
    if ours["c-60pct-failing"]["tripped_after_s"] is None:
        problems.append("the 60%-failing target never tripped")
    granted = results["half_open_contention"]["hookline"]
    if granted > OURS_CONFIG.half_open_probes:
        problems.append(f"{granted} probes granted to {contenders} contenders")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--contenders", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    with serial_moto_server() as endpoint:
        table = create_table(make_client(endpoint), "BreakerTable")
        results: dict[str, Any] = compare_fleets(endpoint, table, args.envs)
        results.update(rate_rule_only(endpoint, table, args.envs))
        results["half_open_contention"] = {
            "contenders": args.contenders,
            "hookline": contention_ours(endpoint, table, args.contenders),
            "hookline_limit": OURS_CONFIG.half_open_probes,
            "powertools": contention_powertools(endpoint, table, args.contenders),
            "powertools_limit": 1,
        }
    problems = missed_targets(results, args.contenders)
    contention = results["half_open_contention"]
    print(
        f"\nhalf-open, {args.contenders} contenders at once (threads): hookline admitted {contention['hookline']} "
        f"probes (limit {OURS_CONFIG.half_open_probes}), Powertools {contention['powertools']} (limit 1)"
    )
    print(
        f"\nworkload: {args.envs} environments x 1 invocation/s x {CALLS} calls; t0={T0:g}s, t1={T1:g}s, "
        f"run {DURATION_S:g}s virtual; hookline min_calls={OURS_CONFIG.min_calls}, "
        f"consecutive={OURS_CONFIG.consecutive_failures}, cache {OURS_CACHE_TTL_S:g}s; Powertools "
        f"failure_threshold={POWERTOOLS_CONFIG.failure_threshold}, cache {POWERTOOLS_CONFIG.local_cache_max_age}s"
    )
    print(f"wall time {time.perf_counter() - started:.1f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    for problem in problems:
        print(f"TARGET MISSED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
