"""DynamoDB StateStore: one item per breaker plus history items, in the template's BreakerTable (pk + sk, TTL).

Item ``pk=breaker#<name>, sk=state`` holds the state fields, changed only by conditional writes on ``version``, and
the counters ``c_<epoch>_<bucket>`` (calls), ``f_<epoch>_<bucket>`` (failures), ``k_<epoch>`` (consecutive
failures) and ``t_<epoch>`` (when that run started), changed only by atomic ADD (a run is reset by a success newer
than its start: a conditional update, retried as a plain ADD when the condition fails). Items ``sk=history#...``
keep transitions. Every item carries ``expires_at``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from resilience._dynamodb import Item, TableStore, UpdateExpression
from resilience._dynamodb import number as _n
from resilience._dynamodb import read_number as _num
from resilience.breaker.memory import DEFAULT_HISTORY_TTL_S, DEFAULT_STATE_TTL_S
from resilience.breaker.model import BreakerRecord, BreakerSnapshot, BreakerState, Counts, OutcomeDelta, Transition
from resilience.exceptions import StateStoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from resilience._clock import Clock

__all__ = ["DynamoDBStateStore"]

logger = logging.getLogger(__name__)

_STATE_SK = "state"
_HISTORY_PREFIX = "history#"
_COUNTER = re.compile(r"^([cf])_(\d+)_(\d+)$")
_RUN = re.compile(r"^([kt])_(\d+)$")
# State fields written by compare-and-set; a None value is REMOVEd.
_OPTIONAL_NUMBERS = ("opened_at", "open_until")
_OPTIONAL_STRINGS = ("forced_by", "reason", "updated_by")


def _pk(name: str) -> dict[str, str]:
    return {"S": f"breaker#{name}"}


def _str(item: Item, key: str) -> str | None:
    raw = item.get(key)
    return str(raw["S"]) if raw is not None else None


def _record_from_item(item: Item) -> BreakerRecord:
    """Parse a state item, counters included."""
    calls: dict[tuple[int, int], int] = {}
    failures: dict[tuple[int, int], int] = {}
    consecutive: dict[int, int] = {}
    run_started: dict[int, float] = {}
    for key, value in item.items():
        if match := _COUNTER.match(key):
            target = calls if match.group(1) == "c" else failures
            target[(int(match.group(2)), int(match.group(3)))] = int(value["N"])
        elif match := _RUN.match(key):
            if match.group(1) == "k":
                consecutive[int(match.group(2))] = int(value["N"])
            else:
                run_started[int(match.group(2))] = float(value["N"])
    buckets = {key: Counts(calls.get(key, 0), failures.get(key, 0)) for key in calls.keys() | failures.keys()}
    probes = {probe: float(until["N"]) for probe, until in item.get("probes", {}).get("M", {}).items()}
    expires_at = _num(item, "expires_at")
    return BreakerRecord(
        name=_str(item, "name") or item["pk"]["S"].removeprefix("breaker#"),
        state=BreakerState(_str(item, "state") or BreakerState.CLOSED),
        version=int(_num(item, "version") or 0),
        epoch=int(_num(item, "epoch") or 0),
        opened_at=_num(item, "opened_at"),
        open_until=_num(item, "open_until"),
        reopen_count=int(_num(item, "reopen_count") or 0),
        forced_by=_str(item, "forced_by"),
        reason=_str(item, "reason"),
        probes=probes,
        half_open_successes=int(_num(item, "half_open_successes") or 0),
        updated_at=_num(item, "updated_at"),
        updated_by=_str(item, "updated_by"),
        expires_at=int(expires_at) if expires_at is not None else None,
        buckets=buckets,
        consecutive=consecutive,
        run_started=run_started,
    )


def _transition_from_item(item: Item) -> Transition:
    return Transition(
        name=_str(item, "name") or "",
        from_state=BreakerState(item["from_state"]["S"]),
        to_state=BreakerState(item["to_state"]["S"]),
        at=_num(item, "at") or 0.0,
        reason=_str(item, "reason"),
        source=_str(item, "source") or "fleet",
        writer=_str(item, "writer"),
        version=int(_num(item, "version") or 0),
    )


class DynamoDBStateStore(TableStore):
    """Breaker state in DynamoDB: batched reads, conditional state writes, atomic counter adds, TTL on every item."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        table_name: str,
        *,
        client: Any = None,
        clock: Clock = time.time,
        cache_ttl_s: float = 10.0,
        state_ttl_s: float = DEFAULT_STATE_TTL_S,
        history_ttl_s: float = DEFAULT_HISTORY_TTL_S,
    ) -> None:
        super().__init__(table_name, client=client, clock=clock, error=StateStoreError)
        self.cache_ttl_s = cache_ttl_s
        self._state_ttl_s = state_ttl_s
        self._history_ttl_s = history_ttl_s
        # Counter attributes seen per breaker, so a later add can REMOVE the stale ones (DynamoDB cannot by pattern).
        self._counters_seen: dict[str, set[str]] = {}

    def _remember(self, item: Item) -> BreakerRecord:
        record = _record_from_item(item)
        self._counters_seen[record.name] = {key for key in item if _COUNTER.match(key) or _RUN.match(key)}
        return record

    def _expires_at(self, ttl_s: float) -> dict[str, str]:
        return _n(int(self.clock() + ttl_s))

    def load(self, names: Sequence[str], *, consistent: bool = False) -> dict[str, BreakerRecord]:
        """Read up to any number of breakers with as few BatchGetItem calls as DynamoDB allows (100 keys each)."""
        keys = [{"pk": _pk(name), "sk": {"S": _STATE_SK}} for name in dict.fromkeys(names)]
        found: dict[str, BreakerRecord] = {}
        for item in self._table.batch_get(keys, consistent=consistent):
            record = self._remember(item)
            found[record.name] = record
        return found

    def compare_and_set(
        self, record: BreakerRecord, *, expected_version: int, reset_counters: bool = False
    ) -> BreakerRecord | None:
        """Write the state fields as version ``expected_version + 1`` if nobody changed the item meanwhile."""
        version = expected_version + 1
        expression = UpdateExpression()
        expression.set("name", {"S": record.name})
        expression.set("state", {"S": record.state.value})
        expression.set("version", _n(version))
        if reset_counters:
            expression.set("epoch", _n(version))
        expression.set("reopen_count", _n(record.reopen_count))
        expression.set("half_open_successes", _n(record.half_open_successes))
        expression.set("probes", {"M": {probe: _n(until) for probe, until in record.probes.items()}})
        expression.set("updated_at", _n(record.updated_at if record.updated_at is not None else self.clock()))
        expression.set("expires_at", self._expires_at(self._state_ttl_s))
        for attribute in _OPTIONAL_NUMBERS:
            number = getattr(record, attribute)
            if number is None:
                expression.remove(attribute)
            else:
                expression.set(attribute, _n(number))
        for attribute in _OPTIONAL_STRINGS:
            text = getattr(record, attribute)
            if text is None:
                expression.remove(attribute)
            else:
                expression.set(attribute, {"S": text})
        version_name = expression.name("version")
        if expected_version == 0:
            condition = f"attribute_not_exists({version_name})"
        else:
            condition = f"{version_name} = {expression.value(_n(expected_version))}"
        try:
            response = self._table.call(
                "update_item",
                TableName=self.table_name,
                Key={"pk": _pk(record.name), "sk": {"S": _STATE_SK}},
                UpdateExpression=expression.update_expression(),
                ConditionExpression=condition,
                ExpressionAttributeNames=expression.names,
                ExpressionAttributeValues=expression.values,
                ReturnValues="ALL_NEW",
            )
        except ClientError:
            return None
        return self._remember(response["Attributes"])

    def add_outcomes(self, name: str, delta: OutcomeDelta) -> BreakerRecord:
        """One UpdateItem: ADD the delta's counters, REMOVE counters known to be stale, return the item after it.

        A delta whose last success may end the fleet's run of failures first tries the reset, conditioned on the
        run having started before that success; when it did not, the same update goes again as a plain ADD.
        """
        if delta.last_success_at is not None:
            try:
                return self._update_outcomes(name, delta, reset_run=True)
            except ClientError:
                pass  # the run started after this delta's last success: it goes on
        return self._update_outcomes(name, delta, reset_run=False)

    def _update_outcomes(self, name: str, delta: OutcomeDelta, *, reset_run: bool) -> BreakerRecord:
        expression = UpdateExpression()
        adding: set[str] = set()
        for start, counts in delta.buckets.items():
            for prefix, amount in (("c", counts.calls), ("f", counts.failures)):
                attribute = f"{prefix}_{delta.epoch}_{start}"
                adding.add(attribute)
                expression.add(attribute, amount)
        run, started = f"k_{delta.epoch}", f"t_{delta.epoch}"
        adding |= {run, started}
        condition: dict[str, str] = {}
        if reset_run:
            expression.set(run, _n(delta.trailing_failures))
            if delta.trailing_failures and delta.run_started_at is not None:
                expression.set(started, _n(delta.run_started_at))
            else:
                expression.remove(started)
            assert delta.last_success_at is not None
            started_name = expression.name(started)
            success = expression.value(_n(delta.last_success_at))
            condition["ConditionExpression"] = f"attribute_not_exists({started_name}) OR {started_name} <= {success}"
        else:
            expression.add(run, delta.trailing_failures)
            if delta.trailing_failures and delta.run_started_at is not None:
                expression.set_if_absent(started, _n(delta.run_started_at))
        for attribute in sorted(self._counters_seen.get(name, set()) - adding):
            if self._is_stale(attribute, delta):
                expression.remove(attribute)
        expression.set("name", {"S": name})
        expression.set("expires_at", self._expires_at(self._state_ttl_s))
        # A failed condition (only the reset attempt has one) reaches add_outcomes as ClientError.
        response = self._table.call(
            "update_item",
            TableName=self.table_name,
            Key={"pk": _pk(name), "sk": {"S": _STATE_SK}},
            UpdateExpression=expression.update_expression(),
            ExpressionAttributeNames=expression.names,
            ExpressionAttributeValues=expression.values,
            ReturnValues="ALL_NEW",
            **condition,
        )
        return self._remember(response["Attributes"])

    @staticmethod
    def _is_stale(attribute: str, delta: OutcomeDelta) -> bool:
        """Same rule as the memory store: older epochs, and buckets of this epoch that left the window."""
        if match := _COUNTER.match(attribute):
            epoch, start = int(match.group(2)), int(match.group(3))
            return epoch < delta.epoch or (epoch == delta.epoch and start <= delta.keep_after)
        if match := _RUN.match(attribute):
            return int(match.group(2)) < delta.epoch
        return False

    def append_history(self, transition: Transition) -> None:
        """PutItem of one history item; its sort key orders by time, then version."""
        sort_key = (
            f"{_HISTORY_PREFIX}{int(transition.at * 1_000_000):017d}#{transition.version:010d}#{uuid.uuid4().hex[:6]}"
        )
        item: Item = {
            "pk": _pk(transition.name),
            "sk": {"S": sort_key},
            "name": {"S": transition.name},
            "from_state": {"S": transition.from_state.value},
            "to_state": {"S": transition.to_state.value},
            "at": _n(transition.at),
            "source": {"S": transition.source},
            "version": _n(transition.version),
            "expires_at": self._expires_at(self._history_ttl_s),
        }
        if transition.reason is not None:
            item["reason"] = {"S": transition.reason}
        if transition.writer is not None:
            item["writer"] = {"S": transition.writer}
        self._table.call("put_item", TableName=self.table_name, Item=item)

    def history(self, name: str, limit: int = 50) -> list[Transition]:
        """The newest transitions of one breaker, newest first (one Query)."""
        response = self._table.call(
            "query",
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": _pk(name), ":prefix": {"S": _HISTORY_PREFIX}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_transition_from_item(item) for item in response.get("Items", [])]

    def list_breakers(self, *, window_s: float = 60.0) -> list[BreakerSnapshot]:
        """A snapshot of every breaker (a paginated Scan of the state items: for the CLI, not for hot paths)."""
        now = self.clock()
        snapshots: list[BreakerSnapshot] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :state",
            "ExpressionAttributeValues": {":state": {"S": _STATE_SK}},
        }
        while True:
            response = self._table.call("scan", **request)
            snapshots.extend(_record_from_item(item).snapshot(now, window_s) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(snapshots, key=lambda snap: snap.name)
