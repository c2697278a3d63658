"""Dead-lettering (docs/contracts.md "Dead-letter message"): the body keeps the resolved id, the attributes say why."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

    from hookline.messages import WebhookMessage
    from hookline.metrics import Reason

__all__ = [
    "MAX_LAST_ERROR_BYTES",
    "DeadLetter",
    "DeadLetterWriter",
    "dead_letter_body",
    "describe_target",
    "sanitize_attribute",
    "scrub",
]

MAX_LAST_ERROR_BYTES = 1024
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
        return _escape_for_sqs(json.dumps(message.to_dict(id=message_id), ensure_ascii=False))
    if isinstance(data, dict) and "id" not in data:
        with_id = {"version": data["version"]} if "version" in data else {}
        with_id["id"] = message_id
        with_id.update({key: value for key, value in data.items() if key != "version"})
        try:
            return _escape_for_sqs(json.dumps(with_id, ensure_ascii=False, allow_nan=False))
        except (ValueError, TypeError, RecursionError):
            return raw_body
    return raw_body


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
        """The contract's message attributes for ``letter``."""
        failed_at = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "reason": {"DataType": "String", "StringValue": str(letter.reason)},
            "endpoint": {"DataType": "String", "StringValue": letter.endpoint or _UNKNOWN},
            "attempts": {"DataType": "Number", "StringValue": str(max(letter.attempts, 0))},
            # 0 = no HTTP response (timeout, connection error, or the message never reached a receiver).
            "last_status": {"DataType": "Number", "StringValue": str(letter.last_status or 0)},
            "last_error": {"DataType": "String", "StringValue": sanitize_attribute(letter.last_error)},
            "failed_at": {"DataType": "String", "StringValue": failed_at},
        }

    def send(self, letter: DeadLetter) -> str:
        """Send one dead letter; returns the DLQ MessageId."""
        response = self._client.send_message(
            QueueUrl=self.queue_url, MessageBody=letter.body, MessageAttributes=self.attributes(letter)
        )
        return str(response["MessageId"])
