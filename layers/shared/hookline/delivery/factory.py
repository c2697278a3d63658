"""The delivery function's cached factory: everything built once per execution environment from frozen Settings."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from hookline.delivery.config import DeliveryConfig
from hookline.delivery.deadletter import DeadLetterWriter
from hookline.delivery.deps import Outbox, Stores, Telemetry, Transport
from hookline.delivery.lanes import SlowMarks, SlowMarksStore
from hookline.delivery.parking import Parking
from hookline.delivery.processor import DeliveryBatchProcessor
from hookline.delivery.service import DeliveryService
from hookline.delivery.telemetry import EventTally, PowertoolsEmitter
from hookline.history.config import HistoryConfig
from hookline.http import build_async_client, send_limited
from hookline.pacing import build_pacer
from hookline.registry import EndpointRegistry
from hookline.secrets import SECRET_CACHE_TTL_S, SigningSecretStore
from hookline.settings import Settings
from resilience.breaker import BreakerConfig, BreakerRegistry, DynamoDBStateStore

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx
    from aws_lambda_powertools import Logger, Metrics

    from hookline.delivery.attempt import Sender

__all__ = [
    "REGISTRY_CACHE_TTL_S",
    "SECRET_MAX_AGE_S",
    "DeliveryEnvironment",
    "breaker_config_for",
    "build_delivery_environment",
    "get_delivery_environment",
    "reset_delivery_environment",
]

REGISTRY_CACHE_TTL_S = 15.0
# The one secret cache age, shared with `hookline endpoints rotate-secret` (docs/contracts.md "Signing secret").
SECRET_MAX_AGE_S = SECRET_CACHE_TTL_S


@dataclass(frozen=True)
class DeliveryEnvironment:
    """What one execution environment keeps between invocations: the service and its batch processor."""

    service: DeliveryService
    processor: DeliveryBatchProcessor
    runner: asyncio.Runner
    clients: Mapping[str, Any]
    """The boto3 clients by service name (dynamodb, sqs, secretsmanager), e.g. to count requests."""

    def close(self) -> None:
        """Close the HTTP client and the event loop (tests and benchmarks; Lambda just freezes the environment)."""
        http = self.service.transport.client
        self.runner.run(http.aclose())
        self.runner.close()


def build_delivery_environment(  # noqa: PLR0913 - every client injectable (tests, benchmarks), else built here
    settings: Settings,
    *,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    dynamodb: Any = None,
    sqs: Any = None,
    secretsmanager: Any = None,
    transport: httpx.AsyncBaseTransport | None = None,
    send: Sender | None = None,
    breaker_config: BreakerConfig | None = None,
    delivery_config: DeliveryConfig | None = None,
) -> DeliveryEnvironment:
    """Wire the delivery service from settings; every client can be passed in (tests), else it is built here."""
    settings.require("endpoints_table", "breaker_table", "dead_letter_queue_url")
    boto_config = _boto_config(settings)
    session = boto3.session.Session()
    dynamodb = dynamodb or session.client("dynamodb", config=boto_config)
    # Only dead letters and re-enqueued retries use SQS: its client (~20 ms of a cold start) waits for the first.
    sqs = sqs or _LazyClient(lambda: session.client("sqs", config=boto_config))
    secretsmanager = secretsmanager or session.client("secretsmanager", config=boto_config)
    runner = asyncio.Runner()
    http = build_async_client(
        allow_private=settings.allow_private_targets,
        # One record holds at most one connection at a time; a bigger pool only makes httpcore's pool scans slower.
        max_connections=settings.max_concurrency,
        transport=transport,
    )
    config = delivery_config or DeliveryConfig.from_env()
    tally = EventTally()
    breakers = BreakerRegistry(
        DynamoDBStateStore(settings.breaker_table, client=dynamodb),
        config=breaker_config or breaker_config_for(settings),
        metrics_hook=tally,
    )
    emitter = _emitter(settings, metrics)
    service = DeliveryService(
        settings,
        config=config,
        stores=_stores(
            settings, config, dynamodb=dynamodb, secretsmanager=secretsmanager, breakers=breakers, tally=tally
        ),
        outbox=_outbox(settings, config, sqs=sqs, dynamodb=dynamodb, session=session, boto_config=boto_config),
        transport=Transport(http=http, send=send or send_limited),
        telemetry=Telemetry(emit=emitter, logger=logger, breaker_events=tally),
        run=runner.run,
    )
    processor = DeliveryBatchProcessor(run=runner.run, max_concurrency=settings.max_concurrency)
    clients = {"dynamodb": dynamodb, "sqs": sqs, "secretsmanager": secretsmanager}
    return DeliveryEnvironment(service=service, processor=processor, runner=runner, clients=clients)


def _boto_config(settings: Settings) -> Config:
    # Work runs in threads (to_thread) as well as on the loop: give botocore one pooled connection per record in flight.
    return Config(
        max_pool_connections=max(10, settings.max_concurrency + 4),
        connect_timeout=3,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
    )


def _emitter(settings: Settings, metrics: Metrics | None) -> PowertoolsEmitter | None:
    if metrics is None:
        return None
    return PowertoolsEmitter(metrics, namespace=settings.metrics_namespace, service=settings.service_name)


def _stores(  # noqa: PLR0913 - the clients and shared parts the stores are built on
    settings: Settings,
    config: DeliveryConfig,
    *,
    dynamodb: Any,
    secretsmanager: Any,
    breakers: BreakerRegistry,
    tally: EventTally,
) -> Stores:
    """The endpoint registry, signing secrets, breakers, pacer and slow marks, over the given clients."""
    return Stores(
        registry=EndpointRegistry(settings.endpoints_table, client=dynamodb, cache_ttl_s=REGISTRY_CACHE_TTL_S),
        secrets=SigningSecretStore(client=secretsmanager, max_age_s=SECRET_MAX_AGE_S),
        breakers=breakers,
        pacer=build_pacer(config.pacing_table or None, client=dynamodb, metrics_hook=tally),
        slow_marks=SlowMarks(SlowMarksStore(settings.breaker_table, client=dynamodb), mark_s=config.slow_mark_s),
    )


def _outbox(  # noqa: PLR0913 - the clients the outbox writes with
    settings: Settings, config: DeliveryConfig, *, sqs: Any, dynamodb: Any, session: Any, boto_config: Config
) -> Outbox:
    """Where records go besides the receiver: re-enqueues, dead letters, parked waits, kept payloads."""
    return Outbox(
        sqs=sqs,
        dead_letters=DeadLetterWriter(settings.dead_letter_queue_url, client=sqs),
        parking=_parking(config, session, boto_config),
        payloads=HistoryConfig.from_env().payload_store(dynamodb=dynamodb),
    )


def breaker_config_for(settings: Settings) -> BreakerConfig:
    """The delivery breakers' configuration: the defaults, or with BREAKER_OPEN_S the open duration, its cap (10x)
    and the half-open probe lease (5x, at most the default) scaled together."""
    if settings.breaker_open_s is None:
        return BreakerConfig()
    open_s = settings.breaker_open_s
    return BreakerConfig(
        open_s=open_s, max_open_s=10 * open_s, probe_lease_s=min(BreakerConfig().probe_lease_s, 5 * open_s)
    )


def _parking(config: DeliveryConfig, session: Any, boto_config: Config) -> Parking | None:
    parking = config.parking
    if parking is None:
        return None
    # Only waits longer than an hour park: the client waits for the first of them.
    return Parking(_LazyClient(lambda: session.client("scheduler", config=boto_config)), parking)


class _LazyClient:
    """A boto3 client built on first attribute access (thread-safe: records also run in worker threads)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None
        self._building = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._building:
                if self._client is None:
                    self._client = self._build()
                client = self._client
        return getattr(client, name)


_lock = threading.Lock()
_environment: DeliveryEnvironment | None = None


def get_delivery_environment(*, logger: Logger | None = None, metrics: Metrics | None = None) -> DeliveryEnvironment:
    """The environment's DeliveryEnvironment, built on first call from ``Settings.from_env()``."""
    global _environment  # noqa: PLW0603 - one per execution environment, by design
    with _lock:
        if _environment is None:
            _environment = build_delivery_environment(Settings.from_env(), logger=logger, metrics=metrics)
        return _environment


def reset_delivery_environment() -> None:
    """Forget (and close) the cached environment, so the next call reads Settings again (tests, benchmarks)."""
    global _environment  # noqa: PLW0603 - see get_delivery_environment
    with _lock:
        if _environment is not None:
            _environment.close()
        _environment = None
