"""Tables, queues and topics for tests, created from template.yaml by the local stack's own deployer.

template.yaml is parsed and translated once per session (hookline_local.template, as ``hookline local up`` does);
each call deploys the resources a test asks for, plus whatever they reference (the delivery queue brings its
dead-letter queue), as a fresh CloudFormation stack in moto (hookline_local.deploy.deploy_stack with ``only``). So a
test's tables and queues have exactly the template's properties, redrive and parameters: they cannot drift from it.

Works against the moto server (a client on a loopback endpoint) and in-process ``mock_aws()`` alike: the stack goes
to the same moto the given client talks to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hookline_local.deploy import StackTarget, deploy_stack
from hookline_local.sqs_control import queue_arn
from hookline_local.template import load_template as load_template_file
from hookline_local.template import translate
from tests.support.aws import REGION, client

if TYPE_CHECKING:
    from hookline_local.deploy import DeployedStack
    from hookline_local.template import TranslatedTemplate

__all__ = [
    "ROOT",
    "TEMPLATE_PATH",
    "Queue",
    "StackResources",
    "create_queues",
    "create_stack_resources",
    "create_table",
    "deploy",
    "load_template",
    "parameter_default",
    "properties",
    "resource",
]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# The data resources the functions use (what StackResources names).
_STACK_RESOURCES = ("EndpointsTable", "BreakerTable", "HealthHistoryTable", "DeliveryQueue", "AlertTopic")


@cache
def load_template() -> dict[str, Any]:
    """The parsed template.yaml (intrinsics as their long-form dicts)."""
    return load_template_file(TEMPLATE_PATH)


@cache
def translated_template() -> TranslatedTemplate:
    """template.yaml with the SAM transform expanded and default parameters (translated once per session)."""
    return translate(load_template(), base_dir=ROOT, region=REGION)


def resource(logical_id: str) -> dict[str, Any]:
    """One resource of the template (Type, Properties, ...)."""
    return dict(load_template()["Resources"][logical_id])


def properties(logical_id: str) -> dict[str, Any]:
    """The Properties of one resource."""
    return dict(resource(logical_id).get("Properties", {}))


def parameter_default(name: str) -> Any:
    """The Default of one template parameter."""
    return load_template()["Parameters"][name]["Default"]


def _endpoint_of(aws_client: Any) -> str | None:
    """The moto server a boto3 client talks to, or None for in-process moto (the client keeps AWS's own host)."""
    url: str = aws_client.meta.endpoint_url
    return url if urlsplit(url).hostname in _LOOPBACK else None


@cache
def _client(service: str, endpoint_url: str | None) -> Any:
    # Building a boto3 client costs more than the deploy itself; clients are thread-safe and outlive mock_aws().
    return client(service, endpoint_url)


def deploy(*logical_ids: str, endpoint_url: str | None = None) -> DeployedStack:
    """Create these template resources (and what they reference) as a fresh stack; None: in-process moto."""
    target = StackTarget(f"t-{uuid.uuid4().hex[:10]}", region=REGION, endpoint_url=endpoint_url)
    return deploy_stack(
        translated_template(), target, client=lambda service: _client(service, endpoint_url), only=logical_ids
    )


def create_table(dynamodb: Any, logical_id: str) -> str:
    """Create one DynamoDB table of the template in the moto ``dynamodb`` talks to; return its name."""
    return deploy(logical_id, endpoint_url=_endpoint_of(dynamodb)).physical_id(logical_id)


@dataclass(frozen=True)
class Queue:
    """A queue created from the template: its URL and ARN."""

    url: str
    arn: str


def create_queues(sqs: Any, logical_id: str) -> dict[str, Queue]:
    """Create one queue of the template with the queues it needs (its dead-letter queue); every one by logical id."""
    stack = deploy(logical_id, endpoint_url=_endpoint_of(sqs))
    return {
        item.logical_id: Queue(item.physical_id, queue_arn(item.physical_id, REGION))
        for item in stack.of_type("AWS::SQS::Queue")
    }


@dataclass(frozen=True)
class StackResources:
    """Physical names of the data resources created from the template."""

    endpoints_table: str
    breaker_table: str
    health_history_table: str
    delivery_queue_url: str
    dead_letter_queue_url: str
    alert_topic_arn: str

    def environment(self) -> dict[str, str]:
        """The functions' environment variables that point at these resources."""
        return {
            "ENDPOINTS_TABLE": self.endpoints_table,
            "BREAKER_TABLE": self.breaker_table,
            "HEALTH_HISTORY_TABLE": self.health_history_table,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "ALERT_TOPIC_ARN": self.alert_topic_arn,
        }


def create_stack_resources(dynamodb: Any, sqs: Any, sns: Any) -> StackResources:
    """Create every table, queue and topic the functions use, in one stack, from the template's own definitions.

    The three clients name the moto to use; they must all talk to the same one.
    """
    endpoint_url = _endpoint_of(dynamodb)
    if {_endpoint_of(sqs), _endpoint_of(sns)} != {endpoint_url}:
        raise ValueError("dynamodb, sqs and sns must talk to the same moto")
    stack = deploy(*_STACK_RESOURCES, endpoint_url=endpoint_url)
    return StackResources(
        endpoints_table=stack.physical_id("EndpointsTable"),
        breaker_table=stack.physical_id("BreakerTable"),
        health_history_table=stack.physical_id("HealthHistoryTable"),
        delivery_queue_url=stack.physical_id("DeliveryQueue"),
        dead_letter_queue_url=stack.physical_id("DeadLetterQueue"),
        alert_topic_arn=stack.physical_id("AlertTopic"),
    )
