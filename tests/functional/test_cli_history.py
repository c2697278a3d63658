"""`hookline messages show|list|forget` and `hookline replay` against moto (log lines, payload table, queues)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from hookline.history import PayloadMeta, PayloadStore
from tests.support.history import LogGroupWriter, attempt_line, create_payload_table

if TYPE_CHECKING:
    from tests.support.cli import CliHarness


@pytest.fixture
def history(cli: CliHarness) -> tuple[CliHarness, LogGroupWriter, PayloadStore]:
    writer = LogGroupWriter(cli.aws("logs"), f"/aws/lambda/hookline-delivery-{uuid.uuid4().hex[:8]}")
    table = create_payload_table(cli.aws("dynamodb"))
    now = writer.server_now()
    cli.now = datetime.fromtimestamp(now, tz=UTC)
    cli.extra_env.update(
        {
            "HOOKLINE_HISTORY_RETENTION_DAYS": "30",
            "HOOKLINE_HISTORY_LOG_GROUPS": writer.group,
            "HOOKLINE_PAYLOAD_TABLE": table,
        }
    )
    writer.write(
        (now - 900, attempt_line("msg_dead", "retrying", status=503, error="HTTP 503 from https://acme.example")),
        (now - 800, attempt_line("msg_ok", "delivered", event_type="refund.created")),
        (now - 700, attempt_line("msg_dead", "dead", attempt=2, status=503, reason="retries_exhausted")),
        (now - 600, attempt_line("msg_pending", "retrying", endpoint="globex", status=None, error="timeout")),
    )
    store = PayloadStore(table, client=cli.aws("dynamodb"), retention_days=30, clock=lambda: now)
    meta = PayloadMeta("invoice.paid", endpoint="acme")
    store.put_many([("msg_dead", b'{"n":1}', meta), ("msg_ok", b'{"n":2}', meta)])
    return cli, writer, store


def _queued(cli: CliHarness) -> list[dict[str, Any]]:
    sqs = cli.aws("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=cli.stack.delivery_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        found.extend(batch)
    return found


def test_show_gives_a_dead_messages_attempts_and_reason(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    shown = cli.json("messages", "show", "msg_dead")
    assert (shown["id"], shown["status"], shown["reason"], shown["payload_kept"]) == (
        "msg_dead",
        "dead",
        "retries_exhausted",
        True,
    )
    assert [(a["attempt"], a["outcome"], a["http_status"]) for a in shown["history"]] == [
        (1, "retrying", 503),
        (2, "dead", 503),
    ]
    text = cli.invoke("messages", "show", "msg_dead")
    assert text.exit_code == 0
    assert "msg_dead: dead (retries_exhausted)" in text.stdout
    assert "HTTP 503 from https://acme.example" in text.stdout


def test_show_of_an_unknown_or_malformed_id(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    missing = cli.invoke("messages", "show", "msg_never")
    assert missing.exit_code == 1
    assert "no delivery history for msg_never" in missing.stderr
    assert cli.invoke("messages", "show", "bad id!").exit_code == 2


def test_list_by_status_endpoint_and_event_type(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    listed = cli.json("messages", "list", "--since", "1h")
    assert [(m["id"], m["status"]) for m in listed["messages"]] == [
        ("msg_pending", "failed"),
        ("msg_dead", "dead"),
        ("msg_ok", "delivered"),
    ]
    assert listed["complete"] is True
    assert [m["id"] for m in cli.json("messages", "list", "--status", "failed")["messages"]] == ["msg_pending"]
    acme = cli.json("messages", "list", "--endpoint", "acme", "--since", "2h", "--until", "5m")["messages"]
    assert [m["id"] for m in acme] == ["msg_dead", "msg_ok"]
    assert [m["id"] for m in cli.json("messages", "list", "--event-type", "refund.created")["messages"]] == ["msg_ok"]
    bad = cli.invoke("messages", "list", "--status", "lost")
    assert bad.exit_code == 2
    assert "delivered, failed, dead, filtered" in bad.stderr
    assert cli.invoke("messages", "list", "--since", "tomorrow").exit_code == 2


def test_history_off_is_said_plainly(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    cli.extra_env["HOOKLINE_HISTORY_RETENTION_DAYS"] = "0"
    result = cli.invoke("messages", "list")
    assert result.exit_code == 1
    assert "HistoryRetentionDays=0" in result.stderr


def test_replay_by_id_resends_once_and_names_what_was_not_kept(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    result = cli.invoke("replay", "--id", "msg_ok", "--id", "msg_pending", "--id", "msg_ok", "--json")
    assert result.exit_code == 1  # msg_pending's payload was not kept
    report = json.loads(result.stdout)
    assert (report["resent"], report["not_retained"], report["repeated"]) == (["msg_ok"], ["msg_pending"], ["msg_ok"])
    [queued] = _queued(cli)
    assert json.loads(queued["Body"]) == {
        "version": 1,
        "id": "msg_ok",
        "event_type": "invoice.paid",
        "endpoint": "acme",
        "payload": {"n": 2},
    }
    assert json.loads(queued["MessageAttributes"]["hookline-retry"]["StringValue"])["r"] == 1


def test_replay_a_time_range_by_status(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    result = cli.invoke("replay", "--endpoint", "acme", "--since", "1h", "--status", "dead")
    assert result.exit_code == 0, result.stderr
    assert "re-sent 1 message(s)" in result.stdout
    assert [json.loads(m["Body"])["id"] for m in _queued(cli)] == ["msg_dead"]
    assert cli.invoke("replay", "--id", "msg_ok", "--endpoint", "acme").exit_code == 2
    assert cli.invoke("replay", "--endpoint", "acme").exit_code == 2


def test_forget_deletes_the_payload_so_replay_cannot_send_it(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, store = history
    assert cli.json("messages", "forget", "msg_ok") == {"id": "msg_ok", "forgotten": True}
    assert cli.json("messages", "forget", "msg_ok") == {"id": "msg_ok", "forgotten": False}
    assert store.get("msg_ok") is None
    assert cli.json("messages", "show", "msg_ok")["payload_kept"] is False
    result = cli.invoke("replay", "--id", "msg_ok", "--json")
    assert json.loads(result.stdout)["not_retained"] == ["msg_ok"]


def test_hostile_lines_in_the_log_group_never_break_show_or_list(history: tuple[CliHarness, Any, Any]) -> None:
    """Anyone who can write to the log group can write anything: such lines are skipped or shown as plain text."""
    cli, writer, _store = history
    now = writer.server_now()
    markup = attempt_line("msg_odd", "retrying", endpoint="[/]", error="[bold red]HTTP 500[/] [link=x]")
    writer.write(
        (now - 500, '{"a":' + "[" * 50_000 + "}"),
        (now - 499, json.dumps({"outcome": "delivered", "webhook_id": "msg_odd", "attempt": "²"})),
        (now - 498, "not json at all"),
        (now - 497, json.dumps({"outcome": "retrying", "webhook_id": "msg_odd"})[:-1] + ',"latency_ms":NaN}'),
        (now - 496, markup),
    )
    listed = cli.invoke("messages", "list", "--since", "1h")
    assert listed.exit_code == 0, listed.stderr
    assert "[bold red]HTTP 500[/]" in listed.stdout
    shown = cli.invoke("messages", "show", "msg_odd")
    assert shown.exit_code == 0, shown.stderr
    assert "[/]" in shown.stdout
    as_json = cli.invoke("messages", "show", "msg_odd", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    attempts = json.loads(as_json.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json output"))
    assert [a["attempt"] for a in attempts["history"]] == [None, None, 1]


@pytest.mark.parametrize(
    "args",
    [
        ("messages", "show", "msg_dead", "--since", "9999-12-31T23:59:59-14:00"),  # past datetime's last year
        ("messages", "list", "--since", "1h", "--until", "99999999999w"),
        ("messages", "list", "--since", "1h", "--until", "2h"),  # reversed
        ("messages", "list", "--since", "2999-01-01"),  # in the future
        ("messages", "list", "--since", "yesterday"),
        ("messages", "list", "--until", ""),  # empty is not "now"
        ("messages", "show", "msg_dead", "--since", " "),
        ("replay", "--endpoint", "acme", "--since", "99999999999999999999d"),
    ],
)
def test_bad_time_ranges_are_usage_errors(history: tuple[CliHarness, Any, Any], args: tuple[str, ...]) -> None:
    cli, _writer, _store = history
    result = cli.invoke(*args)
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    assert "--since" in result.stderr or "out of range" in result.stderr or "is not a time" in result.stderr


def test_replay_of_a_range_that_matches_nothing_says_so(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    result = cli.invoke("replay", "--endpoint", "nobody", "--since", "1h")
    assert result.exit_code == 0, result.stderr
    assert "no messages match" in result.stdout
    report = cli.json("replay", "--endpoint", "nobody", "--since", "1h")
    assert report == {
        "complete": True,
        "not_retained": [],
        "refused": {},
        "repeated": [],
        "resent": [],
        "send_failed": {},
    }
    assert _queued(cli) == []


def test_replay_with_payloads_off_says_so_for_ids_and_ranges(history: tuple[CliHarness, Any, Any]) -> None:
    cli, _writer, _store = history
    cli.extra_env["HOOKLINE_PAYLOAD_TABLE"] = ""
    for args in (("--id", "msg_ok"), ("--endpoint", "acme", "--since", "1h")):
        result = cli.invoke("replay", *args)
        assert result.exit_code == 1
        assert "RetainPayloads=false" in result.stderr
    bad_status = cli.invoke("replay", "--endpoint", "acme", "--since", "1h", "--status", "lost")
    assert bad_status.exit_code == 2  # bad input is a usage error before anything about the stack
    assert "delivered, failed, dead, filtered" in bad_status.stderr


@pytest.mark.parametrize("bad_id", ["", " ", "bad id!", "x" * 256, "msg_1\n", "msg_\u00e9"])
@pytest.mark.parametrize("command", [("messages", "show"), ("messages", "forget"), ("replay", "--id")])
def test_malformed_ids_are_usage_errors(
    history: tuple[CliHarness, Any, Any], command: tuple[str, ...], bad_id: str
) -> None:
    cli, _writer, _store = history
    result = cli.invoke(*command, bad_id)
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert "is not a webhook id" in result.stderr
