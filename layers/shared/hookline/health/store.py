"""Health state on the registry item (conditional writes) and a bounded health history (items with a TTL).

Every health write carries ``health_version`` (N): the write of version v+1 is conditional on the item still being at
version v. A lost race (another run wrote an item first) is an expected outcome: the store re-reads the items that
lost (one consistent BatchGetItem), re-applies their checks on top of what the other run wrote, and writes again. A
check older than the one already recorded is dropped, so two overlapping runs can never move counters backwards or
count a check twice.

Each check is one conditional UpdateItem, sent in parallel from a small thread pool: one write unit per check, and
one slow or throttled item holds up nobody else (a write that fails is retried alone at the next attempt). A
TransactWriteItems mode existed; it cost two write units per check and lost a whole run's results to one throttled
request, so it was removed (docs/health.md).

History items are written only for checks that were applied, after the state write, in BatchWriteItem requests of
25. A crash between the two loses that run's history entries, never state: the history is a diagnostic trail with a
TTL, not a ledger.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from hookline.health.state import advance
from hookline.registry import HealthStatus, RegistryItemError, endpoint_from_item

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

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
    "PendingCheck",
    "format_timestamp",
]

VERSION_ATTRIBUTE = "health_version"
DEFAULT_CHECK_TTL_S = 2 * 86_400  # every check: enough for "what happened overnight", small at 1 check/min
DEFAULT_TRANSITION_TTL_S = 30 * 86_400  # state changes are rare and worth keeping for a month
_MAX_ERROR = 1024
_LOGGER = logging.getLogger(__name__)
_BATCH = 25  # BatchWriteItem's limit
_BATCH_GET = 100  # BatchGetItem's limit
_WRITE_CHUNK = 100  # checks handed to the write pool (and to ``before_write``) at once
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
        endpoint = endpoint_from_item(item)
        raw = item.get(VERSION_ATTRIBUTE)
        if raw is None:
            return cls(endpoint=endpoint, version=0)
        number = raw.get("N") if isinstance(raw, dict) else None
        if not isinstance(number, str) or not number.isdigit():
            raise RegistryItemError(f"registry attribute {VERSION_ATTRIBUTE!r} must be a whole number (N)")
        return cls(endpoint=endpoint, version=int(number))


@dataclass(frozen=True)
class HealthRecord:
    """What the store did with one check."""

    applied: bool
    status: HealthStatus
    step: Step | None = None
    version: int = 0
    attempts: int = 1
    # "stale" (a newer check was recorded), "gone" (the item was removed) or "unwritten" (every attempt failed)
    skipped: str | None = None


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


@dataclass(frozen=True)
class PendingCheck:
    """One integration's check, waiting to be recorded."""

    loaded: LoadedEndpoint
    probe: ProbeResult
    verdict: Verdict
    checked_at: datetime


@dataclass(frozen=True)
class _Write:
    index: int
    loaded: LoadedEndpoint
    step: Step
    stamp: str


def _status_after(write: _Write, check: PendingCheck) -> HealthStatus:
    return HealthStatus(
        state=write.step.new_state,
        last_checked_at=write.stamp,
        last_latency_ms=check.probe.latency_ms,
        consecutive_failures=write.step.consecutive_failures,
        consecutive_successes=write.step.consecutive_successes,
        last_error=None if check.verdict.passed else check.verdict.reason,
    )


@dataclass
class _Run:
    """One ``record_many`` call: the checks still to write and what became of each."""

    checks: Sequence[PendingCheck]
    history: list[dict[str, Any]] | None
    pending: dict[int, LoadedEndpoint]
    results: dict[int, HealthRecord] = field(default_factory=dict)

    def due_writes(self, attempt: int) -> list[_Write]:
        """The writes of every pending check, taking them out of ``pending``; a check older than the stored one is
        dropped as stale, so counters never move backwards and no check counts twice."""
        writes: list[_Write] = []
        due, self.pending = self.pending, {}
        for index, loaded in due.items():
            check = self.checks[index]
            stamp = format_timestamp(check.checked_at)
            status = loaded.endpoint.status
            if status.last_checked_at is not None and status.last_checked_at >= stamp:
                self.skip(index, loaded, attempt, "stale")
                continue
            writes.append(_Write(index, loaded, advance(status, check.verdict.passed, loaded.endpoint.health), stamp))
        return writes

    def applied(self, write: _Write, attempt: int, history_item: dict[str, Any]) -> None:
        """Record a write that landed (and its history item)."""
        if self.history is not None:
            self.history.append(history_item)
        self.results[write.index] = HealthRecord(
            applied=True,
            status=_status_after(write, self.checks[write.index]),
            step=write.step,
            version=write.loaded.version + 1,
            attempts=attempt,
        )

    def skip(self, index: int, loaded: LoadedEndpoint, attempt: int, why: str) -> None:
        """Record a check that is not applied: ``stale``, ``gone`` or ``unwritten``."""
        self.pending.pop(index, None)
        status = loaded.endpoint.status
        self.results[index] = HealthRecord(
            applied=False, status=status, version=loaded.version, attempts=attempt, skipped=why
        )

    def ordered(self) -> list[HealthRecord]:
        """One record per check, in the order of the checks."""
        return [self.results[index] for index in range(len(self.checks))]


class HealthStore:
    """Writes health state with optimistic versioning and reads/writes the bounded history."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        endpoints_table: str,
        history_table: str,
        *,
        client: DynamoDBClient | None = None,
        check_ttl_s: int = DEFAULT_CHECK_TTL_S,
        transition_ttl_s: int = DEFAULT_TRANSITION_TTL_S,
        max_attempts: int = 5,
        before_write: Callable[[list[tuple[str, int]]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        write_concurrency: int = 16,
    ) -> None:
        self.endpoints_table = endpoints_table
        self.history_table = history_table
        self._client: DynamoDBClient = client or boto3.client("dynamodb")
        self._check_ttl_s = check_ttl_s
        self._transition_ttl_s = transition_ttl_s
        self._max_attempts = max_attempts
        # Called with [(name, expected version)] right before each chunk of writes: a seam for race tests.
        self._before_write = before_write
        self._sleep = sleep
        self._write_concurrency = write_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def load(self, name: str) -> LoadedEndpoint | None:
        """A consistent read of one registry item (None if it was removed)."""
        item = self._client.get_item(
            TableName=self.endpoints_table, Key={"name": {"S": name}}, ConsistentRead=True
        ).get("Item")
        return LoadedEndpoint.from_item(item) if item else None

    def record(
        self, loaded: LoadedEndpoint, probe: ProbeResult, verdict: Verdict, *, checked_at: datetime
    ) -> HealthRecord:
        """Apply one check and write its history item (``record_many`` of one)."""
        history: list[dict[str, Any]] = []
        (record,) = self.record_many([PendingCheck(loaded, probe, verdict, checked_at)], history=history)
        self.write_history(history)
        return record

    def record_many(
        self, checks: Sequence[PendingCheck], *, history: list[dict[str, Any]] | None = None
    ) -> list[HealthRecord]:
        """Apply one check per integration (distinct names); lost races are re-read and re-applied, never lost.

        History items of the applied checks are appended to ``history`` (write them with ``write_history``).
        """
        names = [check.loaded.endpoint.name for check in checks]
        if len(set(names)) != len(names):
            raise ValueError("record_many takes at most one check per integration")
        run = _Run(checks, history, {index: check.loaded for index, check in enumerate(checks)})
        for attempt in range(1, self._max_attempts + 1):
            reread = self._write_all(run, run.due_writes(attempt), attempt)
            if not run.pending:
                break
            self._refresh(run, reread, attempt)
            if run.pending and attempt < self._max_attempts:
                self._sleep(0.01 * 2**attempt)  # lost races or failed writes: back off a little
        for index, loaded in list(run.pending.items()):  # a copy: skip() takes each out of pending
            # Still not written after every attempt: give this check up (the next run probes again), not the run.
            run.skip(index, loaded, self._max_attempts, "unwritten")
        return run.ordered()

    def _write_all(self, run: _Run, writes: list[_Write], attempt: int) -> list[int]:
        """Write in chunks; applied checks get their result and history, the rest stay pending. Returns the losers."""
        reread: list[int] = []
        for start in range(0, len(writes), _WRITE_CHUNK):
            chunk = writes[start : start + _WRITE_CHUNK]
            applied, conflicted = self._write_chunk(chunk, run.checks)
            for write in chunk:
                if write.index in applied:
                    run.applied(write, attempt, self._history_item(write, run.checks[write.index]))
                else:
                    run.pending[write.index] = write.loaded  # failed writes are retried as they are
                    if write.index in conflicted:
                        reread.append(write.index)
        return reread

    def _refresh(self, run: _Run, reread: list[int], attempt: int) -> None:
        """Re-read the checks that lost a race, so they apply on top of the other run's write."""
        fresh = self._reload([run.checks[index].loaded.endpoint.name for index in reread])
        for index in reread:
            name = run.checks[index].loaded.endpoint.name
            if name in fresh:
                run.pending[index] = fresh[name]
            else:
                run.skip(index, run.pending.pop(index), attempt, "gone")

    def _reload(self, names: list[str]) -> dict[str, LoadedEndpoint]:
        """Consistent re-read of items after a lost race; removed (or now invalid) items are absent."""
        found: dict[str, LoadedEndpoint] = {}
        for start in range(0, len(names), _BATCH_GET):
            keys = [{"name": {"S": name}} for name in names[start : start + _BATCH_GET]]
            request: dict[str, Any] = {self.endpoints_table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.endpoints_table, []):
                    try:
                        loaded = LoadedEndpoint.from_item(raw)
                    except RegistryItemError:
                        continue  # someone wrote an item that breaks the contract meanwhile: treat it as removed
                    found[loaded.endpoint.name] = loaded
                request = cast("dict[str, Any]", response.get("UnprocessedKeys") or {})
        return found

    def _write_chunk(self, chunk: list[_Write], checks: Sequence[PendingCheck]) -> tuple[set[int], set[int]]:
        """Write up to 100 checks; return (applied indexes, indexes that lost a race and must be re-read)."""
        if self._before_write is not None:
            self._before_write([(write.loaded.endpoint.name, write.loaded.version) for write in chunk])
        outcomes = list(self._executor().map(lambda write: self._update_one(write, checks[write.index]), chunk))
        applied = {write.index for write, outcome in zip(chunk, outcomes, strict=True) if outcome == "ok"}
        conflicted = {write.index for write, outcome in zip(chunk, outcomes, strict=True) if outcome == "conflict"}
        return applied, conflicted

    def _update_one(self, write: _Write, check: PendingCheck) -> str:
        """One conditional update: "ok", "conflict" (lost a race) or "error" (not written; retried as it is)."""
        try:
            self._client.update_item(**self._update(write, check))
        except self._client.exceptions.ConditionalCheckFailedException:
            return "conflict"
        except ClientError as error:
            # Throttling that outlived botocore's retries, or an internal error: this write did not happen. Only
            # this integration waits for the next attempt; raising would lose the other writes' results.
            _LOGGER.warning(
                "health write failed", extra={"integration": write.loaded.endpoint.name, "error": str(error)}
            )
            return "error"
        return "ok"

    def _executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._write_concurrency, thread_name_prefix="health-write")
            return self._pool

    def _update(self, write: _Write, check: PendingCheck) -> dict[str, Any]:
        """The conditional UpdateItem request of one check."""
        step, verdict = write.step, check.verdict
        values: dict[str, Any] = {
            ":state": {"S": step.new_state},
            ":checked": {"S": write.stamp},
            ":latency": {"N": str(check.probe.latency_ms)},
            ":failures": {"N": str(step.consecutive_failures)},
            ":successes": {"N": str(step.consecutive_successes)},
            ":next": {"N": str(write.loaded.version + 1)},
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
        if write.loaded.version:
            condition = "attribute_exists(#n) AND #v = :expected"
            values[":expected"] = {"N": str(write.loaded.version)}
        else:
            condition = "attribute_exists(#n) AND attribute_not_exists(#v)"
        return {
            "TableName": self.endpoints_table,
            "Key": {"name": {"S": write.loaded.endpoint.name}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#n": "name", "#v": VERSION_ATTRIBUTE},
            "ExpressionAttributeValues": values,
        }

    def write_history(self, items: list[dict[str, Any]], *, max_attempts: int = 5) -> int:
        """Write history items in BatchWriteItem requests of 25, retrying unprocessed ones; return how many failed."""
        pending = list(items)
        for attempt in range(max_attempts):
            unprocessed: list[dict[str, Any]] = []
            for start in range(0, len(pending), _BATCH):
                chunk = pending[start : start + _BATCH]
                response = self._client.batch_write_item(
                    RequestItems={self.history_table: [{"PutRequest": {"Item": item}} for item in chunk]}
                )
                leftover = response.get("UnprocessedItems", {}).get(self.history_table, [])
                unprocessed.extend(request["PutRequest"]["Item"] for request in leftover if "PutRequest" in request)
            if not unprocessed:
                return 0
            pending = unprocessed
            if attempt + 1 < max_attempts:
                self._sleep(0.05 * 2**attempt)  # DynamoDB asks for backoff on unprocessed items
        return len(pending)

    def _history_item(self, write: _Write, check: PendingCheck) -> dict[str, Any]:
        step, probe, verdict = write.step, check.probe, check.verdict
        ttl = self._transition_ttl_s if step.changed else self._check_ttl_s
        item: dict[str, Any] = {
            "name": {"S": write.loaded.endpoint.name},
            "checked_at": {"S": write.stamp},
            "passed": {"BOOL": verdict.passed},
            "state": {"S": step.new_state},
            "latency_ms": {"N": str(probe.latency_ms)},
            "expires_at": {"N": str(int(check.checked_at.timestamp()) + ttl)},
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
