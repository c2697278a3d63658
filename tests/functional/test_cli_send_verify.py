"""`hookline send` (validated message on the delivery queue) and `hookline verify` (receiver-side signature check)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from hookline.messages import parse_message
from hookline.signing import PlainSecret, generate_secret, sign_standard
from tests.support.cli import NOW, CliHarness
from tests.support.template import StackResources

if TYPE_CHECKING:
    from pathlib import Path

RECEIVER = "http://127.0.0.1:9/hooks"


@pytest.fixture
def ep(cli: CliHarness) -> str:
    """A registered endpoint with a unique name (Secrets Manager names are global in the moto server)."""
    name = f"acme-{uuid.uuid4().hex[:8]}"
    result = cli.invoke(
        "endpoints", "add", name, "--url", RECEIVER, "--generate-secret", "--event-type", "invoice.paid"
    )
    assert result.exit_code == 0, result.stderr
    return name


def _queued(cli: CliHarness) -> list[dict[str, object]]:
    sqs = cli.aws("sqs")
    response = sqs.receive_message(QueueUrl=cli.stack.delivery_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def test_send_puts_one_valid_message_and_prints_its_id(cli: CliHarness, ep: str) -> None:
    result = cli.invoke("send", "--endpoint", ep, "--event-type", "invoice.paid", "--payload", '{"amount": 42}')

    assert result.exit_code == 0, result.stderr
    webhook_id = result.stdout.strip()
    assert webhook_id.startswith("msg_")
    [body] = _queued(cli)
    message = parse_message(json.dumps(body))
    assert (message.id, message.endpoint, message.event_type, message.payload) == (
        webhook_id,
        ep,
        "invoice.paid",
        {"amount": 42},
    )


def test_send_payload_from_file_with_explicit_id_and_timestamp(cli: CliHarness, ep: str, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"items": [1, 2, 3], "note": "caf\\u00e9"}', encoding="utf-8")

    data = cli.json(
        "send", "--endpoint", ep, "--event-type", "invoice.paid", "--payload", f"@{payload}",
        "--id", "msg_custom-1", "--timestamp", "2026-11-28T08:00:00Z",
    )  # fmt: skip

    assert data == {"id": "msg_custom-1", "endpoint": ep, "event_type": "invoice.paid"}
    [body] = _queued(cli)
    assert body["id"] == "msg_custom-1"
    assert body["timestamp"] == "2026-11-28T08:00:00Z"
    assert body["payload"] == {"items": [1, 2, 3], "note": "café"}


def test_send_payload_from_stdin(cli: CliHarness, ep: str) -> None:
    result = cli.invoke("send", "--endpoint", ep, "--event-type", "invoice.paid", "--payload", "@-", input="[1,2]")

    assert result.exit_code == 0, result.stderr
    assert _queued(cli)[0]["payload"] == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "ghost", "--event-type", "invoice.paid", "--payload", "{}"], "unknown endpoint 'ghost'"),
        (["--event-type", "invoice.paid", "--payload", '{"a": '], "--payload is not valid JSON"),
        (["--event-type", "invoice.paid", "--payload", "NaN"], "--payload is not valid JSON"),
        (["--event-type", "invoice.paid", "--payload", "@/nonexistent/payload.json"], "cannot read"),
        (["--event-type", "bad type!", "--payload", "{}"], "does not subscribe"),
        (
            ["--event-type", "invoice.paid", "--payload", "{}", "--id", "has space"],
            "invalid message (schema_violation)",
        ),
        (["--event-type", "invoice.paid", "--payload", "{}", "--timestamp", "yesterday"], "timestamp"),
    ],
)
def test_send_rejects_bad_input_and_sends_nothing(cli: CliHarness, ep: str, args: list[str], message: str) -> None:
    if "--endpoint" not in args:
        args = ["--endpoint", ep, *args]

    result = cli.invoke("send", *args)

    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert _queued(cli) == []


def test_send_to_a_disabled_endpoint_is_refused(cli: CliHarness, ep: str) -> None:
    cli.invoke("endpoints", "disable", ep, "--reason", "gone")

    result = cli.invoke("send", "--endpoint", ep, "--event-type", "invoice.paid", "--payload", "{}")

    assert result.exit_code == 2
    assert "disabled (gone)" in result.stderr
    assert _queued(cli) == []


def test_send_schema_violation_of_event_type_is_reported(cli: CliHarness) -> None:
    name = f"any-{uuid.uuid4().hex[:8]}"
    cli.invoke("endpoints", "add", name, "--url", RECEIVER, "--generate-secret")

    result = cli.invoke("send", "--endpoint", name, "--event-type", "bad type!", "--payload", "{}")

    assert result.exit_code == 2
    assert "invalid message (schema_violation): event_type" in result.stderr


# --- verify -------------------------------------------------------------------------------------------------------
SECRET = generate_secret(random_bytes=lambda size: bytes(range(size)))
BODY = b'{"amount":42}'
TIMESTAMP = int(NOW.timestamp())


@pytest.fixture
def offline(tmp_path: Path) -> CliHarness:
    """A harness pointing at nothing: verify must not need a stack (a request here would fail to connect)."""
    nowhere = StackResources(*(["unused"] * 6))
    return CliHarness(stack=nowhere, endpoint_url="http://127.0.0.1:9", tmp_path=tmp_path)


@pytest.fixture
def signed(tmp_path: Path) -> dict[str, str]:
    """A webhook as a receiver got it: body file, secret file and the three headers."""
    (tmp_path / "body.json").write_bytes(BODY)
    (tmp_path / "secret").write_text(SECRET + "\n", encoding="utf-8")
    return {
        "body": f"@{tmp_path / 'body.json'}",
        "secret": f"@{tmp_path / 'secret'}",
        "id": "msg_1",
        "timestamp": str(TIMESTAMP),
        "signature": sign_standard(SECRET, "msg_1", TIMESTAMP, BODY),
    }


def _verify_args(values: dict[str, str], *, secret: bool = True) -> list[str]:
    args = ["verify", "--id", values["id"], "--timestamp", values["timestamp"], "--signature", values["signature"]]
    args += ["--body", values["body"]]
    return [*args, "--secret", values["secret"]] if secret else args


def test_verify_valid_with_secret_file(offline: CliHarness, signed: dict[str, str]) -> None:
    result = offline.invoke(*_verify_args(signed))

    assert (result.exit_code, result.stdout.strip()) == (0, "valid")
    assert SECRET not in result.stdout + result.stderr


def test_verify_valid_with_secret_from_environment(offline: CliHarness, signed: dict[str, str]) -> None:
    offline.extra_env["HOOKLINE_SECRET"] = SECRET

    result = offline.invoke(*_verify_args(signed, secret=False))

    assert (result.exit_code, result.stdout.strip()) == (0, "valid")


def test_verify_accepts_the_previous_secret_during_a_rotation(offline: CliHarness, signed: dict[str, str]) -> None:
    rotation = {
        "current": generate_secret(),
        "previous": SECRET,
        "previous_expires_at": (NOW + timedelta(hours=1)).isoformat(),
    }
    offline.extra_env["HOOKLINE_SECRET"] = json.dumps(rotation)

    assert offline.invoke(*_verify_args(signed, secret=False)).exit_code == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": '{"amount":43}'}, "no matching webhook signature"),
        ({"id": "msg_2"}, "no matching webhook signature"),
        ({"timestamp": str(TIMESTAMP - 3600)}, "timestamp is too old"),
        ({"timestamp": str(TIMESTAMP + 3600)}, "timestamp is too far in the future"),
        ({"timestamp": "yesterday"}, "invalid webhook-timestamp"),
        ({"signature": "v1,AAAA"}, "no matching webhook signature"),
    ],
)
def test_verify_invalid_exits_1_with_why(
    offline: CliHarness, signed: dict[str, str], change: dict[str, str], reason: str
) -> None:
    result = offline.invoke(*_verify_args({**signed, **change}))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("invalid: ")
    assert reason in result.stderr


def test_verify_tolerance_option(offline: CliHarness, signed: dict[str, str]) -> None:
    old = {**signed, "timestamp": str(TIMESTAMP - 3600)}
    old["signature"] = sign_standard(SECRET, "msg_1", TIMESTAMP - 3600, BODY)

    assert offline.invoke(*_verify_args(old)).exit_code == 1
    assert offline.invoke(*_verify_args(old), "--tolerance", "4000").exit_code == 0


def test_verify_without_any_secret_is_bad_input(offline: CliHarness, signed: dict[str, str]) -> None:
    result = offline.invoke(*_verify_args(signed, secret=False))

    assert result.exit_code == 2
    assert "HOOKLINE_SECRET" in result.stderr


@pytest.mark.parametrize("secret", ["whsec_tooshort", "@/nonexistent/secret", "tiny"])
def test_verify_with_a_malformed_or_missing_secret_is_bad_input(
    offline: CliHarness, signed: dict[str, str], secret: str
) -> None:
    result = offline.invoke(*_verify_args({**signed, "secret": secret}))

    assert result.exit_code == 2
    assert "tooshort" not in result.stderr and "tiny" not in result.stderr


@pytest.mark.parametrize("given", ["webhook_secret", "whsec_" + base64.b64encode(b"webhook_secret").decode()])
def test_verify_a_plain_secret_as_itself_or_as_whsec(offline: CliHarness, signed: dict[str, str], given: str) -> None:
    plain = {
        **signed,
        "secret": given,
        "signature": sign_standard(PlainSecret("webhook_secret"), "msg_1", TIMESTAMP, BODY),
    }

    result = offline.invoke(*_verify_args(plain))

    assert (result.exit_code, result.stdout.strip()) == (0, "valid"), result.stderr


def test_verify_needs_no_stack(signed: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tests.support.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".hookline").mkdir()
    (tmp_path / ".hookline" / "local.json").write_text("not json", encoding="utf-8")
    signature = sign_standard(SECRET, "msg_1", TIMESTAMP, BODY)
    args = ["verify", "--id", "msg_1", "--timestamp", str(TIMESTAMP), "--signature", signature]

    result = CliRunner().invoke(
        app(), [*args, "--body", signed["body"], "--secret", signed["secret"], "--tolerance", "1e12"]
    )

    assert (result.exit_code, result.stdout.strip()) == (0, "valid")
