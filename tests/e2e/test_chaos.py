"""End-to-end chaos suite: 1,000 webhooks through the embedded local stack, exactly as a user runs it.

The stack is the real one (moto in a child process, template.yaml created in it, DeliveryFunction in worker
processes fed by the SQS event source mapping emulator, EMF forwarded), with a compressed retry schedule. The
receivers (tests/support/chaos.py) fail at random from a seeded RNG: 5xx, timeouts (longer than the endpoint's
1 s timeout), connection resets and 429 + Retry-After; one target is down for good behind a working fallback, one
is down for good without one.

The crash: a "steady" receiver holds one chosen webhook's request open and, while it is open, the test SIGKILLs
every busy DeliveryFunction execution environment (``LocalStack.kill_function``), as a Lambda runtime crash or an
out-of-memory kill would. The other requests of those batches were answered already, so the whole batch comes
back after the queue's visibility timeout and its delivered messages are delivered again: the only duplicates
allowed, and each with its original webhook-id and body.

Then: every message is received (signature verified by the standardwebhooks library) or in the DLQ with a reason,
nothing else; the delivery queue is empty; duplicates only from the crashed batches; the dead targets' breakers
opened and their request counts stayed bounded; the fallback served every dead-primary message.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hookline.delivery.targets import origin_of
from hookline.producer import build_message, new_message_id
from hookline.registry import Endpoint, EndpointRegistry
from hookline.signing import generate_secret
from hookline_cli.deadletters import DeadLetterFilter, peek
from hookline_local import LocalStack, MotoOptions, ReportOptions, RunOptions, TemplateOptions
from resilience.breaker import DynamoDBStateStore
from tests.support.chaos import ChaosMix, ChaosReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RETRY_SCHEDULE = "0,1,1,2"
MAX_ATTEMPTS = len(RETRY_SCHEDULE.split(",")) + 1
TOTAL = 1000
# Webhooks per endpoint (sums to TOTAL).
SHARE = {"chaos-a": 300, "chaos-b": 300, "steady": 200, "dead-fallback": 120, "dead-alone": 80}
# Endpoint timeout 2 s: a tighter one makes a CPU-starved 2-core runner (moto, three workers and the receivers on
# the same cores) lose 200 answers to client timeouts, i.e. duplicates that are not the crash's.
ENDPOINT_TIMEOUT_S = 2.0
MIX = ChaosMix(error=0.10, timeout=0.03, reset=0.04, throttle=0.03, retry_after_s=1, timeout_delay_s=2.6)
SETTLE_TIMEOUT_S = 400.0
EXPIRY_SLACK_S = 10


@dataclass
class Chaos:
    """The running scenario: stack, receivers and what was sent."""

    stack: LocalStack
    receivers: dict[str, ChaosReceiver]
    endpoints: dict[str, list[str]]  # endpoint -> its targets' origins (primary first)
    sent: dict[str, str]  # webhook id -> endpoint
    sqs_ids: dict[str, str]  # SQS MessageId -> webhook id
    kills: list[tuple[float, int]]
    started: float


def _plan(trigger: str) -> list[tuple[str, str]]:
    """(webhook id, endpoint) in a seeded shuffle, the crash trigger placed in the middle.

    The dead-alone target's messages go out first: each must wait out its breaker's open windows through every
    attempt before it is dead-lettered, and that chain should overlap with the rest rather than trail it.
    """
    rng = random.Random(20261128)
    alone = [(new_message_id(), "dead-alone") for _ in range(SHARE["dead-alone"])]
    rest = [
        (new_message_id(), name)
        for name, count in SHARE.items()
        if name != "dead-alone"
        for _ in range(count - (name == "steady"))
    ]
    rng.shuffle(rest)
    rest.insert(len(rest) // 2, (trigger, "steady"))
    head = rest[:120] + alone
    rng.shuffle(head)
    return head + rest[120:]


def _register(  # noqa: PLR0913 - test builder: one keyword per registry field used
    stack: LocalStack, name: str, *, secret: str, url: str, fallbacks: tuple[str, ...], timeout_s: float
) -> None:
    secret_id = f"hookline/{name}"
    stack.client("secretsmanager").create_secret(Name=secret_id, SecretString=secret)
    registry = EndpointRegistry(stack.outputs["EndpointsTableName"], client=stack.client("dynamodb"))
    registry.register(Endpoint(name=name, url=url, secret_id=secret_id, fallback_urls=fallbacks, timeout_s=timeout_s))


def _send(stack: LocalStack, plan: list[tuple[str, str]], sqs_ids: dict[str, str]) -> None:
    """Send the plan in batches of 10 (bodies built and validated by hookline.producer)."""
    queue_url = stack.outputs["DeliveryQueueUrl"]
    sqs = stack.client("sqs")
    lock = threading.Lock()

    def batch(start: int) -> None:
        entries = [
            {
                "Id": str(index),
                "MessageBody": build_message(
                    id=webhook_id, event_type="chaos.test", endpoint=endpoint, payload={"n": start + index}
                ),
            }
            for index, (webhook_id, endpoint) in enumerate(plan[start : start + 10])
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not response.get("Failed"), response.get("Failed")
        with lock:
            for item in response["Successful"]:
                sqs_ids[item["MessageId"]] = plan[start + int(item["Id"])][0]

    # Sent in order (a batch at a time, four in flight), so the trigger goes out mid-stream.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="chaos-send") as pool:
        list(pool.map(batch, range(0, len(plan), 10)))


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    """Start the stack and the receivers, register the endpoints, send the webhooks and wait until all settle."""
    started = time.monotonic()
    trigger = new_message_id()
    kills: list[tuple[float, int]] = []
    secrets = {name: generate_secret() for name in SHARE}
    holder: dict[str, LocalStack] = {}

    def crash(_webhook_id: str) -> None:
        # Let the other requests of the batch be answered first, then kill mid-batch.
        time.sleep(0.4)
        kills.append((time.monotonic(), holder["stack"].kill_function("DeliveryFunction")))

    with ExitStack() as cleanup:
        receivers = {
            "chaos-a": ChaosReceiver("chaos-a", secrets["chaos-a"], mix=MIX, seed=1),
            "chaos-b": ChaosReceiver("chaos-b", secrets["chaos-b"], mix=MIX, seed=2),
            "steady": ChaosReceiver(
                "steady", secrets["steady"], crash_ids=frozenset({trigger}), on_trigger=crash, crash_hold_s=3.0
            ),
            "dead-fallback": ChaosReceiver("dead-fallback", secrets["dead-fallback"], always="error"),
            "fallback": ChaosReceiver("fallback", secrets["dead-fallback"]),
            "dead-alone": ChaosReceiver("dead-alone", secrets["dead-alone"], always="reset"),
        }
        for receiver in receivers.values():
            cleanup.enter_context(receiver)
        template = TemplateOptions(
            parameters={
                "RetrySchedule": RETRY_SCHEDULE,
                "MaxReceiveCount": str(MAX_ATTEMPTS + 2),
                "DeliveryMaxConcurrency": "3",
                # Attempts skipped by an open breaker do not count: a dead target's messages end by age instead,
                # once they have failed for the (compressed) schedule plus this slack.
                "RetryExpirySlack": str(EXPIRY_SLACK_S),
                # The suite's timing (1 s endpoint timeouts, 150 s to settle) is set for batches of 10 at 10 in
                # flight: with the template's 100 x 100, three workers put 300 requests at once on six receivers
                # that share one process and two cores with moto, and the 1 s timeouts, not the faults, dominate.
                "DeliveryBatchSize": "10",
                "DeliveryBatchWindow": "0",
                "MaxConcurrency": "10",
            },
            # A crashed batch comes back after the visibility timeout: seconds, not the template's 6 minutes.
            property_overrides={
                "DeliveryQueue": {"VisibilityTimeout": 30},
                "RetryQueue": {"VisibilityTimeout": 30},
                "SlowQueue": {"VisibilityTimeout": 30},
                "DeliveryFunction": {"Timeout": 20},
            },
            # Breakers open for 2 s (then 2, 4, 8, 16 ...) instead of 30 s: the retry schedule is compressed too, and
            # a message skipped by an open breaker waits for it (docs/contracts.md "Outcomes").
            environment={"BREAKER_OPEN_S": "2"},
        )
        stack = LocalStack.start(
            ROOT,
            template=template,
            moto=MotoOptions(stack_name="hookline-chaos"),
            # Health probes would steer the breakers too; this suite isolates delivery's own breakers.
            run=RunOptions(schedule_intervals={"HealthFunction": 3600.0}),
            report=ReportOptions(log_path=tmp_path_factory.mktemp("chaos") / "local.log"),
        )
        cleanup.callback(stack.stop)  # runs before the receivers stop
        holder["stack"] = stack
        timeouts = {"steady": 5.0}
        endpoints: dict[str, list[str]] = {}
        for name in SHARE:
            fallbacks = (receivers["fallback"].url,) if name == "dead-fallback" else ()
            _register(
                stack,
                name,
                secret=secrets[name],
                url=receivers[name].url,
                fallbacks=fallbacks,
                timeout_s=timeouts.get(name, ENDPOINT_TIMEOUT_S),
            )
            endpoints[name] = [origin_of(receivers[name].url), *(origin_of(url) for url in fallbacks)]
        plan = _plan(trigger)
        sent = dict(plan)
        sqs_ids: dict[str, str] = {}
        _send(stack, plan, sqs_ids)
        print(f"\nchaos: stack up and {len(plan)} sent after {time.monotonic() - started:.0f} s")
        settled = stack.wait_idle(timeout_s=SETTLE_TIMEOUT_S)
        assert settled, f"not settled after {SETTLE_TIMEOUT_S} s: {stack.stats()} {_leftovers(stack)}"
        yield Chaos(stack, receivers, endpoints, sent, sqs_ids, kills, started)


def _leftovers(stack: LocalStack) -> dict[str, Any]:
    """What is still on the queues (for a failure message): counts, and a few retry states."""
    sqs = stack.client("sqs")
    found: dict[str, Any] = {}
    for queue in ("DeliveryQueueUrl", "RetryQueueUrl"):
        url = stack.outputs[queue]
        found[queue] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=5, MessageAttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        found[f"{queue} sample"] = [
            (json.loads(m["Body"]).get("endpoint"), m.get("MessageAttributes", {})) for m in messages
        ]
    return found


def _dead_letters(chaos: Chaos) -> list[Any]:
    letters, errors = peek(
        chaos.stack.client("sqs"), chaos.stack.outputs["DeadLetterQueueUrl"], where=DeadLetterFilter(), limit=10 * TOTAL
    )
    assert not errors
    return letters


def _crashed_webhook_ids(chaos: Chaos) -> set[str]:
    # A retry is a new SQS message (on the retry queue) with the webhook-id in its body: read the ids from the bodies.
    failed = [o for m in chaos.stack.mappings for o in m.stats.outcomes if o.batch_failed]
    return {json.loads(body)["id"] for outcome in failed for body in outcome.bodies}


def test_chaos_every_message_delivered_once_or_dead_lettered(chaos: Chaos) -> None:
    """Nothing lost, nothing stuck, duplicates only from the crash, dead targets bounded, fallback served."""
    received = [record for receiver in chaos.receivers.values() for record in receiver.received]
    letters = _dead_letters(chaos)
    deliveries = Counter(record.webhook_id for record in received if record.delivered)
    delivered = set(deliveries)
    dead = Counter(letter.webhook_id for letter in letters)
    mappings = chaos.stack.stats()["mappings"].values()
    stats = {key: sum(mapping[key] for mapping in mappings) for key in ("batches", "crashes", "batch_failures")}
    crashed = _crashed_webhook_ids(chaos)
    duplicates = {webhook_id for webhook_id, count in deliveries.items() if count > 1}
    store = DynamoDBStateStore(chaos.stack.outputs["BreakerTableName"], client=chaos.stack.client("dynamodb"))
    dead_fallback_requests = len(chaos.receivers["dead-fallback"].received)
    dead_alone_requests = len(chaos.receivers["dead-alone"].received)
    actions = Counter(record.action for record in received)
    print(
        f"\nchaos: {len(chaos.sent)} sent in {time.monotonic() - chaos.started:.0f} s; "
        f"{len(delivered)} delivered ({sum(deliveries.values())} deliveries), {len(dead)} dead-lettered "
        f"{dict(Counter(letter.reason for letter in letters))}; requests {len(received)} {dict(actions)}; "
        f"batches {stats['batches']} (crashed {stats['crashes']}, kills {chaos.kills}); "
        f"duplicates {len(duplicates)} (crashed batches held {len(crashed)} messages); "
        f"dead target requests: with fallback {dead_fallback_requests} of {SHARE['dead-fallback']} messages, "
        f"alone {dead_alone_requests} of {SHARE['dead-alone']} messages x {MAX_ATTEMPTS} attempts"
    )

    # Every request carried a valid signature and a webhook-id we sent.
    assert all(record.verified for record in received)
    assert {record.webhook_id for record in received} <= chaos.sent.keys()

    # Nothing lost, nothing stuck: delivered or dead-lettered (with a reason), and the delivery queue is empty.
    assert delivered | dead.keys() == chaos.sent.keys()
    assert all(letter.reason for letter in letters), [letter.view() for letter in letters if not letter.reason]
    assert {letter.reason for letter in letters} <= {"retries_exhausted", "expired"}
    # A crash after the dead letter was sent but before the batch was deleted dead-letters again (at least once, same
    # webhook-id, like a delivery duplicate); anything else dead-lettered twice is a bug.
    dead_twice = {webhook_id for webhook_id, count in dead.items() if count > 1}
    assert dead_twice <= crashed, f"dead-lettered twice outside the crashed batches: {sorted(dead_twice - crashed)}"
    for queue in ("DeliveryQueueUrl", "RetryQueueUrl"):
        attributes = chaos.stack.client("sqs").get_queue_attributes(
            QueueUrl=chaos.stack.outputs[queue], AttributeNames=["All"]
        )["Attributes"]
        for key in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"):
            assert attributes[key] == "0", (queue, attributes)

    # The crash happened mid-batch and is the only source of duplicates, each with its original id and body.
    assert stats["crashes"] >= 1 and sum(count for _, count in chaos.kills) >= 1
    assert stats["batch_failures"] == stats["crashes"], "a batch failed for another reason than the crash"
    kill_at = chaos.kills[0][0] if chaos.kills else 0.0
    crashed_seen = sorted((round(r.at - kill_at, 2), r.receiver, r.action) for r in received if r.webhook_id in crashed)
    assert duplicates, f"the crashed batch had delivered messages; they must have come again: {crashed_seen}"
    outcomes = [o for m in chaos.stack.mappings for o in m.stats.outcomes]
    for webhook_id in sorted(duplicates - crashed):  # diagnostics for a failure below
        batches = [o.request_id for o in outcomes if any(json.loads(body)["id"] == webhook_id for body in o.bodies)]
        seen = [(r.receiver, r.action, round(r.at - chaos.started, 1)) for r in received if r.webhook_id == webhook_id]
        print("duplicate outside the crashed batches:", webhook_id, seen, batches)
    assert duplicates <= crashed
    assert delivered & dead.keys() <= crashed
    bodies: dict[str, set[bytes]] = {}
    for record in received:
        if record.webhook_id in duplicates and record.delivered:
            bodies.setdefault(record.webhook_id, set()).add(record.body)
    assert all(len(variants) == 1 for variants in bodies.values())

    # The dead targets' breakers opened, and kept their request counts far below one request per attempt.
    for name in ("dead-fallback", "dead-alone"):
        origin = chaos.endpoints[name][0]
        assert any(str(item.to_state) == "open" for item in store.history(origin, limit=50)), name
    assert dead_fallback_requests <= SHARE["dead-fallback"] // 2
    assert dead_alone_requests <= SHARE["dead-alone"] * MAX_ATTEMPTS // 4

    # The fallback served every message of the dead primary; the endpoint without one dead-lettered every message.
    dead_primary = {webhook_id for webhook_id, name in chaos.sent.items() if name == "dead-fallback"}
    assert dead_primary <= chaos.receivers["fallback"].delivered_counts().keys()
    alone = {webhook_id for webhook_id, name in chaos.sent.items() if name == "dead-alone"}
    assert alone <= dead.keys()
