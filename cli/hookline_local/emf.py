"""Turn CloudWatch Embedded Metric Format log lines (Powertools Metrics prints them) into PutMetricData calls."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["MetricForwarder", "MetricPut", "parse_emf"]

_log = logging.getLogger("hookline.local")
_MAX_VALUES = 150  # PutMetricData: values per datum
_MAX_DATA = 500  # datums per request (the API allows 1000; stay well inside the 1 MB payload limit)


@dataclass(frozen=True)
class MetricPut:
    """The MetricData of one namespace taken from one EMF document."""

    namespace: str
    data: list[dict[str, Any]]


def _values(raw: Any) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    return [float(item) for item in items if isinstance(item, int | float) and not isinstance(item, bool)]


def parse_emf(line: str) -> list[MetricPut] | None:
    """The metrics in an EMF line, or None when the line is not an EMF document (an ordinary log line)."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
        return None
    timestamp = datetime.fromtimestamp(float(meta.get("Timestamp", 0)) / 1000, tz=UTC)
    puts: list[MetricPut] = []
    for directive in meta["CloudWatchMetrics"]:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str):
            continue
        dimension_sets = directive.get("Dimensions") or [[]]
        data: list[dict[str, Any]] = []
        for definition in directive.get("Metrics", []):
            name = definition.get("Name")
            values = _values(document.get(name))
            if not isinstance(name, str) or not values:
                continue
            for dimension_set in dimension_sets:
                dimensions = [{"Name": key, "Value": str(document[key])} for key in dimension_set if key in document]
                for start in range(0, len(values), _MAX_VALUES):
                    datum: dict[str, Any] = {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": timestamp,
                        "Unit": definition.get("Unit", "None"),
                        "Values": values[start : start + _MAX_VALUES],
                    }
                    if int(definition.get("StorageResolution", 60)) == 1:
                        datum["StorageResolution"] = 1
                    data.append(datum)
        if data:
            puts.append(MetricPut(namespace, data))
    return puts


class MetricForwarder:
    """Forwards EMF lines to CloudWatch PutMetricData (moto's, in the local stack)."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()
        self.forwarded = 0
        self.errors = 0

    def forward_line(self, line: str) -> bool:
        """Forward the metrics of ``line``; return whether it was an EMF document (whether or not it had metrics)."""
        puts = parse_emf(line)
        if puts is None:
            return False
        for put in puts:
            for start in range(0, len(put.data), _MAX_DATA):
                chunk = put.data[start : start + _MAX_DATA]
                try:
                    self._cloudwatch.put_metric_data(Namespace=put.namespace, MetricData=chunk)
                except Exception:  # a metric lost locally must not stop the stack; it is logged
                    _log.exception("PutMetricData failed for namespace %s", put.namespace)
                    with self._lock:
                        self.errors += 1
                    continue
                with self._lock:
                    self.forwarded += len(chunk)
        return True
