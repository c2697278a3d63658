"""Running a page's Python examples as tests: its ```python blocks, executed one by one in a fresh namespace."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from resilience.fallback import default_registry

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["python_blocks", "run_block"]


def python_blocks(page: Path, *, section: str | None = None) -> list[str]:
    """The ```python blocks of ``page``, or of its ``## {section}`` heading's part only."""
    text = page.read_text(encoding="utf-8")
    if section is not None:
        text = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def run_block(code: str, label: str) -> None:
    """Execute one example; fallbacks it registers in the process-wide registry are removed afterwards."""
    before = set(default_registry.services())
    try:
        exec(compile(code, label, "exec"), {"__name__": "doc_example"})
    finally:
        for service in set(default_registry.services()) - before:
            default_registry.unregister(service)
