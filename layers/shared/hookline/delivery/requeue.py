"""Re-enqueueing: a record to try later is sent again (SendMessageBatch, with DelaySeconds) and only then done.

Each record awaits its own entry: the record handler reports the record done only after SQS accepted that entry, and
a record whose entry failed raises ``RequeueError`` (it is then reported in batchItemFailures and comes back after the
queue's visibility timeout, never lost). Send first, delete after: a crash in between leaves two copies with the same
webhook-id (the id is in the body), never none.

Entries of concurrent records share SendMessageBatch calls (at most 10 entries and 256 KB each): a batch goes out
when it is full, when every record still working in the batch is waiting on the buffer, or after ``linger_s``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hookline.exceptions import HooklineError
from hookline.messages import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from hookline.delivery.gates import Offload

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_DELAY_S",
    "Entry",
    "RequeueBuffer",
    "RequeueError",
    "attributes_size",
    "carried_attributes",
]

MAX_DELAY_S = 900
"""SQS DelaySeconds cannot go beyond 15 minutes: longer waits hop (or are parked, see ``hookline.delivery.parking``)."""
MAX_ATTRIBUTES = 10
"""Message attributes SQS allows per message (hookline uses one; producers may use the rest)."""
_MAX_ENTRIES = 10
_MAX_BATCH_BYTES = MAX_MESSAGE_BYTES
_DEFAULT_LINGER_S = 0.05


class RequeueError(HooklineError):
    """SQS did not accept this record's entry; the record must come back through batchItemFailures."""


def carried_attributes(record_attributes: Mapping[str, Any], *, drop: str) -> dict[str, MessageAttributeValueTypeDef]:
    """A record's message attributes (Lambda's camelCase shape) in SendMessage's shape, ``drop`` left out."""
    carried: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in record_attributes.items():
        if name == drop or not isinstance(value, dict):
            continue
        data_type = str(value.get("dataType") or "String")
        if value.get("binaryValue") is not None:
            carried[name] = {"DataType": data_type, "BinaryValue": base64.b64decode(value["binaryValue"])}
        elif value.get("stringValue") is not None:
            carried[name] = {"DataType": data_type, "StringValue": str(value["stringValue"])}
    return carried


def attributes_size(attributes: Mapping[str, MessageAttributeValueTypeDef]) -> int:
    """Bytes the attributes add to a message's size (name, type and value, as SQS counts them)."""
    total = 0
    for name, value in attributes.items():
        total += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        binary = value.get("BinaryValue")
        if binary is not None:
            total += len(binary) if isinstance(binary, bytes | bytearray) else len(str(binary).encode())
        else:
            total += len(str(value.get("StringValue", "")).encode())
    return total


@dataclass(frozen=True)
class Entry:
    """One message to send: body, attributes, delay (at most 900 s)."""

    body: str
    attributes: Mapping[str, MessageAttributeValueTypeDef]
    delay_s: int = 0

    @property
    def size(self) -> int:
        """The message's size as SQS counts it (body plus attributes)."""
        return len(self.body.encode("utf-8")) + attributes_size(self.attributes)


@dataclass
class _Pending:
    entry: Entry
    done: asyncio.Future[str]


@dataclass
class _Queue:
    pending: list[_Pending] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class RequeueBuffer:
    """Sends the entries of one batch's records with SendMessageBatch; each record awaits its own entry."""

    def __init__(
        self, sqs: SQSClient, *, offload: Offload = asyncio.to_thread, linger_s: float = _DEFAULT_LINGER_S
    ) -> None:
        self._sqs = sqs
        self._offload = offload
        self._linger_s = linger_s
        self._queues: dict[str, _Queue] = {}
        self._active = 0
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        """SendMessageBatch calls made (for metrics and benchmarks)."""

    # ------------------------------------------------------------------ record accounting

    def enter(self) -> None:
        """A record of the batch started working."""
        self._active += 1

    def leave(self) -> None:
        """A record of the batch finished; its departure may complete a batch of waiting entries."""
        self._active -= 1
        self._flush_if_idle()

    # ------------------------------------------------------------------ sending

    async def send(self, queue_url: str, entry: Entry) -> str:
        """Send ``entry`` to ``queue_url`` (shared with other records' entries); the new MessageId, or RequeueError."""
        if entry.delay_s > MAX_DELAY_S:
            raise ValueError(f"DelaySeconds must be at most {MAX_DELAY_S}, got {entry.delay_s}")
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(queue_url, _Queue())
        pending = _Pending(entry, loop.create_future())
        queue.pending.append(pending)
        if len(queue.pending) >= _MAX_ENTRIES:
            self._flush(queue_url)
        else:
            self._flush_if_idle()
            if queue.pending and queue.timer is None:
                queue.timer = loop.call_later(self._linger_s, self._flush, queue_url)
        return await pending.done

    def _waiting(self) -> int:
        return sum(len(queue.pending) for queue in self._queues.values())

    def _flush_if_idle(self) -> None:
        # Every record still working is waiting on this buffer: nobody else will add an entry, send now.
        if self._waiting() and self._waiting() >= self._active:
            for queue_url in list(self._queues):
                self._flush(queue_url)

    def _flush(self, queue_url: str) -> None:
        queue = self._queues.get(queue_url)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        while queue.pending:
            task = asyncio.get_running_loop().create_task(self._send_chunk(queue_url, _take_chunk(queue.pending)))
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)

    async def _send_chunk(self, queue_url: str, chunk: list[_Pending]) -> None:
        ids = {f"r{next(self._ids)}": item for item in chunk}
        entries = [
            {
                "Id": entry_id,
                "MessageBody": item.entry.body,
                "DelaySeconds": item.entry.delay_s,
                "MessageAttributes": dict(item.entry.attributes),
            }
            for entry_id, item in ids.items()
        ]
        self.requests += 1
        try:
            response = await self._offload(self._sqs.send_message_batch, QueueUrl=queue_url, Entries=entries)
        except Exception as error:  # noqa: BLE001 - every entry of the call failed; each record comes back
            _fail_all(ids.values(), f"SendMessageBatch failed: {type(error).__name__}")
            return
        for success in response.get("Successful", []):
            item = ids.pop(str(success.get("Id")), None)
            if item is not None and not item.done.done():
                item.done.set_result(str(success.get("MessageId", "")))
        failures = {str(failure.get("Id")): failure for failure in response.get("Failed", [])}
        for entry_id, item in ids.items():
            failure = failures.get(entry_id, {})
            detail = f"{failure.get('Code', 'no answer for this entry')}: {failure.get('Message', '')}".strip(": ")
            if not item.done.done():
                item.done.set_exception(RequeueError(f"SendMessageBatch entry refused ({detail})"))


def _take_chunk(pending: list[_Pending]) -> list[_Pending]:
    """Take up to 10 entries from the front whose total size fits one SendMessageBatch call."""
    chunk: list[_Pending] = []
    size = 0
    while pending and len(chunk) < _MAX_ENTRIES:
        next_size = pending[0].entry.size
        if chunk and size + next_size > _MAX_BATCH_BYTES:
            break
        chunk.append(pending.pop(0))
        size += next_size
    return chunk


def _fail_all(items: Any, detail: str) -> None:
    for item in items:
        if not item.done.done():
            item.done.set_exception(RequeueError(detail))
