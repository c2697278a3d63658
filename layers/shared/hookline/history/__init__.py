"""Delivery history and replay: every attempt findable by webhook-id, endpoint, status, event type and time.

History is read from the delivery function's structured log lines (CloudWatch Logs, queried with Logs Insights;
FilterLogEvents on the local stack); payloads kept for replay live in a DynamoDB table with a TTL. See
docs/history.md.
"""

from __future__ import annotations

from hookline.history.config import HistoryConfig
from hookline.history.exceptions import (
    HistoryError,
    HistoryOffError,
    HistoryQueryError,
    PayloadStoreError,
    ReplayRefusedError,
    TimeRangeError,
)
from hookline.history.insights import InsightsSource
from hookline.history.logevents import LogEventsSource
from hookline.history.model import Attempt, Found, MessageHistory, Outcome, RecordFilter, Status
from hookline.history.payloads import PayloadMeta, PayloadRecorder, PayloadStore, StoredPayload
from hookline.history.reader import HistoryReader, LogSource, MessageList
from hookline.history.replay import Replayer, ReplayResult
from hookline.history.timerange import TimeRange

__all__ = [
    "Attempt",
    "Found",
    "HistoryConfig",
    "HistoryError",
    "HistoryOffError",
    "HistoryQueryError",
    "HistoryReader",
    "InsightsSource",
    "LogEventsSource",
    "LogSource",
    "MessageHistory",
    "MessageList",
    "Outcome",
    "PayloadMeta",
    "PayloadRecorder",
    "PayloadStore",
    "PayloadStoreError",
    "RecordFilter",
    "ReplayRefusedError",
    "ReplayResult",
    "Replayer",
    "Status",
    "StoredPayload",
    "TimeRange",
    "TimeRangeError",
]
