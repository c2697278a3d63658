"""The PaceStore protocol: what pacing needs from shared storage, implemented in memory and in DynamoDB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hookline.pacing.model import PaceRecord, Take, Throttle
    from resilience._clock import Clock

__all__ = ["PaceStore"]


@runtime_checkable
class PaceStore(Protocol):
    """Shared pace records, one per key. Every operation is atomic; a failed condition is a normal answer.

    Implementations raise ``PacingStoreError`` when the storage itself fails, and nothing else.
    """

    clock: Clock
    """Wall clock (seconds since the epoch): every environment compares times written by the others."""

    def load(self, keys: Sequence[str], *, consistent: bool = False) -> dict[str, PaceRecord]:
        """Read several keys at once; keys never written are absent from the result."""
        ...

    def take(self, key: str, take: Take) -> tuple[bool, PaceRecord]:
        """Apply every step of ``take`` if all their conditions hold, else nothing.

        Returns (True, the record after) or (False, the record as it is, empty if absent)."""
        ...

    def release(self, key: str, bucket: int, count: int, *, latency_s: float | None = None) -> PaceRecord | None:
        """Give back ``count`` in-flight slots of grant bucket ``bucket`` and note the key's latency; None when that
        bucket was already reaped (its slots no longer count, so nothing is given back twice)."""
        ...

    def throttle(self, key: str, throttle: Throttle, *, expected: Throttle | None) -> tuple[bool, PaceRecord]:
        """Replace the key's throttle if it is still ``expected`` (None = the key has none).

        Returns (True, the record after) or (False, the record as it is, empty if absent)."""
        ...
