"""Lanes: slow endpoints never hold the others' batches (docs/delivery.md "Lanes").

In the fast lane (DeliveryFunction) every request has a short budget (``REQUEST_BUDGET_S``, template parameter
``FastLaneRequestBudget``). A request over it is cut, its origin is **marked slow** fleet-wide for a while
(``SLOW_MARK_S``), and its record moves to the slow lane: SlowQueue, read by SlowDeliveryFunction, the same code with
the endpoint's full timeouts and its own concurrency. While the mark stands, the fast lane moves that origin's
records without a request. The slow lane refreshes the mark while the origin stays slow and clears it once a request
is answered within the budget again; a mark also expires by itself.

Marks are small items in the breaker table (``pk = lane#<origin>``, ``sk = slow``, ``until``, TTL ``expires_at``):
read for a batch's origins in one BatchGetItem when it opens (cached per environment for ``cache_ttl_s``), written
with PutItem, never on the event loop. Cutting a request may deliver twice (the receiver may still process the
request it was too slow to answer): both carry the same webhook-id.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from hookline.delivery.attempt import Refusal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hookline.delivery.attempt import Target, TargetOutcome
    from hookline.delivery.gates import Offload

__all__ = ["DEFAULT_MARK_S", "LaneGate", "MemorySlowMarks", "SlowMarks", "SlowMarksStore"]

DEFAULT_MARK_S = 300.0
_SK = "slow"
_BATCH_GET_LIMIT = 100
_logger = logging.getLogger("hookline.delivery")


class SlowMarks:
    """Which origins are marked slow: a per-environment cache over a store (``SlowMarksStore`` or memory)."""

    def __init__(
        self,
        store: Any,
        *,
        mark_s: float = DEFAULT_MARK_S,
        cache_ttl_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.mark_s = mark_s
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._until: dict[str, float] = {}
        self._read_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def prefetch(self, origins: Iterable[str]) -> None:
        """Read the marks of every origin not read within ``cache_ttl_s`` (one request; blocking)."""
        now = self._clock()
        with self._lock:
            stale = [o for o in dict.fromkeys(origins) if now - self._read_at.get(o, -math.inf) >= self.cache_ttl_s]
        if not stale:
            return
        try:
            found = self.store.load(stale)
        except Exception as error:  # noqa: BLE001 - unknown marks read as "not slow": the budget still cuts
            _logger.warning("slow-lane marks unreadable: %s", type(error).__name__)
            return
        with self._lock:
            for origin in stale:
                self._read_at[origin] = now
                self._until[origin] = found.get(origin, 0.0)

    def is_slow(self, origin: str) -> bool:
        """Whether ``origin`` is marked slow (as last read, or as marked here)."""
        with self._lock:
            return self._until.get(origin, 0.0) > self._clock()

    def mark(self, origin: str) -> None:
        """Mark ``origin`` slow for ``mark_s`` (fleet-wide; blocking). A fresh mark is not written again."""
        now = self._clock()
        with self._lock:
            if self._until.get(origin, 0.0) - now > self.mark_s / 2:
                return
            self._until[origin] = now + self.mark_s
        self._write(origin, now + self.mark_s)

    def clear(self, origin: str) -> None:
        """Lift the mark of ``origin`` (it answered within the budget again; blocking)."""
        with self._lock:
            if self._until.get(origin, 0.0) <= self._clock():
                return
            self._until[origin] = 0.0
        self._write(origin, 0.0)

    def _write(self, origin: str, until: float) -> None:
        try:
            self.store.save(origin, until, expires_at=int(max(until, self._clock()) + self.mark_s))
        except Exception as error:  # noqa: BLE001 - the mark stays local; other environments cut once themselves
            _logger.warning("slow-lane mark not written: %s", type(error).__name__)


class MemorySlowMarks:
    """Marks in memory (tests, one process)."""

    def __init__(self) -> None:
        self.items: dict[str, float] = {}
        self.reads = 0
        self.writes = 0

    def load(self, origins: list[str]) -> dict[str, float]:
        """Every stored mark among ``origins`` (its ``until``)."""
        self.reads += 1
        return {origin: self.items[origin] for origin in origins if origin in self.items}

    def save(self, origin: str, until: float, *, expires_at: int) -> None:
        """Store a mark (``until`` 0 lifts it)."""
        del expires_at
        self.writes += 1
        self.items[origin] = until


class SlowMarksStore:
    """Marks as items of the breaker table (``pk = lane#<origin>``, ``sk = slow``), with a TTL."""

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table_name = table_name
        self._client = client

    def load(self, origins: list[str]) -> dict[str, float]:
        """Every stored mark among ``origins`` (BatchGetItem, 100 keys a call; unprocessed keys read as unmarked)."""
        found: dict[str, float] = {}
        for start in range(0, len(origins), _BATCH_GET_LIMIT):
            keys = [{"pk": {"S": f"lane#{o}"}, "sk": {"S": _SK}} for o in origins[start : start + _BATCH_GET_LIMIT]]
            response = self._client.batch_get_item(RequestItems={self.table_name: {"Keys": keys}})
            for item in response.get("Responses", {}).get(self.table_name, []):
                found[item["pk"]["S"].removeprefix("lane#")] = float(item["until"]["N"])
        return found

    def save(self, origin: str, until: float, *, expires_at: int) -> None:
        """Store a mark (``until`` 0 lifts it); the item expires by TTL."""
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"lane#{origin}"},
                "sk": {"S": _SK},
                "until": {"N": repr(round(until, 3))},
                "expires_at": {"N": str(expires_at)},
            },
        )


class LaneGate:
    """The lane's rules at each target: the fast lane refuses marked origins and marks the ones it had to cut; the
    slow lane keeps marks in step with what it sees."""

    def __init__(self, marks: SlowMarks, *, lane: str, budget_s: float, offload: Offload = asyncio.to_thread) -> None:
        self.marks = marks
        self.lane = lane
        self.budget_s = budget_s
        self._offload = offload

    async def enter(self, target: Target) -> None | Refusal:
        """In the fast lane, a ``slow`` refusal for an origin marked slow (its record belongs to the slow lane)."""
        if self.lane == "fast" and self.marks.is_slow(target.origin):
            return Refusal("slow", f"{target.origin} is marked slow: its records go to the slow lane")
        return None

    async def leave(self, target: Target, ticket: object, outcome: TargetOutcome) -> None:
        """Mark an origin slow when a request went over the budget; in the slow lane, lift it once one did not."""
        del ticket
        if outcome.latency_ms is None:
            return  # no request was made
        slow = outcome.status == "slow" or outcome.latency_ms > self.budget_s * 1000
        if slow:
            await self._offload(self.marks.mark, target.origin)
        elif self.lane == "slow" and self.marks.is_slow(target.origin):
            await self._offload(self.marks.clear, target.origin)
