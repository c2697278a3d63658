"""Every rule of the breaker's state machine, as pure functions over a BreakerRecord: no store, no clock, no I/O.

Each function takes the record as last read and the time, and answers with a decision or with the ``Change`` to
store; ``CircuitBreaker`` applies a change with one compare-and-set loop (on a lost race it reads again and asks the
same function again), so the rules below are the whole state machine:

=================  ===================================  ==========================================  =========
function           from                                 to                                          counters
=================  ===================================  ==========================================  =========
``admission``      any                                  no write: Admit, Refuse, or Probe (a lease  -
                                                        is free: ``grant_probe``)
``grant_probe``    open (period over), half-open        half-open, one more probe lease             kept
``trip``           closed                               open (rate rule or run rule)                new epoch
``finish_probe``   half-open                            open (``reopen``), closed (``close``), or   new epoch
                                                        half-open with one more success             (or kept)
``force_open``     any; health cannot replace an        forced_open                                 new epoch
                   operator's hold
``force_close``    open, half-open, forced_open (a      closed                                      new epoch
                   hold: by the source that set it)
``reset``          any                                  closed                                      new epoch
``disable``        any but disabled                     disabled                                    new epoch
=================  ===================================  ==========================================  =========

A function answers None when the rule does not apply to the record as it is (say ``trip`` on a breaker another
environment opened first): there is nothing to write. Writer and time stamps (``updated_by``, ``updated_at``) are
added by the breaker when it writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.breaker.model import BreakerRecord, BreakerState

if TYPE_CHECKING:
    from resilience.breaker.config import BreakerConfig
    from resilience.breaker.model import TransitionSource

__all__ = [
    "Admission",
    "Admit",
    "Change",
    "Probe",
    "Refuse",
    "admission",
    "close",
    "disable",
    "finish_probe",
    "force_close",
    "force_open",
    "grant_probe",
    "reopen",
    "reset",
    "trip",
    "trip_reason",
]


@dataclass(frozen=True)
class Change:
    """A record to store by compare-and-set, and how the breaker reports it once stored."""

    record: BreakerRecord
    source: TransitionSource
    reason: str | None
    reset_counters: bool = True
    """Start a new counter epoch: outcomes counted before this change never count after it."""
    announced: bool = True
    """Report it as a transition (history, hook, log); False for bookkeeping inside one state."""


@dataclass(frozen=True)
class Admit:
    """Let the call through; ``tracked=False`` (disabled breaker) means its outcome is not counted."""

    tracked: bool = True


@dataclass(frozen=True)
class Refuse:
    """Refuse the call: the breaker is ``state`` for about ``retry_after`` seconds more."""

    retry_after: float
    state: BreakerState


@dataclass(frozen=True)
class Probe:
    """A probe lease is free: the call may go through as a probe once ``grant_probe`` is stored."""


type Admission = Admit | Refuse | Probe


def _enter(  # noqa: PLR0913 - every state field of the new record, as keywords
    record: BreakerRecord,
    state: BreakerState,
    *,
    reason: str,
    opened_at: float | None = None,
    open_until: float | None = None,
    reopen_count: int = 0,
    forced_by: str | None = None,
) -> BreakerRecord:
    """``record`` in a new state: every state field set, and the half-open bookkeeping (leases, successes) gone."""
    return record.evolve(
        state=state,
        reason=reason,
        opened_at=opened_at,
        open_until=open_until,
        reopen_count=reopen_count,
        forced_by=forced_by,
        probes={},
        half_open_successes=0,
    )


def _opened(record: BreakerRecord, now: float, config: BreakerConfig, reopen_count: int, reason: str) -> BreakerRecord:
    return _enter(
        record,
        BreakerState.OPEN,
        reason=reason,
        opened_at=now,
        open_until=now + config.open_duration(reopen_count),
        reopen_count=reopen_count,
    )


def _closed(record: BreakerRecord, reason: str) -> BreakerRecord:
    return _enter(record, BreakerState.CLOSED, reason=reason)


# ---------------------------------------------------------------- admission and probes


def admission(record: BreakerRecord, now: float, config: BreakerConfig) -> Admission:
    """Whether a call may go through now, decided from the record alone."""
    state = record.state
    if state is BreakerState.DISABLED:
        return Admit(tracked=False)
    if state is BreakerState.CLOSED:
        return Admit()
    if state is BreakerState.FORCED_OPEN:
        return Refuse(config.open_s, state)
    if state is BreakerState.OPEN and record.open_until is not None and now < record.open_until:
        return Refuse(record.open_until - now, state)
    live = record.live_probes(now)
    if len(live) >= config.half_open_probes:
        return Refuse(min(live.values()) - now, state)
    return Probe()


def grant_probe(record: BreakerRecord, now: float, config: BreakerConfig, probe_id: str) -> Change:
    """Open (period over) or half-open -> half-open with a lease for ``probe_id``; expired leases are pruned."""
    entering = record.state is not BreakerState.HALF_OPEN
    wanted = record.evolve(
        state=BreakerState.HALF_OPEN,
        probes={**record.live_probes(now), probe_id: now + config.probe_lease_s},
        half_open_successes=0 if entering else record.half_open_successes,
    )
    return Change(wanted, "fleet", "open period over, probing", reset_counters=False, announced=entering)


def finish_probe(  # noqa: PLR0913 - a pure transition: record, time, config, the probe's answer
    record: BreakerRecord, now: float, config: BreakerConfig, probe_id: str, *, failed: bool, error: str | None
) -> Change | None:
    """A probe answered: re-open on a failure, close on the fleet's ``success_threshold``-th success, else count it.

    None when the breaker left half-open meanwhile (closed, re-opened or forced by someone else): the probe no
    longer matters.
    """
    if record.state is not BreakerState.HALF_OPEN:
        return None
    if failed:
        return reopen(record, now, config, f"probe failed: {error or 'error'}")
    successes = record.half_open_successes + 1
    if successes >= config.success_threshold:
        return close(record, f"{successes} probes succeeded")
    leases = {probe: until for probe, until in record.live_probes(now).items() if probe != probe_id}
    counted = record.evolve(probes=leases, half_open_successes=successes)
    return Change(counted, "probe", record.reason, reset_counters=False, announced=False)


def reopen(record: BreakerRecord, now: float, config: BreakerConfig, reason: str) -> Change:
    """Half-open -> open after a failed probe, for a period that grows with each re-open (``open_duration``)."""
    return Change(_opened(record, now, config, record.reopen_count + 1, reason), "probe", reason)


def close(record: BreakerRecord, reason: str) -> Change:
    """Half-open -> closed once enough probes succeeded fleet-wide; the open period starts over."""
    return Change(_closed(record, reason), "probe", reason)


# ---------------------------------------------------------------- tripping


def trip_reason(record: BreakerRecord, now: float, config: BreakerConfig) -> str | None:
    """Why the fleet's counters say to trip (failure rate over the window, or a run of failures), or None."""
    window = record.window(now, config.window_s)
    if window.calls >= config.min_calls and window.failures >= config.failure_rate * window.calls:
        return f"{window.failures}/{window.calls} calls failed in {config.window_s:g}s"
    if config.consecutive_failures and record.run >= config.consecutive_failures:
        return f"{record.run} consecutive failures"
    return None


def trip(record: BreakerRecord, now: float, config: BreakerConfig) -> Change | None:
    """Closed -> open when ``trip_reason`` has one; the first open period is ``open_s``."""
    if record.state is not BreakerState.CLOSED:
        return None
    reason = trip_reason(record, now, config)
    if reason is None:
        return None
    return Change(_opened(record, now, config, 0, reason), "fleet", reason)


# ---------------------------------------------------------------- manual control


def force_open(record: BreakerRecord, now: float, *, reason: str, source: TransitionSource) -> Change | None:
    """Any state -> forced_open held by ``source``; None when health asks and an operator's hold is in place."""
    if record.state is BreakerState.FORCED_OPEN and record.forced_by == "operator" and source == "health":
        return None
    held = _enter(
        record,
        BreakerState.FORCED_OPEN,
        reason=reason,
        opened_at=now,
        reopen_count=record.reopen_count,
        forced_by=source,
    )
    return Change(held, source, reason)


def force_close(record: BreakerRecord, *, source: TransitionSource, reason: str | None = None) -> Change | None:
    """Open, half-open or forced_open -> closed; a forced open is lifted only by the source that set it."""
    if record.state in (BreakerState.CLOSED, BreakerState.DISABLED):
        return None
    if record.state is BreakerState.FORCED_OPEN and record.forced_by != source:
        return None
    reason = reason or f"closed by {source}"
    return Change(_closed(record, reason), source, reason)


def reset(record: BreakerRecord) -> Change:
    """Any state -> closed (operator): counters cleared, holds lifted, open periods start over."""
    reason = "reset by operator"
    return Change(_closed(record, reason), "operator", reason)


def disable(record: BreakerRecord) -> Change | None:
    """Any state but disabled -> disabled (operator): every call allowed, nothing counted, until ``reset``."""
    if record.state is BreakerState.DISABLED:
        return None
    reason = "disabled by operator"
    return Change(_enter(record, BreakerState.DISABLED, reason=reason), "operator", reason)
