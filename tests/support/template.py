"""Create test tables, queues and topics from template.yaml's own properties, so tests cannot drift from it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation short-form intrinsics (!Ref, !GetAtt, !Sub ...)."""


def _intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template() -> dict[str, Any]:
    """The parsed template.yaml (intrinsics as their long-form dicts)."""
    with TEMPLATE_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - our own loader, a SafeLoader subclass


def resource(logical_id: str) -> dict[str, Any]:
    """One resource of the template (Type, Properties, ...)."""
    return dict(load_template()["Resources"][logical_id])


def properties(logical_id: str) -> dict[str, Any]:
    """The Properties of one resource."""
    return dict(resource(logical_id).get("Properties", {}))


def parameter_default(name: str) -> Any:
    """The Default of one template parameter."""
    return load_template()["Parameters"][name]["Default"]


def create_table(dynamodb: Any, logical_id: str, table_name: str | None = None) -> str:
    """Create a DynamoDB table with the template's key schema, billing, SSE and TTL; return its name."""
    props = properties(logical_id)
    name = table_name or f"{logical_id}-{uuid.uuid4().hex[:8]}"
    kwargs = {key: props[key] for key in _TABLE_KEYS if key in props}
    if "SSESpecification" in props:
        kwargs["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
    dynamodb.create_table(TableName=name, **kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return name


def _queue_attributes(props: dict[str, Any], resolved_arns: dict[str, str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if key in props:
            attributes[key] = str(props[key])
    if props.get("SqsManagedSseEnabled"):
        attributes["SqsManagedSseEnabled"] = "true"
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        arn = resolved_arns[target["Fn::GetAtt"][0]] if isinstance(target, dict) else target
        count = redrive["maxReceiveCount"]
        if isinstance(count, dict):
            count = parameter_default(count["Ref"])
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": int(count)})
    return attributes


def create_queue(sqs: Any, logical_id: str, resolved_arns: dict[str, str], queue_name: str | None = None) -> str:
    """Create an SQS queue with the template's attributes, redrive resolved against ``resolved_arns``."""
    name = queue_name or f"{logical_id}-{uuid.uuid4().hex[:8]}"
    url: str = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(properties(logical_id), resolved_arns))[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    resolved_arns[logical_id] = arn
    return url


@dataclass(frozen=True)
class StackResources:
    """Physical names of the data resources created from the template."""

    endpoints_table: str
    breaker_table: str
    health_history_table: str
    delivery_queue_url: str
    dead_letter_queue_url: str
    alert_topic_arn: str
    retry_queue_url: str = ""

    def environment(self) -> dict[str, str]:
        """The functions' environment variables that point at these resources."""
        return {
            "ENDPOINTS_TABLE": self.endpoints_table,
            "BREAKER_TABLE": self.breaker_table,
            "HEALTH_HISTORY_TABLE": self.health_history_table,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "ALERT_TOPIC_ARN": self.alert_topic_arn,
        }


def create_stack_resources(dynamodb: Any, sqs: Any, sns: Any) -> StackResources:
    """Create every table, queue and topic the functions use, from the template's own definitions."""
    arns: dict[str, str] = {}
    dlq = create_queue(sqs, "DeadLetterQueue", arns)
    delivery = create_queue(sqs, "DeliveryQueue", arns)
    retry = create_queue(sqs, "RetryQueue", arns)
    topic_arn: str = sns.create_topic(Name=f"AlertTopic-{uuid.uuid4().hex[:8]}")["TopicArn"]
    return StackResources(
        endpoints_table=create_table(dynamodb, "EndpointsTable"),
        breaker_table=create_table(dynamodb, "BreakerTable"),
        health_history_table=create_table(dynamodb, "HealthHistoryTable"),
        delivery_queue_url=delivery,
        dead_letter_queue_url=dlq,
        retry_queue_url=retry,
        alert_topic_arn=topic_arn,
    )
