"""Reading and redriving the dead-letter queue selectively, without consuming what is only looked at.

SQS cannot peek, and StartMessageMoveTask cannot filter, so both operations receive messages with a visibility
timeout, hold what they do not act on, and release it (visibility 0) when done. Redrive sends to the delivery
queue first and deletes from the DLQ after: an interruption between the two can duplicate a message (same body,
same webhook id, so receivers deduplicate) but never lose one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from hookline.delivery.deadletter import dead_letter_body
from hookline.messages import derive_id
from hookline.metrics import Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "NO_REASON",
    "REASONS",
    "DeadLetter",
    "DeadLetterFilter",
    "RedriveResult",
    "peek",
    "redrive",
]

NO_REASON = "none"
"""Filter value for messages without a reason: moved by the queue's own redrive policy (crashes, timeouts)."""
REASONS: tuple[str, ...] = (*sorted(reason.value for reason in Reason), NO_REASON)
_BATCH = 10
_ALREADY_VISIBLE = frozenset({"MessageNotInflight", "ReceiptHandleIsInvalid", "InvalidParameterValue"})


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message: its attributes (docs/contracts.md "Dead-letter message") and body."""

    message_id: str
    receipt_handle: str
    body: str
    webhook_id: str
    reason: str | None
    endpoint: str | None
    attempts: int | None
    last_status: int | None
    last_error: str | None
    failed_at: str | None
    event_type: str | None
    receive_count: int

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> DeadLetter:
        """Parse a ReceiveMessage entry (attributes may be missing: the queue's own redrive adds none)."""
        attributes = message.get("MessageAttributes") or {}

        def text(key: str) -> str | None:
            value = attributes.get(key, {}).get("StringValue")
            return str(value) if value not in (None, "") else None

        def number(key: str) -> int | None:
            value = text(key)
            try:
                return int(float(value)) if value is not None else None
            except ValueError:
                return None

        body = str(message.get("Body", ""))
        data = _json_object(body)
        webhook_id = data.get("id") if isinstance(data, dict) else None
        event_type = data.get("event_type") if isinstance(data, dict) else None
        system = message.get("Attributes") or {}
        return cls(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            body=body,
            webhook_id=webhook_id if isinstance(webhook_id, str) else derive_id(str(message["MessageId"])),
            reason=text("reason"),
            endpoint=text("endpoint"),
            attempts=number("attempts"),
            last_status=number("last_status"),
            last_error=text("last_error"),
            failed_at=text("failed_at"),
            event_type=event_type if isinstance(event_type, str) else None,
            receive_count=int(system.get("ApproximateReceiveCount", 0) or 0),
        )

    def redrive_body(self) -> str:
        """The body to put back on the delivery queue: unchanged, except that an id-less message gets its id."""
        return dead_letter_body(self.body, self.webhook_id, data=_json_object(self.body))

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys) of ``hookline dlq list``."""
        return {
            "message_id": self.message_id,
            "webhook_id": self.webhook_id,
            "reason": self.reason,
            "endpoint": self.endpoint,
            "event_type": self.event_type,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "failed_at": self.failed_at,
            "receive_count": self.receive_count,
        }


def _json_object(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a command acts on (None = any)."""

    reason: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; expected one of {', '.join(REASONS)}")

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` passes the filter."""
        if self.reason is not None and (letter.reason or NO_REASON) != self.reason:
            return False
        return self.endpoint is None or letter.endpoint == self.endpoint


@dataclass
class RedriveResult:
    """What a redrive did. ``duplicated`` messages are on the delivery queue and also still in the DLQ.

    ``skipped`` counts the other messages seen and left in the DLQ; ``returned`` the ones redriven by this run that
    failed again at once and came back (same webhook id, left there). ``scan_complete`` is False when the run
    stopped before it had seen the whole DLQ (``--limit`` reached, or an error): more messages may be left.
    """

    matched: int = 0
    redriven: int = 0
    skipped: int = 0
    returned: int = 0
    send_failed: int = 0
    duplicated: int = 0
    scan_complete: bool = True
    errors: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys) of ``hookline dlq redrive``."""
        return {
            "matched": self.matched,
            "redriven": self.redriven,
            "skipped": self.skipped,
            "returned": self.returned,
            "send_failed": self.send_failed,
            "duplicated": self.duplicated,
            "scan_complete": self.scan_complete,
            "errors": list(self.errors),
        }


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', 'Error')}: {detail.get('Message', '')}".rstrip(": ")
    return str(error) or type(error).__name__


class _Receiver:
    """Receives every message of a queue once, holding each until released."""

    def __init__(self, client: Any, queue_url: str, *, visibility_s: int, wait_s: int) -> None:
        self.client = client
        self.queue_url = queue_url
        self._visibility_s = visibility_s
        self._wait_s = wait_s
        self._seen: set[str] = set()
        self.held: dict[str, str] = {}  # MessageId -> ReceiptHandle, to release at the end

    def batches(self) -> Iterator[list[DeadLetter]]:
        """Batches of messages not seen before, until the queue has no more (or only repeats)."""
        while True:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=_BATCH,
                VisibilityTimeout=self._visibility_s,
                WaitTimeSeconds=self._wait_s,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
            letters = [DeadLetter.from_sqs(message) for message in response.get("Messages", [])]
            fresh = [letter for letter in letters if letter.message_id not in self._seen]
            for letter in letters:
                self.held[letter.message_id] = letter.receipt_handle
            if not fresh:
                return
            self._seen.update(letter.message_id for letter in fresh)
            yield fresh

    def forget(self, letters: Sequence[DeadLetter]) -> None:
        """Stop holding messages that were deleted."""
        for letter in letters:
            self.held.pop(letter.message_id, None)

    def release_all(self) -> list[str]:
        """Make every held message visible again at once; returns errors (the timeout releases them anyway)."""
        errors: list[str] = []
        items = list(self.held.items())
        for start in range(0, len(items), _BATCH):
            chunk = items[start : start + _BATCH]
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, (_, handle) in enumerate(chunk)
            ]
            try:
                response = self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                errors.append(f"could not release {len(chunk)} message(s): {_describe(error)}")
                continue
            # A message whose hold already ran out (a long scan) is visible again: nothing to release.
            failed = [entry for entry in response.get("Failed", []) if entry.get("Code") not in _ALREADY_VISIBLE]
            if failed:
                errors.append(f"could not release {len(failed)} message(s): {failed[0].get('Message', '')}")
        self.held.clear()
        return errors


def peek(  # noqa: PLR0913 - client, queue and filter, then the receive knobs as keywords
    client: Any,
    queue_url: str,
    *,
    where: DeadLetterFilter,
    limit: int,
    visibility_s: int = 60,
    wait_s: int = 1,
) -> tuple[list[DeadLetter], list[str]]:
    """Up to ``limit`` matching dead letters, without consuming any; returns (letters, release errors)."""
    receiver = _Receiver(client, queue_url, visibility_s=visibility_s, wait_s=wait_s)
    found: list[DeadLetter] = []
    try:
        for batch in receiver.batches():
            found.extend(letter for letter in batch if where.matches(letter))
            if len(found) >= limit:
                break
    finally:
        errors = receiver.release_all()
    return found[:limit], errors


def redrive(  # noqa: PLR0913 - client, both queues and filter, then the receive knobs as keywords
    client: Any,
    dead_letter_queue_url: str,
    delivery_queue_url: str,
    *,
    where: DeadLetterFilter,
    limit: int | None = None,
    visibility_s: int = 120,
    wait_s: int = 1,
    progress: Callable[[RedriveResult], None] | None = None,
) -> RedriveResult:
    """Move matching dead letters back to the delivery queue: send first, delete after, release the rest."""
    receiver = _Receiver(client, dead_letter_queue_url, visibility_s=visibility_s, wait_s=wait_s)
    result = RedriveResult()
    # A redriven message that fails again at once (say, its endpoint is still disabled) comes back to the DLQ as
    # a new message with the same webhook id while this run is still scanning: leave it there, do not loop.
    moved: set[str] = set()
    try:
        for batch in receiver.batches():
            wanted: list[DeadLetter] = []
            for letter in batch:
                if letter.webhook_id in moved:
                    result.returned += 1
                elif where.matches(letter) and (limit is None or result.matched < limit):
                    result.matched += 1
                    moved.add(letter.webhook_id)
                    wanted.append(letter)
                else:
                    result.skipped += 1
            if wanted and not _move(receiver, delivery_queue_url, wanted, result):
                result.scan_complete = False
                break
            if progress is not None:
                progress(result)
            if limit is not None and result.matched >= limit:
                result.scan_complete = False
                break
    finally:
        result.errors.extend(receiver.release_all())
    return result


def _move(receiver: _Receiver, delivery_queue_url: str, letters: list[DeadLetter], result: RedriveResult) -> bool:
    """Send one batch to the delivery queue, then delete what was sent from the DLQ; False when the run must stop."""
    client = receiver.client
    entries = [{"Id": str(index), "MessageBody": letter.redrive_body()} for index, letter in enumerate(letters)]
    try:
        response = client.send_message_batch(QueueUrl=delivery_queue_url, Entries=entries)
    except (ClientError, BotoCoreError) as error:
        # Nothing was deleted: every message of the batch is still in the DLQ (released at the end).
        result.send_failed += len(letters)
        result.errors.append(f"sending to the delivery queue failed: {_describe(error)}")
        return False
    sent = [letters[int(entry["Id"])] for entry in response.get("Successful", [])]
    failed = response.get("Failed", [])
    if failed:
        result.send_failed += len(failed)
        result.errors.append(f"{len(failed)} message(s) not accepted by the delivery queue: {failed[0].get('Code')}")
    if not sent:
        return not failed
    delete_entries = [{"Id": str(index), "ReceiptHandle": letter.receipt_handle} for index, letter in enumerate(sent)]
    try:
        deleted = client.delete_message_batch(QueueUrl=receiver.queue_url, Entries=delete_entries)
    except (ClientError, BotoCoreError) as error:
        # Sent but still in the DLQ: a duplicate with the same webhook id, never a loss. Stop here.
        result.duplicated += len(sent)
        result.errors.append(f"deleting redriven messages from the DLQ failed: {_describe(error)}")
        return False
    not_deleted = {int(entry["Id"]) for entry in deleted.get("Failed", [])}
    done = [letter for index, letter in enumerate(sent) if index not in not_deleted]
    receiver.forget(done)
    result.redriven += len(done)
    if not_deleted:
        result.duplicated += len(not_deleted)
        result.errors.append(f"{len(not_deleted)} redriven message(s) could not be deleted from the DLQ")
        return False
    return True
