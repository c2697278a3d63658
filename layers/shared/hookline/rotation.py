"""Signing-secret rotation: the SecretString to write, and the times a receiver can rely on (pure, no I/O).

Delivery functions keep a secret they read for ``SECRET_CACHE_TTL_S``, so a new secret cannot sign every webhook
the moment it is written: a function that read the old value just before the write signs with the old secret alone
until its cache runs out. Hence the promise (docs/contracts.md "Signing secret"):

- ``signs_from`` = the time the write completed + the cache age: from then on every webhook carries a signature by
  the new secret (functions that read the new value sign with both; no function still holds the old value alone);
- until ``previous_expires_at`` every webhook also carries one by the old secret (functions with the old value sign
  with it alone, the others with both), and ``previous_expires_at`` is at least ``overlap`` after ``signs_from``;
- the overlap is never shorter than the cache age, and a rotation never cuts short the overlap of the one before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hookline.exceptions import HooklineError
from hookline.secrets import SECRET_CACHE_TTL_S
from hookline.signing import generate_secret

if TYPE_CHECKING:
    from hookline.signing import SigningSecrets

__all__ = [
    "WRITE_ALLOWANCE_S",
    "OverlapTooShortError",
    "PreviousStillSigningError",
    "Rotation",
    "RotationError",
    "format_instant",
    "plan_rotation",
]

WRITE_ALLOWANCE_S = 60
"""Seconds the write to Secrets Manager may take without shortening the promised overlap (see ``plan_rotation``)."""


class RotationError(HooklineError, ValueError):
    """A rotation was refused: it would break a promise made to receivers (tree: hookline/exceptions.py)."""


class OverlapTooShortError(RotationError):
    """The overlap asked for is shorter than the functions' secret cache age."""


class PreviousStillSigningError(RotationError):
    """The previous secret still signs until ``expires_at``, as the rotation that made it promised."""

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(
            f"the previous secret of the last rotation still signs until {format_instant(expires_at)}; "
            "rotating now would stop it before then"
        )
        self.expires_at = expires_at


def format_instant(moment: datetime) -> str:
    """An aware datetime as ISO-8601 UTC with whole seconds (``2026-11-28T08:05:00Z``), the rotation JSON's form."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ceil_second(moment: datetime) -> datetime:
    whole = math.ceil(moment.timestamp())
    return datetime.fromtimestamp(whole, tz=UTC)


def _floor_second(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp()), tz=UTC)


@dataclass(frozen=True)
class Rotation:
    """A planned rotation: the new secret, the SecretString to write, and when the previous secret stops signing."""

    secret: str = field(repr=False)
    """The new current secret (shown once to the operator, never logged)."""
    secret_string: str = field(repr=False)
    """The rotation JSON to write as the secret's new value."""
    previous_expires_at: datetime
    cache_ttl_s: float

    def signs_from(self, written_at: datetime) -> datetime:
        """From when every webhook carries the new secret's signature, given when the write completed."""
        return _ceil_second(written_at + timedelta(seconds=self.cache_ttl_s))

    def overlap(self, written_at: datetime) -> timedelta:
        """How long both secrets sign every webhook, given when the write completed."""
        return self.previous_expires_at - self.signs_from(written_at)


def plan_rotation(  # noqa: PLR0913 - rotation inputs as keywords, the new secret injectable
    stored: SigningSecrets,
    *,
    now: datetime,
    overlap: timedelta,
    cache_ttl_s: float = SECRET_CACHE_TTL_S,
    drop_previous: bool = False,
    new_secret: str | None = None,
) -> Rotation:
    """Plan replacing ``stored.current`` by a new secret; RotationError when that would break a promise.

    ``overlap`` is how long both secrets sign after ``signs_from``; it must be at least the cache age. The previous
    secret's expiry is computed from ``now`` (before the write) plus the cache age, ``overlap`` and
    ``WRITE_ALLOWANCE_S``, so that a write completing within the allowance still leaves the full overlap.
    A ``stored.previous`` that still signs is kept by the promise of the rotation that made it: refused unless
    ``drop_previous`` (an emergency: a leaked secret must stop signing now).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    minimum = timedelta(seconds=cache_ttl_s)
    if overlap < minimum:
        raise OverlapTooShortError(
            f"the overlap must be at least {cache_ttl_s:g} s: delivery functions keep a secret they read that long"
        )
    if not drop_previous and len(stored.active(now)) > 1 and stored.previous_expires_at is not None:
        raise PreviousStillSigningError(stored.previous_expires_at)
    secret = new_secret if new_secret is not None else generate_secret()
    expires = _floor_second(now + minimum + overlap + timedelta(seconds=WRITE_ALLOWANCE_S))
    document = {"current": secret, "previous": stored.current, "previous_expires_at": format_instant(expires)}
    return Rotation(
        secret=secret, secret_string=json.dumps(document), previous_expires_at=expires, cache_ttl_s=cache_ttl_s
    )
