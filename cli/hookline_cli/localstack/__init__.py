"""The embedded local stack: moto on loopback, template.yaml created in it, Lambda's event sources emulated.

Start it in-process with ``LocalStack.start(...)`` or from the shell with ``hookline local up``; see
docs/local-stack.md.
"""

from __future__ import annotations

from hookline_cli.localstack.esm import SqsEventSourceMapping, failed_item_ids
from hookline_cli.localstack.invoke import CallableInvoker, Invoker, InvokeResult, SubprocessInvoker
from hookline_cli.localstack.resolve import FunctionSpec, ScheduleSpec, SqsMappingSpec
from hookline_cli.localstack.stack import LocalStack, find_root
from hookline_cli.localstack.state import read_state, state_path

__all__ = [
    "CallableInvoker",
    "FunctionSpec",
    "InvokeResult",
    "Invoker",
    "LocalStack",
    "ScheduleSpec",
    "SqsEventSourceMapping",
    "SqsMappingSpec",
    "SubprocessInvoker",
    "failed_item_ids",
    "find_root",
    "read_state",
    "state_path",
]
