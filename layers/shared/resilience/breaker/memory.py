"""In-memory StateStore: one process, same semantics as the DynamoDB store (tests, local runs, single instances)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from resilience.breaker.model import BreakerRecord, BreakerSnapshot, Counts, OutcomeDelta, Transition

if TYPE_CHECKING:
    from collections.abc import Sequence

    from resilience._clock import Clock

__all__ = ["DEFAULT_HISTORY_TTL_S", "DEFAULT_STATE_TTL_S", "MemoryStateStore", "apply_outcomes"]

DEFAULT_STATE_TTL_S = 7 * 24 * 3600.0
DEFAULT_HISTORY_TTL_S = 7 * 24 * 3600.0


def apply_outcomes(record: BreakerRecord, delta: OutcomeDelta) -> BreakerRecord:
    """The record after adding ``delta`` to its counters and dropping counters that can no longer matter.

    Dropped: epochs older than the delta's and buckets of its epoch that left the window. Newer epochs are kept, so a
    writer that has not seen a reset yet cannot erase the counters that came after it.
    """
    buckets = {
        key: counts
        for key, counts in record.buckets.items()
        if key[0] > delta.epoch or (key[0] == delta.epoch and key[1] > delta.keep_after)
    }
    for start, counts in delta.buckets.items():
        key = (delta.epoch, start)
        buckets[key] = buckets.get(key, Counts()) + counts
    consecutive = {epoch: run for epoch, run in record.consecutive.items() if epoch >= delta.epoch}
    run_started = {epoch: at for epoch, at in record.run_started.items() if epoch >= delta.epoch}
    started = run_started.pop(delta.epoch, None)
    if delta.breaks_run(started):
        consecutive[delta.epoch] = delta.trailing_failures
        started = delta.run_started_at if delta.trailing_failures else None
    else:
        consecutive[delta.epoch] = consecutive.get(delta.epoch, 0) + delta.trailing_failures
        started = started if started is not None else delta.run_started_at
    if started is not None:
        run_started[delta.epoch] = started
    return record.evolve(buckets=buckets, consecutive=consecutive, run_started=run_started)


class MemoryStateStore:
    """Breaker state in a dict guarded by a lock; items past their TTL are dropped when read."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        cache_ttl_s: float = 0.0,
        state_ttl_s: float = DEFAULT_STATE_TTL_S,
        history_ttl_s: float = DEFAULT_HISTORY_TTL_S,
    ) -> None:
        self.clock = clock
        self.cache_ttl_s = cache_ttl_s
        self._state_ttl_s = state_ttl_s
        self._history_ttl_s = history_ttl_s
        self._lock = threading.Lock()
        self._records: dict[str, BreakerRecord] = {}
        self._history: dict[str, list[tuple[int, Transition]]] = {}
        self.requests = 0

    def _expires_at(self, ttl_s: float) -> int:
        return int(self.clock() + ttl_s)

    def _live(self, name: str) -> BreakerRecord | None:
        record = self._records.get(name)
        if record is not None and record.expires_at is not None and record.expires_at <= self.clock():
            del self._records[name]
            return None
        return record

    def load(self, names: Sequence[str], *, consistent: bool = False) -> dict[str, BreakerRecord]:
        """Read several breakers at once; names never written are absent from the result."""
        with self._lock:
            self.requests += 1
            found = {name: self._live(name) for name in dict.fromkeys(names)}
        return {name: record for name, record in found.items() if record is not None}

    def compare_and_set(
        self, record: BreakerRecord, *, expected_version: int, reset_counters: bool = False
    ) -> BreakerRecord | None:
        """Write the state fields as version ``expected_version + 1`` if nobody changed the record meanwhile."""
        with self._lock:
            self.requests += 1
            current = self._live(record.name) or BreakerRecord(record.name)
            if current.version != expected_version:
                return None
            version = expected_version + 1
            stored = record.evolve(
                version=version,
                epoch=version if reset_counters else current.epoch,
                expires_at=self._expires_at(self._state_ttl_s),
                buckets=current.buckets,
                consecutive=current.consecutive,
                run_started=current.run_started,
                probes=dict(record.probes),
            )
            self._records[record.name] = stored
            return stored

    def add_outcomes(self, name: str, delta: OutcomeDelta) -> BreakerRecord:
        """Atomically add buffered outcomes to the counters and return the whole record as it is afterwards."""
        with self._lock:
            self.requests += 1
            current = self._live(name) or BreakerRecord(name)
            stored = apply_outcomes(current, delta).evolve(expires_at=self._expires_at(self._state_ttl_s))
            self._records[name] = stored
            return stored

    def append_history(self, transition: Transition) -> None:
        """Keep one transition until its TTL passes."""
        with self._lock:
            self.requests += 1
            self._history.setdefault(transition.name, []).append((self._expires_at(self._history_ttl_s), transition))

    def history(self, name: str, limit: int = 50) -> list[Transition]:
        """The newest transitions of one breaker, newest first."""
        now = self.clock()
        with self._lock:
            self.requests += 1
            kept = [(expires, item) for expires, item in self._history.get(name, []) if expires > now]
            self._history[name] = kept
            entries = [item for _, item in kept]
        entries.sort(key=lambda item: (item.at, item.version), reverse=True)
        return entries[:limit]

    def list_breakers(self, *, window_s: float = 60.0) -> list[BreakerSnapshot]:
        """A snapshot of every breaker in the store, sorted by name."""
        now = self.clock()
        with self._lock:
            self.requests += 1
            records = [record for name in list(self._records) if (record := self._live(name)) is not None]
        return sorted((record.snapshot(now, window_s) for record in records), key=lambda snap: snap.name)
