"""BreakerRegistry: the breakers of one execution environment, read in one batch and flushed at the end of a batch."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

from resilience.breaker.breaker import CircuitBreaker, StoreHealth
from resilience.breaker.config import BreakerConfig
from resilience.exceptions import StateStoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from resilience._clock import Clock
    from resilience.breaker.breaker import MetricsHook, TransitionHook
    from resilience.breaker.store import StateStore

__all__ = ["BreakerRegistry", "default_registry", "get_circuit_breaker", "set_default_registry"]


class BreakerRegistry:
    """Named breakers over one store, sharing one writer id, hooks and store-outage state."""

    def __init__(  # noqa: PLR0913 - injected dependencies, each a keyword with a production default
        self,
        store: StateStore,
        *,
        config: BreakerConfig | None = None,
        configs: Mapping[str, BreakerConfig] | None = None,
        on_transition: TransitionHook | None = None,
        metrics_hook: MetricsHook | None = None,
        clock: Clock | None = None,
        timer: Clock = time.perf_counter,
        writer: str | None = None,
    ) -> None:
        self.store = store
        self.config = config or BreakerConfig()
        self._configs = dict(configs or {})
        self._on_transition = on_transition
        self._metrics_hook = metrics_hook
        self._clock: Clock = clock or store.clock
        self._timer = timer
        self.writer = writer or uuid.uuid4().hex[:12]
        self.store_health = StoreHealth()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, name: str, config: BreakerConfig | None = None) -> CircuitBreaker:
        """The breaker called ``name`` (created on first use; a config given later for an existing name is ignored)."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = CircuitBreaker(
                    name,
                    store=self.store,
                    config=config or self._configs.get(name) or self.config,
                    clock=self._clock,
                    timer=self._timer,
                    writer=self.writer,
                    on_transition=self._on_transition,
                    metrics_hook=self._metrics_hook,
                    store_health=self.store_health,
                )
                self._breakers[name] = breaker
            return breaker

    def breakers(self) -> list[CircuitBreaker]:
        """Every breaker this registry has handed out."""
        with self._lock:
            return list(self._breakers.values())

    def prefetch(self, names: Iterable[str]) -> None:
        """Refresh every named breaker whose cached record is stale, with as few requests as possible.

        A stale breaker holding buffered outcomes refreshes through their write (the ADD returns the record); the
        others are read together with one BatchGetItem.
        """
        now = self._clock()
        if self.store_health.is_down(now):
            return
        stale = [breaker for breaker in map(self.get, dict.fromkeys(names)) if breaker.needs_refresh(now)]
        to_read = []
        for breaker in stale:
            if breaker.pending_outcomes:
                breaker.flush(force=True)
            else:
                to_read.append(breaker)
        if not to_read or self.store_health.is_down(now):
            return
        try:
            records = self.store.load([breaker.name for breaker in to_read])
        except StateStoreError as error:
            self.store_health.failed(now, self.config.store_retry_s, error)
            if self._metrics_hook is not None:
                self._metrics_hook("BreakerStoreErrors", 1.0)
            return
        self.store_health.succeeded()
        for breaker in to_read:
            breaker.accept(records.get(breaker.name), now)

    def flush(self, *, force: bool = False) -> None:
        """Write what is due: buffered failures always, successes when stale (or every buffer with ``force``)."""
        for breaker in self.breakers():
            breaker.flush(force=force)

    async def prefetch_async(self, names: Iterable[str]) -> None:
        """``prefetch()`` in a worker thread, so a coroutine's event loop never waits on the store."""
        await asyncio.to_thread(self.prefetch, list(names))

    async def flush_async(self, *, force: bool = False) -> None:
        """``flush()`` in a worker thread, so a coroutine's event loop never waits on the store."""
        await asyncio.to_thread(self.flush, force=force)


_default: BreakerRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> BreakerRegistry:
    """The process-wide registry: DynamoDB when BREAKER_TABLE is set, else in memory (built on first use)."""
    global _default  # noqa: PLW0603 - one registry per process, like a module-level client
    with _default_lock:
        if _default is None:
            table = os.environ.get("BREAKER_TABLE")
            if table:
                from resilience.breaker.dynamodb import DynamoDBStateStore

                _default = BreakerRegistry(DynamoDBStateStore(table))
            else:
                from resilience.breaker.memory import MemoryStateStore

                _default = BreakerRegistry(MemoryStateStore())
        return _default


def set_default_registry(registry: BreakerRegistry | None) -> None:
    """Replace the process-wide registry (None: build it again from the environment on next use)."""
    global _default  # noqa: PLW0603 - see default_registry
    with _default_lock:
        _default = registry


def get_circuit_breaker(name: str, config: BreakerConfig | None = None) -> CircuitBreaker:
    """A breaker of the process-wide registry (seed parity with ``get_circuit_breaker("name")``)."""
    return default_registry().get(name, config)
