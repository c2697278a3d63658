"""The functions' Powertools Tracer, without loading the X-Ray SDK's recorder when tracing is disabled."""

from __future__ import annotations

from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

if TYPE_CHECKING:
    import numbers
    import traceback
    from collections.abc import AsyncGenerator, Generator, Sequence

__all__ = ["build_tracer"]


def build_tracer(*, patch_modules: Sequence[str] | None = None) -> Tracer:
    """A Tracer as ``Tracer(patch_modules=...)`` builds it; when tracing is disabled, one whose provider is a no-op.

    Powertools imports ``aws_xray_sdk.core`` for its provider even when tracing is disabled (outside Lambda, under
    SAM local, or with POWERTOOLS_TRACE_DISABLED), and outside Lambda that recorder builds a centralized sampler with
    two botocore X-Ray clients (~200 ms). A disabled Tracer never sends anything, so it gets a provider that records
    nothing instead. In Lambda with tracing enabled this is exactly ``Tracer(patch_modules=...)``.
    """
    # Powertools' own decision (env vars, Lambda/SAM/Chalice detection), so both paths agree on "disabled".
    if Tracer._is_tracer_disabled():  # noqa: SLF001
        return Tracer(disabled=True, patch_modules=patch_modules, provider=_NoTracing())
    return Tracer(patch_modules=patch_modules)


class _NoSegment(BaseSegment):
    """The (sub)segment of a disabled tracer: accepts every call, records nothing."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(
        self, exception: BaseException, stack: list[traceback.StackSummary], remote: bool = False
    ) -> None:
        return None


class _NoTracing(BaseProvider):
    """The provider of a disabled tracer (Powertools still opens a subsegment around the handler): records nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncGenerator[BaseSegment]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None
