"""The demo scenario: start the receivers, register them, send a few hundred webhooks and watch them settle.

Endpoints (one receiver each, so one origin and one circuit breaker each):

* ``acme-orders``     healthy: answers 200.
* ``globex-billing``  flaky: 5xx or 429 + Retry-After at random (seeded), else 200; retried on the schedule.
* ``initech-crm``     down for good (a closed port: connection refused), with a fallback URL to a healthy
                      receiver (``initech-backup``); its breaker opens and the fallback serves every message.
* ``umbrella-legacy`` answers 410 Gone: the endpoint is disabled and its messages are dead-lettered.

Each endpoint gets a generated ``whsec_`` secret stored in Secrets Manager under ``hookline/<name>`` and is written to
the registry through the layer's EndpointRegistry; every receiver verifies every signature with that secret.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text

from hookline.producer import send_webhook
from hookline.registry import Endpoint, HealthCheck
from hookline.signing import generate_secret
from hookline_cli.commands.endpoints import secret_id_for
from hookline_cli.demo.receivers import Flaky, Receiver, always, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import RenderableType

    from hookline.registry import EndpointRegistry
    from hookline_cli.demo.receivers import RequestRecord

__all__ = [
    "DEFAULT_MIX",
    "DemoEndpoint",
    "DemoFleet",
    "Progress",
    "ScenarioConfig",
    "StackAccess",
    "render_progress",
    "send_all",
    "snapshot_progress",
    "wait_until_settled",
]

# Share of the webhooks each endpoint gets.
DEFAULT_MIX: dict[str, float] = {
    "acme-orders": 0.35,
    "globex-billing": 0.35,
    "initech-crm": 0.2,
    "umbrella-legacy": 0.1,
}
_EVENT_TYPES = ("invoice.paid", "invoice.created", "customer.updated", "order.shipped")


class StackAccess(Protocol):
    """What the scenario needs from a stack: boto3 clients, resource names and the registry (the CLI's Resources)."""

    def client(self, service: str) -> Any:
        """A boto3 client bound to the stack."""
        ...

    def require(self, name: str) -> str:
        """A resource name (``endpoints_table``, ``delivery_queue_url`` ...)."""
        ...

    def registry(self) -> EndpointRegistry:
        """The endpoint registry."""
        ...

    def source_queue_urls(self) -> list[str]:
        """Every queue that feeds a function (the delivery queue, and any other lane the template adds)."""
        ...


@dataclass(frozen=True)
class ScenarioConfig:
    """How many webhooks, how they are spread, how long to wait, and the seed of every random choice."""

    messages: int = 300
    seed: int = 7
    timeout_s: float = 75.0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    flaky_error_rate: float = 0.12
    flaky_rate_limit_per_s: int = 20
    """The flaky receiver answers 429 + Retry-After beyond this many requests a second."""
    send_threads: int = 8


@dataclass(frozen=True)
class DemoEndpoint:
    """One registered endpoint and the receivers behind it."""

    name: str
    kind: str
    url: str
    fallback_urls: tuple[str, ...]
    health_url: str
    receiver: Receiver | None
    """None for a target that is down (nothing listens)."""


@dataclass
class DemoFleet:
    """The demo's receivers and endpoints; a context manager that stops every receiver on exit."""

    seed: int = 7
    flaky_error_rate: float = 0.12
    flaky_rate_limit_per_s: int = 20
    """The flaky receiver answers 429 + Retry-After beyond this many requests a second."""
    secret_factory: Callable[[], str] = generate_secret
    endpoints: dict[str, DemoEndpoint] = field(default_factory=dict, init=False)
    secrets: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    fallback_receivers: tuple[str, ...] = field(default=(), init=False)
    _stack: ExitStack = field(default_factory=ExitStack, init=False, repr=False)

    def __enter__(self) -> DemoFleet:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _receiver(self, name: str, behaviour: Any, *, secret: str, health_status: int = 200) -> Receiver:
        return self._stack.enter_context(Receiver(name, behaviour, secret=secret, health_status=health_status))

    def _start(self) -> None:
        for name in DEFAULT_MIX:
            self.secrets[name] = self.secret_factory()
        healthy = self._receiver("acme-orders", always(200), secret=self.secrets["acme-orders"])
        flaky = self._receiver(
            "globex-billing",
            Flaky(
                seed=self.seed,
                error_rate=self.flaky_error_rate,
                throttle_rate=0.0,
                rate_limit_per_s=self.flaky_rate_limit_per_s,
            ),
            secret=self.secrets["globex-billing"],
        )
        # The fallback signs with the endpoint's secret: it is the same subscription, served elsewhere.
        backup = self._receiver("initech-backup", always(200), secret=self.secrets["initech-crm"])
        gone = self._receiver("umbrella-legacy", always(410), secret=self.secrets["umbrella-legacy"], health_status=410)
        down_origin = f"http://127.0.0.1:{closed_port()}"
        self.fallback_receivers = (backup.name,)
        for endpoint in (
            DemoEndpoint("acme-orders", "healthy", healthy.url, (), healthy.health_url, healthy),
            DemoEndpoint("globex-billing", "flaky", flaky.url, (), flaky.health_url, flaky),
            DemoEndpoint(
                "initech-crm", "down + fallback", down_origin + "/hooks", (backup.url,), down_origin + "/health", None
            ),
            DemoEndpoint("umbrella-legacy", "gone (410)", gone.url, (), gone.health_url, gone),
        ):
            self.endpoints[endpoint.name] = endpoint
        self._backup = backup

    @property
    def receivers(self) -> list[Receiver]:
        """Every running receiver (the fallback included)."""
        found = [endpoint.receiver for endpoint in self.endpoints.values() if endpoint.receiver is not None]
        return [*found, self._backup]

    def records(self) -> list[RequestRecord]:
        """Every request every receiver saw."""
        return [record for receiver in self.receivers for record in receiver.records]

    def delivered_ids(self) -> set[str]:
        """Webhook ids some receiver accepted (signature verified, 2xx)."""
        return set().union(*(receiver.delivered_ids() for receiver in self.receivers))

    def failed_ids(self) -> set[str]:
        """Webhook ids some receiver answered with a failure."""
        return set().union(*(receiver.failed_ids() for receiver in self.receivers))

    def origin_labels(self) -> dict[str, str]:
        """Breaker name (origin) -> a readable label."""
        labels: dict[str, str] = {}
        for endpoint in self.endpoints.values():
            origin = endpoint.url.rsplit("/", 1)[0]
            labels[origin] = f"{endpoint.name} ({endpoint.kind})"
        labels[self._backup.origin] = "initech-backup (fallback)"
        return labels

    def register(self, stack: StackAccess) -> None:
        """Store each secret in Secrets Manager and each endpoint in the registry (replacing earlier demo runs)."""
        secretsmanager = stack.client("secretsmanager")
        registry = stack.registry()
        for endpoint in self.endpoints.values():
            secret_id = secret_id_for(endpoint.name)
            try:
                secretsmanager.create_secret(Name=secret_id, SecretString=self.secrets[endpoint.name])
            except secretsmanager.exceptions.ResourceExistsException:
                secretsmanager.put_secret_value(SecretId=secret_id, SecretString=self.secrets[endpoint.name])
            registry.register(
                Endpoint(
                    name=endpoint.name,
                    url=endpoint.url,
                    secret_id=secret_id,
                    fallback_urls=endpoint.fallback_urls,
                    timeout_s=5.0,
                    health=HealthCheck(url=endpoint.health_url, failure_threshold=2, success_threshold=1),
                ),
                replace_existing=True,
            )


# --- sending ----------------------------------------------------------------------------------------------------
def _plan(config: ScenarioConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """(endpoint, event type, payload) of every webhook, in a seeded order."""
    rng = random.Random(config.seed)
    names = list(config.mix)
    weights = [config.mix[name] for name in names]
    plan = []
    for number in range(1, config.messages + 1):
        endpoint = rng.choices(names, weights)[0]
        event_type = rng.choice(_EVENT_TYPES)
        payload = {"demo": True, "number": number, "amount_cents": rng.randint(100, 99_999), "currency": "EUR"}
        plan.append((endpoint, event_type, payload))
    return plan


def send_all(
    stack: StackAccess,
    config: ScenarioConfig,
    *,
    on_sent: Callable[[str, str], None] | None = None,
) -> list[tuple[str, str]]:
    """Send every webhook of the plan through ``hookline.producer.send_webhook``; returns (webhook id, endpoint)."""
    queue_url = stack.require("delivery_queue_url")
    sqs = stack.client("sqs")

    def one(item: tuple[str, str, dict[str, Any]]) -> tuple[str, str]:
        endpoint, event_type, payload = item
        webhook_id = send_webhook(queue_url, event_type=event_type, payload=payload, endpoint=endpoint, sqs_client=sqs)
        if on_sent is not None:
            on_sent(webhook_id, endpoint)
        return webhook_id, endpoint

    with ThreadPoolExecutor(max_workers=max(1, config.send_threads), thread_name_prefix="demo-send") as pool:
        return list(pool.map(one, _plan(config)))


# --- watching ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Where the webhooks are right now."""

    sent: int
    total: int
    delivered: int
    retrying: int
    dead_lettered: int
    queued: int
    elapsed_s: float

    @property
    def settled(self) -> bool:
        """Every webhook sent and delivered or dead-lettered, and nothing left on the delivery queue."""
        return self.sent >= self.total and self.delivered + self.dead_lettered >= self.sent and self.queued == 0


def _queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def snapshot_progress(
    stack: StackAccess, fleet: DemoFleet, sent_ids: Sequence[str], *, total: int, elapsed_s: float
) -> Progress:
    """Count delivered ids (receivers), dead letters and what is still on the queues that feed functions."""
    sqs = stack.client("sqs")
    sent = set(sent_ids)
    delivered = fleet.delivered_ids() & sent
    retrying = (fleet.failed_ids() & sent) - delivered
    dead = _queue_depth(sqs, stack.require("dead_letter_queue_url"))
    queued = sum(_queue_depth(sqs, url) for url in stack.source_queue_urls())
    return Progress(
        sent=len(sent),
        total=total,
        delivered=len(delivered),
        retrying=max(0, min(len(retrying), len(sent) - len(delivered) - dead)),
        dead_lettered=dead,
        queued=queued,
        elapsed_s=elapsed_s,
    )


def wait_until_settled(  # noqa: PLR0913 - poll loop: knobs and injected clock and sleep, as keywords
    poll: Callable[[], Progress],
    *,
    timeout_s: float,
    on_progress: Callable[[Progress], None] | None = None,
    interval_s: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Progress, bool]:
    """Poll until settled twice in a row (nothing between receive and settle) or ``timeout_s``; (last, settled)."""
    deadline = clock() + timeout_s
    quiet = 0
    progress = poll()
    while True:
        if on_progress is not None:
            on_progress(progress)
        quiet = quiet + 1 if progress.settled else 0
        if quiet >= 2:
            return progress, True
        if clock() >= deadline:
            return progress, False
        sleep(interval_s)
        progress = poll()


def render_progress(progress: Progress) -> RenderableType:
    """The live line: sent / delivered / retrying / dead-lettered."""
    line = Text()
    line.append(f"sent {progress.sent}/{progress.total}", style="bold")
    line.append("  delivered ")
    line.append(str(progress.delivered), style="green")
    line.append("  retrying ")
    line.append(str(progress.retrying), style="yellow")
    line.append("  dead-lettered ")
    line.append(str(progress.dead_lettered), style="red")
    line.append(f"  on queue {progress.queued}  {progress.elapsed_s:3.0f} s", style="dim")
    return line
