"""docs/cli.md says what the CLI does: the dead-letter reasons it lists are exactly the ones `--reason` takes."""

from __future__ import annotations

import re
from pathlib import Path

from hookline_cli.deadletters import NO_REASON, REASONS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def test_the_dlq_reason_list_is_complete() -> None:
    match = re.search(r"^Reasons: `([^`]+)`, and `(\w+)`", DOC, flags=re.MULTILINE)
    assert match is not None, "docs/cli.md lost its 'Reasons:' list"
    listed = [reason.strip() for reason in match.group(1).replace("\n", " ").split(",")]

    assert listed == sorted(listed)
    assert [*listed, match.group(2)] == list(REASONS)
    assert match.group(2) == NO_REASON
