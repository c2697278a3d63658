"""The `hookline` command line and the embedded local stack (dev/ops only; not part of the Lambda layer)."""

from __future__ import annotations

__all__: list[str] = []
