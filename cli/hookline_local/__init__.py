"""The embedded local stack: moto on loopback, template.yaml created in it, Lambda's event sources emulated.

Start it in-process with ``LocalStack.start(...)`` or from the shell with ``hookline local up``; see
docs/local-stack.md. It needs the `local` extra (``pip install 'hookline[local]'``); importing this package does not,
so a missing extra is reported by ``require_local_extra()`` (and by every start) as one clear error.

The same pieces serve the test suites and benchmarks: ``MotoServer`` (the one moto launcher), ``deploy_stack`` (the
one way resources are built from template.yaml) and ``LoopbackServer`` (the one loopback receiver).
"""

from __future__ import annotations

from hookline_local.deploy import DeployedStack, StackTarget, deploy_stack
from hookline_local.esm import SqsEventSourceMapping, failed_item_ids
from hookline_local.exceptions import (
    DeployError,
    LocalExtraMissingError,
    LocalStackError,
    MotoServerError,
    TemplateError,
)
from hookline_local.invoke import CallableInvoker, Invoker, InvokeResult, SubprocessInvoker
from hookline_local.options import InvokerFactory, MotoOptions, ReportOptions, RunOptions, TemplateOptions
from hookline_local.requirements import INSTALL_HINT, require_local_extra
from hookline_local.resolve import FunctionSpec, ScheduleSpec, SqsMappingSpec
from hookline_local.server import MotoServer
from hookline_local.sqs_control import SQS_INFLIGHT_QUOTA, QueueState, SqsControl
from hookline_local.stack import LocalStack, find_root
from hookline_local.state import read_state, state_path

__all__ = [
    "INSTALL_HINT",
    "SQS_INFLIGHT_QUOTA",
    "CallableInvoker",
    "DeployError",
    "DeployedStack",
    "FunctionSpec",
    "InvokeResult",
    "Invoker",
    "InvokerFactory",
    "LocalExtraMissingError",
    "LocalStack",
    "LocalStackError",
    "MotoOptions",
    "MotoServer",
    "MotoServerError",
    "QueueState",
    "ReportOptions",
    "RunOptions",
    "ScheduleSpec",
    "SqsControl",
    "SqsEventSourceMapping",
    "SqsMappingSpec",
    "StackTarget",
    "SubprocessInvoker",
    "TemplateError",
    "TemplateOptions",
    "deploy_stack",
    "failed_item_ids",
    "find_root",
    "read_state",
    "require_local_extra",
    "state_path",
]
