"""SQS event source mapping emulator: Lambda's poller, batching window and ReportBatchItemFailures semantics."""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hookline_local.events import sqs_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookline_local.invoke import Invoker, InvokeResult
    from hookline_local.resolve import SqsMappingSpec

__all__ = ["BatchOutcome", "MappingStats", "SqsEventSourceMapping", "failed_item_ids"]

_log = logging.getLogger("hookline.local")
_MAX_RECEIVE = 10  # ReceiveMessage returns at most 10 messages
_MAX_WAIT_S = 20  # ...and long-polls at most 20 s
_MAX_PARALLEL_CALLS = 10  # receives that fill one batch, or DeleteMessageBatch calls that settle it, made at once


def failed_item_ids(payload: Any, message_ids: set[str]) -> set[str] | None:
    """The messages to keep from a ReportBatchItemFailures response, or None when Lambda fails the whole batch.

    Lambda treats a null or empty response and a null or empty batchItemFailures as complete success; an item
    without a string itemIdentifier, an empty one, or one naming a message not in the batch, and any response
    that is not an object, as complete failure.
    """
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in message_ids:
            return None
        failed.add(identifier)
    return failed


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to one batch."""

    request_id: str
    message_ids: tuple[str, ...]
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    batch_failed: bool
    error: str | None = None
    bodies: tuple[str, ...] = ()
    """The message bodies, in ``message_ids`` order (what a crashed batch held, for tests and diagnostics)."""


@dataclass
class MappingStats:
    """Running totals for one mapping."""

    batches: int = 0
    records: int = 0
    deleted: int = 0
    item_failures: int = 0
    batch_failures: int = 0
    timeouts: int = 0
    crashes: int = 0
    billed_ms: int = 0
    """Invocation time as Lambda bills it (each invocation's duration rounded up to the millisecond)."""
    last_error: str | None = None
    outcomes: list[BatchOutcome] = field(default_factory=list)


class SqsEventSourceMapping:
    """Polls one queue and invokes one function with Lambda's batching and response handling.

    Redrive is left to the queue: a message the function keeps failing is received again until the queue's
    maxReceiveCount moves it to its dead-letter queue, exactly as with Lambda.
    """

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        spec: SqsMappingSpec,
        *,
        sqs: Any,
        invoker_factory: Callable[[], Invoker],
        region: str = "us-east-1",
        poll_wait_s: int = 1,
        keep_outcomes: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self._sqs = sqs
        self._invoker_factory = invoker_factory
        self._region = region
        # Short idle polls so stop() is prompt; Lambda's pollers long-poll 20 s, which only changes idle cost.
        self._poll_wait_s = max(0, min(_MAX_WAIT_S, poll_wait_s))
        self._keep_outcomes = keep_outcomes
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._invokers: list[Invoker] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        # Filling a batch of 100 takes 10 receives and settling it 10 deletes: made one after the other they held
        # each poller longer than its invocation (bench/scale.py). Lambda's pollers do not wait on each in turn.
        self._calls = ThreadPoolExecutor(_MAX_PARALLEL_CALLS, thread_name_prefix=f"esm-{spec.logical_id}-sqs")
        self.stats = MappingStats()

    @property
    def in_flight(self) -> int:
        """Batches received and not yet settled."""
        with self._lock:
            return self._in_flight

    @property
    def invokers(self) -> list[Invoker]:
        """One execution environment per concurrent poller."""
        return list(self._invokers)

    def start(self) -> None:
        """Start one poller per unit of maximum concurrency."""
        if self._threads or not self.spec.enabled:
            return
        self._stop.clear()
        for index in range(max(1, self.spec.maximum_concurrency)):
            invoker = self._invoker_factory()
            self._invokers.append(invoker)
            thread = threading.Thread(
                target=self._run, args=(invoker,), name=f"esm-{self.spec.logical_id}-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop polling; an in-flight batch may finish within ``grace_s``, else its environment is killed and the
        batch is left to the visibility timeout (nothing deleted)."""
        self._stop.set()
        deadline = self._clock() + grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        for invoker, thread in zip(self._invokers, self._threads, strict=True):
            if thread.is_alive():
                invoker.kill()
                thread.join(5.0)
        # Environments end in parallel: a worker still importing its code would otherwise hold up the rest.
        closers = [threading.Thread(target=invoker.close, daemon=True) for invoker in self._invokers]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(10.0)
        self._threads.clear()
        self._invokers.clear()
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._calls = ThreadPoolExecutor(_MAX_PARALLEL_CALLS, thread_name_prefix=f"esm-{self.spec.logical_id}-sqs")

    def _run(self, invoker: Invoker) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(invoker)
            except Exception:  # a poller survives a failed receive (or a bug), like Lambda's; it is logged
                _log.exception("%s: polling failed", self.spec.logical_id)
                self._stop.wait(1.0)

    def poll_once(self, invoker: Invoker) -> BatchOutcome | None:
        """One poller iteration: gather a batch (long poll + batching window), invoke, settle; None if idle."""
        batch: list[dict[str, Any]] = []
        try:
            self._gather(batch)
            if not batch or self._stop.is_set():
                return None  # received but not invoked when stopping: the visibility timeout returns them
            return self.process_batch(batch, invoker)
        finally:
            if batch:
                with self._lock:
                    self._in_flight -= 1

    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.spec.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self, batch: list[dict[str, Any]]) -> None:
        """Fill ``batch`` up to BatchSize: one long poll, then more until it is full or the batching window closes.

        After the first receive, the receives for the room left (10 messages each) are made at once.
        """
        batch_size = max(1, self.spec.batch_size)
        if self._stop.is_set():
            return
        messages = self._receive(min(_MAX_RECEIVE, batch_size), self._poll_wait_s)
        if not messages:
            return
        with self._lock:
            self._in_flight += 1
        batch.extend(messages)
        if self.spec.maximum_batching_window_s <= 0:
            return
        window_ends = self._clock() + self.spec.maximum_batching_window_s
        while len(batch) < batch_size and not self._stop.is_set():
            remaining = window_ends - self._clock()
            if remaining <= 0:
                return
            wait_s = min(_MAX_WAIT_S, int(remaining))
            room = batch_size - len(batch)
            counts = [min(_MAX_RECEIVE, room - start) for start in range(0, room, _MAX_RECEIVE)]
            counts = counts[:_MAX_PARALLEL_CALLS]
            received = list(self._calls.map(self._receive, counts, [wait_s] * len(counts)))
            batch.extend(message for messages in received for message in messages)
            if wait_s == 0 and not any(received):
                self._sleep(min(0.05, max(0.0, window_ends - self._clock())))

    def process_batch(self, messages: list[dict[str, Any]], invoker: Invoker) -> BatchOutcome:
        """Invoke the function with one batch and settle it the way Lambda does."""
        # A message whose visibility ran out during the batching window is received twice: keep the latest receive
        # (only its receipt handle is valid) so that every messageId appears once.
        latest = {message["MessageId"]: message for message in messages}
        messages = list(latest.values())
        event = sqs_event(messages, queue_arn=self.spec.queue_arn, region=self._region)
        ids = tuple(message["MessageId"] for message in messages)
        result = invoker.invoke(event)
        outcome = replace(self._settle(messages, ids, result), bodies=tuple(m.get("Body", "") for m in messages))
        with self._lock:
            stats = self.stats
            stats.batches += 1
            stats.records += len(ids)
            stats.deleted += len(outcome.deleted)
            stats.item_failures += 0 if outcome.batch_failed else len(outcome.kept)
            stats.batch_failures += int(outcome.batch_failed)
            stats.timeouts += int(result.timed_out)
            stats.billed_ms += math.ceil(result.duration_ms)
            stats.crashes += int(result.crashed)
            if outcome.error:
                stats.last_error = outcome.error
            stats.outcomes.append(outcome)
            del stats.outcomes[: -self._keep_outcomes]
        return outcome

    def _settle(self, messages: list[dict[str, Any]], ids: tuple[str, ...], result: InvokeResult) -> BatchOutcome:
        if not result.ok:
            error = f"{result.error_type}: {result.error_message}"
            _log.warning(
                "%s: batch of %d failed (%s); left to the visibility timeout", self.spec.logical_id, len(ids), error
            )
            return BatchOutcome(result.request_id, ids, (), ids, True, error)
        failed: set[str] | None = set()
        if self.spec.report_batch_item_failures:
            failed = failed_item_ids(result.payload, set(ids))
        if failed is None:
            error = f"invalid batchItemFailures response: {str(result.payload)[:200]}"
            _log.warning("%s: %s; the whole batch failed", self.spec.logical_id, error)
            return BatchOutcome(result.request_id, ids, (), ids, True, error)
        to_delete = [message for message in messages if message["MessageId"] not in failed]
        deleted = self._delete(to_delete)
        kept = tuple(message_id for message_id in ids if message_id in failed)
        return BatchOutcome(result.request_id, ids, tuple(deleted), kept, False)

    def _delete(self, messages: list[dict[str, Any]]) -> list[str]:
        chunks = [messages[start : start + _MAX_RECEIVE] for start in range(0, len(messages), _MAX_RECEIVE)]
        return [message_id for deleted in self._calls.map(self._delete_chunk, chunks) for message_id in deleted]

    def _delete_chunk(self, chunk: list[dict[str, Any]]) -> list[str]:
        """DeleteMessageBatch of up to 10 messages; the ids deleted (a failure is logged: the message comes back)."""
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        try:
            response = self._sqs.delete_message_batch(QueueUrl=self.spec.queue_url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - undeleted messages come back: a duplicate, as on Lambda
            _log.warning("%s: delete failed: %s", self.spec.logical_id, exc)
            return []
        ok = {entry["Id"] for entry in response.get("Successful", [])}
        for failure in response.get("Failed", []):
            _log.warning("%s: delete failed: %s", self.spec.logical_id, failure)
        return [chunk[int(i)]["MessageId"] for i in sorted(ok, key=int)]

    def wait_idle(self, timeout_s: float = 60.0, *, poll_s: float = 0.2) -> bool:
        """Wait until no batch is in flight and the queue holds nothing (visible, in flight or delayed)."""
        deadline = self._clock() + timeout_s
        quiet = 0
        while self._clock() < deadline:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.spec.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            pending = sum(int(value) for value in attributes.values())
            quiet = quiet + 1 if pending == 0 and self.in_flight == 0 else 0
            if quiet >= 2:  # two quiet looks in a row: nothing was between receive and settle
                return True
            self._sleep(poll_s)
        return False
