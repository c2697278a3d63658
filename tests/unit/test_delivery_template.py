"""DeliveryFunction in template.yaml: event source, timeouts, environment and least-privilege policies."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.template import load_template, parameter_default, policy_statements, properties


def _function() -> dict[str, Any]:
    return properties("DeliveryFunction")


def test_handler_code_and_layer() -> None:
    function = _function()
    assert function["CodeUri"] == "functions/delivery"
    assert function["Handler"] == "app.lambda_handler"
    assert {"Ref": "SharedLayer"} in load_template()["Globals"]["Function"]["Layers"]
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "hookline-delivery"


def test_sqs_events_report_batch_item_failures_with_parameters() -> None:
    events = _function()["Events"]
    assert {name: event["Properties"]["Queue"] for name, event in events.items()} == {
        "Deliveries": {"Fn::GetAtt": ["DeliveryQueue", "Arn"]},
        "Retries": {"Fn::GetAtt": ["RetryQueue", "Arn"]},
    }
    for event in events.values():
        assert event["Type"] == "SQS"
        props = event["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BatchSize"] == {"Ref": "DeliveryBatchSize"}
        assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "DeliveryBatchWindow"}
        assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "DeliveryMaxConcurrency"}
    # Sized together (docs/delivery.md, "Sizing"): a batch above 10 needs a batching window of at least 1 s.
    assert parameter_default("DeliveryBatchSize") == parameter_default("MaxConcurrency") == 100
    assert parameter_default("DeliveryBatchWindow") >= 1


def test_queues_holding_retries_survive_the_stack() -> None:
    retry = load_template()["Resources"]["RetryQueue"]
    assert retry["DeletionPolicy"] == retry["UpdateReplacePolicy"] == "Retain"
    assert retry["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    variables = _function()["Environment"]["Variables"]
    assert variables["RETRY_QUEUE_URL"] == {"Ref": "RetryQueue"}


def test_queue_visibility_is_at_least_six_times_the_timeout() -> None:
    timeout = _function().get("Timeout") or load_template()["Globals"]["Function"]["Timeout"]
    for queue in ("DeliveryQueue", "RetryQueue"):
        assert properties(queue)["VisibilityTimeout"] >= 6 * timeout


def test_both_lanes_run_the_same_code_with_the_same_policy() -> None:
    slow = properties("SlowDeliveryFunction")
    fast = _function()
    for key in ("CodeUri", "Handler", "Policies"):
        assert slow[key] == fast[key]
    assert fast["Policies"] == [{"Ref": "DeliveryAccessPolicy"}]
    assert slow["Environment"]["Variables"]["DELIVERY_LANE"] == "slow"
    assert fast["Environment"]["Variables"]["DELIVERY_LANE"] == "fast"
    for variable in ("RETRY_QUEUE_URL", "SLOW_QUEUE_URL", "REQUEST_BUDGET_S", "RETRY_EXPIRY_SLACK_S", "PACING_TABLE"):
        assert slow["Environment"]["Variables"][variable] == fast["Environment"]["Variables"][variable]
    [event] = slow["Events"].values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["SlowQueue", "Arn"]}
    assert event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "SlowLaneMaxConcurrency"}
    assert properties("SlowQueue")["VisibilityTimeout"] >= 6 * slow["Timeout"]
    queue = load_template()["Resources"]["SlowQueue"]
    assert queue["DeletionPolicy"] == queue["UpdateReplacePolicy"] == "Retain"


def test_policies_name_their_resources() -> None:
    statements = policy_statements("DeliveryFunction")
    granted: dict[str, list[Any]] = {}
    for statement in statements:
        for action in statement["Action"]:
            granted.setdefault(action, []).append(statement["Resource"])
    assert granted["dynamodb:GetItem"] == [{"Fn::GetAtt": ["EndpointsTable", "Arn"]}]
    assert {"Fn::GetAtt": ["BreakerTable", "Arn"]} in granted["dynamodb:BatchGetItem"]
    assert granted["sqs:SendMessage"] == [
        {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        [{"Fn::GetAtt": ["RetryQueue", "Arn"]}, {"Fn::GetAtt": ["SlowQueue", "Arn"]}],
    ]
    assert "sqs:ChangeMessageVisibility" not in granted
    secret_arn = granted["secretsmanager:GetSecretValue"][0]["Fn::Sub"]
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
    # Both lanes write to it: the history reads one group.
    assert properties("SlowDeliveryFunction")["LoggingConfig"]["LogGroup"] == {"Ref": "DeliveryFunctionLogGroup"}


def test_alarms_watch_each_lane_and_the_new_failure_modes() -> None:
    def alarm(name: str) -> dict[str, Any]:
        props = properties(name)
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlertTopic"}]
        return props

    # DeliveryQueue holds producers' messages only: its oldest-message age is the wait before a first attempt.
    assert alarm("DeliveryBacklogAlarm")["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}
    for name, queue in (("RetryBacklogAlarm", "RetryQueue"), ("SlowLaneAgeAlarm", "SlowQueue")):
        metrics = {metric["Id"]: metric for metric in alarm(name)["Metrics"]}
        stat = metrics["age"]["MetricStat"]["Metric"]
        assert (stat["MetricName"], stat["Dimensions"][0]["Value"]) == (
            "ApproximateAgeOfOldestMessage",
            {"Fn::GetAtt": [queue, "QueueName"]},
        )
        assert metrics["overdue"]["Expression"] == "age - 900"  # a record may wait 900 s delayed on purpose
    assert alarm("SlowLaneDepthAlarm")["Threshold"] == {"Ref": "SlowLaneDepthThreshold"}
    expired = alarm("ExpiredDeadLettersAlarm")
    assert {d["Name"]: d["Value"] for d in expired["Dimensions"]} == {
        "Reason": "expired",
        "service": "hookline-delivery",
    }
    assert alarm("RateLimitBacklogAlarm")["MetricName"] == "DeliveryPaced"
    assert alarm("SlowDeliveryErrorsAlarm")["Dimensions"][0]["Value"] == {"Ref": "SlowDeliveryFunction"}


def test_the_dashboard_is_json_and_shows_the_lanes() -> None:
    body, names = properties("Dashboard")["DashboardBody"]["Fn::Sub"]
    text = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(text)["widgets"]
    titles = {widget["properties"]["title"] for widget in widgets}
    assert {"Queues", "Slow lane", "Lanes, pace and long waits"} <= titles
    assert {"RetryQueueName", "SlowQueueName"} <= set(names)
