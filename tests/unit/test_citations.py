"""Code and docs cite docs/ pages (docs/contracts.md first), never the design brief, which is not in the repository."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRIEF = "DESIGN" + ".md"  # spelled apart so that this file does not cite it either
SKIPPED_DIRECTORIES = {".git", ".venv", ".aws-sam", ".hookline", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ".cfg", ".sh", ""}


def _text_files() -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(ROOT):
        # Pruned in place, so that os.walk never descends into the virtualenv or caches.
        subdirectories[:] = [
            name for name in subdirectories if name not in SKIPPED_DIRECTORIES and not name.endswith(".egg-info")
        ]
        files.extend(Path(directory, name) for name in names if Path(name).suffix in TEXT_SUFFIXES)
    return files


def test_nothing_cites_the_design_brief() -> None:
    files = _text_files()
    citing = [
        str(path.relative_to(ROOT)) for path in files if BRIEF in path.read_text(encoding="utf-8", errors="replace")
    ]

    assert len(files) > 100
    assert citing == []


def test_every_cited_docs_page_exists() -> None:
    cited = {
        match
        for path in _text_files()
        for match in re.findall(r"docs/([a-z0-9-]+\.md)", path.read_text(encoding="utf-8", errors="replace"))
    }

    assert "contracts.md" in cited
    assert sorted(page for page in cited if not (ROOT / "docs" / page).is_file()) == []
