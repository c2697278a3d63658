"""DeliveryFunction in template.yaml: event source, timeouts, environment and least-privilege policies."""

from __future__ import annotations

from typing import Any

from tests.support.template import load_template, parameter_default, properties


def _function() -> dict[str, Any]:
    return properties("DeliveryFunction")


def test_handler_code_and_layer() -> None:
    function = _function()
    assert function["CodeUri"] == "functions/delivery"
    assert function["Handler"] == "app.lambda_handler"
    assert {"Ref": "SharedLayer"} in load_template()["Globals"]["Function"]["Layers"]
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "hookline-delivery"


def test_sqs_event_reports_batch_item_failures_with_parameters() -> None:
    [event] = _function()["Events"].values()
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "DeliveryBatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "DeliveryBatchWindow"}
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "DeliveryMaxConcurrency"}
    # Sized together (docs/delivery.md, "Sizing"): a batch above 10 needs a batching window of at least 1 s.
    assert parameter_default("DeliveryBatchSize") == parameter_default("MaxConcurrency") == 100
    assert parameter_default("DeliveryBatchWindow") >= 1


def test_queue_visibility_is_at_least_six_times_the_timeout() -> None:
    timeout = _function().get("Timeout") or load_template()["Globals"]["Function"]["Timeout"]
    assert properties("DeliveryQueue")["VisibilityTimeout"] >= 6 * timeout


def test_policies_name_their_resources() -> None:
    statements = [statement for policy in _function()["Policies"] for statement in policy["Statement"]]
    granted = {action: statement["Resource"] for statement in statements for action in statement["Action"]}
    assert granted["dynamodb:GetItem"] == {"Fn::GetAtt": ["EndpointsTable", "Arn"]}
    assert granted["dynamodb:BatchGetItem"] == {"Fn::GetAtt": ["BreakerTable", "Arn"]}
    assert granted["sqs:SendMessage"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert granted["sqs:ChangeMessageVisibility"] == {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}
    secret_arn = granted["secretsmanager:GetSecretValue"]["Fn::Sub"]
    assert secret_arn.endswith(":secret:${SigningSecretPrefix}*")
    assert parameter_default("SigningSecretPrefix") == "hookline/"
    for statement in statements:
        assert statement["Resource"] != "*"
        assert "*" not in statement["Action"]


def test_log_group_has_retention() -> None:
    assert _function()["LoggingConfig"]["LogGroup"] == {"Ref": "DeliveryFunctionLogGroup"}
    # History on: HistoryRetentionDays (docs/history.md); off: 30 days of operational logs.
    retention = properties("DeliveryFunctionLogGroup")["RetentionInDays"]
    assert retention == {"Fn::If": ["HistoryOn", {"Ref": "HistoryRetentionDays"}, 30]}
