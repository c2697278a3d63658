"""Every Python example in docs/pacing.md runs and its assertions hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docs import python_blocks, run_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "pacing.md"
BLOCKS = python_blocks(DOC)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_example_runs(index: int) -> None:
    run_block(BLOCKS[index], f"{DOC.name}[block {index}]")
