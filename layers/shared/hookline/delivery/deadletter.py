"""Dead-lettering (docs/contracts.md "Dead-letter message"): the body keeps the resolved id, the attributes say why."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hookline.delivery.requeue import attributes_size
from hookline.messages import MAX_MESSAGE_BYTES
from hookline.metrics import Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from hookline.messages import WebhookMessage

__all__ = [
    "MAX_LAST_ERROR_BYTES",
    "DeadLetter",
    "DeadLetterWriter",
    "dead_letter_body",
    "describe_target",
    "letter_overhead",
    "sanitize_attribute",
    "scrub",
]

MAX_LAST_ERROR_BYTES = 1024
_MIN_CUT_BYTES = 4  # the shortest cut sanitize_attribute makes ("x...")
_DROPPED_FIRST = ("failed_at", "last_status", "attempts", "endpoint")
"""The attributes a dead letter drops, in this order, when even a cut last_error does not fit beside its body."""
_LETTER_ERROR_RESERVE = 64
"""Bytes of ``last_error`` a dead letter always has room for beside a body that passed ``letter_overhead``."""
_UNKNOWN = "unknown"
# Characters SQS accepts in bodies and attribute values are XML 1.0's (#x9 | #xA | #xD | [#x20-#xD7FF] |
# [#xE000-#xFFFD] | [#x10000-#x10FFFF]); anything else is escaped or replaced. Written as the complement's few
# ranges: the negated class over all of Unicode took ~20 ms to compile on every cold start.
_SQS_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]+")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a secret string in ``text`` (belt and braces: errors never include secrets)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def sanitize_attribute(text: str, *, max_bytes: int = MAX_LAST_ERROR_BYTES) -> str:
    """A one-line, SQS-safe attribute value of at most ``max_bytes`` UTF-8 bytes (never empty)."""
    cleaned = _CONTROL.sub(" ", _SQS_INVALID.sub("?", text)).strip()
    encoded = cleaned.encode("utf-8")
    if len(encoded) > max_bytes:
        # Cut on a character boundary and say that it was cut.
        cleaned = encoded[: max_bytes - 3].decode("utf-8", "ignore") + "..."
    return cleaned or "none"


def describe_target(endpoint: str | None, url: str | None) -> str:
    """The DLQ ``endpoint`` attribute: the endpoint name, else the inline URL's host (never its path or query)."""
    if endpoint:
        return sanitize_attribute(endpoint, max_bytes=256)
    if url:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
        if host:
            return sanitize_attribute(host, max_bytes=256)
    return _UNKNOWN


def _escape_for_sqs(text: str) -> str:
    # Outside JSON's ASCII structure such characters can only sit inside strings, where \\uXXXX is equivalent.
    return _SQS_INVALID.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def dead_letter_body(raw_body: str, message_id: str, *, message: WebhookMessage | None = None, data: Any = None) -> str:
    """The DLQ body: the original message with its resolved ``id`` (unchanged when it already had one).

    ``message`` is the validated message, ``data`` the decoded JSON of an invalid one; a body that is not a JSON
    object cannot carry an id and is kept byte for byte.
    """
    if message is not None:
        if message.id is not None:
            return raw_body
        # Compact: the id is all this body adds to what the producer sent (it is re-enqueued near SQS's size limit).
        text = json.dumps(message.to_dict(id=message_id), separators=(",", ":"), ensure_ascii=False)
        return _escape_for_sqs(text)
    if isinstance(data, dict) and "id" not in data:
        with_id = {"version": data["version"]} if "version" in data else {}
        with_id["id"] = message_id
        with_id.update({key: value for key, value in data.items() if key != "version"})
        try:
            return _escape_for_sqs(json.dumps(with_id, ensure_ascii=False, allow_nan=False))
        except (ValueError, TypeError, RecursionError):
            return raw_body
    return raw_body


def letter_overhead(endpoint: str) -> int:
    """Bytes a dead letter's attributes take beside its body (``last_error`` cut to 64 bytes, every other value at its
    longest): a body that leaves this much room under 256 KiB can always be dead-lettered with its reason."""
    longest_reason = max(len(reason.value) for reason in Reason)
    values = {
        "reason": longest_reason,
        "endpoint": len((endpoint or _UNKNOWN).encode("utf-8")),
        "attempts": 7,  # RetryState caps attempts at 1,000,000
        "last_status": 3,
        "last_error": _LETTER_ERROR_RESERVE,
        "failed_at": len("YYYY-MM-DDTHH:MM:SSZ"),
    }
    types = {"attempts": "Number", "last_status": "Number"}
    return sum(len(name) + len(types.get(name, "String")) + size for name, size in values.items())


@dataclass(frozen=True)
class DeadLetter:
    """One message to dead-letter and why."""

    body: str
    reason: Reason
    endpoint: str
    attempts: int
    last_status: int | None
    last_error: str


class DeadLetterWriter:
    """Sends dead letters to the DLQ (SendMessage); an SQS error propagates so the record is retried, never lost."""

    def __init__(
        self, queue_url: str, *, client: SQSClient | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs")
        self.queue_url = queue_url
        self._client = client
        self._clock = clock

    def attributes(self, letter: DeadLetter) -> dict[str, MessageAttributeValueTypeDef]:
        """The contract's message attributes for ``letter``; ``last_error`` is cut to the room SQS's 256 KiB leaves
        beside the body and the other attributes (a body near the limit keeps at least its reason)."""
        failed_at = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "reason": {"DataType": "String", "StringValue": str(letter.reason)},
            "endpoint": {"DataType": "String", "StringValue": letter.endpoint or _UNKNOWN},
            "attempts": {"DataType": "Number", "StringValue": str(max(letter.attempts, 0))},
            # 0 = no HTTP response (timeout, connection error, or the message never reached a receiver).
            "last_status": {"DataType": "Number", "StringValue": str(letter.last_status or 0)},
            "failed_at": {"DataType": "String", "StringValue": failed_at},
        }
        body_size = len(letter.body.encode("utf-8"))
        room = MAX_MESSAGE_BYTES - body_size - attributes_size(attributes) - len("last_error") - len("String")
        if room >= _MIN_CUT_BYTES:
            error = sanitize_attribute(letter.last_error, max_bytes=min(MAX_LAST_ERROR_BYTES, room))
            attributes["last_error"] = {"DataType": "String", "StringValue": error}
            return attributes
        # A body within a few hundred bytes of the limit (a message_too_large one): the reason above all.
        for name in _DROPPED_FIRST:
            if body_size + attributes_size(attributes) <= MAX_MESSAGE_BYTES:
                break
            del attributes[name]
        return attributes

    def send(self, letter: DeadLetter) -> str:
        """Send one dead letter; returns the DLQ MessageId."""
        response = self._client.send_message(
            QueueUrl=self.queue_url, MessageBody=letter.body, MessageAttributes=self.attributes(letter)
        )
        return str(response["MessageId"])
