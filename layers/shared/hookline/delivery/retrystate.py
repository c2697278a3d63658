"""The retry state a re-enqueued message carries: ONE packed SQS message attribute of hookline's (docs/contracts.md).

The attribute ``hookline-retry`` (String) holds compact JSON with short keys::

    {"v": 1, "n": 2, "p": 3, "f": 1795852800, "x": 1795852805, "s": 503, "e": "HTTP 503 from ...", "w": 0, "d": ...}

``v`` format version, ``n`` real attempts made, ``p`` schedule position (real attempts plus attempts an open breaker
skipped), ``f`` first seen (unix seconds), ``x`` first failure (absent until an attempt delivers nowhere), ``s`` the
last real HTTP status (absent: no response yet), ``e`` the last real error (at most 1 KB), ``w`` seconds spent waiting
for the endpoint's pace (they never age a message), ``d`` not to be tried before (a wait longer than one SQS delay).
Keys this version does not know are kept as they are (room for later flags, e.g. a replay marker).

A message without the attribute (a producer's message, or one that was waiting in flight when this version was
deployed, or one back after a crash) falls back to ApproximateReceiveCount: every earlier receive counts as a real
attempt; its age starts at the next failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Self

from hookline.delivery.deadletter import MAX_LAST_ERROR_BYTES, sanitize_attribute
from hookline.exceptions import HooklineError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FORMAT_VERSION", "RETRY_ATTRIBUTE", "RETRY_ATTRIBUTE_RESERVE", "RetryState", "RetryStateError"]

RETRY_ATTRIBUTE = "hookline-retry"
RETRY_ATTRIBUTE_RESERVE = 200
"""Bytes kept free beside a body for the retry attribute without its error (every number at full width, plus name
and type): a message that leaves less is dead-lettered ``message_too_large`` at once, and replay refuses it."""
FORMAT_VERSION = 1
_KNOWN = frozenset({"v", "n", "p", "f", "x", "s", "e", "w", "d"})
# Bounds on what a producer may put in the attribute: beyond them it is not ours and counts as absent. Times stay
# within what datetime (the parking schedule's at()) and SQS's Number attributes (38 digits) can carry.
_MAX_COUNT = 1_000_000
_MAX_TIME_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z
_SHORTEST_CUT = 4  # sanitize_attribute's shortest cut: one character and "..."
_HTTP_STATUSES = range(1000)  # an HTTP status line carries three digits
_MAX_EXTRA_BYTES = 48
"""Unknown keys kept (later flags such as replay's ``r``) at most this long in JSON: the batch reserves 200 bytes for
the whole attribute without its error (docs/contracts.md: message_too_large)."""


class RetryStateError(HooklineError, ValueError):
    """The attribute does not hold a retry state this version can read."""


def _number(
    data: Mapping[str, Any], key: str, *, default: float | None = None, limit: float = _MAX_TIME_S
) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit:
        # NaN fails the range test too; json.loads accepts NaN and Infinity.
        raise RetryStateError(f"{RETRY_ATTRIBUTE}: {key} must be a number from 0 to {limit:g}")
    return float(value)


def _count(data: Mapping[str, Any], key: str) -> int | None:
    value = _number(data, key, limit=_MAX_COUNT)
    return None if value is None else int(value)


def _json_bytes(text: str) -> int:
    """UTF-8 bytes of ``text`` inside a JSON string (escapes counted, the quotes around it not)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def _cut_for_json(text: str, max_bytes: int) -> str | None:
    """``text`` made attribute-safe and cut so that, JSON-escaped, it takes at most ``max_bytes``; None if nothing fits.

    A receiver's answer is often JSON: each quote doubles when escaped, which the attribute's room must allow for.
    """
    limit = max_bytes
    while limit >= _SHORTEST_CUT:
        cut = sanitize_attribute(text, max_bytes=limit)
        over = _json_bytes(cut) - max_bytes
        if over <= 0:
            return cut
        limit -= max(1, over // 2)  # an escape doubles a byte at most: cut by half the excess, then again if need be
    return None


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


@dataclass(frozen=True)
class RetryState:
    """Where a message stands in its retry budget (immutable; ``replace`` builds the next state)."""

    first_seen: float
    attempts: int = 0
    position: int = 0
    first_failure: float | None = None
    last_status: int | None = None
    last_error: str = ""
    paced_s: float = 0.0
    due_at: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        """The number of the next real attempt (1-based)."""
        return self.attempts + 1

    def age_s(self, now: float) -> float:
        """Seconds since the first failure, pace waits excluded (0 before any failure)."""
        if self.first_failure is None:
            return 0.0
        return max(0.0, now - self.first_failure - self.paced_s)

    def failed(self, now: float, *, real: bool, status: int | None, error: str) -> RetryState:
        """The state after an attempt that delivered nowhere: ``real`` when a receiver was tried for real."""
        first_failure = self.first_failure if self.first_failure is not None else now
        if not real:  # skipped by an open breaker: the position moves on, the budget and the last answer do not
            return replace(self, position=self.position + 1, first_failure=first_failure, due_at=None)
        return replace(
            self,
            attempts=self.attempts + 1,
            position=self.position + 1,
            first_failure=first_failure,
            last_status=status,
            last_error=error,
            due_at=None,
        )

    def paced(self, now: float, wait_s: float) -> RetryState:
        """The state of a message told to wait ``wait_s`` for its endpoint's pace: no attempt, no age."""
        return replace(self, paced_s=self.paced_s + wait_s, due_at=now + wait_s)

    def encode(self, *, max_error_bytes: int = MAX_LAST_ERROR_BYTES) -> str:
        """The attribute value; the error is cut to ``max_error_bytes`` UTF-8 bytes (0 drops it)."""
        data: dict[str, Any] = {**self.extra, "v": FORMAT_VERSION, "n": self.attempts, "p": self.position}
        data["f"] = _whole(self.first_seen)
        if self.first_failure is not None:
            data["x"] = _whole(self.first_failure)
        if self.last_status is not None:
            data["s"] = self.last_status
        error = _cut_for_json(self.last_error, max_error_bytes) if self.last_error else None
        if error is not None:
            data["e"] = error
        if self.paced_s:
            data["w"] = _whole(self.paced_s)
        if self.due_at is not None:
            data["d"] = _whole(self.due_at)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str) -> Self:
        """Parse an attribute value (RetryStateError if it is not one of ours)."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be ours
            raise RetryStateError(f"{RETRY_ATTRIBUTE} is not JSON") from None
        if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
            raise RetryStateError(f"{RETRY_ATTRIBUTE}: unknown format {str(data)[:40]!r}")
        attempts, position, first_seen = _count(data, "n"), _count(data, "p"), _number(data, "f")
        if attempts is None or position is None or first_seen is None:
            raise RetryStateError(f"{RETRY_ATTRIBUTE}: n, p and f are required")
        status = _count(data, "s")
        if status is not None and status not in _HTTP_STATUSES:
            raise RetryStateError(f"{RETRY_ATTRIBUTE}: s must be an HTTP status")
        error = data.get("e", "")
        if not isinstance(error, str):
            raise RetryStateError(f"{RETRY_ATTRIBUTE}: e must be a string")
        if len(error.encode("utf-8", "surrogatepass")) > MAX_LAST_ERROR_BYTES:
            error = sanitize_attribute(error)  # cut as hookline writes it (a producer's may be longer)
        extra = {key: value for key, value in data.items() if key not in _KNOWN}
        if extra and len(json.dumps(extra, separators=(",", ":"), ensure_ascii=False).encode()) > _MAX_EXTRA_BYTES:
            raise RetryStateError(f"{RETRY_ATTRIBUTE}: unknown keys longer than {_MAX_EXTRA_BYTES} bytes")
        return cls(
            first_seen=first_seen,
            attempts=attempts,
            position=position,
            first_failure=_number(data, "x"),
            last_status=status,
            last_error=error,
            paced_s=_number(data, "w", default=0.0) or 0.0,
            due_at=_number(data, "d"),
            extra=extra,
        )

    @classmethod
    def from_receive_count(cls, receive_count: int, *, sent_at: float) -> Self:
        """A message without the attribute: every earlier receive was a real attempt (the old accounting).

        Its age starts at its first failure seen with this state: an earlier receive may have been a crash, not a
        failure, and must not age the message (its attempts are still counted).
        """
        earlier = max(receive_count - 1, 0)
        return cls(first_seen=sent_at, attempts=earlier, position=earlier)
