"""Every Python example in docs/resilience-retry-fallback.md runs and its assertions hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resilience.fallback import default_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "resilience-retry-fallback.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index: int) -> None:
    before = set(default_registry.services())
    try:
        exec(compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec"), {"__name__": "doc_example"})
    finally:
        # Examples register fallbacks in the process-wide registry; leave it as it was.
        for service in set(default_registry.services()) - before:
            default_registry.unregister(service)
