"""The StateStore protocol: what the breaker needs from shared storage, implemented in memory and in DynamoDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from resilience._clock import Clock
    from resilience.breaker.model import BreakerRecord, BreakerSnapshot, OutcomeDelta, Transition

__all__ = ["StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """Shared breaker state. Every operation is atomic; a lost race is a normal outcome, not an error.

    Implementations raise ``resilience.StateStoreError`` when the storage itself fails, and nothing else.
    """

    clock: Clock
    """Wall clock (seconds since the epoch) used to stamp writes; every writer stamps its own time."""

    cache_ttl_s: float
    """How long a breaker may act on a record it read while the fleet looks healthy."""

    def load(self, names: Sequence[str], *, consistent: bool = False) -> dict[str, BreakerRecord]:
        """Read several breakers at once; names never written are absent from the result."""
        ...

    def compare_and_set(
        self, record: BreakerRecord, *, expected_version: int, reset_counters: bool = False
    ) -> BreakerRecord | None:
        """Write the state fields of ``record`` as version ``expected_version + 1`` if the stored version is still
        ``expected_version`` (0 = never written). ``reset_counters`` starts a new counter epoch. Returns the stored
        record, or None when another writer got there first."""
        ...

    def add_outcomes(self, name: str, delta: OutcomeDelta) -> BreakerRecord:
        """Atomically add buffered outcomes to the counters and return the whole record as it is afterwards."""
        ...

    def append_history(self, transition: Transition) -> None:
        """Keep one transition; like every item of the store it carries a TTL."""
        ...

    def history(self, name: str, limit: int = 50) -> list[Transition]:
        """The newest transitions of one breaker, newest first."""
        ...

    def list_breakers(self, *, window_s: float = 60.0) -> list[BreakerSnapshot]:
        """A snapshot of every breaker in the store, sorted by name."""
        ...
