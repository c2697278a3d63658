"""DeliveryBatch: one SQS batch in, one outcome per record out (docs/contracts.md "Outcomes").

A batch is opened (every record parsed, every endpoint, secret and breaker it needs read in one go), its records are
delivered concurrently by Powertools' AsyncBatchProcessor (``DeliveryBatch.deliver`` is the record handler), and the
batch is closed (breaker outcomes flushed, metrics emitted).

A record handler returns when the record is done: delivered, filtered, dead-lettered (after SQS accepted the dead
letter) or re-enqueued for a later attempt (after SQS accepted its own SendMessageBatch entry). It raises
``DeliveryDeferred`` when the record must come back as it is (reported in batchItemFailures: deadline, transient AWS
error, a re-enqueue entry SQS refused). Nothing is ever lost: a record leaves the queue only once its next home has it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Self

from hookline import metrics as names
from hookline.delivery.attempt import MIN_REQUEST_S, AttemptResult, Outcome, attempt_delivery
from hookline.delivery.deadletter import (
    MAX_LAST_ERROR_BYTES,
    DeadLetter,
    dead_letter_body,
    describe_target,
    letter_overhead,
    scrub,
)
from hookline.delivery.gates import BreakerGate, GateChain, PacingGate
from hookline.delivery.lanes import LaneGate
from hookline.delivery.logline import DeliveryLog, LogLine, LogOutcome
from hookline.delivery.parking import schedule_name
from hookline.delivery.requeue import (
    MAX_ATTRIBUTES,
    MAX_DELAY_S,
    Entry,
    RequeueBuffer,
    RequeueError,
    attributes_size,
    carried_attributes,
)
from hookline.delivery.retrystate import RETRY_ATTRIBUTE, RETRY_ATTRIBUTE_RESERVE, RetryState, RetryStateError
from hookline.delivery.schedule import Failure, GiveUp, RetryPolicy, attempt_number
from hookline.delivery.targets import DeliveryPlan, EventTypeFiltered, PlanError, resolve_plan
from hookline.delivery.telemetry import BatchMetrics
from hookline.history.payloads import PayloadMeta, PayloadRecorder
from hookline.history.replay import is_replay
from hookline.messages import MAX_MESSAGE_BYTES, MessageError, WebhookMessage, derive_id, parse_message
from hookline.metrics import Reason
from hookline.registry import EndpointNotFoundError
from hookline.secrets import SecretError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from types import TracebackType

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from hookline.delivery.attempt import Gate
    from hookline.delivery.service import DeliveryService
    from hookline.signing import SigningSecrets

__all__ = [
    "DEFAULT_DEADLINE_MARGIN_S",
    "DeliveryBatch",
    "DeliveryDeferred",
    "RecordResult",
    "queue_url_from_arn",
]

DEFAULT_DEADLINE_MARGIN_S = 3.0
"""Kept free at the end of an invocation for dead letters, re-enqueues and the breaker flush."""
_EARLY_S = 1.0
"""A record back less than this before its due time is tried now (SQS delays are whole seconds)."""


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
class _Job:
    """One record being delivered."""

    record: SQSRecord
    message_id: str
    state: RetryState
    message: WebhookMessage | None
    label: str = "unknown"
    body: str = ""
    """The body to re-enqueue: the original with its resolved id."""
    carried: dict[str, MessageAttributeValueTypeDef] = field(default_factory=dict)
    """The producer's own message attributes, carried through every re-enqueue."""
    data: Any = None
    """The decoded JSON of an invalid message (its dead letter carries it with the resolved id)."""
    replay: bool = False
    """Sent again by ``hookline replay`` (the retry attribute's replay flag, kept through every re-enqueue)."""

    @property
    def attempt(self) -> int:
        """This attempt's number (real attempts made before it, plus one)."""
        return self.state.attempt


@dataclass
class _ReadAhead:
    """What the batch read when it opened (a value, or the error the read raised), so records need no thread hop."""

    parsed: dict[str, _Parsed] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)


class DeliveryBatch:
    """One batch: ``with service.batch(records, context) as batch:`` then ``batch.deliver`` per record."""

    def __init__(
        self, service: DeliveryService, records: Sequence[Mapping[str, Any]], context: LambdaContext | None
    ) -> None:
        self.service = service
        self.records = records
        self.context = context
        self.metrics = BatchMetrics()
        self.deadline: float | None = None
        self._read = _ReadAhead()
        self._requeue = RequeueBuffer(service.outbox.sqs)
        payloads = service.outbox.payloads
        self._payloads = PayloadRecorder(payloads) if payloads is not None else None
        request_id = getattr(context, "aws_request_id", None) if context is not None else None
        self._out = DeliveryLog(service.telemetry.logger, request_id=request_id)
        self._policy = RetryPolicy(service.settings.retry_schedule, expiry_slack_s=service.config.expiry_slack_s)
        stores, clocks = service.stores, service.clocks
        self._pacing = (
            PacingGate(stores.pacer, sleep=clocks.sleep, monotonic=clocks.monotonic) if stores.pacer else None
        )
        config = service.config
        self._marks = stores.slow_marks if config.slow_queue_url else None
        # The lane first (no I/O: a marked origin takes no pace lease and no breaker probe), then pace, then breaker.
        gates: list[Gate] = []
        if self._marks is not None:
            gates.append(LaneGate(self._marks, lane=config.lane, budget_s=config.request_budget_s))
        if self._pacing is not None:
            gates.append(self._pacing)
        if stores.breakers is not None:
            gates.append(BreakerGate(stores.breakers))
        self._gate = GateChain(gates) if gates else None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        if self.context is not None:
            remaining_s = self.context.get_remaining_time_in_millis() / 1000.0
            self.deadline = self.service.clocks.monotonic() + remaining_s - self.service.deadline_margin_s
        self._out.trim()
        self.service.run(self._open())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._close()

    async def _open(self) -> None:
        """Parse every record and read every endpoint, secret and breaker the batch needs, concurrently."""
        stores, read = self.service.stores, self._read
        for record in self.records:
            sqs_id = str(record.get("messageId", ""))
            read.parsed[sqs_id] = _parse_record(sqs_id, str(record.get("body", "")))
        messages = [parsed.message for parsed in read.parsed.values() if parsed.message is not None]
        names_needed = sorted({message.endpoint for message in messages if message.endpoint})
        endpoints = await asyncio.gather(
            *(asyncio.to_thread(stores.registry.get, name) for name in names_needed), return_exceptions=True
        )
        read.endpoints = dict(zip(names_needed, endpoints, strict=True))
        origins: set[str] = set()
        secret_ids: set[str] = set()
        due: list[DeliveryPlan] = []
        now = self.service.clocks.wall()
        for record in self.records:
            parsed = read.parsed[str(record.get("messageId", ""))]
            if parsed.message is None:
                continue
            try:
                plan = self._plan(parsed.message, "prefetch", read.endpoints)
            except Exception:  # noqa: BLE001 - each record meets its own error again when it is delivered
                continue
            origins.update(plan.origins)
            secret_ids.add(plan.secret_id)
            if not _waiting(self._state_of(record), now):
                due.append(plan)
        ordered_ids = sorted(secret_ids)
        work: list[Awaitable[Any]] = [asyncio.to_thread(stores.secrets.get, sid) for sid in ordered_ids]
        if stores.breakers is not None and origins:
            work.append(stores.breakers.prefetch_async(sorted(origins)))
        work.append(self._reserve(due, origins))
        # Failures here are not fatal: each record meets them again (and handles them) when it is delivered.
        results = await asyncio.gather(*work, return_exceptions=True)
        read.secrets = dict(zip(ordered_ids, results[: len(ordered_ids)], strict=True))

    async def _reserve(self, due: list[DeliveryPlan], origins: set[str]) -> None:
        """Read the slow marks, then take pace leases for the records due now that stay in this lane."""
        marks = self._marks
        if marks is not None and origins:
            await asyncio.to_thread(marks.prefetch, sorted(origins))
        if self._pacing is None:
            return
        if marks is not None and self.service.config.lane == "fast":
            due = [plan for plan in due if not marks.is_slow(plan.origins[0])]
        if due:
            await self._pacing.reserve(due)

    def _close(self) -> None:
        """Give back unused pace leases, flush breaker outcomes, emit metrics."""
        stores, telemetry = self.service.stores, self.service.telemetry
        if self._pacing is not None:
            self._pacing.close()
        if stores.breakers is not None:
            try:
                stores.breakers.flush()
            except Exception as error:  # noqa: BLE001 - the breaker fails open; outcomes are not worth a failed batch
                self._log(logging.WARNING, "breaker flush failed", error=type(error).__name__)
        if self._payloads is not None:
            not_kept = self._payloads.flush()
            if not_kept:  # best effort: delivery goes on; these ids cannot be replayed (docs/history.md)
                self._log(logging.WARNING, "payloads not kept", count=len(not_kept))
        if telemetry.breaker_events is not None:
            self.metrics.counts.update(telemetry.breaker_events.drain())
        if telemetry.emit is not None:
            telemetry.emit(self.metrics)

    # ------------------------------------------------------------------ helpers

    def _log(self, level: int, message: str, **fields: Any) -> None:
        self._out.write(level, message, **fields)

    def _line(self, job: _Job, outcome: LogOutcome, **fields: Any) -> None:
        """The record's one delivery log line (docs/contracts.md "Delivery log line")."""
        event_type = job.message.event_type if job.message is not None else None
        lane = self.service.config.lane
        line = LogLine(job.message_id, job.label, event_type, job.attempt, outcome, lane, replay=job.replay, **fields)
        self._out.line(line)

    def _tried_line(self, job: _Job, outcome: LogOutcome, result: AttemptResult, error: str, **fields: Any) -> None:
        """A line about an attempt: the target it ended on (the last one tried for real, else the last one)."""
        last = result.last_real or (result.targets[-1] if result.targets else None)
        if last is not None:
            fields.update(target=last.index, status=last.http_status, latency_ms=last.latency_ms)
        self._line(job, outcome, error=error, targets=result.targets, **fields)

    def _remaining(self) -> Callable[[], float] | None:
        deadline, monotonic = self.deadline, self.service.clocks.monotonic
        if deadline is None:
            return None
        return lambda: deadline - monotonic()

    def _plan(self, message: WebhookMessage, message_id: str, endpoints: Mapping[str, Any]) -> DeliveryPlan:
        allow_private = self.service.settings.allow_private_targets
        return resolve_plan(message, message_id, registry=_Prefetched(endpoints), allow_private=allow_private)

    # ------------------------------------------------------------------ one record

    async def deliver(self, record: SQSRecord) -> RecordResult:
        """The Powertools record handler: deliver one record; raises DeliveryDeferred when it must come back."""
        self._requeue.enter()
        try:
            return await self._deliver(record)
        finally:
            self._requeue.leave()

    def _state_of(self, record: Mapping[str, Any]) -> RetryState:
        """The record's retry state: its attribute, else its receive count (a raw record of the event)."""
        attribute = (record.get("messageAttributes") or {}).get(RETRY_ATTRIBUTE) or {}
        text = attribute.get("stringValue") if isinstance(attribute, dict) else None
        if text:
            try:
                return RetryState.decode(str(text))
            except RetryStateError as error:
                self._log(logging.WARNING, "retry state unreadable; counting receives instead", error=str(error))
        system = record.get("attributes") or {}
        sent_ms = str(system.get("SentTimestamp") or "")
        sent_at = int(sent_ms) / 1000 if sent_ms.isdigit() else self.service.clocks.wall()
        receives = attempt_number(system.get("ApproximateReceiveCount"))
        return RetryState.from_receive_count(receives, sent_at=sent_at)

    async def _deliver(self, record: SQSRecord) -> RecordResult:
        read = self._read
        parsed = read.parsed.get(record.message_id) or _parse_record(record.message_id, record.body or "")
        self._out.bind(parsed.message_id)
        job = _Job(
            record=record, message_id=parsed.message_id, state=self._state_of(record.raw_event), message=parsed.message
        )
        remaining = self._remaining()
        if remaining is not None and remaining() < MIN_REQUEST_S:
            return self._defer(job, "no time left in this invocation")
        if parsed.message is None:
            error = parsed.error
            assert error is not None
            job.label = _label_of_invalid(error.data)
            job.data = error.data
            return await self._dead_letter(job, error.reason, error.detail)
        message = parsed.message
        job.label = describe_target(message.endpoint, message.url)
        attributes = record.raw_event.get("messageAttributes") or {}
        job.replay = is_replay(attributes)
        if self._payloads is not None and RETRY_ATTRIBUTE not in attributes and job.state.attempts == 0:
            # Kept once, at first sight (a producer's message); retries and replays carry the retry attribute.
            self._payloads.remember(job.message_id, message.body, PayloadMeta.of(message))
        job.body = dead_letter_body(record.body or "", job.message_id, message=message)
        job.carried = carried_attributes(record.raw_event.get("messageAttributes") or {}, drop=RETRY_ATTRIBUTE)
        room = self._room_for_state(job)
        if room is not None:
            return await self._dead_letter(job, Reason.MESSAGE_TOO_LARGE, room)
        now = self.service.clocks.wall()
        if _waiting(job.state, now):
            # A wait longer than one SQS delay: hop again until it is due (no attempt, no change of state).
            assert job.state.due_at is not None
            delay = await self._requeue_job(job, job.state, job.state.due_at - now)
            self._line(job, LogOutcome.WAITING, delay_s=delay)
            return RecordResult(job.message_id, "waiting")
        if self._policy.expired(job.state, now):
            why = "it came back past its bounded age"  # said only when no receiver was ever tried
            return await self._give_up(job, GiveUp(job.state, Reason.EXPIRED), why)
        return await self._route(job, message)

    async def _route(self, job: _Job, message: WebhookMessage) -> RecordResult:
        """Resolve the message's delivery plan (read ahead, else off the loop), then sign and attempt it."""
        read, stores = self._read, self.service.stores
        try:
            if message.endpoint is None or message.endpoint in read.endpoints:
                plan = self._plan(message, job.message_id, read.endpoints)
            else:  # not read ahead (a record the batch was not opened with): read it off the loop
                allow_private = self.service.settings.allow_private_targets
                plan = await asyncio.to_thread(
                    resolve_plan, message, job.message_id, registry=stores.registry, allow_private=allow_private
                )
        except EventTypeFiltered:
            self._line(job, LogOutcome.FILTERED)  # the endpoint does not subscribe to this event type
            return RecordResult(job.message_id, "filtered")
        except PlanError as error:
            return await self._dead_letter(job, error.reason, error.detail)
        except Exception as error:  # noqa: BLE001 - throttled or unreachable: the record comes back as it is
            return self._defer(job, f"registry unavailable ({type(error).__name__})")
        return await self._sign(job, message, plan)

    async def _sign(self, job: _Job, message: WebhookMessage, plan: DeliveryPlan) -> RecordResult:
        """Fetch the plan's signing secret (read ahead, else off the loop), then make the attempt."""
        read, stores = self._read, self.service.stores
        try:
            if plan.secret_id in read.secrets:
                signing = _Prefetched(read.secrets).get(plan.secret_id)
            else:
                signing = await asyncio.to_thread(stores.secrets.get, plan.secret_id)
        except SecretError as error:
            if error.reason is None:
                return self._defer(job, str(error))
            return await self._dead_letter(job, error.reason, str(error))
        return await self._attempt(job, message, plan, signing)

    def _defer(self, job: _Job, why: str) -> NoReturn:
        """The record comes back as it is, after the queue's visibility timeout (reported in batchItemFailures)."""
        self._line(job, LogOutcome.DEFERRED, error=why)
        raise DeliveryDeferred(f"{job.message_id}: {why}")

    def _room_for_state(self, job: _Job) -> str | None:
        """Why the message cannot carry its retry state through a re-enqueue, or None when it can."""
        if len(job.carried) >= MAX_ATTRIBUTES:
            return (
                f"the message has {len(job.carried)} message attributes of its own; hookline needs one of the "
                f"{MAX_ATTRIBUTES} SQS allows to carry its retry state"
            )
        body_size = len(job.body.encode("utf-8"))
        # Retried: the body with the producer's attributes and the retry state. Dead-lettered later: the body with the
        # dead letter's attributes (not the producer's). Both must fit, or the record could never leave the queue.
        size = max(
            body_size + attributes_size(job.carried) + RETRY_ATTRIBUTE_RESERVE, body_size + letter_overhead(job.label)
        )
        if size > MAX_MESSAGE_BYTES:
            return (
                f"with its id and hookline's retry state (or a dead letter's attributes) the message would be {size} "
                f"bytes, over the {MAX_MESSAGE_BYTES} bytes SQS accepts, so it could not be retried"
            )
        return None

    async def _attempt(
        self, job: _Job, message: WebhookMessage, plan: DeliveryPlan, signing: SigningSecrets
    ) -> RecordResult:
        service = self.service
        clocks, transport = service.clocks, service.transport
        active = signing.active(datetime.fromtimestamp(clocks.wall(), tz=UTC))
        result = await attempt_delivery(
            plan,
            active,
            message.body,
            http=transport.client,
            gate=self._gate,
            send=transport.send,
            wall_clock=clocks.wall,
            monotonic=clocks.monotonic,
            remaining_s=self._remaining(),
            max_response_bytes=transport.max_response_bytes,
            budget_s=service.config.budget_s,
        )
        self._count(result)
        last_error = scrub(result.last_error, _secret_strings(signing))
        if result.outcome is Outcome.DELIVERED:
            served = result.targets[-1]
            self._line(
                job, LogOutcome.DELIVERED, target=served.index, status=served.http_status, latency_ms=served.latency_ms
            )
            return RecordResult(job.message_id, "delivered")
        now = clocks.wall()
        tried = job.state.failed(now, real=result.real, status=result.last_status, error=last_error)
        if result.outcome is Outcome.GONE:
            await self._disable_gone(plan, result)
            return await self._give_up(job, GiveUp(tried, Reason.ENDPOINT_GONE), last_error, result)
        if result.outcome is Outcome.REFUSED:
            return await self._give_up(job, GiveUp(tried, Reason.TARGET_REFUSED), last_error, result)
        if result.outcome is Outcome.OUT_OF_TIME:
            return self._defer(job, "no time left in this invocation")
        if not result.real and result.count("slow") and self._marks is not None:
            return await self._to_slow_lane(job, result, last_error)
        if not result.real and result.count("paced"):
            return await self._pace(job, result, now, plan)
        failure = Failure(
            result.real, result.last_status, last_error, result.retry_after_s, result.breaker_retry_after_s
        )
        step = self._policy.after_failure(job.state, failure, now=now, random=clocks.random)
        if isinstance(step, GiveUp):
            return await self._give_up(job, step, last_error, result)
        await self._requeue_job(job, step.state, step.delay_s, plan)
        self.metrics.count(names.DELIVERY_RETRIED)
        self._tried_line(job, LogOutcome.RETRY, result, last_error, delay_s=step.delay_s)
        return RecordResult(job.message_id, "retry")

    async def _to_slow_lane(self, job: _Job, result: AttemptResult, last_error: str) -> RecordResult:
        """Cut by the budget, or marked slow: the record moves to the slow lane at once, no attempt used."""
        queue_url = self.service.config.slow_queue_url
        await self._requeue_job(job, job.state, 0, queue_url=queue_url)
        self.metrics.count(names.DELIVERY_SLOW_LANE)
        self._tried_line(job, LogOutcome.SLOW_LANE, result, last_error)
        return RecordResult(job.message_id, "slow_lane")

    async def _pace(self, job: _Job, result: AttemptResult, now: float, plan: DeliveryPlan) -> RecordResult:
        """Over the endpoint's pace: wait as long as the pacer says; no attempt used, no age added."""
        wait = max(result.soonest("paced") or 1.0, 1.0)
        delay = await self._requeue_job(job, job.state.paced(now, math.ceil(wait)), math.ceil(wait), plan)
        self.metrics.count(names.DELIVERY_PACED)
        self._line(job, LogOutcome.PACED, delay_s=delay)
        return RecordResult(job.message_id, "paced")

    def _destination(self, job: _Job, plan: DeliveryPlan | None) -> str:
        """Where a record waits: the slow lane while an origin of its plan is marked slow, else the retry queue; a
        record hopping on (no plan read) stays in its lane."""
        config = self.service.config
        source = queue_url_from_arn(job.record.event_source_arn)
        marks = self._marks
        if plan is not None and marks is not None and any(marks.is_slow(origin) for origin in plan.origins):
            return config.slow_queue_url
        if plan is None and config.lane == "slow":
            return source
        return config.retry_queue_url or source

    async def _requeue_job(
        self,
        job: _Job,
        state: RetryState,
        delay_s: float,
        plan: DeliveryPlan | None = None,
        *,
        queue_url: str | None = None,
    ) -> int:
        """Send the record again (its id in the body, ``state`` in its attribute) to wait ``delay_s``, at most 900 s
        (returned), to ``queue_url`` or where it belongs (``_destination``)."""
        room = MAX_MESSAGE_BYTES - len(job.body.encode("utf-8")) - attributes_size(job.carried)
        error_room = min(MAX_LAST_ERROR_BYTES, room - RETRY_ATTRIBUTE_RESERVE)
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            **job.carried,
            RETRY_ATTRIBUTE: {"DataType": "String", "StringValue": state.encode(max_error_bytes=error_room)},
        }
        destination = queue_url or self._destination(job, plan)
        parking = self.service.outbox.parking
        if parking is not None and state.due_at is not None and parking.should_park(delay_s):
            name = schedule_name(job.message_id, attributes[RETRY_ATTRIBUTE]["StringValue"])
            entry = Entry(job.body, attributes)
            if await asyncio.to_thread(parking.park, destination, entry, due_at=state.due_at, name=name):
                self.metrics.count(names.DELIVERY_PARKED)
                return math.ceil(delay_s)
        delay = min(MAX_DELAY_S, max(0, math.ceil(delay_s)))
        try:
            await self._requeue.send(destination, Entry(job.body, attributes, delay))
        except RequeueError as error:
            self._defer(job, f"not re-enqueued ({error})")
        return delay

    def _count(self, result: AttemptResult) -> None:
        metrics = self.metrics
        if result.skipped:
            metrics.count(names.BREAKER_REJECTED, result.skipped)
        for target in result.requests:
            metrics.latency(target.latency_ms or 0.0)
        if not result.real:
            return  # only real attempts count (a skip is counted above, a deadline cut not at all)
        metrics.count(names.DELIVERY_ATTEMPTS)
        if result.outcome is Outcome.DELIVERED:
            metrics.count(names.DELIVERY_SUCCEEDED)
            if result.used_fallback:
                metrics.count(names.FALLBACK_USED)
        else:
            metrics.count(names.DELIVERY_FAILED)

    async def _disable_gone(self, plan: DeliveryPlan, result: AttemptResult) -> None:
        if plan.endpoint is None:
            return
        gone = result.targets[-1]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.service.clocks.wall()))
        reason = f"410 Gone from {gone.origin} at {stamp} (webhook {plan.message_id})"
        try:
            await asyncio.to_thread(self.service.stores.registry.disable, plan.endpoint.name, reason)
        except EndpointNotFoundError:
            return
        except Exception as error:  # noqa: BLE001 - the message is still dead-lettered; the next 410 tries again
            self._log(logging.ERROR, "could not disable endpoint", endpoint=plan.label, error=type(error).__name__)
            return
        self._log(logging.WARNING, "endpoint disabled: receiver answered 410 Gone", endpoint=plan.label)

    async def _give_up(
        self, job: _Job, step: GiveUp, this_error: str, result: AttemptResult | None = None
    ) -> RecordResult:
        """Dead-letter with the last REAL status and error (a breaker's refusal only when nothing was ever tried)."""
        state = step.state
        error = state.last_error or (f"no attempt reached a receiver: {this_error}" if this_error else "")
        return await self._dead_letter(job, step.reason, error, state=state, result=result)

    async def _dead_letter(
        self,
        job: _Job,
        reason: Reason,
        last_error: str,
        *,
        state: RetryState | None = None,
        result: AttemptResult | None = None,
    ) -> RecordResult:
        """Dead-letter ``job`` (attempts and last status from ``state``, default the record's own)."""
        state = state or job.state
        raw = job.record.body or ""
        body = dead_letter_body(raw, job.message_id, message=job.message, data=job.data)
        if len(body.encode("utf-8")) + letter_overhead(job.label) > MAX_MESSAGE_BYTES:
            body = raw  # its id would not fit beside the reason (message_too_large): the producer's bytes, as sent
        letter = DeadLetter(
            body=body,
            reason=reason,
            endpoint=job.label,
            attempts=state.attempts,
            last_status=state.last_status,
            last_error=last_error,
        )
        # An SQS error propagates: the record is then reported as failed and comes back, never lost.
        await asyncio.to_thread(self.service.outbox.dead_letters.send, letter)
        self.metrics.dead_letter(reason)
        if result is not None:
            self._tried_line(job, LogOutcome.DEAD_LETTERED, result, last_error, reason=str(reason))
        else:
            line_status = state.last_status
            self._line(job, LogOutcome.DEAD_LETTERED, status=line_status, reason=str(reason), error=last_error)
        return RecordResult(job.message_id, "dead_lettered", reason)


def _waiting(state: RetryState, now: float) -> bool:
    """Whether a record came back before its due time (a wait longer than one SQS delay hops on)."""
    return state.due_at is not None and state.due_at - now >= _EARLY_S


def _parse_record(sqs_message_id: str, body: str) -> _Parsed:
    parsed = _Parsed(message_id=derive_id(sqs_message_id))
    try:
        parsed.message = parse_message(body)
    except MessageError as error:
        parsed.error = error
    else:
        parsed.message_id = parsed.message.id or parsed.message_id
    return parsed


class _Prefetched:
    """A registry stand-in answering from values read ahead (errors read ahead are re-raised)."""

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
