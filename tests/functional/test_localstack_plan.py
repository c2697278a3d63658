"""What moto's CloudFormation gets and what the local stack keeps out (pure: no server)."""

from __future__ import annotations

from typing import Any

from hookline_local.intrinsics import references, resolve_pseudo, substitute
from hookline_local.workarounds import Handling, fill_outputs, plan_stack

REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "demo"


def _template() -> dict[str, Any]:
    return {
        "Conditions": {"HasEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}},
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "t"}},
            "FnRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            "SharedRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Role": {"Fn::GetAtt": ["FnRole", "Arn"]},
                    "Environment": {
                        "Variables": {
                            "TABLE": {"Ref": "Table"},
                            "QUEUE_NAME": {"Fn::GetAtt": ["Queue", "QueueName"]},
                            "RETRY": {"Ref": "Retry"},
                            "STACK": {"Fn::Sub": "${AWS::StackName}-x"},
                            "LITERAL": "plain",
                        }
                    },
                },
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"FunctionName": {"Ref": "Fn"}, "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}},
            },
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Fn}"}},
                "DependsOn": ["Fn", "Queue"],
            },
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"Tags": [{"Key": "role", "Value": {"Fn::GetAtt": ["SharedRole", "Arn"]}}]},
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Condition": "HasEmail",
                "Properties": {"Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}]},
            },
        },
        "Outputs": {"FnArn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}}, "QueueUrl": {"Value": {"Ref": "Queue"}}},
    }


def _plan() -> Any:
    return plan_stack(_template(), stack_name=STACK, region=REGION, account_id=ACCOUNT, parameters={"Retry": "0,1"})


def test_functions_mappings_and_roles_only_they_use_are_kept_out_of_moto() -> None:
    plan = _plan()
    assert set(plan.moto_template["Resources"]) == {"Queue", "Table", "SharedRole", "Logs", "Bucket"}
    handling = {lid: item.handling for lid, item in plan.kept_out.items()}
    assert handling == {
        "Fn": Handling.LOCAL,
        "Mapping": Handling.LOCAL,
        "FnRole": Handling.SUPPORT,
        "Alarm": Handling.API,
    }


def test_refs_to_kept_out_resources_become_stand_ins_everywhere_moto_looks() -> None:
    plan = _plan()
    logs = plan.moto_template["Resources"]["Logs"]
    assert logs["Properties"]["LogGroupName"] == "/aws/lambda/demo-Fn"
    assert logs["DependsOn"] == ["Queue"]
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-Fn"
    assert plan.moto_template["Outputs"]["FnArn"] == {"Value": arn}
    assert plan.moto_template["Outputs"]["QueueUrl"] == {"Value": {"Ref": "Queue"}}
    assert plan.kept_out["Fn"].name == "demo-Fn" and plan.kept_out["Fn"].arn == arn


def test_what_kept_out_resources_need_from_moto_becomes_extra_outputs() -> None:
    plan = _plan()
    env = plan.kept_out["Fn"].resource["Properties"]["Environment"]["Variables"]
    assert env["LITERAL"] == "plain"
    assert env["RETRY"] == "0,1"  # parameters and pseudo parameters resolve locally
    assert env["STACK"] == "demo-x"
    expressions = {
        key: plan.extra_outputs[placeholder["__hookline_output__"]]
        for key, placeholder in env.items()
        if isinstance(placeholder, dict)
    }
    assert expressions == {"TABLE": {"Ref": "Table"}, "QUEUE_NAME": {"Fn::GetAtt": ["Queue", "QueueName"]}}
    # The same expression is asked for once (the alarm dimension reuses QUEUE_NAME's output).
    assert list(plan.extra_outputs.values()).count({"Fn::GetAtt": ["Queue", "QueueName"]}) == 1
    assert plan.kept_out["Mapping"].resource["Properties"]["FunctionName"] == "demo-Fn"
    assert plan.kept_out["Alarm"].condition_output in plan.extra_outputs
    moto_values = {key: f"value-of-{key}" for key in plan.extra_outputs}
    filled = fill_outputs(plan.kept_out["Fn"].resource["Properties"], moto_values)
    assert filled["Environment"]["Variables"]["TABLE"].startswith("value-of-HooklineLocal")


def test_substitute_rewrites_sub_strings_and_keeps_literal_dollar_braces() -> None:
    def resolver(name: str, attribute: str | None) -> str | None:
        return {("Fn", None): "fn-name", ("Fn", "Arn"): "fn-arn"}.get((name, attribute))

    node = {"Fn::Sub": "${Fn} ${Fn.Arn} ${Other} ${!Literal}"}
    assert substitute(node, resolver) == {"Fn::Sub": "fn-name fn-arn ${Other} ${!Literal}"}
    assert substitute({"Fn::Sub": "${Fn}/${!Literal}"}, resolver) == "fn-name/${Literal}"
    assert substitute({"Fn::Sub": ["${Fn}-${x}", {"x": {"Ref": "Fn"}}]}, resolver) == {
        "Fn::Sub": ["fn-name-${x}", {"x": "fn-name"}]
    }
    assert references({"a": [{"Ref": "A"}, {"Fn::GetAtt": "B.Arn"}, {"Fn::Sub": "${C}${AWS::Region}"}]}) == {
        "A",
        "B",
        "C",
    }
    assert resolve_pseudo({"Fn::Sub": "${AWS::StackName}-shared"}, {"AWS::StackName": "s"}) == "s-shared"
