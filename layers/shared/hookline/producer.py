"""Producing webhooks: one validated SQS message per webhook, with a time-ordered ``msg_`` id."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from hookline.local import LOCAL_ENV, selected_local_stack
from hookline.messages import MAX_MESSAGE_BYTES, MESSAGE_VERSION, MessageError, validate_message
from hookline.metrics import Reason
from hookline.settings import SettingsError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mypy_boto3_sqs import SQSClient

__all__ = ["MessageFields", "build_message", "new_message_id", "send_webhook"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id(*, clock: Callable[[], float] = time.time, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A new webhook id: ``msg_`` + 26 Crockford base32 chars (48-bit ms time + 80 random bits), sortable by time."""
    value = (int(clock() * 1000) & (2**48 - 1)) << 80 | int.from_bytes(random_bytes(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(chars))


def build_message(  # noqa: PLR0913 - the message contract's fields as keywords (MessageFields)
    *,
    event_type: str,
    payload: Any,
    endpoint: str | None = None,
    url: str | None = None,
    fallback_urls: Sequence[str] | None = None,
    secret_id: str | None = None,
    id: str | None = None,  # noqa: A002 - the contract's field name
    timestamp: str | None = None,
    clock: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> str:
    """The SQS body of one webhook, validated against the contract; MessageError if it breaks it."""
    data: dict[str, Any] = {
        "version": MESSAGE_VERSION,
        "id": id if id is not None else new_message_id(clock=clock, random_bytes=random_bytes),
        "event_type": event_type,
    }
    optional: dict[str, Any] = {
        "endpoint": endpoint,
        "url": url,
        "fallback_urls": list(fallback_urls) if fallback_urls is not None else None,
        "secret_id": secret_id,
    }
    data.update({key: value for key, value in optional.items() if value is not None})
    data["payload"] = payload
    if timestamp is not None:
        data["timestamp"] = timestamp
    validate_message(data)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(body.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise MessageError(Reason.MESSAGE_TOO_LARGE, f"message is {size} bytes, the limit is {MAX_MESSAGE_BYTES}")
    return body


class MessageFields(TypedDict, total=False):
    """``build_message``'s message fields, as ``send_webhook`` takes them (``id``: a new one when left out)."""

    event_type: Required[str]
    payload: Required[Any]
    endpoint: str | None
    url: str | None
    fallback_urls: Sequence[str] | None
    secret_id: str | None
    id: str | None
    timestamp: str | None


def send_webhook(
    queue_url: str | None = None,
    *,
    delay_seconds: int = 0,
    sqs_client: SQSClient | None = None,
    clock: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = os.urandom,
    **message: Unpack[MessageFields],
) -> str:
    """Validate and send one webhook message to the delivery queue; returns its webhook id (``msg_...``).

    The message fields are ``build_message``'s keywords (``event_type``, ``payload``, ``endpoint`` ...).
    With a local stack chosen (``HOOKLINE_LOCAL`` or ``hookline.local.use_local_stack()``), the message goes to its
    queue (``queue_url`` may then be left out); otherwise to ``queue_url`` with the default AWS configuration.
    """
    local = selected_local_stack() if sqs_client is None or queue_url is None else None
    if queue_url is None:
        if local is None:
            raise SettingsError(
                f"send_webhook needs queue_url, or a local stack ({LOCAL_ENV} or hookline.local.use_local_stack())"
            )
        queue_url = local.output("DeliveryQueueUrl")
    message_id = message.get("id")
    if message_id is None:
        message_id = message["id"] = new_message_id(clock=clock, random_bytes=random_bytes)
    body = build_message(**message)
    if sqs_client is None:
        import boto3

        sqs_client = local.client("sqs") if local is not None else boto3.client("sqs")
    kwargs: dict[str, Any] = {"DelaySeconds": delay_seconds} if delay_seconds else {}
    sqs_client.send_message(QueueUrl=queue_url, MessageBody=body, **kwargs)
    return message_id
