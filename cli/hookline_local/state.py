"""`.hookline/local.json`: how other processes (the CLI, scripts, the demo) find a running local stack."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hookline.local import pid_alive

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["STATE_VERSION", "read_state", "remove_state", "state_path", "write_state"]

STATE_VERSION = 1


def state_path(root: Path) -> Path:
    """Where a project's local stack writes its state."""
    return root / ".hookline" / "local.json"


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"version": STATE_VERSION, **state}, indent=2, sort_keys=True) + "\n", "utf-8")
    temporary.replace(path)


def read_state(path: Path, *, require_running: bool = True) -> dict[str, Any] | None:
    """The state of the local stack, or None when there is none (or its process is gone, when required)."""
    try:
        state: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if require_running and not pid_alive(int(state.get("pid", 0) or 0)):
        return None
    return state


def remove_state(path: Path, *, pid: int | None = None) -> None:
    """Remove the state file (only if it is ours, when ``pid`` is given)."""
    if pid is not None:
        current = read_state(path, require_running=False)
        if current is not None and current.get("pid") != pid:
            return
    path.unlink(missing_ok=True)
