"""Payloads kept for replay (template ``RetainPayloads``): one DynamoDB item per webhook-id, written once.

The delivery function remembers a message the first time it sees it (attempt 1, not a replay): the request body
bytes (zlib-compressed when that makes them smaller) and what a replay needs to address it again (event type,
endpoint or inline URL, fallback URLs and secret id: never a secret, never the endpoint's static headers, which
live in the registry). Items are written with BatchWriteItem (25 a request) after each batch, never updated: a write
costs one write unit per KB, and retries add nothing. ``expires_at`` (the table's TTL attribute) ends the item after the
stack's history retention without any job of ours; reads treat an item past it as gone (TTL deletes lag).
``forget`` deletes one item: one DeleteItem, no rewrite of anything else. The table is encrypted at rest (SSE).
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from hookline.history.exceptions import PayloadStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from hookline.messages import WebhookMessage

__all__ = [
    "PayloadMeta",
    "PayloadRecorder",
    "PayloadStore",
    "StoredPayload",
    "decode_body",
    "encode_body",
    "item_size",
    "payload_item",
]

_log = logging.getLogger("hookline.history")
_WRITE_BATCH = 25
_READ_BATCH = 100
_RAW, _ZLIB = "raw", "zlib"


def encode_body(body: bytes) -> tuple[str, bytes]:
    """The stored form of a body: (encoding, bytes), zlib only when it saves space."""
    packed = zlib.compress(body, 6)
    return (_ZLIB, packed) if len(packed) < len(body) else (_RAW, body)


def decode_body(encoding: str, data: bytes) -> bytes:
    """The body bytes back from their stored form."""
    if encoding == _ZLIB:
        return zlib.decompress(data)
    if encoding == _RAW:
        return data
    raise PayloadStoreError(f"unknown payload encoding {encoding!r}")


@dataclass(frozen=True)
class PayloadMeta:
    """What a replay needs besides the body to send a message again (no secret, no header)."""

    event_type: str
    endpoint: str | None = None
    url: str | None = None
    fallback_urls: tuple[str, ...] = ()
    secret_id: str | None = None
    timestamp: str | None = None

    @classmethod
    def of(cls, message: WebhookMessage) -> PayloadMeta:
        """The meta of a parsed webhook message."""
        return cls(
            event_type=message.event_type,
            endpoint=message.endpoint,
            url=message.url,
            fallback_urls=tuple(message.fallback_urls),
            secret_id=message.secret_id,
            timestamp=message.timestamp,
        )


@dataclass(frozen=True)
class StoredPayload:
    """A payload read back: the exact request body bytes and the message's addressing."""

    message_id: str
    body: bytes
    meta: PayloadMeta
    stored_at: float


def payload_item(message_id: str, body: bytes, meta: PayloadMeta, *, now: float, ttl_s: float) -> dict[str, Any]:
    """The DynamoDB item (low-level form) that keeps one payload."""
    encoding, data = encode_body(body)
    item: dict[str, Any] = {
        "id": {"S": message_id},
        "body": {"B": data},
        "enc": {"S": encoding},
        "event_type": {"S": meta.event_type},
        "stored_at": {"N": str(int(now))},
        "expires_at": {"N": str(int(now + ttl_s))},
    }
    optional = {"endpoint": meta.endpoint, "url": meta.url, "secret_id": meta.secret_id, "timestamp": meta.timestamp}
    item.update({key: {"S": value} for key, value in optional.items() if value})
    if meta.fallback_urls:
        item["fallback_urls"] = {"L": [{"S": url} for url in meta.fallback_urls]}
    return item


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB bills it (attribute names plus values; numbers counted as their text)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, raw = next(iter(value.items()))
        if kind == "B":
            size += len(raw)
        elif kind == "L":
            size += 3 + sum(1 + len(str(entry.get("S", "")).encode()) for entry in raw)
        else:
            size += len(str(raw).encode())
    return size


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key, {}).get("S")
    return str(value) if value else None


def _payload(item: Mapping[str, Any]) -> StoredPayload:
    try:
        return _read_item(item)
    except (KeyError, TypeError, ValueError, AttributeError, zlib.error) as error:
        # Only the delivery function writes the table, but a damaged item is a clear error, never a traceback.
        name = item.get("id", {}).get("S", "?") if isinstance(item.get("id"), dict) else "?"
        raise PayloadStoreError(f"the kept payload of {name!s:.255} cannot be read ({type(error).__name__})") from None


def _read_item(item: Mapping[str, Any]) -> StoredPayload:
    meta = PayloadMeta(
        event_type=_text(item, "event_type") or "",
        endpoint=_text(item, "endpoint"),
        url=_text(item, "url"),
        fallback_urls=tuple(str(entry.get("S")) for entry in item.get("fallback_urls", {}).get("L", [])),
        secret_id=_text(item, "secret_id"),
        timestamp=_text(item, "timestamp"),
    )
    body = decode_body(_text(item, "enc") or _RAW, bytes(item["body"]["B"]))
    return StoredPayload(str(item["id"]["S"]), body, meta, float(item.get("stored_at", {}).get("N", 0)))


def _expired(item: Mapping[str, Any], now: float) -> bool:
    expires = item.get("expires_at", {}).get("N")
    return expires is not None and float(expires) <= now


class PayloadStore:
    """The payload table: write many at once, read many at once, forget one."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        table: str,
        *,
        client: Any,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_rounds: int = 4,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("payloads need a history retention of at least one day")
        self.table = table
        self._client = client
        self._ttl_s = retention_days * 86400.0
        self._clock = clock
        self._sleep = sleep
        self._max_rounds = max_rounds

    def put_many(self, entries: Iterable[tuple[str, bytes, PayloadMeta]]) -> list[str]:
        """Write payloads (the last one wins for a repeated id); return the ids that could not be written."""
        now = self._clock()
        items = {mid: payload_item(mid, body, meta, now=now, ttl_s=self._ttl_s) for mid, body, meta in entries}
        failed: list[str] = []
        ordered = list(items.values())
        for start in range(0, len(ordered), _WRITE_BATCH):
            failed += self._write(ordered[start : start + _WRITE_BATCH])
        return failed

    def _write(self, items: list[dict[str, Any]]) -> list[str]:
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in items]
        for round_ in range(self._max_rounds):
            try:
                response = self._client.batch_write_item(RequestItems={self.table: requests})
            except (ClientError, BotoCoreError) as error:
                _log.warning("payload write failed: %s", type(error).__name__)
                break
            requests = response.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return []
            if round_ + 1 < self._max_rounds:
                self._sleep(0.05 * 2**round_)
        return [str(request["PutRequest"]["Item"]["id"]["S"]) for request in requests]

    def get_many(self, message_ids: Sequence[str]) -> dict[str, StoredPayload]:
        """The payloads still kept for these ids (an id without one is absent from the answer)."""
        now = self._clock()
        wanted = list(dict.fromkeys(message_ids))
        found: dict[str, StoredPayload] = {}
        for start in range(0, len(wanted), _READ_BATCH):
            keys: list[dict[str, Any]] = [{"id": {"S": mid}} for mid in wanted[start : start + _READ_BATCH]]
            for round_ in range(self._max_rounds):
                try:
                    response = self._client.batch_get_item(RequestItems={self.table: {"Keys": keys}})
                except (ClientError, BotoCoreError) as error:
                    raise PayloadStoreError(f"reading payloads failed: {_describe(error)}") from None
                for item in response.get("Responses", {}).get(self.table, []):
                    if not _expired(item, now):
                        payload = _payload(item)
                        found[payload.message_id] = payload
                keys = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not keys:
                    break
                if round_ + 1 < self._max_rounds:
                    self._sleep(0.05 * 2**round_)
            if keys:
                raise PayloadStoreError(f"reading payloads failed: {len(keys)} key(s) left unprocessed")
        return found

    def get(self, message_id: str) -> StoredPayload | None:
        """One payload, or None when none is kept."""
        return self.get_many([message_id]).get(message_id)

    def forget(self, message_id: str) -> bool:
        """Delete one payload now; return whether one was kept."""
        try:
            response = self._client.delete_item(
                TableName=self.table, Key={"id": {"S": message_id}}, ReturnValues="ALL_OLD"
            )
        except (ClientError, BotoCoreError) as error:
            raise PayloadStoreError(f"forgetting {message_id} failed: {_describe(error)}") from None
        old = response.get("Attributes")
        return bool(old) and not _expired(old, self._clock())


@dataclass
class PayloadRecorder:
    """Collects the payloads of one batch and writes them in one go (``remember`` per record, ``flush`` at the end)."""

    store: PayloadStore
    pending: dict[str, tuple[bytes, PayloadMeta]] = field(default_factory=dict)

    def remember(self, message_id: str, body: bytes, meta: PayloadMeta) -> None:
        """Keep this message's payload (call it at first sight: attempt 1, not a replay)."""
        self.pending[message_id] = (body, meta)

    def flush(self) -> list[str]:
        """Write what was remembered; return the ids that could not be kept (best effort: delivery goes on)."""
        entries = [(mid, body, meta) for mid, (body, meta) in self.pending.items()]
        self.pending.clear()
        if not entries:
            return []
        return self.store.put_many(entries)


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', 'Error')}: {detail.get('Message', '')}".rstrip(": ")
    return str(error) or type(error).__name__
