"""Reading history out of the delivery function's structured log lines (docs/history.md "Log lines").

History costs nothing extra to write: every attempt already ends in one JSON log line of the delivery function
(Powertools Logger). This module turns such a line into an :class:`Attempt`. It reads the compact line schema
(``webhook_id, endpoint, event_type, attempt, target, status, latency_ms, outcome, reason, error, lane, replay``)
and, for lines written before that schema, the older ``message`` texts ("delivered", "retry scheduled",
"dead-lettered", "filtered: ...") with ``last_status``/``last_error``. Any other line is not history.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hookline.history.model import Attempt, Outcome

__all__ = ["ID_FIELD", "INDEXED_FIELDS", "parse_line"]

ID_FIELD = "webhook_id"
"""The log field holding the webhook-id: the field index of the delivery log groups (template FieldIndexPolicies)."""
INDEXED_FIELDS = (ID_FIELD,)

_OUTCOMES: dict[str, Outcome] = {
    "delivered": Outcome.DELIVERED,
    "retrying": Outcome.RETRYING,
    "retry": Outcome.RETRYING,
    "retry scheduled": Outcome.RETRYING,
    "dead": Outcome.DEAD,
    "dead_lettered": Outcome.DEAD,
    "dead-lettered": Outcome.DEAD,
    "filtered": Outcome.FILTERED,
}
_MAX_ERROR = 1024
_MAX_DIGITS = 18


def _outcome(line: dict[str, Any]) -> Outcome | None:
    declared = line.get("outcome")
    if isinstance(declared, str):
        return _OUTCOMES.get(declared)
    message = line.get("message")
    if not isinstance(message, str):
        return None
    if message.startswith("filtered"):
        return Outcome.FILTERED
    return _OUTCOMES.get(message)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    # ASCII digits only ("²".isdigit() is true), and short: int() refuses over 4,300 digits.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None  # json.loads reads NaN and 1e999; JSON output cannot carry them


def _text(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parse_line(message: str, time: float) -> Attempt | None:
    """The attempt a delivery log line records (``time``: the log event's unix seconds), or None for other lines."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        line = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be one of ours
        return None
    if not isinstance(line, dict):
        return None
    outcome = _outcome(line)
    if outcome is None:
        return None
    # Filtered lines of the older schema carry the id only as the logger's correlation_id.
    message_id = _text(line.get(ID_FIELD)) or _text(line.get("correlation_id"))
    if message_id is None:
        return None
    status = line.get("status") if "status" in line else line.get("last_status")
    http_status = _int(status)
    return Attempt(
        message_id=message_id,
        time=time,
        outcome=outcome,
        endpoint=_text(line.get("endpoint")),
        event_type=_text(line.get("event_type")),
        attempt=_int(line.get("attempt")),
        target=_int(line.get("target")),
        http_status=http_status or None,
        latency_ms=_float(line.get("latency_ms")),
        reason=_text(line.get("reason")),
        error=_text(line.get("error") or line.get("last_error"), _MAX_ERROR),
        lane=_text(line.get("lane")),
        replay=line.get("replay") is True,
    )
