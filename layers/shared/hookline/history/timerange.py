"""``--since``/``--until`` values: a duration back from now (``90s``, ``15m``, ``1h``, ``2d``, ``1w``) or a moment
(ISO-8601 ``2026-11-28T09:00:00Z``, a date ``2026-11-28`` = its midnight UTC, or unix seconds)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from hookline.history.exceptions import TimeRangeError

__all__ = ["TimeRange", "parse_moment"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EARLIEST_S = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST_S = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
"""Moments a datetime can still show in any time zone: beyond them a value is refused, not a crash later."""


def parse_moment(value: str, *, now: float) -> float:
    """Unix seconds for a --since/--until value; TimeRangeError saying what is accepted if it is none of them."""
    moment = _moment(value, now=now)
    if not _EARLIEST_S <= moment <= _LATEST_S:
        raise TimeRangeError(f"{value!r} is out of range: give a time between the years 1 and 9999")
    return moment


def _moment(value: str, *, now: float) -> float:
    text = value.strip()
    match = _DURATION.match(text.lower())
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise TimeRangeError(
            f"{value!r} is not a time: use a duration back from now (90s, 15m, 1h, 2d, 1w), "
            "an ISO-8601 time (2026-11-28T09:00:00Z), a date (2026-11-28) or unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class TimeRange:
    """A closed range of unix seconds."""

    start: float
    end: float

    @classmethod
    def parse(cls, since: str | None, until: str | None, *, now: float, default_since_s: float) -> TimeRange:
        """The range of --since/--until (``since`` defaults to ``default_since_s`` back, ``until`` to now)."""
        start = parse_moment(since, now=now) if since is not None else now - default_since_s
        end = parse_moment(until, now=now) if until is not None else now
        if start >= end:
            raise TimeRangeError(
                f"the time range is empty: --since ({_iso(start)}) is not before --until ({_iso(end)})"
            )
        return cls(start, end)

    def clamp(self, earliest: float) -> TimeRange:
        """This range, starting no earlier than ``earliest`` (what retention still keeps); it may end up empty."""
        return TimeRange(max(self.start, earliest), self.end)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
