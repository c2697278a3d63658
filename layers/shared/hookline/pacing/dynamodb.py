"""DynamoDB PaceStore: one small item per key in the template's PacingTable (partition key ``pk``, TTL).

Item attributes: ``tat`` and ``due`` (the GCRA and booking clocks), ``in_flight`` with one ``s_<bucket>`` counter per
grant bucket, ``lat`` (latency), the throttle ``t_rate, t_since, t_until, t_est, t_nb``, and ``expires_at``. Every
change is one UpdateItem: clocks move by SET with a condition on their current value (arithmetic in SET, bounds
computed by the caller in the condition), slot counts by atomic ADD, the throttle by compare-and-set on all of its
fields. A failed condition returns the item as it is (ReturnValuesOnConditionCheckFailure), so a lost race costs no
extra read. The item stays well under 1 KB: each write is one write unit.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hookline.pacing.exceptions import PacingStoreError
from hookline.pacing.memory import DEFAULT_STATE_TTL_S
from hookline.pacing.model import PaceRecord, Throttle
from resilience._dynamodb import Item, TableStore, UpdateExpression
from resilience._dynamodb import number as _n
from resilience._dynamodb import read_number as _num

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookline.pacing.model import ClockStep, SlotStep, Take
    from resilience._clock import Clock

__all__ = ["DynamoDBPaceStore"]

_SLOT = re.compile(r"^s_(-?\d+)$")


def _throttle_from_item(item: Item) -> Throttle | None:
    rate, since, until = _num(item, "t_rate"), _num(item, "t_since"), _num(item, "t_until")
    if rate is None or since is None or until is None:
        return None
    return Throttle(
        rate_per_s=rate,
        since=since,
        until=until,
        estimated=bool(item.get("t_est", {}).get("BOOL", False)),
        not_before=_num(item, "t_nb"),
    )


def _record_from_item(key: str, item: Item) -> PaceRecord:
    slots = {int(match.group(1)): int(value["N"]) for name, value in item.items() if (match := _SLOT.match(name))}
    expires_at = _num(item, "expires_at")
    return PaceRecord(
        key=key,
        tat=_num(item, "tat"),
        due=_num(item, "due"),
        in_flight=int(_num(item, "in_flight") or 0),
        slots=slots,
        throttle=_throttle_from_item(item),
        latency_s=_num(item, "lat"),
        expires_at=int(expires_at) if expires_at is not None else None,
    )


class _Update(UpdateExpression):
    """One UpdateItem of a pace record: its clocks, slots and throttle."""

    def clock(self, attribute: str, step: ClockStep) -> None:
        clock = self.name(attribute)
        base = self.value(_n(step.base))
        if step.behind:
            self.conditions.append(f"attribute_not_exists({clock}) OR {clock} <= {base}")
            self.clauses["SET"].append(f"{clock} = {self.value(_n(step.base + step.add_s))}")
            return
        condition = f"{clock} > {base}"
        if step.at_most is not None:
            condition += f" AND {clock} <= {self.value(_n(step.at_most))}"
        self.conditions.append(condition)
        self.clauses["SET"].append(f"{clock} = {clock} + {self.value(_n(step.add_s))}")

    def slots(self, step: SlotStep) -> None:
        in_flight = self.name("in_flight")
        self.conditions.append(f"attribute_not_exists({in_flight}) OR {in_flight} <= {self.value(_n(step.at_most))}")
        for bucket, held in sorted(step.reap.items()):
            counter = self.name(f"s_{bucket}")
            self.conditions.append(f"{counter} = {self.value(_n(held))}")
            self.clauses["REMOVE"].append(counter)
        self.clauses["ADD"].append(f"{in_flight} {self.value(_n(step.count - sum(step.reap.values())))}")
        if step.count:
            self.add(f"s_{step.bucket}", step.count)

    def throttle_is(self, expected: Throttle | None) -> None:
        """Condition: the stored throttle is exactly ``expected`` (None: there is none)."""
        since = self.name("t_since")
        if expected is None:
            self.conditions.append(f"attribute_not_exists({since})")
            return
        self.conditions.append(f"{since} = {self.value(_n(expected.since))}")
        for attribute, value in (
            ("t_rate", _n(expected.rate_per_s)),
            ("t_until", _n(expected.until)),
            ("t_est", {"BOOL": expected.estimated}),
        ):
            self.conditions.append(f"{self.name(attribute)} = {self.value(value)}")
        not_before = self.name("t_nb")
        if expected.not_before is None:
            self.conditions.append(f"attribute_not_exists({not_before})")
        else:
            self.conditions.append(f"{not_before} = {self.value(_n(expected.not_before))}")


class DynamoDBPaceStore(TableStore):
    """Pace records in DynamoDB: batched reads, conditional clock moves, atomic slot counts, TTL on every item."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        clock: Clock = time.time,
        state_ttl_s: float = DEFAULT_STATE_TTL_S,
    ) -> None:
        super().__init__(table_name, client=client, clock=clock, error=PacingStoreError)
        self._state_ttl_s = state_ttl_s

    def _update(self, key: str, update: _Update) -> tuple[bool, PaceRecord]:
        try:
            response = self._table.call(
                "update_item",
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update.request(),
            )
        except ClientError as error:
            current: Item = error.response.get("Item") or {}  # type: ignore[assignment]
            return False, _record_from_item(key, current)
        return True, _record_from_item(key, response["Attributes"])

    def _expires_at(self) -> dict[str, str]:
        return _n(int(self.clock() + self._state_ttl_s))

    def load(self, keys: Sequence[str], *, consistent: bool = False) -> dict[str, PaceRecord]:
        """Read any number of keys with as few BatchGetItem calls as DynamoDB allows (100 keys each)."""
        wanted = [{"pk": {"S": key}} for key in dict.fromkeys(keys)]
        items = self._table.batch_get(wanted, consistent=consistent)
        return {item["pk"]["S"]: _record_from_item(item["pk"]["S"], item) for item in items}

    def take(self, key: str, take: Take) -> tuple[bool, PaceRecord]:
        """One conditional UpdateItem applying every step of ``take``, or nothing."""
        update = _Update()
        update.throttle_is(take.throttle)
        if take.tat is not None:
            update.clock("tat", take.tat)
        if take.due is not None:
            update.clock("due", take.due)
        if take.slots is not None:
            update.slots(take.slots)
        update.set("expires_at", self._expires_at())
        return self._update(key, update)

    def release(self, key: str, bucket: int, count: int, *, latency_s: float | None = None) -> PaceRecord | None:
        """ADD ``-count`` to the bucket and to ``in_flight``, if the bucket was not reaped meanwhile."""
        update = _Update()
        counter, in_flight, amount = update.name(f"s_{bucket}"), update.name("in_flight"), update.value(_n(-count))
        update.clauses["ADD"] += [f"{counter} {amount}", f"{in_flight} {amount}"]
        update.conditions.append(f"attribute_exists({counter})")
        if latency_s is not None:
            update.set("lat", _n(float(latency_s)))
        applied, record = self._update(key, update)
        return record if applied else None

    def throttle(self, key: str, throttle: Throttle, *, expected: Throttle | None) -> tuple[bool, PaceRecord]:
        """Compare-and-set of the throttle fields (every field must still hold its expected value)."""
        update = _Update()
        update.throttle_is(expected)
        update.set("t_since", _n(throttle.since))
        update.set("t_rate", _n(throttle.rate_per_s))
        update.set("t_until", _n(throttle.until))
        update.set("t_est", {"BOOL": throttle.estimated})
        if throttle.not_before is None:
            update.remove("t_nb")
        else:
            update.set("t_nb", _n(throttle.not_before))
        update.set("expires_at", self._expires_at())
        return self._update(key, update)
