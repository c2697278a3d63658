"""hookline.signing: the Standard Webhooks vector, rotation, GitHub/Stripe schemes, verification, secret parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from hookline.exceptions import SecretFormatError, SignatureVerificationError
from hookline.signing import (
    PlainSecret,
    SigningSecrets,
    as_signing_secrets,
    generate_secret,
    github_signature,
    parse_secret_string,
    sign_standard,
    signature_headers,
    stripe_signature,
    verify_github,
    verify_standard,
    verify_stripe,
)

# The Standard Webhooks specification's own test vector (also in the standardwebhooks library's tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

CURRENT = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PREVIOUS = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())


def _library_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    """The reference implementation's signature (standardwebhooks.Webhook.sign)."""
    return str(Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode()))


def test_spec_vector() -> None:
    assert sign_standard(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_spec_vector_matches_reference_library() -> None:
    assert _library_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_str_body_signs_like_its_utf8_bytes() -> None:
    body = '{"name": "Zoë"}'
    assert sign_standard(CURRENT, "msg_1", 1, body) == sign_standard(CURRENT, "msg_1", 1, body.encode())


def test_single_string_is_one_secret_not_characters() -> None:
    assert sign_standard(CURRENT, "msg_1", 1, b"{}") == sign_standard([CURRENT], "msg_1", 1, b"{}")
    assert " " not in sign_standard(CURRENT, "msg_1", 1, b"{}")


def test_rotation_signs_with_each_secret_in_order() -> None:
    header = sign_standard((CURRENT, PREVIOUS), "msg_rot", NOW_TS, b'{"a":1}')
    first, second = header.split(" ")
    assert first == _library_sign(CURRENT, "msg_rot", NOW_TS, b'{"a":1}')
    assert second == _library_sign(PREVIOUS, "msg_rot", NOW_TS, b'{"a":1}')
    assert first != second


def test_rotation_each_secret_verifies_alone() -> None:
    header = sign_standard((CURRENT, PREVIOUS), "msg_rot", NOW_TS, b"{}")
    verify_standard(CURRENT, "msg_rot", NOW_TS, b"{}", header, now=NOW)
    verify_standard(PREVIOUS, "msg_rot", NOW_TS, b"{}", header, now=NOW)
    other = generate_secret(random_bytes=lambda n: b"\x07" * n)
    with pytest.raises(SignatureVerificationError):
        verify_standard(other, "msg_rot", NOW_TS, b"{}", header, now=NOW)


def test_active_secrets_follow_previous_expiry() -> None:
    secrets = SigningSecrets(current=CURRENT, previous=PREVIOUS, previous_expires_at=NOW + timedelta(hours=1))
    assert secrets.active(NOW) == (CURRENT, PREVIOUS)
    assert secrets.active(NOW + timedelta(minutes=59, seconds=59)) == (CURRENT, PREVIOUS)
    assert secrets.active(NOW + timedelta(hours=1)) == (CURRENT,)
    assert secrets.active(NOW + timedelta(days=3)) == (CURRENT,)
    assert SigningSecrets(current=CURRENT).active(NOW) == (CURRENT,)


def test_active_requires_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SigningSecrets(current=CURRENT).active(NOW.replace(tzinfo=None))


def test_repr_hides_secrets() -> None:
    secrets = SigningSecrets(current=CURRENT, previous=PREVIOUS, previous_expires_at=NOW)
    assert CURRENT not in repr(secrets)
    assert PREVIOUS not in repr(secrets)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"body": b'{"a":2}'}, id="body"),
        pytest.param({"timestamp": NOW_TS + 1}, id="timestamp"),
        pytest.param({"msg_id": "msg_other"}, id="id"),
    ],
)
def test_tampering_fails_verification(tamper: dict[str, object]) -> None:
    header = sign_standard(CURRENT, "msg_t", NOW_TS, b'{"a":1}')
    args: dict[str, object] = {"msg_id": "msg_t", "timestamp": NOW_TS, "body": b'{"a":1}'} | tamper
    with pytest.raises(SignatureVerificationError, match="no matching"):
        verify_standard(CURRENT, args["msg_id"], args["timestamp"], args["body"], header, now=NOW)  # type: ignore[arg-type]


def test_verify_accepts_string_timestamp_and_multiple_entries() -> None:
    good = sign_standard(CURRENT, "msg_v", NOW_TS, b"{}")
    header = f"v1a,ignored v1,{base64.b64encode(b'x' * 32).decode()} v1,not-base64!! {good}"
    verify_standard([PREVIOUS, CURRENT], "msg_v", str(NOW_TS), b"{}", header, now=NOW)


def test_verify_with_signing_secrets_uses_active_set() -> None:
    secrets = SigningSecrets(current=CURRENT, previous=PREVIOUS, previous_expires_at=NOW + timedelta(minutes=1))
    header = sign_standard(PREVIOUS, "msg_s", NOW_TS, b"{}")
    verify_standard(secrets, "msg_s", NOW_TS, b"{}", header, now=NOW)
    later = NOW + timedelta(minutes=2)
    late_header = sign_standard(PREVIOUS, "msg_s", int(later.timestamp()), b"{}")
    with pytest.raises(SignatureVerificationError):
        verify_standard(secrets, "msg_s", int(later.timestamp()), b"{}", late_header, now=later)


@pytest.mark.parametrize(
    ("offset_s", "message"),
    [(301, "too old"), (-301, "too far in the future")],
)
def test_timestamp_tolerance_both_ways(offset_s: int, message: str) -> None:
    ts = NOW_TS - offset_s
    header = sign_standard(CURRENT, "msg_ts", ts, b"{}")
    with pytest.raises(SignatureVerificationError, match=message):
        verify_standard(CURRENT, "msg_ts", ts, b"{}", header, now=NOW)
    # Exactly at the edge still verifies; a wider tolerance lets it through.
    edge = NOW_TS - (300 if offset_s > 0 else -300)
    verify_standard(CURRENT, "msg_ts", edge, b"{}", sign_standard(CURRENT, "msg_ts", edge, b"{}"), now=NOW)
    verify_standard(CURRENT, "msg_ts", ts, b"{}", header, now=NOW, tolerance_s=302)


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.5", "1e9", "99999999999999"])
def test_verify_rejects_malformed_timestamp(timestamp: str) -> None:
    with pytest.raises(SignatureVerificationError):
        verify_standard(CURRENT, "msg_x", timestamp, b"{}", "v1,AAAA", now=NOW)


def test_verify_rejects_missing_headers() -> None:
    with pytest.raises(SignatureVerificationError, match="missing"):
        verify_standard(CURRENT, "", NOW_TS, b"{}", "v1,AAAA", now=NOW)
    with pytest.raises(SignatureVerificationError, match="missing"):
        verify_standard(CURRENT, "msg", NOW_TS, b"{}", "", now=NOW)


def test_github_signature_public_example() -> None:
    # The example from GitHub's "Validating webhook deliveries" documentation.
    assert (
        github_signature("It's a Secret to Everybody", "Hello, World!")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_github_signature_keys_with_whole_secret_string() -> None:
    expected = hmac.new(CURRENT.encode(), b'{"a":1}', hashlib.sha256).hexdigest()
    assert github_signature(CURRENT, b'{"a":1}') == f"sha256={expected}"


def test_stripe_signature_one_v1_per_secret() -> None:
    signed = f"{NOW_TS}.".encode() + b'{"a":1}'
    v_current = hmac.new(CURRENT.encode(), signed, hashlib.sha256).hexdigest()
    v_previous = hmac.new(PREVIOUS.encode(), signed, hashlib.sha256).hexdigest()
    assert stripe_signature(CURRENT, NOW_TS, b'{"a":1}') == f"t={NOW_TS},v1={v_current}"
    assert stripe_signature([CURRENT, PREVIOUS], NOW_TS, b'{"a":1}') == f"t={NOW_TS},v1={v_current},v1={v_previous}"


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [("standard", set()), ("github", {"X-Hub-Signature-256"}), ("stripe", {"Stripe-Signature"})],
)
def test_signature_headers_per_scheme(scheme: str, extra: set[str]) -> None:
    headers = signature_headers(scheme, [CURRENT, PREVIOUS], "msg_h", NOW_TS, b"{}")
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"} | extra
    assert headers["webhook-id"] == "msg_h"
    assert headers["webhook-timestamp"] == str(NOW_TS)
    assert headers["webhook-signature"] == sign_standard([CURRENT, PREVIOUS], "msg_h", NOW_TS, b"{}")
    if scheme == "github":
        # GitHub has a single signature: the current secret's.
        assert headers["X-Hub-Signature-256"] == github_signature(CURRENT, b"{}")
    if scheme == "stripe":
        assert headers["Stripe-Signature"] == stripe_signature([CURRENT, PREVIOUS], NOW_TS, b"{}")
        assert headers["Stripe-Signature"].count("v1=") == 2


def test_signature_headers_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown signing scheme"):
        signature_headers("svix", CURRENT, "msg", NOW_TS, b"{}")


def test_signing_secrets_object_needs_active() -> None:
    secrets = SigningSecrets(current=CURRENT)
    with pytest.raises(TypeError, match=r"active\(now\)"):
        signature_headers("standard", secrets, "msg", NOW_TS, b"{}")  # type: ignore[arg-type]
    assert signature_headers("standard", secrets.active(NOW), "msg", NOW_TS, b"{}")["webhook-signature"]


def test_sign_rejects_bad_arguments() -> None:
    with pytest.raises(SecretFormatError):
        sign_standard([], "msg", 1, b"{}")
    with pytest.raises(ValueError, match="msg_id"):
        sign_standard(CURRENT, "", 1, b"{}")
    with pytest.raises(ValueError, match="timestamp"):
        sign_standard(CURRENT, "msg", -1, b"{}")
    with pytest.raises(ValueError, match="timestamp"):
        stripe_signature(CURRENT, True, b"{}")


def test_generate_secret_is_32_random_bytes() -> None:
    secret = generate_secret(random_bytes=lambda n: bytes(range(n)))
    assert secret == "whsec_" + base64.b64encode(bytes(range(32))).decode()
    assert parse_secret_string(secret).current == secret
    assert generate_secret() != generate_secret()


def test_generate_secret_rejects_short_randomness() -> None:
    with pytest.raises(ValueError, match="expected 32"):
        generate_secret(random_bytes=lambda n: b"\x00" * (n - 1))


# -- parse_secret_string -------------------------------------------------------------------------------------------


def test_parse_bare_secret() -> None:
    assert parse_secret_string(SPEC_SECRET) == SigningSecrets(current=SPEC_SECRET)
    assert parse_secret_string(f"  {CURRENT}\n").current == CURRENT


def test_parse_rotation_json() -> None:
    value = json.dumps({"current": CURRENT, "previous": PREVIOUS, "previous_expires_at": "2026-11-28T09:00:00Z"})
    secrets = parse_secret_string(value)
    assert secrets.current == CURRENT
    assert secrets.previous == PREVIOUS
    assert secrets.previous_expires_at == datetime(2026, 11, 28, 9, tzinfo=UTC)
    assert secrets.active(NOW) == (CURRENT, PREVIOUS)


def test_parse_json_current_only_and_offsets() -> None:
    assert parse_secret_string(json.dumps({"current": CURRENT})) == SigningSecrets(current=CURRENT)
    value = json.dumps({"current": CURRENT, "previous": PREVIOUS, "previous_expires_at": "2026-11-28T10:00:00+02:00"})
    assert parse_secret_string(value).previous_expires_at == datetime(2026, 11, 28, 8, tzinfo=UTC)
    naive = json.dumps({"current": CURRENT, "previous": PREVIOUS, "previous_expires_at": "2026-11-28T08:00:00"})
    assert parse_secret_string(naive).previous_expires_at == NOW


def test_parse_accepts_padded_and_unpadded_base64_and_bounds() -> None:
    for size in (24, 25, 26, 32, 64):
        encoded = base64.b64encode(b"k" * size).decode()
        assert parse_secret_string("whsec_" + encoded).current == "whsec_" + encoded
        parse_secret_string("whsec_" + encoded.rstrip("="))


_LEAKY = "whsec_" + base64.b64encode(b"s3cr3t-material-" * 2).decode()  # 32 bytes; reused below inside bad values


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param(_LEAKY[6:], "must start with 'whsec_'", id="no-prefix"),
        pytest.param("WHSEC_" + _LEAKY[6:], "must start with 'whsec_'", id="wrong-case-prefix"),
        pytest.param(_LEAKY + "!", "base64", id="bad-char"),
        pytest.param(_LEAKY.replace("+", "-").replace("/", "_") + "-_", "base64", id="urlsafe-alphabet"),
        pytest.param(_LEAKY + "=A", "base64", id="padding-in-middle"),
        pytest.param(_LEAKY[:-1] + "===", "base64", id="too-much-padding"),
        pytest.param("whsec_" + base64.b64encode(b"x" * 23).decode(), "23 bytes", id="too-short"),
        pytest.param("whsec_" + base64.b64encode(b"x" * 65).decode(), "65 bytes", id="too-long"),
        pytest.param("whsec_", "base64", id="prefix-only"),
        pytest.param("whsec_" + "A" * 33, "truncated", id="truncated-base64"),
        pytest.param("{not json " + _LEAKY, "does not parse", id="bad-json"),
        pytest.param(json.dumps([_LEAKY]), "must be an object", id="json-array-not-object"),
        pytest.param(json.dumps({"previous": _LEAKY}), "'current' is required", id="no-current"),
        pytest.param(json.dumps({"current": 123}), "must be a string", id="current-not-string"),
        pytest.param(json.dumps({"current": _LEAKY[6:]}), "'current' must start", id="current-no-prefix"),
        pytest.param(json.dumps({"current": _LEAKY, "previous": _LEAKY + "!"}), "'previous'", id="bad-previous"),
        pytest.param(json.dumps({"current": _LEAKY, "previous": _LEAKY}), "requires 'previous_expires_at'", id="np"),
        pytest.param(
            json.dumps({"current": _LEAKY, "previous_expires_at": "2026-01-01T00:00:00Z"}), "without", id="expiry-only"
        ),
        pytest.param(
            json.dumps({"current": _LEAKY, "previous": _LEAKY, "previous_expires_at": "tomorrow"}),
            "ISO-8601",
            id="bad-expiry",
        ),
        pytest.param(
            json.dumps({"current": _LEAKY, "previous": _LEAKY, "previous_expires_at": 1764316800}),
            "ISO-8601",
            id="numeric-expiry",
        ),
        pytest.param(json.dumps({"current": _LEAKY, "extra": 1}), "unknown keys: 'extra'", id="unknown-key"),
        pytest.param(json.dumps({"current": _LEAKY, _LEAKY: 1}), "<redacted>", id="secret-as-key"),
    ],
)
def test_malformed_secrets_rejected_without_leaking(value: str, message: str) -> None:
    with pytest.raises(SecretFormatError, match=message) as caught:
        parse_secret_string(value)
    text = str(caught.value)
    assert _LEAKY[6:] not in text
    assert _LEAKY[6:20] not in text
    # Not even through the exception chain (a logged traceback shows causes and contexts).
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_parse_rejects_non_string() -> None:
    with pytest.raises(SecretFormatError, match="must be a string"):
        parse_secret_string(b"whsec_abc")  # type: ignore[arg-type]


def test_verify_github() -> None:
    header = github_signature(CURRENT, b'{"a":1}')
    verify_github(CURRENT, b'{"a":1}', header)
    verify_github(CURRENT, b'{"a":1}', f" {header}\n")
    for bad in (github_signature(PREVIOUS, b'{"a":1}'), github_signature(CURRENT, b'{"a":2}'), "", "sha256=zz", "é"):
        with pytest.raises(SignatureVerificationError):
            verify_github(CURRENT, b'{"a":1}', bad)


def test_verify_stripe() -> None:
    header = stripe_signature([CURRENT, PREVIOUS], NOW_TS, b'{"a":1}')
    verify_stripe(CURRENT, b'{"a":1}', header, now=NOW)
    verify_stripe([PREVIOUS], b'{"a":1}', header, now=NOW)
    verify_stripe(CURRENT, b'{"a":1}', header.replace(",", ", "), now=NOW)
    with pytest.raises(SignatureVerificationError, match="no matching"):
        verify_stripe(CURRENT, b'{"a":2}', header, now=NOW)
    with pytest.raises(SignatureVerificationError, match="no matching"):
        verify_stripe(CURRENT, b'{"a":1}', header.replace(f"t={NOW_TS}", f"t={NOW_TS + 1}"), now=NOW)
    with pytest.raises(SignatureVerificationError, match="too old"):
        verify_stripe(CURRENT, b'{"a":1}', header, now=NOW + timedelta(seconds=301))
    with pytest.raises(SignatureVerificationError, match="future"):
        verify_stripe(CURRENT, b'{"a":1}', header, now=NOW - timedelta(seconds=301))
    for malformed in ("", "v1=abc", f"t={NOW_TS}", f"t={NOW_TS},t={NOW_TS},v1=abc", "t=soon,v1=abc"):
        with pytest.raises(SignatureVerificationError):
            verify_stripe(CURRENT, b'{"a":1}', malformed, now=NOW)


def test_a_plain_secret_is_its_own_utf8_key() -> None:
    plain = PlainSecret("webhook_secret")
    whsec = "whsec_" + base64.b64encode(b"webhook_secret").decode()

    assert plain.key == b"webhook_secret" and plain.whsec == whsec
    assert sign_standard(plain, "msg_1", 1614265330, b"{}") == sign_standard(whsec, "msg_1", 1614265330, b"{}")
    assert github_signature(plain, b"{}") == github_signature("webhook_secret", b"{}")
    assert repr(plain) == "PlainSecret(<redacted>)"
    assert "webhook_secret" not in repr(SigningSecrets(plain))


def test_a_plain_secret_has_at_least_8_characters() -> None:
    with pytest.raises(SecretFormatError, match="at least 8 characters") as caught:
        PlainSecret("seven!!")
    assert "seven" not in str(caught.value)
    assert PlainSecret("eight!!!") == "eight!!!"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("webhook_secret", ("webhook_secret",), id="plain"),
        pytest.param(CURRENT, (CURRENT,), id="whsec"),
        pytest.param(f" {CURRENT}\n", (CURRENT,), id="whsec-whitespace"),
        pytest.param("[not json, a plain secret]", ("[not json, a plain secret]",), id="bracket-is-plain"),
    ],
)
def test_as_signing_secrets_reads_what_code_and_command_lines_give(given: str, expected: tuple[str, ...]) -> None:
    secrets = as_signing_secrets(given)

    assert secrets.active(datetime(2026, 1, 1, tzinfo=UTC)) == expected
    assert isinstance(secrets.current, PlainSecret) == (not given.strip().startswith("whsec_"))


def test_as_signing_secrets_reads_the_rotation_json_as_stored() -> None:
    rotation = json.dumps({"current": CURRENT, "previous": PREVIOUS, "previous_expires_at": "2030-01-01T00:00:00Z"})

    assert as_signing_secrets(rotation) == parse_secret_string(rotation)
    assert as_signing_secrets(parse_secret_string(rotation)) == parse_secret_string(rotation)
    with pytest.raises(SecretFormatError):
        as_signing_secrets('{"current": "webhook_secret"}')


def test_short_whsec_keys_sign_and_verify_but_are_never_stored() -> None:
    short = "whsec_" + base64.b64encode(b"k" * 8).decode()
    signature = sign_standard(short, "msg_1", 1614265330, b"{}")

    verify_standard(short, "msg_1", 1614265330, b"{}", signature, now=datetime.fromtimestamp(1614265330, UTC))
    with pytest.raises(SecretFormatError, match="8 bytes; expected 24 to 64"):
        parse_secret_string(short)
    with pytest.raises(SecretFormatError, match="at least 8"):
        sign_standard("whsec_" + base64.b64encode(b"k" * 7).decode(), "msg_1", 1614265330, b"{}")
