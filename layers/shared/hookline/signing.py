"""Webhook signing: Standard Webhooks v1, plus the GitHub and Stripe header schemes, and verification.

Pure functions, no I/O. See docs/contracts.md "Signing secret" and "The request to a receiver".

Secrets are ``whsec_`` strings (the key is the base64 part), except a ``PlainSecret``: a seed-style secret string
used as its own key (its UTF-8 bytes), which in-process delivery accepts. A receiver verifies a plain secret's
signatures with any Standard Webhooks library as ``whsec_`` + base64(secret) (``PlainSecret.whsec``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from hookline.exceptions import SecretFormatError, SignatureVerificationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MIN_PLAIN_SECRET_CHARS",
    "SCHEMES",
    "SECRET_PREFIX",
    "PlainSecret",
    "Scheme",
    "SigningSecrets",
    "as_signing_secrets",
    "generate_secret",
    "github_signature",
    "parse_secret_string",
    "sign_standard",
    "signature_headers",
    "stripe_signature",
    "verify_github",
    "verify_standard",
    "verify_stripe",
]

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300.0
SCHEMES: tuple[str, ...] = ("standard", "github", "stripe")
type Scheme = Literal["standard", "github", "stripe"]

MIN_PLAIN_SECRET_CHARS = 8
_MIN_KEY_BYTES = 24
_MAX_KEY_BYTES = 64
_GENERATED_KEY_BYTES = 32
_JSON_KEYS = frozenset({"current", "previous", "previous_expires_at"})
_SAFE_KEY_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class SigningSecrets:
    """The current signing secret and, during a rotation, the previous one with its expiry."""

    # repr=False: these objects end up in log lines and tracebacks; the secrets must not.
    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)
    previous_expires_at: datetime | None = None

    def active(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign at ``now`` (timezone-aware): current first, then previous until it expires."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.previous is not None and self.previous_expires_at is not None and now < self.previous_expires_at:
            return (self.current, self.previous)
        return (self.current,)


class PlainSecret(str):
    """A signing secret string that is its own key (its UTF-8 bytes), e.g. ``PlainSecret("webhook_secret")``.

    For in-process delivery of seed-style secrets; never a stored secret (Secrets Manager holds ``whsec_`` only).
    """

    __slots__ = ()

    def __new__(cls, value: str) -> PlainSecret:
        """Check the length: at least ``MIN_PLAIN_SECRET_CHARS`` characters."""
        if not isinstance(value, str):
            raise SecretFormatError(f"signing secret must be a string, got {type(value).__name__}")
        if len(value) < MIN_PLAIN_SECRET_CHARS:
            raise SecretFormatError(f"a plain signing secret needs at least {MIN_PLAIN_SECRET_CHARS} characters")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        # Secrets end up in tracebacks and log lines through their repr: never show the value.
        return "PlainSecret(<redacted>)"

    @property
    def key(self) -> bytes:
        """The HMAC key: the secret's UTF-8 bytes."""
        return self.encode("utf-8")

    @property
    def whsec(self) -> str:
        """The same key as a ``whsec_`` secret, for a receiver's Standard Webhooks library."""
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")


def _decode_key(
    secret: str,
    *,
    label: str = "signing secret",
    min_bytes: int = _MIN_KEY_BYTES,
    max_bytes: int | None = _MAX_KEY_BYTES,
) -> bytes:
    """The HMAC key of a ``whsec_`` secret; SecretFormatError (without the secret) when malformed.

    The defaults are the stored-secret contract (24-64 random bytes); signing and verifying take any key from
    ``MIN_PLAIN_SECRET_CHARS`` bytes up, as Standard Webhooks libraries do, so plain secrets verify as ``whsec_``.
    """
    if isinstance(secret, PlainSecret):
        return secret.key
    if not isinstance(secret, str):
        raise SecretFormatError(f"{label} must be a string, got {type(secret).__name__}")
    if not secret.startswith(SECRET_PREFIX):
        raise SecretFormatError(f"{label} must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    if not _BASE64_CHARS.fullmatch(encoded):
        raise SecretFormatError(f"{label} must be standard base64 after {SECRET_PREFIX!r} (A-Z a-z 0-9 + / =)")
    # Unpadded base64 is common for these secrets (the standardwebhooks library accepts it too).
    unpadded = encoded.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise SecretFormatError(f"{label} has a truncated base64 part")
    try:
        key = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretFormatError(f"{label} is not valid base64 after {SECRET_PREFIX!r}") from None
    if len(key) < min_bytes or (max_bytes is not None and len(key) > max_bytes):
        expected = f"{min_bytes} to {max_bytes}" if max_bytes is not None else f"at least {min_bytes}"
        raise SecretFormatError(f"{label} decodes to {len(key)} bytes; expected {expected} random bytes")
    return key


def _signing_key(secret: str) -> bytes:
    return _decode_key(secret, min_bytes=MIN_PLAIN_SECRET_CHARS, max_bytes=None)


def _parse_expiry(value: object) -> datetime:
    if not isinstance(value, str):
        raise SecretFormatError("signing secret JSON: 'previous_expires_at' must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SecretFormatError("signing secret JSON: 'previous_expires_at' is not an ISO-8601 date-time") from None
    # A naive time is read as UTC: every time in hookline's contracts is UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _describe_keys(keys: set[str]) -> str:
    # Key names are echoed only when they look like names, in case a secret was pasted where a key belongs.
    return ", ".join(repr(key) if _SAFE_KEY_NAME.fullmatch(key) else "<redacted>" for key in sorted(keys))


def _parse_json_secret(value: str) -> SigningSecrets:
    try:
        document = json.loads(value)
    except ValueError:
        raise SecretFormatError("signing secret looks like JSON but does not parse") from None
    if not isinstance(document, dict):
        raise SecretFormatError("signing secret JSON must be an object")
    unknown = set(document) - _JSON_KEYS
    if unknown:
        raise SecretFormatError(f"signing secret JSON has unknown keys: {_describe_keys(unknown)}")
    current = document.get("current")
    if current is None:
        raise SecretFormatError("signing secret JSON: 'current' is required")
    _decode_key(current, label="signing secret JSON 'current'")
    previous = document.get("previous")
    expires_raw = document.get("previous_expires_at")
    if previous is None:
        if expires_raw is not None:
            raise SecretFormatError("signing secret JSON: 'previous_expires_at' given without 'previous'")
        return SigningSecrets(current=current)
    _decode_key(previous, label="signing secret JSON 'previous'")
    if expires_raw is None:
        raise SecretFormatError("signing secret JSON: 'previous' requires 'previous_expires_at'")
    return SigningSecrets(current=current, previous=previous, previous_expires_at=_parse_expiry(expires_raw))


def parse_secret_string(value: str) -> SigningSecrets:
    """Parse a Secrets Manager SecretString: a bare ``whsec_...`` or the rotation JSON object."""
    if not isinstance(value, str):
        raise SecretFormatError(f"signing secret must be a string, got {type(value).__name__}")
    # Surrounding whitespace (a trailing newline from `--secret-string file://...`) is not part of the secret.
    stripped = value.strip()
    if not stripped:
        raise SecretFormatError("signing secret is empty")
    if stripped.startswith(("{", "[")):
        return _parse_json_secret(stripped)
    _decode_key(stripped)
    return SigningSecrets(current=stripped)


def as_signing_secrets(secret: str | SigningSecrets) -> SigningSecrets:
    """A secret given in code or on a command line: rotation JSON, ``whsec_`` (8+ key bytes) or else a PlainSecret."""
    if isinstance(secret, SigningSecrets):
        return secret
    if isinstance(secret, PlainSecret):
        return SigningSecrets(secret)
    if not isinstance(secret, str):
        raise SecretFormatError(f"signing secret must be a string, got {type(secret).__name__}")
    stripped = secret.strip()
    if stripped.startswith("{"):
        return parse_secret_string(stripped)
    if stripped.startswith(SECRET_PREFIX):
        # Any key Standard Webhooks libraries accept: a plain secret's whsec_ form is shorter than a stored secret.
        _signing_key(stripped)
        return SigningSecrets(stripped)
    return SigningSecrets(PlainSecret(secret))


def _as_tuple(secrets: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(secrets, SigningSecrets):
        raise TypeError("pass the active secret strings, secrets.active(now), not a SigningSecrets")
    # A lone str is a Sequence[str] too: iterating it would sign with single characters.
    result = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not result:
        raise SecretFormatError("at least one signing secret is required")
    return result


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _standard_digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative integer of unix seconds")


def sign_standard(secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>`` per secret, space-separated, current first."""
    if not msg_id:
        raise ValueError("msg_id must not be empty")
    _check_timestamp(timestamp)
    payload = _as_bytes(body)
    return " ".join(
        "v1," + base64.b64encode(_standard_digest(_signing_key(secret), msg_id, timestamp, payload)).decode("ascii")
        for secret in _as_tuple(secrets)
    )


def _utf8_key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        raise SecretFormatError("signing secret must be a non-empty string")
    return secret.encode("utf-8")


def github_signature(secret: str, body: bytes | str) -> str:
    """The ``X-Hub-Signature-256`` value: ``sha256=<hex HMAC-SHA256(body)>`` keyed with the whole secret string."""
    return "sha256=" + hmac.new(_utf8_key(secret), _as_bytes(body), hashlib.sha256).hexdigest()


def stripe_signature(secrets: str | Sequence[str], timestamp: int, body: bytes | str) -> str:
    """The ``Stripe-Signature`` value: ``t=<ts>,v1=<hex>`` with one ``v1`` per secret, keyed with the whole string."""
    _check_timestamp(timestamp)
    signed = f"{timestamp}.".encode() + _as_bytes(body)
    parts = [f"t={timestamp}"]
    parts.extend(
        "v1=" + hmac.new(_utf8_key(secret), signed, hashlib.sha256).hexdigest() for secret in _as_tuple(secrets)
    )
    return ",".join(parts)


def signature_headers(
    scheme: str, secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes | str
) -> dict[str, str]:
    """Every signature header of one attempt: the Standard Webhooks three, plus the scheme's own header."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown signing scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    active = _as_tuple(secrets)
    payload = _as_bytes(body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(active, msg_id, timestamp, payload),
    }
    if scheme == "github":
        headers["X-Hub-Signature-256"] = github_signature(active[0], payload)
    elif scheme == "stripe":
        headers["Stripe-Signature"] = stripe_signature(active, timestamp, payload)
    return headers


def _parse_timestamp(timestamp: int | str) -> int:
    if isinstance(timestamp, bool):
        raise SignatureVerificationError("invalid webhook-timestamp")
    if isinstance(timestamp, int):
        return timestamp
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp.strip()):
        raise SignatureVerificationError("invalid webhook-timestamp")
    return int(timestamp.strip())


def _offered_signatures(signature_header: str) -> list[bytes]:
    offered: list[bytes] = []
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        # Other versions (e.g. v1a, asymmetric) are skipped, as the spec asks of verifiers.
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return offered


def verify_standard(  # noqa: PLR0913 - the Standard Webhooks inputs, then clock and tolerance
    secret_or_secrets: str | Sequence[str] | SigningSecrets,
    msg_id: str,
    timestamp: int | str,
    body: bytes | str,
    signature_header: str,
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Verify a Standard Webhooks request; raise SignatureVerificationError unless one v1 signature matches."""
    if not msg_id or not signature_header:
        raise SignatureVerificationError("missing webhook-id or webhook-signature")
    sent_at = _parse_timestamp(timestamp)
    current = _check_age(sent_at, now, tolerance_s)
    if isinstance(secret_or_secrets, SigningSecrets):
        secrets = secret_or_secrets.active(current)
    else:
        secrets = _as_tuple(secret_or_secrets)
    payload = _as_bytes(body)
    expected = [_standard_digest(_signing_key(secret), msg_id, sent_at, payload) for secret in secrets]
    if not _any_match(_offered_signatures(signature_header), expected):
        raise SignatureVerificationError("no matching webhook signature")


def _any_match(offered: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    # Every pair is compared (constant time each), so timing does not reveal which secret or entry matched.
    matched = False
    for candidate in offered:
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    return matched


def _check_age(sent_at: int, now: datetime | None, tolerance_s: float) -> datetime:
    current = datetime.now(UTC) if now is None else now
    if current.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    age_s = current.timestamp() - sent_at
    if age_s > tolerance_s:
        raise SignatureVerificationError("webhook timestamp is too old")
    if age_s < -tolerance_s:
        raise SignatureVerificationError("webhook timestamp is too far in the future")
    return current


def verify_github(secret: str, body: bytes | str, signature_header: str) -> None:
    """Verify an ``X-Hub-Signature-256`` header; raise SignatureVerificationError unless it matches."""
    expected = github_signature(secret, body).encode("ascii")
    if not hmac.compare_digest(expected, signature_header.strip().encode("utf-8", errors="replace")):
        raise SignatureVerificationError("no matching X-Hub-Signature-256")


def verify_stripe(
    secret_or_secrets: str | Sequence[str],
    body: bytes | str,
    signature_header: str,
    *,
    now: datetime | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Verify a ``Stripe-Signature`` header (``t=...,v1=...``) against any of the secrets, with a time tolerance."""
    timestamps: list[str] = []
    offered: list[bytes] = []
    for item in signature_header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            offered.append(value.encode("utf-8", errors="replace"))
    if len(timestamps) != 1 or not offered:
        raise SignatureVerificationError("malformed Stripe-Signature")
    sent_at = _parse_timestamp(timestamps[0])
    _check_age(sent_at, now, tolerance_s)
    expected = [
        stripe_signature(secret, sent_at, body).partition(",v1=")[2].encode("ascii")
        for secret in _as_tuple(secret_or_secrets)
    ]
    if not _any_match(offered, expected):
        raise SignatureVerificationError("no matching Stripe-Signature v1")


def generate_secret(*, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A new ``whsec_`` secret of 32 random bytes."""
    key = random_bytes(_GENERATED_KEY_BYTES)
    if len(key) != _GENERATED_KEY_BYTES:
        raise ValueError(f"random_bytes returned {len(key)} bytes, expected {_GENERATED_KEY_BYTES}")
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")
