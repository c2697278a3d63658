"""Health metrics (namespace Hookline): a small sink protocol, and its Powertools Metrics (EMF) implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from hookline.metrics import INTEGRATION_DIMENSION

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

__all__ = ["MetricsSink", "PowertoolsMetricsSink", "RecordingMetricsSink"]


class MetricsSink(Protocol):
    """Where the health service sends its metrics."""

    def add(self, name: str, unit: str, value: float) -> None:
        """A fleet-wide value (only the service dimension)."""
        ...

    def add_for_integration(self, name: str, unit: str, value: float, integration: str) -> None:
        """A value with the Integration dimension."""
        ...


class PowertoolsMetricsSink:
    """Fleet values go to the function's Metrics object; per-integration values each get their own EMF line."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def add(self, name: str, unit: str, value: float) -> None:
        """Add to the batch flushed by ``@metrics.log_metrics``."""
        self._metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)

    def add_for_integration(self, name: str, unit: str, value: float, integration: str) -> None:
        """Emit at once with dimensions service + Integration (one EMF blob shares one dimension set)."""
        dimensions = dict(self._metrics.default_dimensions)
        if self._metrics.service:
            dimensions.setdefault("service", self._metrics.service)
        with single_metric(
            name=name,
            unit=MetricUnit(unit),
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions=dimensions,
        ) as metric:
            metric.add_dimension(name=INTEGRATION_DIMENSION, value=integration)


class RecordingMetricsSink:
    """Keeps every value in memory (tests, benchmarks, and `hookline health run` output)."""

    def __init__(self) -> None:
        self.values: list[tuple[str, str, float, str | None]] = []

    def add(self, name: str, unit: str, value: float) -> None:
        """Record a fleet-wide value."""
        self.values.append((name, unit, value, None))

    def add_for_integration(self, name: str, unit: str, value: float, integration: str) -> None:
        """Record a per-integration value."""
        self.values.append((name, unit, value, integration))

    def of(self, name: str) -> list[tuple[float, str | None]]:
        """Every (value, integration) recorded under ``name``."""
        return [(value, integration) for metric, _, value, integration in self.values if metric == name]
