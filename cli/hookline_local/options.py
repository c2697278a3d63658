"""How a LocalStack is started, in four small groups: what is created, where, how it runs, where it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from hookline_local.sqs_control import SQS_INFLIGHT_QUOTA

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from hookline_local.invoke import Invoker
    from hookline_local.resolve import FunctionSpec

__all__ = ["InvokerFactory", "MotoOptions", "ReportOptions", "RunOptions", "TemplateOptions"]

type InvokerFactory = Callable[[FunctionSpec], Invoker]
"""A function's new execution environment (tests pass in-process handlers; the default is a worker process)."""


@dataclass(frozen=True)
class TemplateOptions:
    """What is created: the template (default ``<root>/template.yaml``) and what is changed in it locally."""

    path: Path | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Template parameter overrides (a compressed RetrySchedule ...)."""
    property_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Merged into the translated resources' Properties, key by key: ``{"DeliveryQueue": {"DelaySeconds": 5}}``."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every function, applied last."""


@dataclass(frozen=True)
class MotoOptions:
    """Where it is created: moto's port on 127.0.0.1 (0: a free one), the region and stack name, SQS's quota."""

    port: int = 0
    region: str = "us-east-1"
    stack_name: str = "hookline-local"
    inflight_quota: int = SQS_INFLIGHT_QUOTA
    """In-flight messages per queue before receives come back empty (SQS's quota by default; set it low to test)."""
    inflight_quotas: Mapping[str, int] = field(default_factory=dict)
    """Per queue, by the template's logical id; wins over ``inflight_quota``."""

    def __post_init__(self) -> None:
        if min([self.inflight_quota, *self.inflight_quotas.values()]) < 1:
            raise ValueError("an in-flight quota must be at least 1")


@dataclass(frozen=True)
class RunOptions:
    """How the template's functions run: every SQS event source mapping and schedule, emulated locally."""

    run_functions: bool = True
    """False: deploy only (resources, outputs, environments), no emulators."""
    max_pollers: int | None = None
    """Cap on each mapping's concurrent batches (default: its ScalingConfig.MaximumConcurrency)."""
    poll_wait_s: int = 1
    """Long-poll length of each receive (short, so stopping is prompt)."""
    schedule_interval_s: float | None = None
    """Run every schedule every S seconds instead of its expression."""
    schedule_intervals: Mapping[str, float] = field(default_factory=dict)
    """Per schedule or function logical id; wins over ``schedule_interval_s``."""
    invoker_factory: InvokerFactory | None = None


@dataclass(frozen=True)
class ReportOptions:
    """Where it reports: its log file, a console to echo function logs to, and local.json while it runs."""

    log_path: Path | None = None
    console: IO[str] | None = None
    state_file: Path | None = None
