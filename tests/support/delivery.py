"""Functional-test harness for DeliveryFunction: the real handler, moto (template.yaml), a loopback receiver."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from hookline.delivery.factory import get_delivery_environment, reset_delivery_environment
from hookline.producer import send_webhook
from hookline.registry import Endpoint, EndpointRegistry
from hookline.signing import generate_secret
from hookline_local.sqs_control import SqsControl
from tests.support.aws import client
from tests.support.events import FakeLambdaContext, event_from_queue
from tests.support.template import ROOT

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

    import pytest

    from hookline.delivery.factory import DeliveryEnvironment
    from hookline_local.loopback import LoopbackServer
    from tests.support.template import StackResources

__all__ = ["DeliveryHarness", "Queued", "load_delivery_app"]

APP_PATH = ROOT / "functions" / "delivery" / "app.py"


@cache
def load_delivery_app() -> ModuleType:
    """Import functions/delivery/app.py by path, once (its Powertools objects are module globals, as in Lambda)."""
    spec = importlib.util.spec_from_file_location("hookline_delivery_app", APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class DeliveryHarness:
    """The deployed pieces in moto, the receiver, and the handler invoked the way Lambda invokes it."""

    stack: StackResources
    moto_endpoint: str
    receiver: LoopbackServer
    monkeypatch: pytest.MonkeyPatch
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The moto server lives for the whole session: secret names must be unique per test.
        self.secret_prefix = f"hookline/t{uuid.uuid4().hex[:8]}/"
        self.sqs = client("sqs", self.moto_endpoint)
        self.dynamodb = client("dynamodb", self.moto_endpoint)
        self.secretsmanager = client("secretsmanager", self.moto_endpoint)
        self.registry = EndpointRegistry(self.stack.endpoints_table, client=self.dynamodb, cache_ttl_s=0)
        self.configure()

    # ------------------------------------------------------------------ environment

    def configure(self, **env: str) -> None:
        """Set the function environment (template-resolved names + overrides) and forget the cached factory."""
        self.extra_env.update(env)
        values = {
            **self.stack.environment(),
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "ALLOW_PRIVATE_TARGETS": "true",
            "MAX_CONCURRENCY": "10",
            "POWERTOOLS_SERVICE_NAME": "hookline-delivery",
            "POWERTOOLS_METRICS_NAMESPACE": "Hookline",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        for key, value in values.items():
            self.monkeypatch.setenv(key, value)
        reset_delivery_environment()

    @property
    def environment(self) -> DeliveryEnvironment:
        """The function's cached environment (built on first use)."""
        return get_delivery_environment()

    def close(self) -> None:
        """Close the cached environment's client and loop."""
        reset_delivery_environment()

    # ------------------------------------------------------------------ data

    def secret_id(self, name: str) -> str:
        """This test's Secrets Manager id for ``name``."""
        return self.secret_prefix + name

    def add_secret(self, name: str, value: str | dict[str, Any] | None = None) -> str:
        """Store a signing secret under ``secret_id(name)``; returns the SecretString."""
        text = value if isinstance(value, str) else json.dumps(value) if value is not None else generate_secret()
        self.secretsmanager.create_secret(Name=self.secret_id(name), SecretString=text)
        return text

    def add_endpoint(  # noqa: PLR0913 - test builder: one keyword per registry field used
        self,
        name: str,
        path: str = "/hook",
        *,
        fallback_paths: Sequence[str] = (),
        scheme: str = "standard",
        secret: str | dict[str, Any] | None = None,
        event_types: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        timeout_s: float = 15.0,
    ) -> str:
        """Register an endpoint pointing at the receiver; returns its secret string."""
        text = self.add_secret(name, secret)
        self.registry.register(
            Endpoint(
                name=name,
                url=self.receiver.url(path),
                secret_id=self.secret_id(name),
                fallback_urls=tuple(self.receiver.url(fallback) for fallback in fallback_paths),
                scheme=scheme,  # type: ignore[arg-type]
                event_types=tuple(event_types),
                headers=headers or {},
                timeout_s=timeout_s,
            )
        )
        return text

    def send(self, **kwargs: Any) -> str:
        """Produce one webhook onto the delivery queue; returns its id."""
        return send_webhook(self.stack.delivery_queue_url, sqs_client=self.sqs, **kwargs)

    def send_raw(self, body: str) -> str:
        """Put an arbitrary body on the delivery queue; returns the SQS MessageId."""
        return str(self.sqs.send_message(QueueUrl=self.stack.delivery_queue_url, MessageBody=body)["MessageId"])

    # ------------------------------------------------------------------ invoking

    def receive(self, max_messages: int = 10) -> dict[str, Any]:
        """The next event an event source mapping would hand the function: fresh messages first, then retries."""
        event = event_from_queue(self.sqs, self.stack.delivery_queue_url, max_messages=max_messages)
        if not event["Records"] and self.stack.retry_queue_url:
            event = event_from_queue(self.sqs, self.stack.retry_queue_url, max_messages=max_messages)
        return event

    def invoke(self, event: dict[str, Any], *, remaining_ms: int = 60_000) -> dict[str, Any]:
        """Call the real handler with ``event`` and a LambdaContext."""
        app = load_delivery_app()
        # The module's Powertools logger was built once, on the stdout of the first test: write to this test's stdout
        # (a test that swapped in its own io.StringIO to read the lines keeps it).
        handler = app.logger.registered_handler
        if not isinstance(handler.stream, io.StringIO):
            handler.stream = sys.stdout  # (setStream would flush the old one first, which may be closed)
        response: dict[str, Any] = app.lambda_handler(event, FakeLambdaContext(remaining_ms=lambda: remaining_ms))
        return response

    def settle(self, event: dict[str, Any], response: dict[str, Any]) -> None:
        """Do what Lambda does after the handler returned: delete every record not in batchItemFailures."""
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                queue_url = queue_url_from_arn(record["eventSourceARN"], self.moto_endpoint)
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])

    def run_once(self, max_messages: int = 10) -> tuple[dict[str, Any], dict[str, Any]]:
        """Receive, invoke, settle: one event-source-mapping cycle. Returns (event, response)."""
        event = self.receive(max_messages)
        response = self.invoke(event)
        self.settle(event, response)
        return event, response

    # ------------------------------------------------------------------ reading back

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message on the DLQ with its attributes (hidden while collected, then made visible again)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.stack.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.stack.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return messages

    def visible_in(self, sqs_message_id: str) -> float:
        """Seconds until a delivery-queue message becomes visible again, read from the moto server's SQS model."""
        queue = SqsControl(self.moto_endpoint).queue(self.stack.delivery_queue_url)
        for message in queue.messages:
            if message.message_id == sqs_message_id:
                return message.visible_in_s
        raise LookupError(f"message {sqs_message_id} is not on the delivery queue")

    def release_delayed(self) -> None:
        """Let every delayed message of the delivery and retry queues be received now (time passing, for SQS)."""
        queues = [url for url in (self.stack.delivery_queue_url, self.stack.retry_queue_url) if url]
        SqsControl(self.moto_endpoint).release_delayed(queues)

    def queued(self, queue_url: str | None = None) -> list[Queued]:
        """Every message on a queue (default: the delivery and retry queues) as moto holds it, without receiving it."""
        if queue_url is None:
            urls = [self.stack.delivery_queue_url, self.stack.retry_queue_url]
            return [message for url in urls if url for message in self.queued(url)]
        return [
            Queued(
                body=message.body,
                attributes=dict(message.attributes),
                delayed_s=message.delayed_for_s,
                in_flight=message.visible_in_s > 0,
                receive_count=message.receive_count,
            )
            for message in SqsControl(self.moto_endpoint).queue(queue_url).messages
        ]


def queue_url_from_arn(arn: str, endpoint_url: str) -> str:
    """A moto queue's URL from its ARN."""
    parts = arn.split(":")
    return f"{endpoint_url}/{parts[4]}/{parts[5]}"


@dataclass(frozen=True)
class Queued:
    """One message as moto holds it."""

    body: str
    attributes: dict[str, Any]
    delayed_s: float
    in_flight: bool
    receive_count: int

    @property
    def retry_state(self) -> dict[str, Any]:
        """The decoded ``hookline-retry`` attribute."""
        return dict(json.loads(self.attributes["hookline-retry"]))
