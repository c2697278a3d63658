"""The real template.yaml, translated with aws-sam-translator and created in moto: resources, outputs, env, state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from hookline_cli.localstack import LocalStack, read_state
from hookline_cli.localstack.workarounds import Handling, handling_for
from tests.support.template import ROOT, load_template, properties

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PARAMETERS = {"RetrySchedule": "0,1,1", "MaxReceiveCount": "5"}


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("localstack") / "local.json"


@pytest.fixture(scope="module")
def deployed(state_file: Path) -> Iterator[LocalStack]:
    """The real template in moto, functions not run (their code is other helpers'; tested separately)."""
    with LocalStack.start(ROOT, parameters=PARAMETERS, run_functions=False, state_file=state_file) as stack:
        yield stack


def _resources_of(resource_type: str) -> list[str]:
    return [lid for lid, res in load_template()["Resources"].items() if res["Type"] == resource_type]


def test_every_table_exists_with_the_template_key_schema(deployed: LocalStack) -> None:
    dynamodb = deployed.client("dynamodb")
    tables = _resources_of("AWS::DynamoDB::Table")
    assert tables, "the template declares tables"
    for logical_id in tables:
        description = dynamodb.describe_table(TableName=deployed.physical_id(logical_id))["Table"]
        assert description["KeySchema"] == properties(logical_id)["KeySchema"]
        assert description["TableStatus"] == "ACTIVE"


def test_queues_exist_with_the_template_redrive_and_parameter_overrides(deployed: LocalStack) -> None:
    sqs = deployed.client("sqs")
    queues = _resources_of("AWS::SQS::Queue")
    assert queues
    arns: dict[str, str] = {}
    for logical_id in queues:
        url = deployed.physical_id(logical_id)
        assert url.startswith(deployed.endpoint_url), "queue URLs point at the local endpoint"
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        arns[logical_id] = attributes["QueueArn"]
        props = properties(logical_id)
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                assert attributes[key] == str(props[key])
    for logical_id in queues:
        redrive = properties(logical_id).get("RedrivePolicy")
        if not redrive:
            continue
        url = deployed.physical_id(logical_id)
        policy = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
        )
        assert policy["deadLetterTargetArn"] == arns[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        assert int(policy["maxReceiveCount"]) == int(PARAMETERS["MaxReceiveCount"])


def test_outputs_resolve_to_the_created_resources(deployed: LocalStack) -> None:
    declared = load_template()["Outputs"]
    assert set(declared) <= set(deployed.outputs)
    for key, output in declared.items():
        value = output["Value"]
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in load_template()["Resources"]:
            assert deployed.outputs[key] == deployed.physical_id(value["Ref"]), key
    assert deployed.outputs["DeliveryQueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert not any(key.startswith("HooklineLocal") for key in deployed.outputs)


def test_alarms_and_topic_are_created_where_moto_cloudformation_cannot(deployed: LocalStack) -> None:
    alarms = _resources_of("AWS::CloudWatch::Alarm")
    created = {a["AlarmName"]: a for a in deployed.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    topic = deployed.physical_id("AlertTopic")
    for logical_id in alarms:
        alarm = created[deployed.physical_id(logical_id)]
        assert alarm["AlarmActions"] == [topic]
        assert alarm["EvaluationPeriods"] == int(properties(logical_id)["EvaluationPeriods"])
    assert deployed.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic


def test_function_environments_resolve_refs_to_physical_names(deployed: LocalStack) -> None:
    template = load_template()
    variables: dict[str, Any] = template["Globals"]["Function"]["Environment"]["Variables"]
    functions = _resources_of("AWS::Serverless::Function")
    assert functions
    for function in functions:
        env = deployed.env_for(function)
        for name, value in variables.items():
            if isinstance(value, dict) and "Ref" in value:
                target = value["Ref"]
                expected = PARAMETERS.get(target) or deployed.parameters.get(target) or deployed.physical_id(target)
                if name == "ALLOW_PRIVATE_TARGETS":
                    continue
                assert env[name] == expected, (function, name)
        assert env["ALLOW_PRIVATE_TARGETS"] == "true"
        assert env["AWS_ENDPOINT_URL"] == deployed.endpoint_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
        own = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in own.items():
            if isinstance(value, str):
                assert env[name] == value


def test_resources_kept_out_of_moto_follow_the_type_table(deployed: LocalStack) -> None:
    in_moto = {
        item["LogicalResourceId"]
        for item in deployed.client("cloudformation").describe_stack_resources(StackName=deployed.stack_name)[
            "StackResources"
        ]
    }
    for logical_id, resource in deployed.state()["resources"].items():
        handling = Handling(resource["handling"])
        assert (logical_id in in_moto) == (handling is Handling.MOTO), logical_id
        if handling is not Handling.SUPPORT:
            assert handling is handling_for(resource["type"]), logical_id
    for function in _resources_of("AWS::Serverless::Function"):
        assert function not in in_moto
        assert deployed.physical_id(function) == deployed.functions[function].name


def test_state_file_describes_the_running_stack(deployed: LocalStack, state_file: Path) -> None:
    state = read_state(state_file)
    assert state is not None
    assert state["version"] == 1
    assert state["endpoint_url"] == deployed.endpoint_url
    assert state["outputs"] == deployed.outputs
    assert state["queues"]["DeliveryQueue"]["url"] == deployed.outputs["DeliveryQueueUrl"]
    assert state["queues"]["DeliveryQueue"]["arn"] == deployed.outputs["DeliveryQueueArn"]
    assert state["tables"]["EndpointsTable"] == deployed.outputs["EndpointsTableName"]
    assert state["topics"]["AlertTopic"] == deployed.outputs["AlertTopicArn"]
    assert state["endpoints_table"] == deployed.outputs["EndpointsTableName"]
    assert state["delivery_queue_url"] == deployed.outputs["DeliveryQueueUrl"]
    assert state["allow_private_targets"] is True
    assert state["parameters"]["RetrySchedule"] == "0,1,1"


def test_stop_removes_the_state_file_and_is_idempotent(deployed: LocalStack, state_file: Path) -> None:
    """Runs last in this module (definition order): stops the shared stack."""
    assert state_file.is_file()
    deployed.stop()
    assert not state_file.exists()
    assert read_state(state_file) is None
    deployed.stop()
