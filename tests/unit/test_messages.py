"""The message contract: the Python validator and the JSON Schema agree on every case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hookline import messages
from hookline.messages import MessageError, WebhookMessage, derive_id, encode_payload, parse_message, validate_message
from hookline.metrics import Reason

SCHEMA_PATH = Path(messages.__file__).parent / "schemas" / "webhook-message.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

REGISTERED: dict[str, Any] = {"version": 1, "event_type": "invoice.paid", "endpoint": "acme-billing", "payload": {}}
INLINE: dict[str, Any] = {
    "version": 1,
    "event_type": "invoice.paid",
    "url": "https://hooks.acme.com/x",
    "secret_id": "hookline/acme",
    "payload": {"amount": 5},
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DROP = object()

VALID: list[Any] = [
    REGISTERED,
    INLINE,
    _with(INLINE, fallback_urls=["https://backup.acme.com/x", "http://127.0.0.1:8080/hook?x=1#frag"]),
    _with(INLINE, fallback_urls=[]),
    _with(REGISTERED, id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
    _with(REGISTERED, id="0f8fad5b-d9cb-469f-a165-70867728950e"),
    _with(REGISTERED, version=1.0),
    _with(REGISTERED, payload=None),
    _with(REGISTERED, payload=[1, "two", {"3": None}]),
    _with(REGISTERED, payload="text"),
    _with(REGISTERED, payload={"emoji": "\u2603 \U0001f600", "nested": {"deep": [True, False]}}),
    _with(REGISTERED, timestamp="2026-11-28T08:00:00Z"),
    _with(REGISTERED, timestamp="2026-11-28T08:00:00.123456+05:30"),
    _with(REGISTERED, event_type="a" * 128),
    _with(REGISTERED, event_type="Billing:invoice_paid-v2.x"),
    _with(REGISTERED, endpoint="a" + "b" * 127),
    _with(INLINE, url="HTTPS://HOOKS.ACME.COM"),
    _with(INLINE, url="http://[::1]:9000/x"),
    _with(INLINE, url="https://hooks.acme.com/" + "a" * (2048 - 23)),
    _with(INLINE, secret_id="arn:aws:secretsmanager:us-east-1:123456789012:secret:hookline/acme-AbCdEf"),
    _with(INLINE, fallback_urls=["https://b.example/" + str(index) for index in range(5)]),
]

INVALID: list[Any] = [
    [],
    "text",
    None,
    {},
    _with(REGISTERED, version=_DROP),
    _with(REGISTERED, version=2),
    _with(REGISTERED, version="1"),
    _with(REGISTERED, version=True),
    _with(REGISTERED, event_type=_DROP),
    _with(REGISTERED, event_type=""),
    _with(REGISTERED, event_type="a" * 129),
    _with(REGISTERED, event_type="invoice paid"),
    _with(REGISTERED, event_type="invoice.paid\n"),
    _with(REGISTERED, event_type="factur\u00e9"),
    _with(REGISTERED, event_type=5),
    _with(REGISTERED, payload=_DROP),
    _with(REGISTERED, endpoint=_DROP),
    _with(REGISTERED, endpoint=""),
    _with(REGISTERED, endpoint="-leading-dash"),
    _with(REGISTERED, endpoint="a" * 129),
    _with(REGISTERED, endpoint=None),
    _with(REGISTERED, url="https://hooks.acme.com/x"),
    _with(REGISTERED, secret_id="hookline/acme"),
    _with(REGISTERED, fallback_urls=["https://b.example"]),
    _with(REGISTERED, fallback_urls=[]),
    _with(REGISTERED, id=""),
    _with(REGISTERED, id="msg with space"),
    _with(REGISTERED, id="msg_1\n"),
    _with(REGISTERED, id="a" * 256),
    _with(REGISTERED, id=12),
    _with(REGISTERED, timestamp="2026-11-28"),
    _with(REGISTERED, timestamp="2026-11-28T08:00:00"),
    _with(REGISTERED, timestamp="2026-13-28T08:00:00Z"),
    _with(REGISTERED, timestamp="2026-11-28T08:00:00Z\n"),
    _with(REGISTERED, extra_field=1),
    _with(REGISTERED, Endpoint="acme"),
    _with(INLINE, secret_id=_DROP),
    _with(INLINE, secret_id=""),
    _with(INLINE, secret_id="has space"),
    _with(INLINE, url="ftp://hooks.acme.com/x"),
    _with(INLINE, url="https://user:pass@hooks.acme.com/x"),
    _with(INLINE, url="https://"),
    _with(INLINE, url="//hooks.acme.com/x"),
    _with(INLINE, url="https://hooks.acme.com/a b"),
    _with(INLINE, url="https://hooks.acme.com/x\n"),
    _with(INLINE, url="https://hooks.acme.com/caf\u00e9"),
    _with(INLINE, url="https://hooks.acme.com/" + "a" * (2049 - 23)),
    _with(INLINE, url="javascript:alert(1)"),
    _with(INLINE, url=None),
    _with(INLINE, fallback_urls="https://b.example"),
    _with(INLINE, fallback_urls=["https://b.example", 5]),
    _with(INLINE, fallback_urls=["https://b.example/" + str(index) for index in range(6)]),
    _with(INLINE, endpoint="acme"),
]


def _python_accepts(data: Any) -> bool:
    try:
        validate_message(data)
    except MessageError as error:
        assert error.reason is Reason.SCHEMA_VIOLATION
        return False
    return True


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("data", VALID, ids=lambda data: json.dumps(data)[:60])
def test_valid_cases_pass_both_validators(data: Any) -> None:
    assert VALIDATOR.is_valid(data)
    assert _python_accepts(data)


@pytest.mark.parametrize("data", INVALID, ids=lambda data: json.dumps(data)[:60])
def test_invalid_cases_fail_both_validators(data: Any) -> None:
    assert not VALIDATOR.is_valid(data)
    assert not _python_accepts(data)


def test_python_constants_match_the_schema() -> None:
    props = SCHEMA["properties"]
    assert props["id"]["pattern"] == messages.ID_PATTERN
    assert props["event_type"]["pattern"] == messages.EVENT_TYPE_PATTERN
    assert props["endpoint"]["pattern"] == messages.ENDPOINT_PATTERN
    assert props["secret_id"]["pattern"] == messages.SECRET_ID_PATTERN
    assert props["timestamp"]["pattern"] == messages.TIMESTAMP_PATTERN
    assert SCHEMA["$defs"]["target_url"]["pattern"] == messages.URL_PATTERN
    assert SCHEMA["$defs"]["target_url"]["maxLength"] == messages.MAX_URL_LENGTH
    assert props["fallback_urls"]["maxItems"] == messages.MAX_FALLBACK_URLS
    assert set(props) == set(messages._FIELDS)
    assert SCHEMA["required"] == ["version", "event_type", "payload"]


def test_registered_endpoint_endpoint_name_pattern_matches_the_registry() -> None:
    from hookline.registry import RegistryItemError, validate_name

    for name in ("acme", "a" * 128, "-x", "a b", "x" * 129, "ok.name:1_2-3"):
        try:
            validate_name(name)
            registry_ok = True
        except RegistryItemError:
            registry_ok = False
        assert registry_ok == VALIDATOR.is_valid(_with(REGISTERED, endpoint=name)), name


def test_parse_message_returns_fields_and_body_bytes() -> None:
    body = json.dumps(_with(INLINE, fallback_urls=["https://b.example/x"], payload={"b": 1, "a": "\u00e9"}))
    message = parse_message(body)
    assert message.inline
    assert message.url == "https://hooks.acme.com/x"
    assert message.fallback_urls == ("https://b.example/x",)
    assert message.secret_id == "hookline/acme"
    assert message.body == '{"b":1,"a":"\u00e9"}'.encode()
    assert message.id is None


def test_body_is_compact_utf8_json_and_stable() -> None:
    payload = {"z": [1, 2.5, None], "name": "J\u00fcrgen \U0001f600", "q": 'say "hi"'}
    first = encode_payload(payload)
    assert first == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert encode_payload(json.loads(first)) == first


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", Reason.INVALID_JSON),
        ("{", Reason.INVALID_JSON),
        ('{"version": 1, "event_type": "a", "endpoint": "b", "payload": NaN}', Reason.INVALID_JSON),
        ('{"version": 1, "event_type": "a", "endpoint": "b", "payload": Infinity}', Reason.INVALID_JSON),
        ('{"version": 1, "event_type": "a", "endpoint": "b", "payload": "\\ud800"}', Reason.INVALID_JSON),
        ("[" * 100_000 + "]" * 100_000, Reason.INVALID_JSON),
        ('{"version": 1, "event_type": "a", "endpoint": "b", "payload": ' + "1" * 5000 + "}", Reason.INVALID_JSON),
        (b"\xff\xfe", Reason.INVALID_JSON),
        ('"just a string"', Reason.SCHEMA_VIOLATION),
        ('{"version": 1}', Reason.SCHEMA_VIOLATION),
    ],
    ids=range(10),
)
def test_parse_errors_carry_the_dead_letter_reason(body: str | bytes, reason: Reason) -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(body)
    assert caught.value.reason is reason


def test_oversized_message_is_refused_before_parsing() -> None:
    big = json.dumps(_with(REGISTERED, payload="x" * messages.MAX_MESSAGE_BYTES))
    with pytest.raises(MessageError) as caught:
        parse_message(big)
    assert caught.value.reason is Reason.MESSAGE_TOO_LARGE
    just_fits = json.dumps(_with(REGISTERED, payload=""))
    padding = messages.MAX_MESSAGE_BYTES - len(just_fits.encode())
    assert parse_message(json.dumps(_with(REGISTERED, payload="x" * padding))).payload == "x" * padding


def test_schema_violation_keeps_the_decoded_data_for_the_dead_letter() -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(json.dumps(_with(REGISTERED, event_type="bad type")))
    assert caught.value.data == _with(REGISTERED, event_type="bad type")


def test_to_dict_round_trips_and_sets_the_resolved_id() -> None:
    message = parse_message(
        json.dumps(_with(INLINE, fallback_urls=["https://b.example"], timestamp="2026-11-28T08:00:00Z"))
    )
    data = message.to_dict(id="msg_abc")
    assert data["id"] == "msg_abc"
    assert list(data)[:2] == ["version", "id"]
    again = validate_message(data)
    assert isinstance(again, WebhookMessage)
    assert again.body == message.body
    assert "id" not in message.to_dict()


def test_derived_id_is_stable_and_valid() -> None:
    assert derive_id("0f8fad5b-d9cb-469f-a165-70867728950e") == "msg_0f8fad5b-d9cb-469f-a165-70867728950e"
    assert VALIDATOR.is_valid(_with(REGISTERED, id=derive_id("0f8fad5b-d9cb-469f-a165-70867728950e")))


_REGEX_BITS = ("(?!", "[\\s\\S]", "^[", "]{", "{1,", "\\.")


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        (
            "event_type",
            "invoice paid",
            "event_type 'invoice paid' contains ' '; allowed characters: A-Z a-z 0-9 . _ : -",
        ),
        ("event_type", "invoice.paid\n", "contains '\\n'"),
        ("event_type", "", "event_type must not be empty"),
        ("event_type", "e" * 129, "event_type is 129 characters long; the limit is 128"),
        ("id", "msg/1", "id 'msg/1' contains '/'"),
        ("endpoint", "-acme", "endpoint '-acme' must start with a letter or a digit"),
        ("secret_id", "hookline/ac me", "allowed characters: A-Z a-z 0-9 / _ + = . @ : -"),
        (
            "timestamp",
            "2026-11-28 08:00",
            "is not an ISO-8601 date-time with seconds and a zone, e.g. 2026-11-28T08:00:00Z",
        ),
    ],
)
def test_errors_say_what_is_wrong_in_words_never_as_a_pattern(field: str, value: str, says: str) -> None:
    message: dict[str, object] = {"version": 1, "event_type": "a.b", "endpoint": "acme", "payload": {}}
    if field in ("secret_id",):
        message = {"version": 1, "event_type": "a.b", "url": "https://h.example/x", "secret_id": "s", "payload": {}}
    message[field] = value

    with pytest.raises(messages.MessageError) as caught:
        messages.validate_message(message)

    assert caught.value.reason is Reason.SCHEMA_VIOLATION
    assert says in caught.value.detail
    assert not any(bit in caught.value.detail for bit in _REGEX_BITS), caught.value.detail


def test_validate_field_checks_one_field() -> None:
    assert messages.validate_field("event_type", "invoice.paid") == "invoice.paid"
    with pytest.raises(messages.MessageError, match="must be a string"):
        messages.validate_field("id", 7)
    with pytest.raises(ValueError, match="no text rule"):
        messages.validate_field("payload", "x")


def test_a_host_longer_than_dns_allows_is_refused_by_both_validators() -> None:
    # 253 characters of DNS name plus ":65535" is the longest authority that can resolve; beyond it the origin would
    # also overflow the DynamoDB keys built from it (breaker, slow mark, pace).
    longest = "a" * 59 + ("." + "b" * 63) * 3  # 253 characters, labels of at most 63
    base = {"version": 1, "event_type": "a", "payload": {}, "secret_id": "hookline/x"}
    fits = base | {"url": f"https://{longest}:65535/hook"}
    assert VALIDATOR.is_valid(fits)
    assert _python_accepts(fits)
    too_long = base | {"url": "https://" + "a" * 300 + ".example/hook"}
    assert not VALIDATOR.is_valid(too_long)
    assert not _python_accepts(too_long)
    no_path = base | {"url": "https://" + "a" * 2040}  # 2048 characters: the whole URL is its origin
    assert not VALIDATOR.is_valid(no_path)
    assert not _python_accepts(no_path)
