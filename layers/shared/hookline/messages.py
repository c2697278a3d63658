"""The webhook message contract (docs/contracts.md "Webhook message"): parsing, validation and the body bytes.

The rules here are the ones of ``hookline/schemas/webhook-message.schema.json`` (JSON Schema 2020-12, for producers
in other languages); the unit tests run both validators over the same cases and require the same verdict.
Patterns end in ``(?![\\s\\S])`` instead of ``$`` because ``$`` also matches before a trailing newline in Python.
Errors say in words what is wrong (the character, the length); patterns never reach a user.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from hookline.exceptions import HooklineError
from hookline.metrics import Reason

__all__ = [
    "ENDPOINT_PATTERN",
    "EVENT_TYPE_PATTERN",
    "ID_PATTERN",
    "MAX_FALLBACK_URLS",
    "MAX_MESSAGE_BYTES",
    "MAX_URL_LENGTH",
    "MESSAGE_VERSION",
    "SECRET_ID_PATTERN",
    "TIMESTAMP_PATTERN",
    "URL_PATTERN",
    "MessageError",
    "WebhookMessage",
    "derive_id",
    "encode_payload",
    "parse_message",
    "validate_field",
    "validate_message",
]

MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
MAX_FALLBACK_URLS = 5
MAX_URL_LENGTH = 2048
_END = r"(?![\s\S])"
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,255}" + _END
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9._:-]{1,128}" + _END
ENDPOINT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}" + _END
SECRET_ID_PATTERN = r"^[A-Za-z0-9/_+=.@:-]{1,2048}" + _END
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])" + _END
)
# Printable ASCII only and no userinfo: credentials in a URL would end up in logs and DLQ attributes.
# The authority (host and port) is at most 259 characters: a DNS name is at most 253, plus ":65535". A longer one can
# never resolve, and the origin it makes is a DynamoDB key (breaker, slow mark, pace) that must stay under 2048 bytes.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]{1,259}([/?#][!-~]*)?" + _END

_FIELDS = frozenset(
    {"version", "id", "event_type", "endpoint", "url", "fallback_urls", "secret_id", "payload", "timestamp"}
)
_REQUIRED = ("version", "event_type", "payload")
_ID_RE = re.compile(ID_PATTERN)
_EVENT_TYPE_RE = re.compile(EVENT_TYPE_PATTERN)
_ENDPOINT_RE = re.compile(ENDPOINT_PATTERN)
_SECRET_ID_RE = re.compile(SECRET_ID_PATTERN)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_URL_RE = re.compile(URL_PATTERN)


@dataclass(frozen=True)
class _TextRule:
    """A text field's rule in words, to say what is wrong with a value that does not match its pattern."""

    pattern: re.Pattern[str]
    allowed: str
    character: re.Pattern[str]
    max_length: int
    first: re.Pattern[str] | None = None
    first_words: str = ""


_NAME_CHARACTERS = "A-Z a-z 0-9 . _ : -"
_NAME_CHARACTER = re.compile(r"[A-Za-z0-9._:-]")
_TEXT_RULES: dict[str, _TextRule] = {
    "id": _TextRule(_ID_RE, _NAME_CHARACTERS, _NAME_CHARACTER, 255),
    "event_type": _TextRule(_EVENT_TYPE_RE, _NAME_CHARACTERS, _NAME_CHARACTER, 128),
    "endpoint": _TextRule(
        _ENDPOINT_RE, _NAME_CHARACTERS, _NAME_CHARACTER, 128, re.compile(r"[A-Za-z0-9]"), "a letter or a digit"
    ),
    "secret_id": _TextRule(_SECRET_ID_RE, "A-Z a-z 0-9 / _ + = . @ : -", re.compile(r"[A-Za-z0-9/_+=.@:-]"), 2048),
}
_TIMESTAMP_WORDS = (
    "an ISO-8601 date-time with seconds and a zone, e.g. 2026-11-28T08:00:00Z or 2026-11-28T09:00:00+01:00"
)


class MessageError(HooklineError, ValueError):
    """A message breaks the contract; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: Reason, detail: str, *, data: Any = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        # The decoded JSON when there was one, so a dead letter can carry the message with its resolved id.
        self.data = data


@dataclass(frozen=True)
class WebhookMessage:
    """One validated webhook message (the SQS body), with its request body bytes computed once."""

    version: int
    event_type: str
    payload: Any
    body: bytes
    id: str | None = None
    endpoint: str | None = None
    url: str | None = None
    fallback_urls: tuple[str, ...] = ()
    secret_id: str | None = None
    timestamp: str | None = None

    @property
    def inline(self) -> bool:
        """Whether the message carries its own target (url) instead of naming a registered endpoint."""
        return self.url is not None

    def to_dict(self, *, id: str | None = None) -> dict[str, Any]:  # noqa: A002 - the contract's field name
        """The message as a JSON object, with ``id`` set to the given (resolved) id if one is passed."""
        resolved = id or self.id
        data: dict[str, Any] = {"version": self.version}
        if resolved is not None:
            data["id"] = resolved
        data["event_type"] = self.event_type
        optional: dict[str, Any] = {
            "endpoint": self.endpoint,
            "url": self.url,
            "fallback_urls": list(self.fallback_urls) if self.fallback_urls else None,
            "secret_id": self.secret_id,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        data["payload"] = self.payload
        if self.timestamp is not None:
            data["timestamp"] = self.timestamp
        return data


def derive_id(sqs_message_id: str) -> str:
    """The webhook-id of a message without ``id``: ``msg_`` + the SQS MessageId."""
    return f"msg_{sqs_message_id}"


def encode_payload(payload: Any) -> bytes:
    """The request body: compact UTF-8 JSON of the payload (the same bytes on every attempt)."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError) as error:
        raise MessageError(Reason.INVALID_JSON, f"payload cannot be encoded as UTF-8 JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_message(body: str | bytes) -> WebhookMessage:
    """Parse and validate an SQS message body; MessageError (with the dead-letter reason) if it breaks the contract."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageError(Reason.MESSAGE_TOO_LARGE, f"message is {len(raw)} bytes, the limit is {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise MessageError(Reason.INVALID_JSON, f"message body is not JSON: {error}") from None
    return validate_message(data)


def _check(condition: bool, detail: str) -> None:
    if not condition:
        raise MessageError(Reason.SCHEMA_VIOLATION, detail)


def _mismatch(key: str, value: str) -> str:
    """What is wrong with ``value`` for field ``key``, in words."""
    rule = _TEXT_RULES.get(key)
    if rule is None:
        return f"{key} {value!r:.80} is not {_TIMESTAMP_WORDS}"
    if not value:
        return f"{key} must not be empty"
    if len(value) > rule.max_length:
        return f"{key} is {len(value)} characters long; the limit is {rule.max_length}"
    if rule.first is not None and not rule.first.fullmatch(value[0]):
        return f"{key} {value!r:.80} must start with {rule.first_words}"
    bad = next((character for character in value if not rule.character.fullmatch(character)), None)
    return f"{key} {value!r:.80} contains {bad!r}; allowed characters: {rule.allowed}"


def validate_field(key: str, value: object) -> str:
    """Check one text field of the message (id, event_type, endpoint, secret_id, timestamp); MessageError if bad."""
    if key not in _TEXT_RULES and key != "timestamp":
        raise ValueError(f"no text rule for field {key!r}")
    if not isinstance(value, str):
        raise MessageError(Reason.SCHEMA_VIOLATION, f"{key} must be a string")
    rule = _TEXT_RULES.get(key)
    if (rule.pattern if rule is not None else _TIMESTAMP_RE).search(value) is None:
        raise MessageError(Reason.SCHEMA_VIOLATION, _mismatch(key, value))
    return value


def _string(data: dict[str, Any], key: str) -> str | None:
    return validate_field(key, data[key]) if key in data else None


def _url(value: Any, key: str) -> str:
    _check(isinstance(value, str), f"{key} must be a string")
    _check(len(value) <= MAX_URL_LENGTH, f"{key} is longer than {MAX_URL_LENGTH} characters")
    _check(_URL_RE.search(value) is not None, f"{key} {value!r:.80} is not an http(s) URL without credentials")
    return str(value)


def _is_one(value: Any) -> bool:
    # JSON Schema compares numbers mathematically: 1 and 1.0 are both the constant 1, true is not.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value == 1


def validate_message(data: Any) -> WebhookMessage:
    """Validate a decoded message against the contract (the same rules as the JSON Schema)."""
    try:
        return _validate(data)
    except MessageError as error:
        error.data = data
        raise


def _validate(data: Any) -> WebhookMessage:
    _check(isinstance(data, dict), "message must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    _check(not unknown, f"unknown field(s): {', '.join(repr(name)[:40] for name in unknown[:5])}")
    missing = [key for key in _REQUIRED if key not in data]
    _check(not missing, f"missing required field(s): {', '.join(missing)}")
    _check(_is_one(data["version"]), "version must be 1")
    message_id = _string(data, "id")
    event_type = _string(data, "event_type")
    endpoint = _string(data, "endpoint")
    secret_id = _string(data, "secret_id")
    timestamp = _string(data, "timestamp")
    url = _url(data["url"], "url") if "url" in data else None
    fallback_urls: tuple[str, ...] = ()
    if "fallback_urls" in data:
        raw_fallbacks = data["fallback_urls"]
        _check(isinstance(raw_fallbacks, list), "fallback_urls must be a list")
        _check(len(raw_fallbacks) <= MAX_FALLBACK_URLS, f"fallback_urls has more than {MAX_FALLBACK_URLS} entries")
        fallback_urls = tuple(_url(value, f"fallback_urls[{index}]") for index, value in enumerate(raw_fallbacks))
    if endpoint is not None:
        _check(url is None, "endpoint and url are mutually exclusive")
        _check(secret_id is None and "fallback_urls" not in data, "secret_id and fallback_urls are for inline url only")
    else:
        _check(url is not None, "one of endpoint or url is required")
        _check(secret_id is not None, "secret_id is required with url")
    payload = data["payload"]
    return WebhookMessage(
        version=MESSAGE_VERSION,
        id=message_id,
        event_type=str(event_type),
        endpoint=endpoint,
        url=url,
        fallback_urls=fallback_urls,
        secret_id=secret_id,
        payload=payload,
        timestamp=timestamp,
        body=encode_payload(payload),
    )
