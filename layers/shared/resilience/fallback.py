"""Ordered fallback chains: try alternatives in turn, each optionally behind its own breaker, and report why.

A chain's first alternative is the primary. Strategies build the usual alternatives (``FallbackStrategy``:
``alternate``, ``cached_value``, ``default_value``, ``degrade``); ``FallbackRegistry`` lets a service name its
fallbacks once and ``@with_fallback("service")`` puts them behind a function.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from resilience import _clock
from resilience.exceptions import CircuitOpenError, ConfigurationError, FallbackExhaustedError, NoCachedValueError

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence

    from resilience._clock import Clock

__all__ = [
    "Alternative",
    "AlternativeOutcome",
    "BreakerLike",
    "FallbackChain",
    "FallbackRegistry",
    "FallbackResult",
    "FallbackStrategy",
    "LastGood",
    "OutcomeRecorder",
    "alternate",
    "cached_value",
    "default_registry",
    "default_value",
    "degrade",
    "register_fallback",
    "with_fallback",
]

Status = Literal["skipped", "failed", "served"]


class FallbackStrategy(StrEnum):
    """The kinds of fallback a chain holds; ``build(...)`` makes one with its builder (``alternate`` ...)."""

    ALTERNATE_FUNCTION = "alternate_function"
    """Another callable with the same arguments: ``alternate(fn)``."""
    CACHED_VALUE = "cached_value"
    """The primary's last good result for the same arguments, while fresh: ``cached_value(max_age_s=...)``."""
    DEFAULT_VALUE = "default_value"
    """A fixed value: ``default_value(value)``."""
    DEGRADE = "degrade"
    """A reduced answer computed by another callable: ``degrade(fn)``."""

    def build(self, *args: Any, **kwargs: Any) -> Alternative:
        """The alternative of this strategy, from its builder's arguments."""
        builders: dict[FallbackStrategy, Callable[..., Alternative]] = {
            FallbackStrategy.ALTERNATE_FUNCTION: alternate,
            FallbackStrategy.CACHED_VALUE: cached_value,
            FallbackStrategy.DEFAULT_VALUE: default_value,
            FallbackStrategy.DEGRADE: degrade,
        }
        return builders[self](*args, **kwargs)


class OutcomeRecorder(Protocol):
    """Takes the outcome of one guarded call: a breaker, or the permit its ``allow()`` returned."""

    def record_success(self, latency_s: float) -> None:
        """Count a call that reached the target and succeeded."""
        ...

    def record_failure(self, latency_s: float, *, error: str) -> None:
        """Count a call that failed."""
        ...


class BreakerLike(OutcomeRecorder, Protocol):
    """What a chain needs from a circuit breaker (``resilience.breaker.CircuitBreaker`` fits)."""

    def allow(self) -> object:
        """Return (optionally a permit that records outcomes) if the call may go ahead; raise CircuitOpenError."""
        ...


class LastGood:
    """The primary's last good results per call arguments, served by ``cached_value`` while younger than max age."""

    def __init__(
        self,
        max_age_s: float,
        *,
        max_entries: int = 128,
        key: Callable[[tuple[Any, ...], dict[str, Any]], Hashable] | None = None,
        clock: Clock = _clock.monotonic,
    ) -> None:
        if max_age_s <= 0 or max_entries < 1:
            raise ConfigurationError("max_age_s must be > 0 and max_entries >= 1")
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._key = key or _default_key
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, args: tuple[Any, ...], kwargs: dict[str, Any], value: Any) -> None:
        """Store ``value`` as the fresh result for these arguments (unhashable arguments are not cached)."""
        key = self._safe_key(args, kwargs)
        if key is None:
            return
        with self._lock:
            self._entries[key] = (self._clock(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        """The cached value for these arguments; NoCachedValueError if there is none or it is too old."""
        key = self._safe_key(args, kwargs or {})
        with self._lock:
            entry = None if key is None else self._entries.get(key)
        if entry is None:
            raise NoCachedValueError("no cached value for these arguments")
        age = self._clock() - entry[0]
        if age > self.max_age_s:
            raise NoCachedValueError(f"cached value is {age:.1f}s old (max age {self.max_age_s:g}s)")
        return entry[1]

    def clear(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._entries.clear()

    def _safe_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable | None:
        try:
            key = self._key(args, kwargs)
            hash(key)
        except TypeError:
            return None
        return key


def _default_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    return (args, tuple(sorted(kwargs.items())))


@dataclass(frozen=True, slots=True)
class Alternative:
    """One step of a fallback chain: a named callable, optionally behind a breaker."""

    name: str
    fn: Callable[..., Any]
    breaker: BreakerLike | None = None
    degraded: bool = False
    """Its value is a degraded answer (default, cached, reduced); reported as ``FallbackResult.degraded``."""
    cache: LastGood | None = field(default=None, compare=False)
    """Fed by the chain with the primary's successful results (see ``cached_value``)."""
    strategy: FallbackStrategy | None = None
    """Which kind of fallback this is (set by the strategy builders; None for a primary)."""


@dataclass(frozen=True, slots=True)
class AlternativeOutcome:
    """What happened to one alternative during a chain run."""

    name: str
    status: Status
    reason: str
    exception: BaseException | None = None
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FallbackResult[T]:
    """The value a chain produced, which alternative served it, and the outcomes of every alternative tried."""

    value: T
    served_by: str
    index: int
    outcomes: tuple[AlternativeOutcome, ...]
    degraded: bool = False
    strategy: FallbackStrategy | None = None
    """The strategy of the fallback that served; None when the primary did."""

    @property
    def used_fallback(self) -> bool:
        """True when the value did not come from the primary."""
        return self.index > 0


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FallbackChain:
    """Try alternatives in order; the first that returns serves. Errors ``should_fallback`` rejects propagate."""

    def __init__(
        self,
        alternatives: Iterable[Alternative | Callable[..., Any]],
        *,
        should_fallback: Callable[[BaseException], bool] | None = None,
        clock: Clock = _clock.monotonic,
    ) -> None:
        self.alternatives: tuple[Alternative, ...] = tuple(_as_alternative(a) for a in alternatives)
        if not self.alternatives:
            raise ConfigurationError("a fallback chain needs at least one alternative")
        names = [a.name for a in self.alternatives]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"alternative names must be unique: {names}")
        self.should_fallback = should_fallback or _any_exception
        self._clock = clock

    def run(self, *args: Any, **kwargs: Any) -> FallbackResult[Any]:
        """Run the chain synchronously (every alternative must be a sync callable)."""
        chain_run = _ChainRun(self, args, kwargs)
        for attempt in chain_run.attempts():
            try:
                value = attempt.call()
            except Exception as exc:
                attempt.failed(exc)
                continue
            if inspect.isawaitable(value):
                # A misconfiguration, not a target failure: it must not be swallowed as a reason to fall back.
                _close(value)
                raise ConfigurationError(f"alternative {attempt.alternative.name!r} is async: use run_async")
            return attempt.served(value)
        raise chain_run.exhausted()

    async def run_async(self, *args: Any, **kwargs: Any) -> FallbackResult[Any]:
        """Run the chain in a coroutine; alternatives may be sync or async callables."""
        chain_run = _ChainRun(self, args, kwargs)
        for attempt in chain_run.attempts():
            try:
                value = attempt.call()
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                attempt.failed(exc)
                continue
            return attempt.served(value)
        raise chain_run.exhausted()


class _ChainRun:
    """One run of a chain: the outcomes so far and the alternatives left (what ``run`` and ``run_async`` share)."""

    def __init__(self, chain: FallbackChain, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.chain = chain
        self.clock = chain._clock
        self.args = args
        self.kwargs = kwargs
        self.outcomes: list[AlternativeOutcome] = []

    def attempts(self) -> Iterator[_Attempt]:
        """The alternatives in order, those a breaker turns away recorded as skipped; each timed from its handout."""
        for index, alt in enumerate(self.chain.alternatives):
            admitted, recorder = self._admit(alt)
            if admitted:
                yield _Attempt(self, index, alt, recorder, self.clock())

    def _admit(self, alt: Alternative) -> tuple[bool, OutcomeRecorder | None]:
        if alt.breaker is None:
            return True, None
        try:
            permit = alt.breaker.allow()
        except CircuitOpenError as exc:
            self.outcomes.append(AlternativeOutcome(alt.name, "skipped", str(exc), exc))
            return False, None
        # A breaker may hand out a permit (a half-open probe lease, say) that must carry the outcome back.
        if callable(getattr(permit, "record_success", None)) and callable(getattr(permit, "record_failure", None)):
            return True, cast("OutcomeRecorder", permit)
        return True, alt.breaker

    def exhausted(self) -> FallbackExhaustedError:
        """The error of a run in which no alternative served."""
        summary = "; ".join(f"{o.name} {o.status} ({o.reason})" for o in self.outcomes)
        error = FallbackExhaustedError(f"every alternative failed: {summary}", outcomes=tuple(self.outcomes))
        error.__cause__ = next((o.exception for o in reversed(self.outcomes) if o.exception is not None), None)
        return error


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One admitted alternative of a run: call it, then report whether it failed or served."""

    run: _ChainRun
    index: int
    alternative: Alternative
    recorder: OutcomeRecorder | None
    started: float

    def call(self) -> Any:
        """The alternative's return value (an awaitable for an async one)."""
        return self.alternative.fn(*self.run.args, **self.run.kwargs)

    def failed(self, exc: Exception) -> None:
        """Record a failure, or re-raise ``exc`` when the chain's ``should_fallback`` says it is the caller's."""
        latency = self.run.clock() - self.started
        if not self.run.chain.should_fallback(exc):
            # The target answered and the error is the caller's (bad input, 4xx...): not a health signal.
            if self.recorder is not None:
                self.recorder.record_success(latency)
            raise exc
        if self.recorder is not None:
            self.recorder.record_failure(latency, error=type(exc).__name__)
        self.run.outcomes.append(AlternativeOutcome(self.alternative.name, "failed", _describe(exc), exc, latency))

    def served(self, value: Any) -> FallbackResult[Any]:
        """Record the success and build the run's result; a primary's value feeds the chain's caches."""
        latency = self.run.clock() - self.started
        if self.recorder is not None:
            self.recorder.record_success(latency)
        alt, chain = self.alternative, self.run.chain
        if self.index == 0:
            for other in chain.alternatives[1:]:
                if other.cache is not None:
                    other.cache.remember(self.run.args, self.run.kwargs, value)
        self.run.outcomes.append(AlternativeOutcome(alt.name, "served", "ok", None, latency))
        strategy = None if self.index == 0 else alt.strategy
        return FallbackResult(value, alt.name, self.index, tuple(self.run.outcomes), alt.degraded, strategy)


def _close(value: object) -> None:
    # A coroutine created but never awaited would warn at garbage collection; close it explicitly.
    close = getattr(value, "close", None)
    if callable(close):
        close()


def _callable_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", None) or repr(fn))


def _as_alternative(item: Alternative | Callable[..., Any]) -> Alternative:
    if isinstance(item, Alternative):
        return item
    if callable(item):
        return alternate(item)
    raise ConfigurationError(f"not an Alternative or callable: {item!r}")


def alternate(fn: Callable[..., Any], *, name: str | None = None, breaker: BreakerLike | None = None) -> Alternative:
    """Fall back to another callable taking the same arguments (sync or async)."""
    return Alternative(name or _callable_name(fn), fn, breaker, strategy=FallbackStrategy.ALTERNATE_FUNCTION)


def default_value(value: Any, *, name: str = "default") -> Alternative:
    """Fall back to a fixed value (reported as degraded)."""
    return Alternative(name, lambda *_args, **_kwargs: value, degraded=True, strategy=FallbackStrategy.DEFAULT_VALUE)


def cached_value(
    cache: LastGood | None = None,
    *,
    max_age_s: float = 300.0,
    clock: Clock = _clock.monotonic,
    name: str = "cached",
) -> Alternative:
    """Fall back to the primary's last good result for the same arguments, if younger than ``max_age_s``.

    The chain feeds the cache whenever its primary (first alternative) serves. Pass a ``LastGood`` to share or
    inspect it; otherwise one is made with ``max_age_s`` and ``clock``. Reported as degraded.
    """
    store = cache if cache is not None else LastGood(max_age_s, clock=clock)
    return Alternative(
        name,
        lambda *args, **kwargs: store.get(args, kwargs),
        degraded=True,
        cache=store,
        strategy=FallbackStrategy.CACHED_VALUE,
    )


def degrade(fn: Callable[..., Any], *, name: str | None = None) -> Alternative:
    """Fall back to a reduced answer computed by ``fn`` (reported as degraded)."""
    return Alternative(name or _callable_name(fn), fn, degraded=True, strategy=FallbackStrategy.DEGRADE)


@dataclass(frozen=True, slots=True)
class _Entry:
    alternatives: tuple[Alternative, ...]
    should_fallback: Callable[[BaseException], bool] | None


class FallbackRegistry:
    """Services name their fallbacks once; ``chain`` puts them behind a primary."""

    def __init__(self, *, clock: Clock = _clock.monotonic) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def register(
        self,
        service: str,
        *fallbacks: Alternative | Callable[..., Any],
        should_fallback: Callable[[BaseException], bool] | None = None,
        replace: bool = False,
    ) -> None:
        """Name the fallbacks of ``service``, tried in order after its primary."""
        if not fallbacks:
            raise ConfigurationError(f"register at least one fallback for {service!r}")
        entry = _Entry(tuple(_as_alternative(f) for f in fallbacks), should_fallback)
        with self._lock:
            if service in self._entries and not replace:
                raise ConfigurationError(f"fallbacks for {service!r} are already registered (pass replace=True)")
            self._entries[service] = entry

    def unregister(self, service: str) -> None:
        """Forget the fallbacks of ``service`` (no error if there are none)."""
        with self._lock:
            self._entries.pop(service, None)

    def fallbacks(self, service: str) -> tuple[Alternative, ...]:
        """The registered fallbacks of ``service`` (empty if none)."""
        with self._lock:
            entry = self._entries.get(service)
        return () if entry is None else entry.alternatives

    def services(self) -> list[str]:
        """Names of every service with registered fallbacks, sorted."""
        with self._lock:
            return sorted(self._entries)

    def __contains__(self, service: object) -> bool:
        with self._lock:
            return service in self._entries

    def chain(
        self,
        service: str,
        primary: Callable[..., Any],
        *,
        breaker: BreakerLike | None = None,
        extra: Sequence[Alternative | Callable[..., Any]] = (),
        should_fallback: Callable[[BaseException], bool] | None = None,
    ) -> FallbackChain:
        """A chain of ``primary`` (named ``service``), the registered fallbacks, then ``extra``."""
        with self._lock:
            entry = self._entries.get(service)
        registered = () if entry is None else entry.alternatives
        if not registered and not extra:
            raise ConfigurationError(f"no fallbacks registered for {service!r} and none given")
        predicate = should_fallback or (entry.should_fallback if entry is not None else None)
        return FallbackChain(
            [Alternative(service, primary, breaker), *registered, *extra],
            should_fallback=predicate,
            clock=self._clock,
        )


default_registry = FallbackRegistry()
"""The process-wide registry ``register_fallback`` and ``with_fallback`` use unless given another."""


def register_fallback(
    service: str,
    *fallbacks: Alternative | Callable[..., Any],
    should_fallback: Callable[[BaseException], bool] | None = None,
    replace: bool = False,
) -> None:
    """Register fallbacks for ``service`` in the default registry."""
    default_registry.register(service, *fallbacks, should_fallback=should_fallback, replace=replace)


def with_fallback[**P, R](  # noqa: PLR0913 - decorator options, each a keyword with a default
    service: str,
    fallback_func: Callable[..., Any] | None = None,
    *,
    strategy: FallbackStrategy = FallbackStrategy.ALTERNATE_FUNCTION,
    registry: FallbackRegistry | None = None,
    breaker: BreakerLike | None = None,
    should_fallback: Callable[[BaseException], bool] | None = None,
    on_result: Callable[[FallbackResult[Any]], None] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: call the function, then ``service``'s registered fallbacks, then ``fallback_func``, in order.

    ``strategy`` says how ``fallback_func`` (called with the same arguments) serves: as an alternate function, a
    degraded answer or a default value; ``CACHED_VALUE`` first serves the function's own last good result for the
    same arguments (fresh for 300 s), then ``fallback_func`` if given. The decorated function returns the plain
    value; ``on_result`` sees the full FallbackResult (which alternative and strategy served, what failed).
    Registered fallbacks are looked up at call time, so registration order does not matter.
    """
    extra = _extra_fallbacks(strategy, fallback_func)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        # Built per call (a tuple of a few alternatives) so fallbacks registered after decoration are picked up.
        def build() -> FallbackChain:
            reg = registry if registry is not None else default_registry
            return reg.chain(service, fn, breaker=breaker, extra=extra, should_fallback=should_fallback)

        def report(result: FallbackResult[Any]) -> Any:
            if on_result is not None:
                on_result(result)
            return result.value

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return report(await build().run_async(*args, **kwargs))

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return cast("R", report(build().run(*args, **kwargs)))

        return wrapper

    return decorate


def _extra_fallbacks(strategy: FallbackStrategy, fallback_func: Callable[..., Any] | None) -> tuple[Alternative, ...]:
    """``with_fallback``'s own alternatives after the registered ones, by strategy."""
    strategy = FallbackStrategy(strategy)
    name = "fallback_func"
    if strategy is FallbackStrategy.CACHED_VALUE:
        cached = cached_value()
        return (cached,) if fallback_func is None else (cached, alternate(fallback_func, name=name))
    if fallback_func is None:
        if strategy is FallbackStrategy.ALTERNATE_FUNCTION:
            return ()
        raise ConfigurationError(f"strategy {strategy.value!r} needs a fallback_func")
    if strategy is FallbackStrategy.DEFAULT_VALUE:
        return (Alternative(name, fallback_func, degraded=True, strategy=strategy),)
    return (strategy.build(fallback_func, name=name),)
