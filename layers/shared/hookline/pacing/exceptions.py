"""Errors raised by hookline's pacing (per-key flow control).

HooklineError                    (hookline.exceptions)
 +-- PacingError                 root of the pacing errors
      +-- PacingConfigError      invalid limits (``PaceLimits``) or pacer configuration (ValueError)
      +-- PacingStoreError       the pace store could not be read or written. Callers of ``Pacer`` never see it: the
                                 pacer fails open (delivers unpaced), logs once and counts it. Store implementations
                                 raise it, and nothing else, for every storage failure.
"""

from __future__ import annotations

from hookline.exceptions import HooklineError

__all__ = ["PacingConfigError", "PacingError", "PacingStoreError"]


class PacingError(HooklineError):
    """Base class of the pacing errors."""


class PacingConfigError(PacingError, ValueError):
    """Invalid limits or pacer configuration; the message says which value and why."""


class PacingStoreError(PacingError):
    """The pace store could not be read or written."""
