"""The delivery log line: ONE stable JSON line per record outcome (docs/contracts.md "Delivery log line").

Every record a delivery function handles ends in exactly one line with ``"message": "delivery"`` carrying::

    webhook_id, endpoint, event_type, attempt, target, status, latency_ms, outcome, lane

plus ``replay: true`` on a webhook ``hookline replay`` sent again, and, when the record did not get delivered
(fully logged): ``reason`` (dead letters), ``delay_s`` (retries), ``error`` (the last error, secrets scrubbed),
``targets`` (what happened at every target, when there were several) and ``function_request_id``. A key without a
value is left out (Powertools drops nulls). A success is one compact INFO line; failures are WARNING lines. Steps that
are not attempts (a long wait hopping on, a pace wait) are DEBUG lines of the same shape.

Powertools' per-invocation keys that the schema does not need (location, service, cold start, function name, memory
and ARN, X-Ray trace id) are removed from the logger when a batch opens, and Python's ``taskName`` is turned off: each
costs bytes on every line, and the invocation's REPORT line already carries the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from hookline.delivery.attempt import TargetOutcome

__all__ = ["LOG_MESSAGE", "TRIMMED_KEYS", "DeliveryLog", "LogLine", "LogOutcome"]

LOG_MESSAGE = "delivery"
TRIMMED_KEYS = (
    "location",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
)
_FALLBACK = logging.getLogger("hookline.delivery")


class LogOutcome(StrEnum):
    """The ``outcome`` of a delivery log line."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD_LETTERED = "dead_lettered"
    FILTERED = "filtered"
    DEFERRED = "deferred"
    WAITING = "waiting"
    PACED = "paced"
    SLOW_LANE = "slow_lane"


_LEVELS = {
    LogOutcome.DELIVERED: logging.INFO,
    LogOutcome.FILTERED: logging.INFO,
    LogOutcome.RETRY: logging.WARNING,
    LogOutcome.DEAD_LETTERED: logging.WARNING,
    LogOutcome.DEFERRED: logging.WARNING,
    LogOutcome.SLOW_LANE: logging.INFO,
    LogOutcome.WAITING: logging.DEBUG,
    LogOutcome.PACED: logging.DEBUG,
}


@dataclass(frozen=True)
class LogLine:
    """One record's outcome, as the stable line carries it."""

    webhook_id: str
    endpoint: str
    event_type: str | None
    attempt: int
    outcome: LogOutcome
    lane: str
    target: int | None = None
    status: int | None = None
    latency_ms: float | None = None
    reason: str | None = None
    delay_s: int | None = None
    error: str = ""
    targets: tuple[TargetOutcome, ...] = ()
    replay: bool = False

    def fields(self, *, request_id: str | None) -> dict[str, Any]:
        """The line's fields: the schema's nine always, the failure details when the record was not delivered."""
        data: dict[str, Any] = {
            "webhook_id": self.webhook_id,
            "endpoint": self.endpoint,
            "event_type": self.event_type,
            "attempt": self.attempt,
            "target": self.target,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 1) if self.latency_ms is not None else None,
            "outcome": str(self.outcome),
            "lane": self.lane,
        }
        if self.replay:
            data["replay"] = True
        if self.outcome in (LogOutcome.DELIVERED, LogOutcome.FILTERED):
            return data
        if self.reason is not None:
            data["reason"] = self.reason
        if self.delay_s is not None:
            data["delay_s"] = self.delay_s
        if self.error:
            data["error"] = self.error
        if len(self.targets) > 1:  # one target: the line's own target, status, latency and error already say it all
            data["targets"] = [_target(outcome) for outcome in self.targets]
        if request_id:
            data["function_request_id"] = request_id
        return data


def _target(outcome: TargetOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {"index": outcome.index, "origin": outcome.origin, "result": outcome.status}
    if outcome.http_status is not None:
        data["status"] = outcome.http_status
    if outcome.latency_ms is not None:
        data["latency_ms"] = round(outcome.latency_ms, 1)
    if outcome.error:
        data["error"] = outcome.error
    return data


class DeliveryLog:
    """Writes delivery log lines (and the few other lines delivery logs) through the Powertools logger."""

    def __init__(self, logger: Logger | None, *, request_id: str | None = None) -> None:
        self._logger = logger
        self._request_id = request_id

    def trim(self) -> None:
        """Remove the Powertools keys the schema does not need (they are added again on every invocation)."""
        # Python 3.12+ names the asyncio task on every record ("Task-7"): noise on every line.
        logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # (not in typeshed yet)
        if self._logger is not None:
            self._logger.remove_keys(list(TRIMMED_KEYS))
            # Powertools adds the trace id from the environment on every line unless the key is set to None.
            self._logger.append_keys(xray_trace_id=None)

    def bind(self, webhook_id: str) -> None:
        """Every line the current task writes carries ``webhook_id`` (task-local: concurrent records never mix)."""
        if self._logger is not None:
            self._logger.thread_safe_append_keys(webhook_id=webhook_id)

    def line(self, line: LogLine) -> None:
        """Write one record's outcome line."""
        fields = line.fields(request_id=self._request_id)
        if self._logger is not None:
            fields.pop("webhook_id")  # bound to the task already: written once per line, not twice
        self.write(_LEVELS[line.outcome], LOG_MESSAGE, **fields)

    def write(self, level: int, message: str, **fields: Any) -> None:
        """Any other line (a failed flush, a disabled endpoint ...)."""
        logger = self._logger
        if logger is None:
            _FALLBACK.log(level, "%s %s", message, fields)
            return
        emit = {
            logging.DEBUG: logger.debug,
            logging.INFO: logger.info,
            logging.WARNING: logger.warning,
        }.get(level, logger.error)
        emit(message, extra=fields)
