"""DeliveryService: one SQS batch in, one outcome per record out (docs/contracts.md "Outcomes").

A batch is opened (every record parsed, every endpoint, secret and breaker it needs read in one go), its records are
delivered concurrently by Powertools' AsyncBatchProcessor (``DeliveryBatch.deliver`` is the record handler), and the
batch is closed (scheduled visibility changes sent in batches of 10, breaker outcomes flushed, metrics emitted).

A record handler returns when the record is done (delivered, dead-lettered or filtered: SQS may delete it) and raises
when it must come back (``RetryScheduled`` after ChangeMessageVisibility, ``DeliveryDeferred`` when it could not be
tried: deadline, transient AWS error). Nothing is ever lost: a record is only reported done after its dead letter
was accepted by SQS.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from hookline import metrics as names
from hookline.delivery.attempt import MIN_REQUEST_S, AttemptResult, Outcome, attempt_delivery
from hookline.delivery.deadletter import DeadLetter, dead_letter_body, describe_target, scrub
from hookline.delivery.schedule import attempt_number, is_last_attempt, next_delay
from hookline.delivery.targets import DeliveryPlan, EventTypeFiltered, PlanError, resolve_plan
from hookline.delivery.telemetry import BatchMetrics
from hookline.http import send_limited
from hookline.messages import MessageError, WebhookMessage, derive_id, parse_message
from hookline.metrics import Reason
from hookline.registry import EndpointNotFoundError
from hookline.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
    from types import TracebackType

    import httpx
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs import SQSClient

    from hookline.delivery.attempt import Sender
    from hookline.delivery.deadletter import DeadLetterWriter
    from hookline.registry import EndpointRegistry
    from hookline.secrets import SigningSecretStore
    from hookline.settings import Settings
    from hookline.signing import SigningSecrets
    from resilience.breaker import BreakerRegistry

__all__ = [
    "DEFAULT_DEADLINE_MARGIN_S",
    "DeliveryBatch",
    "DeliveryDeferred",
    "DeliveryService",
    "RecordResult",
    "RetryScheduled",
    "queue_url_from_arn",
]

DEFAULT_DEADLINE_MARGIN_S = 3.0
"""Kept free at the end of an invocation for dead letters, visibility changes and the breaker flush."""
_VISIBILITY_BATCH = 10
_FALLBACK_LOGGER = logging.getLogger("hookline.delivery")


class RetryScheduled(Exception):
    """The attempt failed; the record comes back after ``delay_s`` (reported in batchItemFailures)."""

    def __init__(self, message_id: str, attempt: int, delay_s: int) -> None:
        super().__init__(f"{message_id}: attempt {attempt} failed; next attempt in {delay_s}s")
        self.delay_s = delay_s


class DeliveryDeferred(Exception):
    """The record could not be tried now (deadline, transient AWS error); it comes back with the queue's timeout."""


def queue_url_from_arn(arn: str) -> str:
    """The SQS queue URL of a queue ARN (``arn:aws:sqs:us-east-1:123456789012:name``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    partition, region, account, name = parts[1], parts[3], parts[4], parts[5]
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


@dataclass(frozen=True)
class RecordResult:
    """What happened to one record (the handler's return value for a record that is done)."""

    message_id: str
    outcome: str
    reason: Reason | None = None


@dataclass
class _Parsed:
    message_id: str
    message: WebhookMessage | None = None
    error: MessageError | None = None


@dataclass
class _Visibility:
    queue_url: str
    receipt_handle: str
    delay_s: int


@dataclass
class _BatchState:
    parsed: dict[str, _Parsed] = field(default_factory=dict)
    # Read ahead when the batch opens (a value or the error the read raised), so records need no thread hop.
    endpoints: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    visibility: list[_Visibility] = field(default_factory=list)
    metrics: BatchMetrics = field(default_factory=BatchMetrics)
    deadline: float | None = None


class DeliveryService:
    """Delivers SQS records: sign, POST with fallbacks behind breakers, retry on schedule, dead-letter with reason."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: EndpointRegistry,
        secrets: SigningSecretStore,
        dead_letters: DeadLetterWriter,
        sqs: SQSClient,
        http: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
        breakers: BreakerRegistry | None = None,
        emit: Callable[[BatchMetrics], None] | None = None,
        logger: Logger | None = None,
        send: Sender = send_limited,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        deadline_margin_s: float = DEFAULT_DEADLINE_MARGIN_S,
        max_response_bytes: int = 65536,
        run: Callable[[Coroutine[Any, Any, Any]], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.secrets = secrets
        self.dead_letters = dead_letters
        self.sqs = sqs
        self.breakers = breakers
        self._http = http
        self._emit = emit
        self._logger = logger
        self._send = send
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._random = random
        self._margin_s = deadline_margin_s
        self._max_response_bytes = max_response_bytes
        self._run = run or _default_runner()
        self._current: _BatchState | None = None

    # ------------------------------------------------------------------ batches

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this environment's event loop (the one the shared HTTP client lives on)."""
        return self._run(coroutine)

    def batch(self, records: Sequence[Mapping[str, Any]], context: LambdaContext | None = None) -> DeliveryBatch:
        """A batch of raw SQS records; use as a context manager around the batch processor."""
        return DeliveryBatch(self, records, context)

    def breaker_metrics_hook(self, name: str, value: float) -> None:
        """BreakerRegistry ``metrics_hook``: counted into the batch being processed."""
        if self._current is not None:
            self._current.metrics.breaker_hook(name, value)

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client."""
        return self._http if not callable(self._http) else self._http()

    def _log(self, level: int, message: str, **fields: Any) -> None:
        if self._logger is None:
            _FALLBACK_LOGGER.log(level, "%s %s", message, fields)
            return
        emit = {
            logging.DEBUG: self._logger.debug,
            logging.INFO: self._logger.info,
            logging.WARNING: self._logger.warning,
        }.get(level, self._logger.error)
        emit(message, extra=fields)

    async def _open(self, state: _BatchState, records: Sequence[Mapping[str, Any]]) -> None:
        """Parse every record and read every endpoint, secret and breaker the batch needs, concurrently."""
        for record in records:
            sqs_id = str(record.get("messageId", ""))
            state.parsed[sqs_id] = _parse_record(sqs_id, str(record.get("body", "")))
        messages = [parsed.message for parsed in state.parsed.values() if parsed.message is not None]
        names_needed = sorted({message.endpoint for message in messages if message.endpoint})
        endpoints = await asyncio.gather(
            *(asyncio.to_thread(self.registry.get, name) for name in names_needed), return_exceptions=True
        )
        found = dict(zip(names_needed, endpoints, strict=True))
        state.endpoints = found
        origins: set[str] = set()
        secret_ids: set[str] = set()
        for message in messages:
            try:
                plan = resolve_plan(
                    message, "prefetch", registry=_Prefetched(found), allow_private=self.settings.allow_private_targets
                )
            except Exception:  # noqa: BLE001 - each record meets its own error again when it is delivered
                continue
            origins.update(plan.origins)
            secret_ids.add(plan.secret_id)
        ordered_ids = sorted(secret_ids)
        work: list[Awaitable[Any]] = [asyncio.to_thread(self.secrets.get, sid) for sid in ordered_ids]
        if self.breakers is not None and origins:
            work.append(asyncio.to_thread(self.breakers.prefetch, sorted(origins)))
        # Failures here are not fatal: each record meets them again (and handles them) when it is delivered.
        results = await asyncio.gather(*work, return_exceptions=True)
        state.secrets = dict(zip(ordered_ids, results[: len(ordered_ids)], strict=True))

    def _close(self, state: _BatchState) -> None:
        """Send the scheduled visibility changes, flush breaker outcomes, emit metrics."""
        for start in range(0, len(state.visibility), _VISIBILITY_BATCH):
            chunk = state.visibility[start : start + _VISIBILITY_BATCH]
            self._change_visibility(chunk)
        if self.breakers is not None:
            try:
                self.breakers.flush()
            except Exception as error:  # noqa: BLE001 - the breaker fails open; outcomes are not worth a failed batch
                self._log(logging.WARNING, "breaker flush failed", error=type(error).__name__)
        if self._emit is not None:
            self._emit(state.metrics)

    def _change_visibility(self, chunk: list[_Visibility]) -> None:
        by_queue: dict[str, list[_Visibility]] = {}
        for item in chunk:
            by_queue.setdefault(item.queue_url, []).append(item)
        for queue_url, items in by_queue.items():
            entries = [
                {"Id": str(index), "ReceiptHandle": item.receipt_handle, "VisibilityTimeout": item.delay_s}
                for index, item in enumerate(items)
            ]
            try:
                response = self.sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
                failed = response.get("Failed", [])
            except Exception as error:  # noqa: BLE001 - the records still come back, after the queue's own timeout
                self._log(logging.WARNING, "visibility change failed", error=type(error).__name__, count=len(items))
                continue
            if failed:
                codes = sorted({str(entry.get("Code")) for entry in failed})
                self._log(logging.WARNING, "visibility change failed", count=len(failed), codes=codes)

    # ------------------------------------------------------------------ one record

    def _remaining(self, state: _BatchState) -> Callable[[], float] | None:
        deadline = state.deadline
        if deadline is None:
            return None
        return lambda: deadline - self._monotonic()

    async def deliver(self, state: _BatchState, record: SQSRecord) -> RecordResult:
        """Deliver one record; raises RetryScheduled/DeliveryDeferred when it must come back."""
        parsed = state.parsed.get(record.message_id) or _parse_record(record.message_id, record.body or "")
        job = _Job(
            state=state,
            record=record,
            message_id=parsed.message_id,
            attempt=attempt_number(record.attributes.approximate_receive_count),
            message=parsed.message,
        )
        if self._logger is not None:
            # Task-local (contextvars): concurrent records each log under their own webhook-id.
            self._logger.thread_safe_append_keys(correlation_id=job.message_id)
        remaining = self._remaining(state)
        if remaining is not None and remaining() < MIN_REQUEST_S:
            self._log(logging.WARNING, "deferred: invocation deadline", webhook_id=job.message_id, attempt=job.attempt)
            raise DeliveryDeferred(f"{job.message_id}: no time left in this invocation")
        if parsed.message is None:
            error = parsed.error
            assert error is not None
            job.label = _label_of_invalid(error.data)
            return await self._dead_letter(job, error.reason, None, error.detail, data=error.data)
        message = parsed.message
        job.label = describe_target(message.endpoint, message.url)
        try:
            if message.endpoint is None or message.endpoint in state.endpoints:
                plan = resolve_plan(
                    message,
                    job.message_id,
                    registry=_Prefetched(state.endpoints),
                    allow_private=self.settings.allow_private_targets,
                )
            else:  # not read ahead (a record the batch was not opened with): read it off the loop
                plan = await asyncio.to_thread(
                    resolve_plan,
                    message,
                    job.message_id,
                    registry=self.registry,
                    allow_private=self.settings.allow_private_targets,
                )
        except EventTypeFiltered as filtered:
            self._log(logging.INFO, "filtered: endpoint does not subscribe to this event type", detail=str(filtered))
            return RecordResult(job.message_id, "filtered")
        except PlanError as error:
            return await self._dead_letter(job, error.reason, None, error.detail)
        except Exception as error:
            raise DeliveryDeferred(f"{job.message_id}: registry unavailable ({type(error).__name__})") from None
        try:
            if plan.secret_id in state.secrets:
                signing = _Prefetched(state.secrets).get(plan.secret_id)
            else:
                signing = await asyncio.to_thread(self.secrets.get, plan.secret_id)
        except SecretError as error:
            if error.reason is None:
                raise DeliveryDeferred(f"{job.message_id}: {error}") from None
            return await self._dead_letter(job, error.reason, None, str(error))
        return await self._attempt(job, message, plan, signing)

    async def _attempt(
        self, job: _Job, message: WebhookMessage, plan: DeliveryPlan, signing: SigningSecrets
    ) -> RecordResult:
        active = signing.active(datetime.fromtimestamp(self._wall_clock(), tz=UTC))
        result = await attempt_delivery(
            plan,
            active,
            message.body,
            http=self.http,
            breakers=self.breakers,
            send=self._send,
            wall_clock=self._wall_clock,
            monotonic=self._monotonic,
            remaining_s=self._remaining(job.state),
            max_response_bytes=self._max_response_bytes,
        )
        self._count(job.state.metrics, result)
        last_error = scrub(result.last_error, _secret_strings(signing))
        fields: dict[str, Any] = {"webhook_id": job.message_id, "endpoint": job.label, "attempt": job.attempt}
        if result.outcome is Outcome.DELIVERED:
            served = result.targets[-1]
            latency = round(served.latency_ms or 0.0, 1)
            self._log(
                logging.INFO,
                "delivered",
                **fields,
                target=served.index,
                origin=served.origin,
                status=served.http_status,
                latency_ms=latency,
            )
            return RecordResult(job.message_id, "delivered")
        if result.outcome is Outcome.GONE:
            await self._disable_gone(plan, result)
            return await self._dead_letter(job, Reason.ENDPOINT_GONE, 410, last_error)
        if result.outcome is Outcome.REFUSED:
            return await self._dead_letter(job, Reason.TARGET_REFUSED, None, last_error)
        if result.outcome is Outcome.OUT_OF_TIME:
            self._log(logging.WARNING, "deferred: invocation deadline", **fields)
            raise DeliveryDeferred(f"{job.message_id}: no time left in this invocation")
        if is_last_attempt(job.attempt, self.settings.max_attempts):
            error_text = last_error or "every target failed"
            return await self._dead_letter(job, Reason.RETRIES_EXHAUSTED, result.last_status, error_text)
        delay = next_delay(
            job.attempt,
            self.settings.retry_schedule,
            retry_after_s=result.retry_after_s,
            breaker_retry_after_s=result.breaker_retry_after_s,
            random=self._random,
        )
        record = job.record
        job.state.visibility.append(
            _Visibility(queue_url_from_arn(record.event_source_arn), record.receipt_handle, delay)
        )
        job.state.metrics.count(names.DELIVERY_RETRIED)
        self._log(
            logging.INFO,
            "retry scheduled",
            **fields,
            delay_s=delay,
            last_status=result.last_status,
            last_error=last_error,
            skipped=result.skipped,
        )
        raise RetryScheduled(job.message_id, job.attempt, delay)

    def _count(self, metrics: BatchMetrics, result: AttemptResult) -> None:
        if result.outcome is Outcome.OUT_OF_TIME and not result.requests:
            return
        metrics.count(names.DELIVERY_ATTEMPTS)
        if result.outcome is Outcome.DELIVERED:
            metrics.count(names.DELIVERY_SUCCEEDED)
            if result.used_fallback:
                metrics.count(names.FALLBACK_USED)
        else:
            metrics.count(names.DELIVERY_FAILED)
        if result.skipped:
            metrics.count(names.BREAKER_REJECTED, result.skipped)
        for target in result.requests:
            metrics.latency(target.latency_ms or 0.0)

    async def _disable_gone(self, plan: DeliveryPlan, result: AttemptResult) -> None:
        if plan.endpoint is None:
            return
        gone = result.targets[-1]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._wall_clock()))
        reason = f"410 Gone from {gone.origin} at {stamp} (webhook {plan.message_id})"
        try:
            await asyncio.to_thread(self.registry.disable, plan.endpoint.name, reason)
        except EndpointNotFoundError:
            return
        except Exception as error:  # noqa: BLE001 - the message is still dead-lettered; the next 410 tries again
            self._log(logging.ERROR, "could not disable endpoint", endpoint=plan.label, error=type(error).__name__)
            return
        self._log(logging.WARNING, "endpoint disabled: receiver answered 410 Gone", endpoint=plan.label)

    async def _dead_letter(
        self, job: _Job, reason: Reason, last_status: int | None, last_error: str, *, data: Any = None
    ) -> RecordResult:
        raw_body = job.record.body or ""
        letter = DeadLetter(
            body=dead_letter_body(raw_body, job.message_id, message=job.message, data=data),
            reason=reason,
            endpoint=job.label,
            attempts=job.attempt,
            last_status=last_status,
            last_error=last_error,
        )
        # An SQS error propagates: the record is then reported as failed and comes back, never lost.
        await asyncio.to_thread(self.dead_letters.send, letter)
        job.state.metrics.dead_letter(reason)
        self._log(
            logging.WARNING,
            "dead-lettered",
            webhook_id=job.message_id,
            reason=str(reason),
            endpoint=job.label,
            attempt=job.attempt,
            last_status=last_status,
            last_error=last_error[:300],
        )
        return RecordResult(job.message_id, "dead_lettered", reason)


@dataclass
class _Job:
    """One record being delivered."""

    state: _BatchState
    record: SQSRecord
    message_id: str
    attempt: int
    message: WebhookMessage | None
    label: str = "unknown"


def _parse_record(sqs_message_id: str, body: str) -> _Parsed:
    parsed = _Parsed(message_id=derive_id(sqs_message_id))
    try:
        parsed.message = parse_message(body)
    except MessageError as error:
        parsed.error = error
    else:
        parsed.message_id = parsed.message.id or parsed.message_id
    return parsed


class DeliveryBatch:
    """One batch: ``with service.batch(records, context) as batch:`` then ``batch.deliver`` per record."""

    def __init__(
        self, service: DeliveryService, records: Sequence[Mapping[str, Any]], context: LambdaContext | None
    ) -> None:
        self.service = service
        self.records = records
        self.context = context
        self._state = _BatchState()

    def __enter__(self) -> Self:
        service = self.service
        if self.context is not None:
            remaining_s = self.context.get_remaining_time_in_millis() / 1000.0
            self._state.deadline = service._monotonic() + remaining_s - service._margin_s
        service._current = self._state
        service.run(service._open(self._state, self.records))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self.service._close(self._state)
        finally:
            self.service._current = None

    async def deliver(self, record: SQSRecord) -> RecordResult:
        """The Powertools record handler: deliver one record of this batch."""
        return await self.service.deliver(self._state, record)

    @property
    def metrics(self) -> BatchMetrics:
        """The metrics counted so far."""
        return self._state.metrics


class _Prefetched:
    """A registry stand-in answering from endpoints read ahead (errors read ahead are re-raised)."""

    def __init__(self, found: Mapping[str, Any]) -> None:
        self._found = found

    def get(self, name: str) -> Any:
        value = self._found.get(name)
        if isinstance(value, BaseException):
            raise value
        return value


def _secret_strings(signing: SigningSecrets) -> Iterable[str]:
    return [secret for secret in (signing.current, signing.previous) if secret]


def _label_of_invalid(data: Any) -> str:
    if isinstance(data, dict):
        endpoint = data.get("endpoint")
        url = data.get("url")
        return describe_target(endpoint if isinstance(endpoint, str) else None, url if isinstance(url, str) else None)
    return describe_target(None, None)


def _default_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """One event loop for the environment's lifetime, so pooled connections of the shared client stay usable."""
    runner = asyncio.Runner()
    return runner.run
