"""`hookline` command modules; main.py registers each one (see its docstring for the convention)."""

from __future__ import annotations

__all__: list[str] = []
