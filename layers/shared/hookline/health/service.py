"""HealthService.run(): check every enabled integration once, record, publish metrics, steer breakers and alert."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookline.health.conditions import evaluate
from hookline.health.model import CheckOutcome, StateChange
from hookline.health.probe import DEFAULT_PROBE_TIMEOUT_S, probe
from hookline.health.store import LoadedEndpoint, PendingCheck
from hookline.metrics import CERTIFICATE_DAYS_LEFT, INTEGRATION_HEALTHY, PROBE_LATENCY, UNHEALTHY_INTEGRATIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx

    from hookline.health.alerts import AlertPublisher
    from hookline.health.steering import BreakerSteering, SteeringResult
    from hookline.health.store import HealthRecord, HealthStore
    from hookline.health.telemetry import MetricsSink
    from hookline.registry import EndpointRegistry

__all__ = ["DEFAULT_PROBE_CONCURRENCY", "HealthService", "RunSummary"]

DEFAULT_PROBE_CONCURRENCY = 50
_WRITE_RESERVE_S = 15.0  # kept free at the end of an invocation for state, history, steering and alerts
_DEADLINE = object()  # a probe skipped because the invocation would end before its result could be recorded
_LOGGER = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _breaker_names(by_integration: Mapping[str, tuple[str, ...]]) -> list[str]:
    return sorted({name for names in by_integration.values() for name in names})


@dataclass(frozen=True)
class RunSummary:
    """What one run did (the Lambda function returns it as a dict)."""

    checked: int = 0
    healthy: int = 0
    unhealthy: int = 0
    unknown: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    alerts_sent: int = 0
    breakers_opened: list[str] = field(default_factory=list)
    breakers_closed: list[str] = field(default_factory=list)
    breakers_left_alone: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    invalid_items: list[str] = field(default_factory=list)
    errors: int = 0
    duration_ms: int = 0
    phases: dict[str, int] = field(default_factory=dict)
    outcomes: list[CheckOutcome] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict without the per-integration outcomes."""
        data = asdict(self)
        data.pop("outcomes")
        return data


class _RunTally:
    """One run's bookkeeping: when it started, each phase's duration, the errors, the probes skipped as too late."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self._timer = timer
        self.started = self._mark = timer()
        self.phases: dict[str, int] = {}
        self.invalid: list[str] = []
        self.errors = 0
        self.late = 0

    def phase(self, name: str) -> None:
        """End the phase ``name``: its milliseconds since the previous phase ended (or the run started)."""
        now = self._timer()
        self.phases[name] = round((now - self._mark) * 1000)
        self._mark = now


def _outcome(check: PendingCheck, record: HealthRecord) -> CheckOutcome:
    endpoint, result, verdict = check.loaded.endpoint, check.probe, check.verdict
    change = None
    if record.step is not None and record.step.changed:
        change = StateChange(
            integration=endpoint.name,
            old_state=record.step.old_state,
            new_state=record.step.new_state,
            reason=verdict.reason,
            latency_ms=result.latency_ms,
            checked_at=record.status.last_checked_at or "",
            consecutive_failures=record.step.consecutive_failures,
            consecutive_successes=record.step.consecutive_successes,
        )
    return CheckOutcome(
        integration=endpoint.name,
        state=record.status.state,
        passed=verdict.passed,
        reason=verdict.reason,
        latency_ms=result.latency_ms if result.responded else None,
        certificate_days_left=verdict.certificate_days_left,
        change=change,
        applied=record.applied,
        skipped=record.skipped,
    )


class HealthService:
    """Probes every enabled integration concurrently (bounded), then records, measures, steers and alerts."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        *,
        registry: EndpointRegistry,
        store: HealthStore,
        client_factory: Callable[[], httpx.AsyncClient],
        steering: BreakerSteering | None = None,
        alerts: AlertPublisher | None = None,
        metrics: MetricsSink | None = None,
        concurrency: int = DEFAULT_PROBE_CONCURRENCY,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        now: Callable[[], datetime] = _utc_now,
        timer: Callable[[], float] = time.perf_counter,
        logger: logging.Logger | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._registry = registry
        self._store = store
        self._client_factory = client_factory
        self._steering = steering
        self._alerts = alerts
        self._metrics = metrics
        self._concurrency = concurrency
        self._probe_timeout_s = probe_timeout_s
        self._now = now
        self._timer = timer
        self._logger = logger or _LOGGER

    def run(self, remaining_ms: Callable[[], int] | None = None) -> RunSummary:
        """Run one check of the whole registry (blocking; builds its own event loop).

        ``remaining_ms`` (e.g. the Lambda context's ``get_remaining_time_in_millis``) lets a run that is about to
        time out skip the probes it could no longer record, instead of losing every result of the run.
        """
        return asyncio.run(self.run_async(remaining_ms=remaining_ms))

    async def run_async(self, *, remaining_ms: Callable[[], int] | None = None) -> RunSummary:
        """Run one check of the whole registry."""
        tally = _RunTally(self._timer)
        loaded, tally.invalid = await asyncio.to_thread(self._load)
        tally.phase("load_ms")
        semaphore = asyncio.Semaphore(self._concurrency)
        async with self._client_factory() as client:
            probed = await asyncio.gather(*(self._probe(client, semaphore, item, remaining_ms) for item in loaded))
        tally.phase("probe_ms")
        pending = [check for check in probed if isinstance(check, PendingCheck)]
        tally.late = sum(check is _DEADLINE for check in probed)
        tally.errors = len(probed) - len(pending) - tally.late
        history: list[dict[str, Any]] = []
        records = await asyncio.to_thread(self._record, pending, history)
        if records is None:
            tally.errors += len(pending)
            pending, records = [], []
        tally.phase("record_ms")
        tally.errors += await asyncio.to_thread(self._write_history, history)
        tally.phase("history_ms")
        outcomes = [_outcome(check, record) for check, record in zip(pending, records, strict=True)]
        pairs = [(check.loaded.endpoint, outcome) for check, outcome in zip(pending, outcomes, strict=True)]
        steering = await asyncio.to_thread(self._steer, pairs)
        tally.phase("steer_ms")
        alerts_sent, alert_errors = await asyncio.to_thread(self._alert, outcomes, steering)
        tally.errors += alert_errors
        self._emit(outcomes)
        tally.phase("alert_metrics_ms")
        summary = self._summarize(outcomes, steering, alerts_sent, tally)
        self._logger.info("health run finished", extra={"summary": summary.as_dict()})
        return summary

    def _load(self) -> tuple[list[LoadedEndpoint], list[str]]:
        scan = self._registry.scan(LoadedEndpoint.from_item)
        for item in scan.invalid:
            self._logger.warning("registry item skipped", extra={"integration": item.name, "error": item.problem})
        return [loaded for loaded in scan.valid if loaded.endpoint.enabled], [item.name for item in scan.invalid]

    def _write_history(self, history: list[dict[str, Any]]) -> int:
        try:
            failed = self._store.write_history(history)
        except Exception:
            self._logger.exception("health history write failed", extra={"items": len(history)})
            return 1
        if failed:
            self._logger.warning("health history items not written", extra={"items": failed})
        return 1 if failed else 0

    async def _probe(
        self,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        item: LoadedEndpoint,
        remaining_ms: Callable[[], int] | None,
    ) -> PendingCheck | object | None:
        try:
            async with semaphore:
                if remaining_ms is not None and remaining_ms() < (self._probe_timeout_s + _WRITE_RESERVE_S) * 1000:
                    return _DEADLINE
                result = await probe(client, item.endpoint, timeout_s=self._probe_timeout_s, timer=self._timer)
            checked_at = self._now()
            return PendingCheck(item, result, evaluate(item.endpoint.health, result, now=checked_at), checked_at)
        except Exception:
            # One integration's trouble must not stop the others from being checked.
            self._logger.exception("health probe failed", extra={"integration": item.endpoint.name})
            return None

    def _record(self, pending: list[PendingCheck], history: list[dict[str, Any]]) -> list[HealthRecord] | None:
        try:
            return self._store.record_many(pending, history=history)
        except Exception:
            self._logger.exception("health state write failed", extra={"integrations": len(pending)})
            return None

    def _steer(self, pairs: list[tuple[Any, CheckOutcome]]) -> SteeringResult | None:
        if self._steering is None:
            return None
        try:
            return self._steering.apply(pairs)
        except Exception:
            self._logger.exception("breaker steering failed")
            return None

    def _alert(self, outcomes: list[CheckOutcome], steering: SteeringResult | None) -> tuple[int, int]:
        if self._alerts is None:
            return 0, 0
        sent = errors = 0
        for outcome in outcomes:
            if outcome.change is None:
                continue
            steered = steering.for_integration(outcome.integration) if steering else ()
            try:
                if self._alerts.publish(outcome.change, steered=steered):
                    sent += 1
            except Exception:
                errors += 1
                self._logger.exception("alert failed", extra={"integration": outcome.integration})
        return sent, errors

    def _emit(self, outcomes: list[CheckOutcome]) -> None:
        if self._metrics is None:
            return
        for outcome in outcomes:
            self._metrics.add_for_integration(
                INTEGRATION_HEALTHY, "Count", 1.0 if outcome.state == "healthy" else 0.0, outcome.integration
            )
            if outcome.latency_ms is not None:
                self._metrics.add(PROBE_LATENCY, "Milliseconds", float(outcome.latency_ms))
            if outcome.certificate_days_left is not None:
                self._metrics.add_for_integration(
                    CERTIFICATE_DAYS_LEFT, "Count", round(outcome.certificate_days_left, 2), outcome.integration
                )
        self._metrics.add(
            UNHEALTHY_INTEGRATIONS, "Count", float(sum(outcome.state == "unhealthy" for outcome in outcomes))
        )

    def _summarize(
        self, outcomes: list[CheckOutcome], steering: SteeringResult | None, alerts_sent: int, tally: _RunTally
    ) -> RunSummary:
        skipped: dict[str, int] = {"deadline": tally.late} if tally.late else {}
        for outcome in outcomes:
            if outcome.skipped:
                skipped[outcome.skipped] = skipped.get(outcome.skipped, 0) + 1
        return RunSummary(
            checked=len(outcomes),
            healthy=sum(outcome.state == "healthy" for outcome in outcomes),
            unhealthy=sum(outcome.state == "unhealthy" for outcome in outcomes),
            unknown=sum(outcome.state == "unknown" for outcome in outcomes),
            changes=[asdict(outcome.change) for outcome in outcomes if outcome.change is not None],
            alerts_sent=alerts_sent,
            breakers_opened=_breaker_names(steering.opened if steering else {}),
            breakers_closed=_breaker_names(steering.closed if steering else {}),
            breakers_left_alone=dict(steering.left_alone) if steering else {},
            skipped=skipped,
            invalid_items=tally.invalid,
            errors=tally.errors + (steering.errors if steering else 0),
            duration_ms=round((self._timer() - tally.started) * 1000),
            phases=tally.phases,
            outcomes=outcomes,
        )
