"""hookline domain code shared by the delivery and health functions."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
