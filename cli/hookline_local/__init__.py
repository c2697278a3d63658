"""The embedded local stack: moto on loopback, template.yaml created in it, Lambda's event sources emulated.

Start it in-process with ``LocalStack.start(...)`` or from the shell with ``hookline local up``; see
docs/local-stack.md. It needs the `local` extra (``pip install 'hookline[local]'``); importing this package does not,
so a missing extra is reported by ``require_local_extra()`` (and by every start) as one clear error.
"""

from __future__ import annotations

from hookline_local.esm import SqsEventSourceMapping, failed_item_ids
from hookline_local.exceptions import (
    DeployError,
    LocalExtraMissingError,
    LocalStackError,
    MotoServerError,
    TemplateError,
)
from hookline_local.invoke import CallableInvoker, Invoker, InvokeResult, SubprocessInvoker
from hookline_local.requirements import INSTALL_HINT, require_local_extra
from hookline_local.resolve import FunctionSpec, ScheduleSpec, SqsMappingSpec
from hookline_local.stack import LocalStack, find_root
from hookline_local.state import read_state, state_path

__all__ = [
    "INSTALL_HINT",
    "CallableInvoker",
    "DeployError",
    "FunctionSpec",
    "InvokeResult",
    "Invoker",
    "LocalExtraMissingError",
    "LocalStack",
    "LocalStackError",
    "MotoServerError",
    "ScheduleSpec",
    "SqsEventSourceMapping",
    "SqsMappingSpec",
    "SubprocessInvoker",
    "TemplateError",
    "failed_item_ids",
    "find_root",
    "read_state",
    "require_local_extra",
    "state_path",
]
