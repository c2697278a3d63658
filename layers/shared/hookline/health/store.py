"""Health state on the registry item (conditional writes) and a bounded health history (items with a TTL).

Every health write carries ``health_version`` (N): the write of version v+1 is conditional on the item still being
at version v, and it goes in one transaction with that check's history item, so a history entry exists exactly for
each check that was applied. A lost race (another run wrote first) is an expected outcome: the store re-reads the
item, re-applies the check on top of what the other run wrote, and tries again. A check older than the one already
recorded is dropped, so two overlapping runs can never move counters backwards or count a check twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer

from hookline.health.state import advance
from hookline.registry import HealthStatus, RegistryItemError, endpoint_from_item

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient

    from hookline.health.model import ProbeResult, Verdict
    from hookline.health.state import Step
    from hookline.registry import Endpoint, HealthState

__all__ = [
    "DEFAULT_CHECK_TTL_S",
    "DEFAULT_TRANSITION_TTL_S",
    "VERSION_ATTRIBUTE",
    "HealthRecord",
    "HealthStore",
    "HistoryEntry",
    "LoadedEndpoint",
    "format_timestamp",
]

VERSION_ATTRIBUTE = "health_version"
DEFAULT_CHECK_TTL_S = 2 * 86_400  # every check: enough for "what happened overnight", small at 1 check/min
DEFAULT_TRANSITION_TTL_S = 30 * 86_400  # state changes are rare and worth keeping for a month
_MAX_ERROR = 1024
_DESERIALIZER = TypeDeserializer()


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a Z, so that strings sort in time order (history sort key)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LoadedEndpoint:
    """An endpoint as read from the registry, with the version of its health state."""

    endpoint: Endpoint
    version: int

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LoadedEndpoint:
        """Parse a raw (AttributeValue) registry item; RegistryItemError if it breaks the contract."""
        raw = item.get(VERSION_ATTRIBUTE)
        version = int(raw["N"]) if isinstance(raw, dict) and "N" in raw else 0
        return cls(endpoint=endpoint_from_item(item), version=version)


@dataclass(frozen=True)
class HealthRecord:
    """What the store did with one check."""

    applied: bool
    status: HealthStatus
    step: Step | None = None
    version: int = 0
    attempts: int = 1
    skipped: str | None = None  # "stale" (a newer check was recorded) or "gone" (the item was removed)


@dataclass(frozen=True)
class HistoryEntry:
    """One check as kept in the history table."""

    name: str
    checked_at: str
    passed: bool
    state: HealthState
    latency_ms: int | None
    status_code: int | None
    reason: str | None
    changed_from: HealthState | None
    expires_at: int


class HealthStore:
    """Writes health state with optimistic versioning and reads/writes the bounded history."""

    def __init__(
        self,
        endpoints_table: str,
        history_table: str,
        *,
        client: DynamoDBClient | None = None,
        check_ttl_s: int = DEFAULT_CHECK_TTL_S,
        transition_ttl_s: int = DEFAULT_TRANSITION_TTL_S,
        max_attempts: int = 5,
        before_write: Callable[[str, int], None] | None = None,
    ) -> None:
        self.endpoints_table = endpoints_table
        self.history_table = history_table
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._check_ttl_s = check_ttl_s
        self._transition_ttl_s = transition_ttl_s
        self._max_attempts = max_attempts
        # Called with (name, expected version) right before each conditional write: a seam for race tests.
        self._before_write = before_write

    def load(self, name: str) -> LoadedEndpoint | None:
        """A consistent read of one registry item (None if it was removed)."""
        item = self._client.get_item(
            TableName=self.endpoints_table, Key={"name": {"S": name}}, ConsistentRead=True
        ).get("Item")
        return LoadedEndpoint.from_item(item) if item else None

    def record(
        self, loaded: LoadedEndpoint, probe: ProbeResult, verdict: Verdict, *, checked_at: datetime
    ) -> HealthRecord:
        """Apply one check to the item; on a lost race re-read and re-apply (bounded), never double-count."""
        stamp = format_timestamp(checked_at)
        current = loaded
        for attempt in range(1, self._max_attempts + 1):
            status = current.endpoint.status
            if status.last_checked_at is not None and status.last_checked_at >= stamp:
                return HealthRecord(
                    applied=False, status=status, version=current.version, attempts=attempt, skipped="stale"
                )
            step = advance(status, verdict.passed, current.endpoint.health)
            if self._before_write is not None:
                self._before_write(current.endpoint.name, current.version)
            if self._write(current, step, probe, verdict, stamp):
                new_status = HealthStatus(
                    state=step.new_state,
                    last_checked_at=stamp,
                    last_latency_ms=probe.latency_ms,
                    consecutive_failures=step.consecutive_failures,
                    consecutive_successes=step.consecutive_successes,
                    last_error=None if verdict.passed else verdict.reason,
                )
                return HealthRecord(
                    applied=True, status=new_status, step=step, version=current.version + 1, attempts=attempt
                )
            reloaded = self._reload(current.endpoint.name)
            if reloaded is None:
                return HealthRecord(
                    applied=False, status=status, version=current.version, attempts=attempt, skipped="gone"
                )
            current = reloaded
        raise RuntimeError(
            f"health state of {loaded.endpoint.name!r} kept changing under {self._max_attempts} attempts to write it"
        )

    def _reload(self, name: str) -> LoadedEndpoint | None:
        try:
            return self.load(name)
        except RegistryItemError:
            # Someone wrote an item that breaks the contract meanwhile; treat it like a removed one.
            return None

    def _write(self, current: LoadedEndpoint, step: Step, probe: ProbeResult, verdict: Verdict, stamp: str) -> bool:
        name = current.endpoint.name
        values: dict[str, Any] = {
            ":state": {"S": step.new_state},
            ":checked": {"S": stamp},
            ":latency": {"N": str(probe.latency_ms)},
            ":failures": {"N": str(step.consecutive_failures)},
            ":successes": {"N": str(step.consecutive_successes)},
            ":next": {"N": str(current.version + 1)},
        }
        sets = [
            "health_state = :state",
            "last_checked_at = :checked",
            "last_latency_ms = :latency",
            "consecutive_failures = :failures",
            "consecutive_successes = :successes",
            "#v = :next",
        ]
        if verdict.passed:
            expression = "SET " + ", ".join(sets) + " REMOVE last_error"
        else:
            values[":error"] = {"S": (verdict.reason or "check failed")[:_MAX_ERROR]}
            expression = "SET " + ", ".join([*sets, "last_error = :error"])
        if current.version:
            condition = "attribute_exists(#n) AND #v = :expected"
            values[":expected"] = {"N": str(current.version)}
        else:
            condition = "attribute_exists(#n) AND attribute_not_exists(#v)"
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.endpoints_table,
                            "Key": {"name": {"S": name}},
                            "UpdateExpression": expression,
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#n": "name", "#v": VERSION_ATTRIBUTE},
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.history_table,
                            "Item": self._history_item(name, step, probe, verdict, stamp),
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException:
            return False
        return True

    def _history_item(self, name: str, step: Step, probe: ProbeResult, verdict: Verdict, stamp: str) -> dict[str, Any]:
        ttl = self._transition_ttl_s if step.changed else self._check_ttl_s
        checked = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        item: dict[str, Any] = {
            "name": {"S": name},
            "checked_at": {"S": stamp},
            "passed": {"BOOL": verdict.passed},
            "state": {"S": step.new_state},
            "latency_ms": {"N": str(probe.latency_ms)},
            "expires_at": {"N": str(int(checked.timestamp()) + ttl)},
        }
        if probe.status_code is not None:
            item["status_code"] = {"N": str(probe.status_code)}
        if verdict.reason:
            item["reason"] = {"S": verdict.reason[:_MAX_ERROR]}
        if step.changed:
            item["changed_from"] = {"S": step.old_state}
        return item

    def history(self, name: str, *, limit: int = 20) -> list[HistoryEntry]:
        """The newest ``limit`` checks of one integration, newest first (what `hookline health NAME` shows)."""
        response = self._client.query(
            TableName=self.history_table,
            KeyConditionExpression="#n = :name",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":name": {"S": name}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_history_entry(item) for item in response.get("Items", [])]


def _history_entry(raw: Mapping[str, Any]) -> HistoryEntry:
    item = {key: _DESERIALIZER.deserialize(value) for key, value in raw.items()}

    def optional_int(key: str) -> int | None:
        value = item.get(key)
        return None if value is None else int(value)

    changed_from = item.get("changed_from")
    return HistoryEntry(
        name=str(item["name"]),
        checked_at=str(item["checked_at"]),
        passed=bool(item.get("passed")),
        state=cast("HealthState", str(item.get("state", "unknown"))),
        latency_ms=optional_int("latency_ms"),
        status_code=optional_int("status_code"),
        reason=cast("str | None", item.get("reason")),
        changed_from=cast("HealthState | None", changed_from),
        expires_at=int(item.get("expires_at", 0)),
    )
