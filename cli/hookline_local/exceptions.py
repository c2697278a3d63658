"""The local stack's errors, one tree under ``LocalStackError``.

    LocalStackError
    ├── LocalExtraMissingError   (also ImportError)  the `local` extra is not installed
    ├── TemplateError            (also ValueError)   template.yaml cannot be read, translated or given the parameters
    ├── DeployError              (also RuntimeError) moto could not create the stack or one of its resources
    └── MotoServerError          (also RuntimeError) the moto server did not start (or was asked while stopped)

Callers such as ``hookline local up`` catch ``LocalStackError`` and print its message, never a traceback.
"""

from __future__ import annotations

__all__ = ["DeployError", "LocalExtraMissingError", "LocalStackError", "MotoServerError", "TemplateError"]


class LocalStackError(Exception):
    """Root of every error the local stack raises on purpose."""


class LocalExtraMissingError(LocalStackError, ImportError):
    """A package of the `local` extra (moto[server], aws-sam-translator, PyYAML) cannot be imported."""


class TemplateError(LocalStackError, ValueError):
    """The template cannot be read, translated or given these parameters."""


class DeployError(LocalStackError, RuntimeError):
    """moto could not create the stack or one of its resources."""


class MotoServerError(LocalStackError, RuntimeError):
    """The moto server did not start."""
