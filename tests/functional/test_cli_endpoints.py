"""`hookline endpoints ...` against the moto server: registration, secrets, network guard, errors and exit codes."""

from __future__ import annotations

import json
import uuid

import pytest

from hookline.registry import EndpointRegistry
from hookline.signing import generate_secret, parse_secret_string
from tests.support.aws import client
from tests.support.cli import CliHarness, FailingClient

RECEIVER = "http://127.0.0.1:9/hooks"


@pytest.fixture
def ep() -> str:
    """A unique endpoint name: Secrets Manager names are global in the session's moto server."""
    return f"acme-{uuid.uuid4().hex[:8]}"


def _registry(cli: CliHarness) -> EndpointRegistry:
    return EndpointRegistry(cli.stack.endpoints_table, client=cli.aws("dynamodb"), cache_ttl_s=0)


def _secret_value(cli: CliHarness, secret_id: str) -> str:
    return str(cli.aws("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def _put_secret(cli: CliHarness, name: str, value: str) -> None:
    cli.aws("secretsmanager").create_secret(Name=name, SecretString=value)


def test_add_with_generated_secret_prints_it_once_and_stores_it(cli: CliHarness, ep: str) -> None:
    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret", "--event-type", "a.b")

    assert result.exit_code == 0, result.stderr
    stored = _secret_value(cli, f"hookline/{ep}")
    assert parse_secret_string(stored).current == stored
    assert result.stdout.count(stored) == 1
    endpoint = _registry(cli).require(ep)
    assert (endpoint.url, endpoint.secret_id, endpoint.event_types) == (RECEIVER, f"hookline/{ep}", ("a.b",))


def test_add_json_output_has_the_endpoint_and_the_secret(cli: CliHarness, ep: str) -> None:
    data = cli.json("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret", "--scheme", "github")

    assert data["secret"] == _secret_value(cli, f"hookline/{ep}")
    assert data["endpoint"]["name"] == ep
    assert data["endpoint"]["scheme"] == "github"


def test_add_with_existing_secret_and_every_option(cli: CliHarness, ep: str) -> None:
    secret = generate_secret()
    _put_secret(cli, f"hookline/team-{ep}", secret)

    result = cli.invoke(
        "endpoints", "add", ep, "--url", RECEIVER, "--secret-id", f"hookline/team-{ep}",
        "--fallback-url", "http://127.0.0.1:10/b", "--fallback-url", "http://127.0.0.1:11/c",
        "--scheme", "stripe", "--health-url", "http://127.0.0.1:9/health", "--expect-status", "200-204",
        "--timeout", "7.5", "--header", "X-Api-Key=k3y", "--event-type", "a.b", "--event-type", "c.d",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert secret not in result.stdout
    endpoint = _registry(cli).require(ep)
    assert endpoint.fallback_urls == ("http://127.0.0.1:10/b", "http://127.0.0.1:11/c")
    assert endpoint.scheme == "stripe"
    assert endpoint.timeout_s == 7.5
    assert dict(endpoint.headers) == {"X-Api-Key": "k3y"}
    assert endpoint.event_types == ("a.b", "c.d")
    assert endpoint.health.url == "http://127.0.0.1:9/health"
    assert endpoint.health.expect_status == (200, 201, 202, 203, 204)


def test_show_json_has_stable_keys_and_redacts_header_values(cli: CliHarness, ep: str) -> None:
    _put_secret(cli, f"hookline/team-{ep}", generate_secret())
    cli.invoke(
        "endpoints", "add", ep, "--url", RECEIVER, "--secret-id", f"hookline/team-{ep}", "--header", "Auth=t0ken"
    )

    data = cli.json("endpoints", "show", ep)

    assert set(data) == {
        "name", "url", "fallback_urls", "secret_id", "enabled", "disabled_reason", "scheme", "timeout_s",
        "headers", "event_types", "rate_limit_per_s", "max_in_flight", "health_check", "health",
    }  # fmt: skip
    assert (data["rate_limit_per_s"], data["max_in_flight"]) == (None, None)
    assert data["headers"] == {"Auth": "<redacted>"}
    assert "t0ken" not in json.dumps(data)
    assert data["health"]["state"] == "unknown"


def test_list_enable_disable_remove(cli: CliHarness, ep: str) -> None:
    for name in (f"{ep}-b", f"{ep}-a"):
        assert cli.invoke("endpoints", "add", name, "--url", RECEIVER, "--generate-secret").exit_code == 0

    assert [item["name"] for item in cli.json("endpoints", "list") if item["name"].startswith(ep)] == [
        f"{ep}-a",
        f"{ep}-b",
    ]
    assert cli.invoke("endpoints", "disable", f"{ep}-a", "--reason", "maintenance").exit_code == 0
    shown = cli.json("endpoints", "show", f"{ep}-a")
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "maintenance")
    assert cli.invoke("endpoints", "enable", f"{ep}-a").exit_code == 0
    assert cli.json("endpoints", "show", f"{ep}-a")["enabled"] is True
    table = cli.invoke("endpoints", "list")
    assert f"{ep}-a" in table.stdout and f"{ep}-b" in table.stdout
    assert cli.invoke("endpoints", "remove", f"{ep}-a", "--delete-secret").exit_code == 0
    assert [item["name"] for item in cli.json("endpoints", "list") if item["name"].startswith(ep)] == [f"{ep}-b"]
    described = cli.aws("secretsmanager").describe_secret(SecretId=f"hookline/{ep}-a")
    assert "DeletedDate" in described


@pytest.mark.parametrize(
    "command",
    [
        ["show", "ghost"],
        ["enable", "ghost"],
        ["disable", "ghost"],
        ["remove", "ghost"],
        ["rotate-secret", "ghost"],
        ["set", "ghost", "--rate-limit", "1"],
    ],
)
def test_unknown_endpoint_is_bad_input(cli: CliHarness, command: list[str]) -> None:
    result = cli.invoke("endpoints", *command)

    assert result.exit_code == 2
    assert "unknown endpoint 'ghost'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.7/hook", "private"),
        ("ftp://127.0.0.1/hook", "scheme"),
        ("https://user:pw@127.0.0.1/hook", "credentials"),
    ],
)
def test_url_refused_by_the_network_guard(cli: CliHarness, url: str, expected: str, ep: str) -> None:
    result = cli.invoke("endpoints", "add", ep, "--url", url, "--generate-secret")

    assert result.exit_code == 2
    assert "refused by the network guard" in result.stderr
    assert expected in result.stderr
    assert "pw" not in result.stderr.replace("user:pw@", "")  # only the URL as typed, no echo elsewhere
    assert _registry(cli).get(ep) is None
    secrets = cli.aws("secretsmanager").list_secrets()["SecretList"]
    assert f"hookline/{ep}" not in [item["Name"] for item in secrets]


def test_fallback_and_health_urls_are_guarded_too(cli: CliHarness, ep: str) -> None:
    fallback = cli.invoke(
        "endpoints", "add", f"{ep}-a", "--url", RECEIVER, "--fallback-url", "http://192.168.1.1/", "--generate-secret"
    )
    health = cli.invoke(
        "endpoints",
        "add",
        f"{ep}-b",
        "--url",
        RECEIVER,
        "--health-url",
        "http://[::ffff:10.0.0.1]/",
        "--generate-secret",
    )

    assert (fallback.exit_code, health.exit_code) == (2, 2)
    assert "--fallback-url" in fallback.stderr and "--health-url" in health.stderr


def test_loopback_targets_only_when_the_stack_allows_private_targets(cli: CliHarness, ep: str) -> None:
    cli.extra_env["HOOKLINE_ALLOW_PRIVATE_TARGETS"] = "false"

    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")

    assert result.exit_code == 2
    assert "loopback" in result.stderr
    assert "HOOKLINE_ALLOW_PRIVATE_TARGETS" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generate-secret", "--secret-id", "x"], "exactly one of --generate-secret or --secret-id"),
        ([], "exactly one of --generate-secret or --secret-id"),
        (["--secret-id", "hookline/does-not-exist"], "hookline/does-not-exist"),
        (["--generate-secret", "--scheme", "svix"], "--scheme must be one of"),
        (["--generate-secret", "--timeout", "31"], "--timeout must be between 1 and 30"),
        (["--generate-secret", "--header", "novalue"], "--header must be KEY=VALUE"),
        (["--generate-secret", "--header", "webhook-id=x"], "not allowed"),
        (["--generate-secret", "--health-method", "POST"], "health.method"),
        (["--generate-secret", "--expect-status", "200-100"], "reversed range 200-100"),
        (["--generate-secret", "--expect-status", "200-99999999"], "between 100 and 599"),
    ],
)
def test_add_rejects_bad_input_with_exit_2(cli: CliHarness, args: list[str], message: str, ep: str) -> None:
    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, *args)

    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert _registry(cli).get(ep) is None


def test_add_rejects_a_malformed_existing_secret_without_echoing_it(cli: CliHarness, ep: str) -> None:
    _put_secret(cli, f"hookline/team-{ep}-bad", "not-a-whsec-value")

    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--secret-id", f"hookline/team-{ep}-bad")

    assert result.exit_code == 2
    assert "malformed" in result.stderr
    assert "not-a-whsec-value" not in result.stderr + result.stdout


def test_add_rejects_bad_names_and_duplicates(cli: CliHarness, ep: str) -> None:
    assert cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret").exit_code == 0
    first_secret = _secret_value(cli, f"hookline/{ep}")

    duplicate = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")
    bad_name = cli.invoke("endpoints", "add", "-bad name", "--url", RECEIVER, "--generate-secret")

    assert duplicate.exit_code == 2 and "exists already" in duplicate.stderr
    assert _secret_value(cli, f"hookline/{ep}") == first_secret
    assert bad_name.exit_code == 2


def test_generated_secret_that_exists_already_is_bad_input(cli: CliHarness, ep: str) -> None:
    _put_secret(cli, f"hookline/{ep}", generate_secret())

    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")

    assert result.exit_code == 2
    assert f"--secret-id hookline/{ep}" in result.stderr


def test_a_failed_registration_does_not_leave_a_generated_secret(cli: CliHarness, ep: str) -> None:
    failing = FailingClient(client("dynamodb", cli.endpoint_url), "put_item")
    cli.client_factory = lambda service: failing if service == "dynamodb" else cli.aws(service)

    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "whsec_" not in result.stdout + result.stderr
    secrets = cli.aws("secretsmanager").list_secrets()["SecretList"]
    assert f"hookline/{ep}" not in [item["Name"] for item in secrets]


def test_set_and_clear_flow_control_limits(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")

    result = cli.invoke("endpoints", "set", ep, "--rate-limit", "0.5", "--max-in-flight", "4")

    assert result.exit_code == 0, result.stderr
    assert "rate limit 0.5/s, max in flight 4" in result.stdout
    stored = _registry(cli).require(ep)
    assert (stored.rate_limit_per_s, stored.max_in_flight) == (0.5, 4)
    shown = cli.json("endpoints", "show", ep)
    assert (shown["rate_limit_per_s"], shown["max_in_flight"]) == (0.5, 4)
    listed = [item for item in cli.json("endpoints", "list") if item["name"] == ep]
    assert (listed[0]["rate_limit_per_s"], listed[0]["max_in_flight"]) == (0.5, 4)
    table = cli.invoke("endpoints", "list").stdout
    assert "0.5/s, 4 in flight" in table
    assert "0.5/s" in cli.invoke("endpoints", "show", ep).stdout

    data = cli.json("endpoints", "set", ep, "--clear-rate-limit")

    assert (data["rate_limit_per_s"], data["max_in_flight"]) == (None, 4)
    raw = cli.aws("dynamodb").get_item(TableName=cli.stack.endpoints_table, Key={"name": {"S": ep}})["Item"]
    assert "rate_limit_per_s" not in raw
    cli.invoke("endpoints", "set", ep, "--clear-max-in-flight", "--rate-limit", "20")
    stored = _registry(cli).require(ep)
    assert (stored.rate_limit_per_s, stored.max_in_flight) == (20.0, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "5", "--clear-rate-limit"], "--rate-limit or --clear-rate-limit, not both"),
        (["--max-in-flight", "2", "--clear-max-in-flight"], "--max-in-flight or --clear-max-in-flight, not both"),
        (["--rate-limit", "0"], "--rate-limit must be"),
        (["--rate-limit", "-2"], "--rate-limit must be"),
        (["--rate-limit", "inf"], "--rate-limit must be"),
        (["--max-in-flight", "0"], "--max-in-flight must be at least 1"),
        (["--rate-limit", "nan"], "--rate-limit must be"),
        (["--rate-limit", "1e-200"], "'rate_limit_per_s' is not a number DynamoDB can store"),
        (["--rate-limit", "1e300"], "'rate_limit_per_s' must be a number above 0 and below 1E+126"),
        (["--max-in-flight", "1" + "0" * 40], "'max_in_flight' is not a number DynamoDB can store"),
        ([], "nothing to set"),
    ],
)
def test_set_rejects_bad_input_with_exit_2(cli: CliHarness, ep: str, args: list[str], message: str) -> None:
    cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")
    cli.invoke("endpoints", "set", ep, "--rate-limit", "3")

    result = cli.invoke("endpoints", "set", ep, *args)

    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert _registry(cli).require(ep).rate_limit_per_s == 3.0


def test_set_clears_a_broken_limit_another_tool_wrote(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")
    table, key = cli.stack.endpoints_table, {"name": {"S": ep}}
    dynamodb = cli.aws("dynamodb")
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET rate_limit_per_s = :r",
        ExpressionAttributeValues={":r": {"S": "fast"}},
    )

    result = cli.invoke("endpoints", "set", ep, "--clear-rate-limit")

    assert result.exit_code == 0, result.stderr
    assert "rate_limit_per_s" not in dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert _registry(cli).require(ep, fresh=True).rate_limit_per_s is None


def test_list_reports_and_skips_items_that_break_the_contract(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")
    cli.aws("dynamodb").put_item(
        TableName=cli.stack.endpoints_table,
        Item={
            "name": {"S": f"{ep}-broken"},
            "url": {"S": RECEIVER},
            "secret_id": {"S": "hookline/x"},
            "consecutive_failures": {"S": "many"},
        },
    )

    listed = cli.invoke("endpoints", "list", "--json")
    table = cli.invoke("endpoints", "list")

    assert (listed.exit_code, table.exit_code) == (0, 0)
    names = [item["name"] for item in json.loads(listed.stdout)]
    assert ep in names
    assert f"{ep}-broken" not in names
    for result in (listed, table):
        assert f"skipped registry item {ep}-broken: " in result.stderr
        assert "consecutive_failures" in result.stderr


def test_generated_secrets_live_under_the_stacks_prefix(cli: CliHarness, ep: str) -> None:
    cli.extra_env["HOOKLINE_SIGNING_SECRET_PREFIX"] = "team/hooks/"

    data = cli.json("endpoints", "add", ep, "--url", RECEIVER, "--generate-secret")

    assert data["endpoint"]["secret_id"] == f"team/hooks/{ep}"
    assert parse_secret_string(_secret_value(cli, f"team/hooks/{ep}")).current == data["secret"]
    assert _registry(cli).require(ep).secret_id == f"team/hooks/{ep}"


def test_a_secret_id_outside_the_stacks_prefix_is_refused(cli: CliHarness, ep: str) -> None:
    cli.extra_env["HOOKLINE_SIGNING_SECRET_PREFIX"] = "team/hooks/"
    _put_secret(cli, f"hookline/{ep}", generate_secret())

    result = cli.invoke("endpoints", "add", ep, "--url", RECEIVER, "--secret-id", f"hookline/{ep}")

    assert result.exit_code == 2
    assert f"secret id 'hookline/{ep}' is outside the stack's signing-secret prefix 'team/hooks/'" in result.stderr
    assert "may read only secrets under it" in result.stderr
    assert _registry(cli).get(ep) is None


def test_remove_delete_secret_refuses_a_secret_another_endpoint_uses(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "add", f"{ep}-a", "--url", RECEIVER, "--generate-secret")
    shared = f"hookline/{ep}-a"
    cli.invoke("endpoints", "add", f"{ep}-b", "--url", RECEIVER, "--secret-id", shared)

    refused = cli.invoke("endpoints", "remove", f"{ep}-a", "--delete-secret")

    assert refused.exit_code == 2
    assert f"secret {shared!r} is also used by endpoint {ep}-b" in refused.stderr
    assert "--delete-shared-secret" in refused.stderr
    assert _registry(cli).get(f"{ep}-a") is not None  # nothing removed
    assert "DeletedDate" not in cli.aws("secretsmanager").describe_secret(SecretId=shared)

    kept = cli.invoke("endpoints", "remove", f"{ep}-a")  # without --delete-secret: the secret stays, no question

    assert kept.exit_code == 0, kept.stderr
    assert "DeletedDate" not in cli.aws("secretsmanager").describe_secret(SecretId=shared)


def test_remove_delete_shared_secret_deletes_it_and_says_who_used_it(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "add", f"{ep}-a", "--url", RECEIVER, "--generate-secret")
    shared = f"hookline/{ep}-a"
    cli.invoke("endpoints", "add", f"{ep}-b", "--url", RECEIVER, "--secret-id", shared)

    result = cli.invoke("endpoints", "remove", f"{ep}-a", "--delete-shared-secret")

    assert result.exit_code == 0, result.stderr
    assert _registry(cli).get(f"{ep}-a") is None
    assert "DeletedDate" in cli.aws("secretsmanager").describe_secret(SecretId=shared)
    assert f"still used by endpoint {ep}-b" in result.stderr


def test_credentials_in_an_item_written_by_another_tool_are_never_printed(cli: CliHarness, ep: str) -> None:
    cli.aws("dynamodb").put_item(
        TableName=cli.stack.endpoints_table,
        Item={
            "name": {"S": ep},
            "url": {"S": "https://user:p4ss@hooks.example/in"},
            "fallback_urls": {"L": [{"S": "https://backup:s3cret@backup.example/in"}]},
            "secret_id": {"S": "hookline/x"},
        },
    )

    outputs = [
        cli.invoke("endpoints", "list").stdout,
        cli.invoke("endpoints", "list", "--json").stdout,
        cli.invoke("endpoints", "show", ep).stdout,
        cli.invoke("endpoints", "show", ep, "--json").stdout,
    ]

    for output in outputs:
        assert "p4ss" not in output and "s3cret" not in output
        assert "<redacted>@hooks.example" in output
    assert cli.json("endpoints", "show", ep)["url"] == "https://<redacted>@hooks.example/in"
