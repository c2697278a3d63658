"""Replay: send kept messages again, with their original webhook-id and exact body bytes (docs/history.md "Replay").

Each id is re-sent at most once per run. The message goes back on the delivery queue carrying the retry attribute
``hookline-retry`` with attempt count 0 and the replay flag ``r``, so it starts a fresh retry life at attempt 1 and
says it is a replay. Receivers see the same ``webhook-id`` and body; the signature differs only because
``webhook-timestamp`` is new, as on every attempt. An endpoint's ``rate_limit_per_s`` spaces the sends with
DelaySeconds over SQS's first 900 s; what would be due later arrives at 900 s and the delivery function's fleet-wide
pacing delays it (records over a limit are delayed, never failed), so the command never waits: a replay of 10,000
messages at 1 a second would otherwise hold the terminal for 2.8 hours, and a tiny rate for ever.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from hookline.delivery.deadletter import describe_target, letter_overhead
from hookline.delivery.retrystate import RETRY_ATTRIBUTE, RETRY_ATTRIBUTE_RESERVE
from hookline.history.exceptions import ReplayRefusedError
from hookline.messages import MAX_MESSAGE_BYTES, MESSAGE_VERSION, encode_payload

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from hookline.history.payloads import PayloadStore, StoredPayload

__all__ = [
    "MAX_DELAY_S",
    "REPLAY_FLAG",
    "RETRY_ATTRIBUTE",
    "ReplayResult",
    "Replayer",
    "is_replay",
    "replay_attribute",
    "replay_body",
]

REPLAY_FLAG = "r"
MAX_DELAY_S = 900
_BATCH = 10


def replay_body(message_id: str, payload: StoredPayload) -> str:
    """The delivery-queue message that re-sends ``payload`` with its id; ReplayRefusedError if bytes would differ."""
    try:
        decoded = json.loads(payload.body)
        same = encode_payload(decoded) == payload.body
    except (ValueError, RecursionError):  # MessageError too: NaN or Infinity, which a webhook body never carries
        raise ReplayRefusedError("the kept body is not JSON a webhook can carry") from None
    if not same:
        raise ReplayRefusedError("the kept body does not re-encode to the same bytes")
    meta = payload.meta
    message: dict[str, Any] = {"version": MESSAGE_VERSION, "id": message_id, "event_type": meta.event_type}
    if meta.endpoint:
        message["endpoint"] = meta.endpoint
    else:
        message["url"] = meta.url
        if meta.fallback_urls:
            message["fallback_urls"] = list(meta.fallback_urls)
        if meta.secret_id:
            message["secret_id"] = meta.secret_id
    if meta.timestamp:
        message["timestamp"] = meta.timestamp
    # The payload goes in as the kept bytes themselves, so the body the function computes is exactly them.
    head = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    text = head[:-1] + ',"payload":' + payload.body.decode("utf-8") + "}"
    room = max(RETRY_ATTRIBUTE_RESERVE, letter_overhead(describe_target(meta.endpoint, meta.url)))
    if len(text.encode("utf-8")) + room > MAX_MESSAGE_BYTES:
        raise ReplayRefusedError(
            f"the message would leave under {room} bytes of the {MAX_MESSAGE_BYTES} SQS accepts for hookline's retry "
            "state or a dead letter's attributes (it would be dead-lettered message_too_large)"
        )
    return text


def is_replay(attributes: Mapping[str, Any] | None) -> bool:
    """Whether SQS message attributes (a Lambda event record's ``messageAttributes``) mark a replayed message."""
    value = (attributes or {}).get(RETRY_ATTRIBUTE) or {}
    text = value.get("stringValue") or value.get("StringValue")
    if not isinstance(text, str):
        return False
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):  # nested too deep: not ours
        return False
    return isinstance(state, dict) and bool(state.get(REPLAY_FLAG))


def replay_attribute(now: float) -> dict[str, Any]:
    """The retry attribute of a replayed message: no attempt made yet, first seen now, flagged as a replay."""
    state = {"v": 1, "n": 0, "p": 0, "f": int(now), REPLAY_FLAG: 1}
    return {"DataType": "String", "StringValue": json.dumps(state, separators=(",", ":"))}


@dataclass
class ReplayResult:
    """What a replay run did, by webhook-id."""

    resent: list[str] = field(default_factory=list)
    not_retained: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    send_failed: dict[str, str] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)
    """Ids given more than once (each listed once, sent once)."""

    def view(self) -> dict[str, Any]:
        """The JSON form (stable keys) of ``hookline replay --json``."""
        return {
            "resent": list(self.resent),
            "not_retained": list(self.not_retained),
            "refused": dict(self.refused),
            "send_failed": dict(self.send_failed),
            "repeated": list(self.repeated),
        }


@dataclass(frozen=True)
class _Planned:
    message_id: str
    body: str
    offset_s: float


def _pace_key(payload: StoredPayload) -> str:
    return payload.meta.endpoint or (urlsplit(payload.meta.url or "").hostname or "")


class Replayer:
    """Re-enqueues kept payloads on the delivery queue, paced per endpoint."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        *,
        sqs: Any,
        queue_url: str,
        payloads: PayloadStore,
        rate_limit_of: Callable[[str], float | None] = lambda endpoint: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._payloads = payloads
        self._rate_limit_of = rate_limit_of
        self._clock = clock

    def run(self, message_ids: Sequence[str]) -> ReplayResult:
        """Re-send each id once (ids repeated in ``message_ids`` are named, not sent twice)."""
        result = ReplayResult()
        unique = list(dict.fromkeys(message_ids))
        result.repeated = [mid for mid, count in Counter(message_ids).items() if count > 1]
        kept = self._payloads.get_many(unique)
        planned = self._plan(unique, kept, result)
        self._send(planned, result)
        return result

    def _plan(self, ids: list[str], kept: dict[str, StoredPayload], result: ReplayResult) -> list[_Planned]:
        planned: list[_Planned] = []
        sent_per_key: dict[str, int] = {}
        rates: dict[str, float | None] = {}
        for message_id in ids:
            payload = kept.get(message_id)
            if payload is None:
                result.not_retained.append(message_id)
                continue
            try:
                body = replay_body(message_id, payload)
            except ReplayRefusedError as error:
                result.refused[message_id] = str(error)
                continue
            key = _pace_key(payload)
            if key not in rates:
                rates[key] = self._rate_limit_of(payload.meta.endpoint) if payload.meta.endpoint else None
            index = sent_per_key.get(key, 0)
            sent_per_key[key] = index + 1
            rate = rates[key]
            planned.append(_Planned(message_id, body, min(index / rate, MAX_DELAY_S) if rate else 0.0))
        planned.sort(key=lambda item: item.offset_s)
        return planned

    def _send(self, planned: list[_Planned], result: ReplayResult) -> None:
        started = self._clock()
        for start in range(0, len(planned), _BATCH):
            chunk = planned[start : start + _BATCH]
            elapsed = self._clock() - started
            now = self._clock()
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": item.body,
                    "DelaySeconds": max(0, min(MAX_DELAY_S, math.ceil(item.offset_s - elapsed))),
                    "MessageAttributes": {RETRY_ATTRIBUTE: replay_attribute(now)},
                }
                for index, item in enumerate(chunk)
            ]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                for item in chunk:
                    result.send_failed[item.message_id] = type(error).__name__
                continue
            for entry in response.get("Successful", []):
                result.resent.append(chunk[int(entry["Id"])].message_id)
            for entry in response.get("Failed", []):
                result.send_failed[chunk[int(entry["Id"])].message_id] = str(entry.get("Code", "Failed"))
