"""The template helper builds resources exactly as template.yaml defines them."""

from __future__ import annotations

import json

from tests.support.aws import client
from tests.support.template import StackResources, load_template, parameter_default


def test_template_parses_intrinsics() -> None:
    template = load_template()
    redrive = template["Resources"]["DeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_stack_resources_follow_template(stack: StackResources, moto_endpoint: str) -> None:
    sqs = client("sqs", moto_endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=stack.delivery_queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == int(parameter_default("MaxReceiveCount"))
    assert redrive["deadLetterTargetArn"].endswith(stack.dead_letter_queue_url.rsplit("/", 1)[1])
    table = client("dynamodb", moto_endpoint).describe_table(TableName=stack.endpoints_table)["Table"]
    assert [key["AttributeName"] for key in table["KeySchema"]] == ["name"]
    ttl = client("dynamodb", moto_endpoint).describe_time_to_live(TableName=stack.breaker_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
