"""HealthFunction in template.yaml: schedule, handler, least privilege, log retention."""

from __future__ import annotations

import re
from typing import Any

from tests.support.template import load_template, parameter_default, properties, resource


def _statements() -> list[dict[str, Any]]:
    policies = properties("HealthFunction")["Policies"]
    return [statement for policy in policies for statement in policy["Statement"]]


def test_function_code_handler_and_timeout() -> None:
    props = properties("HealthFunction")
    assert resource("HealthFunction")["Type"] == "AWS::Serverless::Function"
    assert (props["CodeUri"], props["Handler"]) == ("functions/health", "app.lambda_handler")
    # Sized for 1000 integrations that all time out: 1000 / 50 concurrent probes x 10 s = 200 s, plus writes.
    assert props["Timeout"] == 300
    assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "hookline-health"


def test_schedule_rate_is_a_parameter_defaulting_to_one_minute() -> None:
    event = properties("HealthFunction")["Events"]["Schedule"]
    assert event["Type"] == "ScheduleV2"
    assert event["Properties"]["ScheduleExpression"] == {"Ref": "HealthCheckRate"}
    assert parameter_default("HealthCheckRate") == "rate(1 minute)"
    pattern = load_template()["Parameters"]["HealthCheckRate"]["AllowedPattern"]
    assert re.match(pattern, "rate(5 minutes)")
    assert re.match(pattern, "cron(0/2 * * * ? *)")
    assert not re.match(pattern, "every minute")


def test_policies_are_least_privilege() -> None:
    statements = _statements()
    for statement in statements:
        assert statement["Resource"] != "*"
        assert not any(action.endswith("*") for action in statement["Action"])
    by_resource = {str(statement["Resource"]): set(statement["Action"]) for statement in statements}
    assert by_resource[str({"Fn::GetAtt": ["EndpointsTable", "Arn"]})] == {
        "dynamodb:Scan",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    }
    assert by_resource[str({"Fn::GetAtt": ["HealthHistoryTable", "Arn"]})] == {"dynamodb:BatchWriteItem"}
    assert by_resource[str({"Fn::GetAtt": ["BreakerTable", "Arn"]})] == {
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    assert by_resource[str({"Ref": "AlertTopic"})] == {"sns:Publish"}
    assert not any(action.startswith("secretsmanager:") for statement in statements for action in statement["Action"])


def test_log_group_has_retention_and_is_the_functions() -> None:
    assert properties("HealthFunctionLogGroup")["RetentionInDays"] == 30
    assert properties("HealthFunction")["LoggingConfig"] == {"LogGroup": {"Ref": "HealthFunctionLogGroup"}}


def test_unhealthy_alarm_watches_the_health_functions_service_dimension() -> None:
    alarm = properties("UnhealthyIntegrationsAlarm")
    assert alarm["MetricName"] == "UnhealthyIntegrations"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "hookline-health"}]
