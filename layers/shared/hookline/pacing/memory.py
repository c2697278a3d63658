"""In-memory PaceStore: one process, the same conditions as the DynamoDB store (tests, local runs, single instances)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from hookline.pacing.model import PaceRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookline.pacing.model import ClockStep, SlotStep, Take, Throttle
    from resilience._clock import Clock

__all__ = ["DEFAULT_STATE_TTL_S", "MemoryPaceStore", "apply_take"]

DEFAULT_STATE_TTL_S = 24 * 3600.0
"""A key idle this long is forgotten (DynamoDB TTL): its record holds only recent timing, never messages."""


def _clock_after(value: float | None, step: ClockStep) -> float | None:
    """The clock after ``step``, or None when its condition fails."""
    if step.behind:
        return step.base + step.add_s if value is None or value <= step.base else None
    if value is None or value <= step.base or (step.at_most is not None and value > step.at_most):
        return None
    return value + step.add_s


def _slots_after(record: PaceRecord, step: SlotStep) -> PaceRecord | None:
    if record.in_flight > step.at_most or any(record.slots.get(bucket) != held for bucket, held in step.reap.items()):
        return None
    slots = {bucket: held for bucket, held in record.slots.items() if bucket not in step.reap}
    if step.count:
        slots[step.bucket] = slots.get(step.bucket, 0) + step.count
    return record.evolve(in_flight=record.in_flight + step.count - sum(step.reap.values()), slots=slots)


def apply_take(record: PaceRecord, take: Take) -> PaceRecord | None:
    """The record after ``take``, or None when one of its conditions fails (the semantics both stores implement)."""
    if record.throttle != take.throttle:
        return None
    changed = record
    for name, step in (("tat", take.tat), ("due", take.due)):
        if step is not None:
            value = _clock_after(getattr(record, name), step)
            if value is None:
                return None
            changed = changed.evolve(**{name: value})
    if take.slots is not None:
        return _slots_after(changed, take.slots)
    return changed


class MemoryPaceStore:
    """Pace records in a dict guarded by a lock; a record past its TTL is dropped when read."""

    def __init__(self, *, clock: Clock = time.time, state_ttl_s: float = DEFAULT_STATE_TTL_S) -> None:
        self.clock = clock
        self._state_ttl_s = state_ttl_s
        self._lock = threading.Lock()
        self._records: dict[str, PaceRecord] = {}
        self.requests = 0

    def _live(self, key: str) -> PaceRecord | None:
        record = self._records.get(key)
        if record is not None and record.expires_at is not None and record.expires_at <= self.clock():
            del self._records[key]
            return None
        return record

    def _store(self, record: PaceRecord) -> PaceRecord:
        stored = record.evolve(expires_at=int(self.clock() + self._state_ttl_s))
        self._records[record.key] = stored
        return stored

    def load(self, keys: Sequence[str], *, consistent: bool = False) -> dict[str, PaceRecord]:
        """Read several keys at once; keys never written are absent from the result."""
        with self._lock:
            self.requests += 1
            found = {key: self._live(key) for key in dict.fromkeys(keys)}
        return {key: record for key, record in found.items() if record is not None}

    def take(self, key: str, take: Take) -> tuple[bool, PaceRecord]:
        """Apply every step of ``take`` if all their conditions hold, else nothing."""
        with self._lock:
            self.requests += 1
            current = self._live(key) or PaceRecord(key)
            changed = apply_take(current, take)
            if changed is None:
                return False, current
            return True, self._store(changed)

    def release(self, key: str, bucket: int, count: int, *, latency_s: float | None = None) -> PaceRecord | None:
        """Give back ``count`` slots of ``bucket`` and note the latency; None when that bucket was already reaped."""
        with self._lock:
            self.requests += 1
            current = self._live(key)
            if current is None or bucket not in current.slots:
                return None
            slots = {**current.slots, bucket: current.slots[bucket] - count}
            # Like DynamoDB's ADD: the counts change, the TTL does not (only takes and throttles renew it).
            released = current.evolve(
                in_flight=current.in_flight - count,
                slots=slots,
                latency_s=current.latency_s if latency_s is None else latency_s,
            )
            self._records[key] = released
            return released

    def throttle(self, key: str, throttle: Throttle, *, expected: Throttle | None) -> tuple[bool, PaceRecord]:
        """Replace the key's throttle if it is still ``expected``."""
        with self._lock:
            self.requests += 1
            current = self._live(key) or PaceRecord(key)
            if current.throttle != expected:
                return False, current
            return True, self._store(current.evolve(throttle=throttle))
