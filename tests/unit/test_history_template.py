"""template.yaml's history resources: retention as CloudWatch Logs allows it, the id index, the payload table."""

from __future__ import annotations

from tests.support.template import load_template, policy_statements, properties, resource

LOGS_RETENTION_VALUES = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922]
LOGS_RETENTION_VALUES += [3288, 3653]


def test_history_retention_takes_only_what_cloudwatch_logs_keeps_or_zero() -> None:
    parameter = load_template()["Parameters"]["HistoryRetentionDays"]
    assert parameter["AllowedValues"] == [0, *LOGS_RETENTION_VALUES]
    assert parameter["Default"] == 30
    assert load_template()["Parameters"]["RetainPayloads"]["Default"] == "false"


def test_the_delivery_log_group_keeps_history_and_indexes_the_id_only_when_history_is_on() -> None:
    group = properties("DeliveryFunctionLogGroup")
    assert group["RetentionInDays"] == {"Fn::If": ["HistoryOn", {"Ref": "HistoryRetentionDays"}, 30]}
    assert group["FieldIndexPolicies"] == {
        "Fn::If": ["HistoryOn", [{"Fields": ["webhook_id"]}], {"Ref": "AWS::NoValue"}]
    }
    conditions = load_template()["Conditions"]
    assert conditions["HistoryOn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HistoryRetentionDays"}, "0"]}]}


def test_payloads_live_in_an_encrypted_ttl_table_only_when_kept() -> None:
    table = resource("PayloadTable")
    assert table["Condition"] == "KeepPayloads"
    props = table["Properties"]
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_the_function_may_only_add_payloads_to_that_one_table() -> None:
    function = properties("DeliveryFunction")
    statements = policy_statements("DeliveryFunction")  # both delivery lanes share one managed policy
    [keep] = [statement for statement in statements if statement.get("Sid") == "KeepPayloads"]
    assert keep["Action"] == ["dynamodb:BatchWriteItem"]
    assert keep["Resource"]["Fn::Sub"].endswith(":table/${AWS::StackName}-payloads")
    assert properties("PayloadTable")["TableName"] == {"Fn::Sub": "${AWS::StackName}-payloads"}
    variables = function["Environment"]["Variables"]
    assert variables["HISTORY_RETENTION_DAYS"] == {"Ref": "HistoryRetentionDays"}
    assert variables["PAYLOAD_TABLE"] == {"Fn::If": ["KeepPayloads", {"Ref": "PayloadTable"}, ""]}


def test_the_cli_finds_history_through_outputs() -> None:
    outputs = load_template()["Outputs"]
    assert outputs["HistoryRetentionDays"]["Value"] == {"Ref": "HistoryRetentionDays"}
    assert outputs["HistoryLogGroups"]["Value"] == {"Ref": "DeliveryFunctionLogGroup"}
    assert outputs["PayloadTableName"]["Condition"] == "KeepPayloads"
