"""Errors of hookline.history: reading delivery history, keeping payloads, replaying (a branch of hookline's tree,
drawn in full in hookline.exceptions).

HooklineError
 +-- HistoryError
      +-- HistoryOffError     the stack keeps no history (HistoryRetentionDays=0) or keeps no payloads
      +-- HistoryQueryError   a history query failed, was cancelled or timed out (CloudWatch Logs)
      +-- TimeRangeError      a --since/--until value is malformed or the range is empty (ValueError)
      +-- PayloadStoreError   the payload table refused or failed a read, write or delete
      +-- ReplayRefusedError  a kept payload cannot be sent again as the same bytes (ValueError)
"""

from __future__ import annotations

from hookline.exceptions import HooklineError

__all__ = [
    "HistoryError",
    "HistoryOffError",
    "HistoryQueryError",
    "PayloadStoreError",
    "ReplayRefusedError",
    "TimeRangeError",
]


class HistoryError(HooklineError):
    """Base class of the errors hookline.history raises."""


class HistoryOffError(HistoryError):
    """The stack keeps no history (HistoryRetentionDays=0), or no payloads (RetainPayloads=false)."""


class HistoryQueryError(HistoryError):
    """A history query failed, was cancelled or did not finish in time."""


class TimeRangeError(HistoryError, ValueError):
    """A time value is malformed, or the range it makes is empty."""


class PayloadStoreError(HistoryError):
    """The payload table refused or failed a request."""


class ReplayRefusedError(HistoryError, ValueError):
    """A kept payload cannot be sent again as it was (its body would not be the same bytes)."""
