"""The outcome buffer: what one environment saw and has not written yet, so the healthy path writes nothing per call."""

from __future__ import annotations

from dataclasses import dataclass, field

from resilience.breaker.model import Counts, OutcomeDelta

__all__ = ["OutcomeBuffer"]


@dataclass
class OutcomeBuffer:
    """Outcomes of this environment not yet written, all of one counter epoch."""

    epoch: int = 0
    buckets: dict[int, Counts] = field(default_factory=dict)
    trailing_failures: int = 0
    last_success_at: float | None = None
    run_started_at: float | None = None

    @property
    def calls(self) -> int:
        """Outcomes buffered."""
        return sum(counts.calls for counts in self.buckets.values())

    @property
    def failures(self) -> int:
        """Failures buffered."""
        return sum(counts.failures for counts in self.buckets.values())

    def add(self, bucket: int, failed: bool, now: float, keep_after: float) -> None:
        """Count one outcome in the bucket starting at ``bucket``; buckets at or before ``keep_after`` are dropped."""
        if bucket not in self.buckets:
            # Bounded while the store is unreachable: buckets that left the window would be dropped anyway.
            for start in [start for start in self.buckets if start <= keep_after]:
                del self.buckets[start]
        self.buckets[bucket] = self.buckets.get(bucket, Counts()) + Counts(1, int(failed))
        if failed:
            if not self.trailing_failures:
                self.run_started_at = now
            self.trailing_failures += 1
        else:
            self.trailing_failures = 0
            self.run_started_at = None
            self.last_success_at = now

    def delta(self, now: float, keep_after: float) -> OutcomeDelta:
        """Everything buffered, as one atomic add for the store."""
        return OutcomeDelta(
            epoch=self.epoch,
            at=now,
            buckets=dict(self.buckets),
            trailing_failures=self.trailing_failures,
            last_success_at=self.last_success_at,
            run_started_at=self.run_started_at,
            keep_after=keep_after,
        )

    def reset(self, epoch: int) -> None:
        """Drop everything and count in ``epoch`` from now on."""
        self.epoch = epoch
        self.buckets = {}
        self.trailing_failures = 0
        self.last_success_at = None
        self.run_started_at = None
