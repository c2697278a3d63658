"""Delivery metrics of one batch, counted in memory and emitted once at the end (a few EMF lines per batch)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hookline import metrics as names

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from hookline.metrics import Reason

__all__ = ["BatchMetrics", "EventTally", "PowertoolsEmitter"]


@dataclass
class BatchMetrics:
    """Counters, dead letters by reason and request latencies of one batch."""

    counts: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def count(self, name: str, value: int = 1) -> None:
        """Add to an undimensioned counter (a name from hookline.metrics)."""
        self.counts[name] += value

    def dead_letter(self, reason: Reason) -> None:
        """Count one dead-lettered message under its reason."""
        self.dead_lettered[str(reason)] += 1

    def latency(self, milliseconds: float) -> None:
        """Record one request's latency."""
        self.latencies_ms.append(milliseconds)


_COUNTED = frozenset({names.BREAKER_OPENED, "PacingSlowedDown", "PacingStoreErrors"})


class EventTally:
    """A thread-safe ``metrics_hook`` for the breakers and the pacer: counts their own events (BreakerOpened,
    PacingSlowedDown, PacingStoreErrors) until a batch drains them.

    Both report from worker threads (their store calls run off the event loop); what delivery counts itself per
    target (BreakerRejected, DeliveryPaced) is not counted here.
    """

    def __init__(self, counted: frozenset[str] = _COUNTED) -> None:
        self._counted = counted
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, name: str, value: float) -> None:
        """Count ``value`` under ``name`` if it is one of the counted metrics."""
        if name in self._counted:
            with self._lock:
                self._counts[name] += round(value)

    def drain(self) -> Counter[str]:
        """Everything counted since the last drain (and forget it)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


class PowertoolsEmitter:
    """Writes a BatchMetrics through Powertools Metrics (EMF): counters on the handler's Metrics object, dead
    letters on one extra document per reason (dimension Reason), so no other metric carries that dimension."""

    def __init__(self, metrics: Metrics, *, namespace: str = names.NAMESPACE, service: str | None = None) -> None:
        self._metrics = metrics
        self._namespace = namespace
        self._service = service

    def __call__(self, batch: BatchMetrics) -> None:
        """Emit ``batch``."""
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        for name, count in sorted(batch.counts.items()):
            if count:
                self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
        # Powertools flushes a document by itself when a metric reaches EMF's 100 values.
        for latency in batch.latencies_ms:
            self._metrics.add_metric(name=names.DELIVERY_LATENCY, unit=MetricUnit.Milliseconds, value=latency)
        for reason, count in sorted(batch.dead_lettered.items()):
            document = EphemeralMetrics(namespace=self._namespace, service=self._service)
            document.add_dimension(name=names.REASON_DIMENSION, value=reason)
            document.add_metric(name=names.DELIVERY_DEAD_LETTERED, unit=MetricUnit.Count, value=count)
            document.flush_metrics()
