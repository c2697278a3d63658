"""In-process fakes for delivery unit tests: registry, secrets, SQS, a MockTransport receiver and a service builder."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from hookline.delivery.deadletter import DeadLetterWriter
from hookline.delivery.deps import Clocks, Outbox, Stores, Telemetry, Transport
from hookline.delivery.lanes import MemorySlowMarks, SlowMarks
from hookline.delivery.processor import DeliveryBatchProcessor
from hookline.delivery.requeue import attributes_size
from hookline.delivery.service import DeliveryService
from hookline.delivery.telemetry import EventTally
from hookline.http import build_async_client, send_limited
from hookline.messages import MAX_MESSAGE_BYTES
from hookline.pacing import MemoryPaceStore, Pacer
from hookline.registry import Endpoint, EndpointNotFoundError
from hookline.secrets import SecretMissingError
from hookline.settings import Settings
from hookline.signing import SigningSecrets, generate_secret
from hookline_local.events import lambda_message_attributes
from resilience.breaker import BreakerConfig, BreakerRegistry, MemoryStateStore
from tests.support.events import make_record
from tests.support.timefakes import FakeClock

if TYPE_CHECKING:
    from hookline.delivery.attempt import Sender
    from hookline.delivery.config import DeliveryConfig
    from hookline.delivery.parking import Parking
    from hookline.delivery.telemetry import BatchMetrics

__all__ = ["FakeRegistry", "FakeSecrets", "FakeSqs", "MockReceiver", "ServiceKit", "WALL_CLOCK"]

WALL_CLOCK = 1_795_852_800.0  # 2026-11-28T08:00:00Z


class FakeRegistry:
    """Endpoints in a dict; records disable() calls; ``fail`` makes get() raise (a transient AWS error)."""

    def __init__(self, *endpoints: Endpoint) -> None:
        self.endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self.disabled: list[tuple[str, str]] = []
        self.fail: Exception | None = None
        self.reads = 0

    def get(self, name: str, *, fresh: bool = False) -> Endpoint | None:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.endpoints.get(name)

    def disable(self, name: str, reason: str) -> None:
        if name not in self.endpoints:
            raise EndpointNotFoundError(name)
        self.disabled.append((name, reason))
        from dataclasses import replace

        self.endpoints[name] = replace(self.endpoints[name], enabled=False, disabled_reason=reason)


class FakeSecrets:
    """Signing secrets by id; a missing id raises SecretMissingError; ``fail`` raises the given error instead."""

    def __init__(self, **secrets: SigningSecrets | str) -> None:
        self.secrets = {
            key.replace("__", "/"): value if isinstance(value, SigningSecrets) else SigningSecrets(current=value)
            for key, value in secrets.items()
        }
        self.fail: Exception | None = None

    def add(self, secret_id: str, value: str | SigningSecrets) -> None:
        self.secrets[secret_id] = value if isinstance(value, SigningSecrets) else SigningSecrets(current=value)

    def get(self, secret_id: str) -> SigningSecrets:
        if self.fail is not None:
            raise self.fail
        if secret_id not in self.secrets:
            raise SecretMissingError(f"signing secret {secret_id!r} is not readable (ResourceNotFoundException)")
        return self.secrets[secret_id]


class FakeSqs:
    """Records SendMessage (dead letters) and SendMessageBatch (re-enqueues); failures can be injected.

    ``fail_send`` makes SendMessage raise; ``fail_batch`` makes SendMessageBatch raise; ``refuse`` lists message
    bodies whose SendMessageBatch entry is answered as Failed (the rest of the call succeeds). Like SQS, a message
    over 256 KiB (body and attributes) is refused.
    """

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self.fail_send: Exception | None = None
        self.fail_batch: Exception | None = None
        self.refuse: set[str] = set()

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail_send is not None:
            raise self.fail_send
        if _sqs_size(kwargs) > MAX_MESSAGE_BYTES:
            error = {"Code": "InvalidParameterValue", "Message": "Message must be shorter than 262144 bytes."}
            raise ClientError({"Error": error}, "SendMessage")
        self.sent.append(kwargs)
        return {"MessageId": f"dlq-{len(self.sent)}"}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail_batch is not None:
            raise self.fail_batch
        self.batches.append(kwargs)
        successful, failed = [], []
        for entry in kwargs["Entries"]:
            if entry["MessageBody"] in self.refuse:
                failed.append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                )
            elif _sqs_size(entry) > MAX_MESSAGE_BYTES:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue"})
            else:
                successful.append({"Id": entry["Id"], "MessageId": f"requeued-{entry['Id']}"})
        return {"Successful": successful, "Failed": failed}

    @property
    def requeued(self) -> list[dict[str, Any]]:
        """Every entry SQS accepted, with the call's QueueUrl added."""
        return [
            {**entry, "QueueUrl": call["QueueUrl"]}
            for call in self.batches
            for entry in call["Entries"]
            if entry["MessageBody"] not in self.refuse and _sqs_size(entry) <= MAX_MESSAGE_BYTES
        ]

    def delays(self) -> list[int]:
        """DelaySeconds of every accepted re-enqueue, in order."""
        return [entry["DelaySeconds"] for entry in self.requeued]

    def states(self) -> list[dict[str, Any]]:
        """The decoded retry attribute of every accepted re-enqueue."""
        return [json.loads(entry["MessageAttributes"]["hookline-retry"]["StringValue"]) for entry in self.requeued]

    def reasons(self) -> list[str]:
        """The ``reason`` attribute of every dead letter sent."""
        return [call["MessageAttributes"]["reason"]["StringValue"] for call in self.sent]


def _sqs_size(request: dict[str, Any]) -> int:
    """A message's size as SQS counts it against its 256 KiB: the body plus every attribute's name, type and value."""
    return len(request["MessageBody"].encode("utf-8")) + attributes_size(request.get("MessageAttributes") or {})


Responder = Callable[[httpx.Request], httpx.Response]


@dataclass
class MockReceiver:
    """An httpx.MockTransport receiver: per-URL responders (default 200), every request recorded."""

    routes: dict[str, Responder | list[httpx.Response] | httpx.Response] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    delay_s: float = 0.0

    def route(self, url: str, answer: Responder | list[httpx.Response] | httpx.Response) -> None:
        self.routes[url] = answer

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            answer = self.routes.get(str(request.url), httpx.Response(200))
            if isinstance(answer, list):
                return answer.pop(0) if len(answer) > 1 else answer[0]
            if isinstance(answer, httpx.Response):
                return answer
            return answer(request)
        finally:
            self.in_flight -= 1

    def to(self, url: str) -> list[httpx.Request]:
        """The requests sent to ``url``."""
        return [request for request in self.requests if str(request.url) == url]


class ServiceKit:
    """A DeliveryService wired to fakes, with its processor, a captured Powertools logger and emitted metrics."""

    def __init__(  # noqa: PLR0913 - a test builder: every seam optional
        self,
        *endpoints: Endpoint,
        settings: Settings | None = None,
        secrets: FakeSecrets | None = None,
        breaker_config: BreakerConfig | None = None,
        random: Callable[[], float] = lambda: 0.5,
        deadline_margin_s: float = 3.0,
        send: Sender = send_limited,
        wall: Callable[[], float] = lambda: WALL_CLOCK,
        config: DeliveryConfig | None = None,
        parking: Parking | None = None,
    ) -> None:
        self.settings = settings or Settings(
            endpoints_table="endpoints",
            breaker_table="breakers",
            dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            max_concurrency=4,
        )
        self.registry = FakeRegistry(*endpoints)
        self.secret = generate_secret()
        self.secrets = secrets or FakeSecrets()
        for endpoint in endpoints:
            if endpoint.secret_id not in self.secrets.secrets:
                self.secrets.add(endpoint.secret_id, self.secret)
        self.sqs = FakeSqs()
        self.receiver = MockReceiver()
        self.clock = FakeClock(1000.0)
        self.store = MemoryStateStore(clock=self.clock)
        self.tally = EventTally()
        self.pacer = Pacer(MemoryPaceStore(clock=wall), metrics_hook=self.tally)
        self.marks_store = MemorySlowMarks()
        self.slow_marks = SlowMarks(self.marks_store, clock=wall)
        self.breakers = BreakerRegistry(
            self.store, config=breaker_config or BreakerConfig(), clock=self.clock, metrics_hook=self.tally
        )
        self.runner = asyncio.Runner()
        self.http = build_async_client(allow_private=False, transport=httpx.MockTransport(self.receiver))
        self.emitted: list[BatchMetrics] = []
        self.log_stream = io.StringIO()
        self.logger = Logger(
            service=f"hookline-delivery-test-{uuid.uuid4().hex[:8]}",  # one Powertools logger per kit
            logger_handler=logging.StreamHandler(self.log_stream),
            level="DEBUG",
        )
        self.service = DeliveryService(
            self.settings,
            config=config,
            stores=Stores(
                registry=self.registry,  # type: ignore[arg-type]
                secrets=self.secrets,  # type: ignore[arg-type]
                breakers=self.breakers,
                pacer=self.pacer,
                slow_marks=self.slow_marks,
            ),
            outbox=Outbox(
                sqs=self.sqs,  # type: ignore[arg-type]
                dead_letters=DeadLetterWriter(
                    self.settings.dead_letter_queue_url,
                    client=self.sqs,  # type: ignore[arg-type]
                    clock=lambda: WALL_CLOCK,
                ),
                parking=parking,
            ),
            transport=Transport(http=self.http, send=send),
            telemetry=Telemetry(emit=self.emitted.append, logger=self.logger, breaker_events=self.tally),
            clocks=Clocks(wall=wall, monotonic=self.clock, random=random, sleep=self.clock.async_sleep),
            deadline_margin_s=deadline_margin_s,
            run=self.runner.run,
        )
        self.processor = DeliveryBatchProcessor(run=self.runner.run, max_concurrency=self.settings.max_concurrency)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """What app.lambda_handler does, without the decorators."""
        from aws_lambda_powertools.utilities.batch import async_process_partial_response

        with self.service.batch(event.get("Records", []), context) as batch:
            response: dict[str, Any] = async_process_partial_response(
                event=event, record_handler=batch.deliver, processor=self.processor, context=context
            )
            return response

    def redeliver(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The record SQS hands the function when a re-enqueued entry comes back (a new message, received once)."""
        attributes = lambda_message_attributes(entry["MessageAttributes"])
        queue_name = entry["QueueUrl"].rsplit("/", 1)[-1]
        return make_record(
            entry["MessageBody"],
            message_attributes=attributes,
            queue_arn=f"arn:aws:sqs:us-east-1:123456789012:{queue_name}",
        )

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.close()

    @property
    def metrics(self) -> BatchMetrics:
        """The metrics of the last batch."""
        return self.emitted[-1]

    def log_lines(self) -> list[str]:
        return [line for line in self.log_stream.getvalue().splitlines() if line.strip()]
