"""`hookline endpoints rotate-secret` against the moto server: what it promises receivers, and that it holds.

The promise (docs/contracts.md "Signing secret"): from ``signs_from`` every webhook carries a signature by the new
secret, and until ``previous_expires_at`` one by the old secret too. Delivery functions cache the secret they read
for the store's max age, so the check below replays what any function can hold at any moment of the rotation.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from hookline.delivery.factory import build_delivery_environment
from hookline.exceptions import SignatureVerificationError
from hookline.secrets import SECRET_CACHE_TTL_S
from hookline.settings import Settings
from hookline.signing import generate_secret, parse_secret_string, signature_headers, verify_standard
from tests.support.cli import NOW, CliHarness

RECEIVER = "http://127.0.0.1:9/hooks"
BODY = b'{"invoice":"in_1"}'
TTL = timedelta(seconds=SECRET_CACHE_TTL_S)


@pytest.fixture
def ep(cli: CliHarness) -> str:
    """A registered endpoint with a generated secret (Secrets Manager names are global in the moto server)."""
    name = f"acme-{uuid.uuid4().hex[:8]}"
    assert cli.invoke("endpoints", "add", name, "--url", RECEIVER, "--generate-secret").exit_code == 0
    return name


def _secret_value(cli: CliHarness, endpoint: str) -> str:
    return str(cli.aws("secretsmanager").get_secret_value(SecretId=f"hookline/{endpoint}")["SecretString"])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


class _SlowWrites:
    """A Secrets Manager client whose PutSecretValue takes ``seconds`` on the harness clock."""

    def __init__(self, cli: CliHarness, seconds: float) -> None:
        self._cli = cli
        self._inner = cli.aws("secretsmanager")
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def put_secret_value(self, **kwargs: Any) -> Any:
        response = self._inner.put_secret_value(**kwargs)
        self._cli.now += timedelta(seconds=self._seconds)
        return response


def test_json_says_from_when_the_new_secret_signs_and_until_when_the_old_one_does(cli: CliHarness, ep: str) -> None:
    old = _secret_value(cli, ep)

    data = cli.json("endpoints", "rotate-secret", ep, "--overlap", "1h")

    assert set(data) == {"endpoint", "secret_id", "secret", "signs_from", "previous_expires_at"}
    signs_from, expires = _instant(data["signs_from"]), _instant(data["previous_expires_at"])
    assert signs_from == NOW + TTL  # the write time plus the functions' secret cache age
    assert expires - signs_from >= timedelta(hours=1)
    document = json.loads(_secret_value(cli, ep))
    assert (document["current"], document["previous"]) == (data["secret"], old)
    assert _instant(document["previous_expires_at"]) == expires


def test_signs_from_counts_from_the_completed_write(cli: CliHarness, ep: str) -> None:
    slow = _SlowWrites(cli, seconds=7.5)
    cli.client_factory = lambda service: slow if service == "secretsmanager" else cli.aws(service)

    data = cli.json("endpoints", "rotate-secret", ep, "--overlap", "10m")

    assert _instant(data["signs_from"]) == NOW + timedelta(seconds=8) + TTL  # rounded up to a whole second
    assert _instant(data["previous_expires_at"]) - _instant(data["signs_from"]) >= timedelta(minutes=10)


def test_a_receiver_that_follows_the_cli_never_rejects_a_webhook(cli: CliHarness, ep: str) -> None:
    old_value = _secret_value(cli, ep)
    written_at = NOW
    data = cli.json("endpoints", "rotate-secret", ep, "--overlap", "10m")
    new_value = _secret_value(cli, ep)
    signs_from, expires = _instant(data["signs_from"]), _instant(data["previous_expires_at"])
    old_secret, new_secret = parse_secret_string(old_value).current, data["secret"]
    # The cache age of the delivery function's own secret store, as the factory builds it.
    environment = build_delivery_environment(
        Settings(endpoints_table="endpoints", breaker_table="breakers", dead_letter_queue_url="dlq"),
        dynamodb=object(),
        sqs=object(),
        secretsmanager=object(),
    )
    max_age = timedelta(seconds=environment.service.stores.secrets.max_age_s)
    environment.close()

    checked = 0
    step = timedelta(seconds=20)
    moment = written_at - max_age
    while moment < expires + 2 * step:
        # A function signing at `moment` holds the value it read at some time in (moment - max_age, moment].
        read_at = moment - max_age + timedelta(seconds=1)
        while read_at <= moment:
            held = parse_secret_string(new_value if read_at >= written_at else old_value)
            timestamp = int(moment.timestamp())
            headers = signature_headers("standard", held.active(moment), "msg_rot", timestamp, BODY)
            for secret, must_sign in ((new_secret, moment >= signs_from), (old_secret, moment < expires)):
                if must_sign:
                    verify_standard(secret, "msg_rot", timestamp, BODY, headers["webhook-signature"], now=moment)
                    checked += 1
            read_at += step
        moment += step
    assert checked > 100
    # ... and at its expiry the old secret does stop signing.
    late = int(expires.timestamp())
    headers = signature_headers("standard", parse_secret_string(new_value).active(expires), "msg_late", late, BODY)
    with pytest.raises(SignatureVerificationError):
        verify_standard(old_secret, "msg_late", late, BODY, headers["webhook-signature"], now=expires)


def test_text_output_says_the_same_in_words(cli: CliHarness, ep: str) -> None:
    result = cli.invoke("endpoints", "rotate-secret", ep, "--overlap", "2h")

    assert result.exit_code == 0, result.stderr
    new_secret = json.loads(_secret_value(cli, ep))["current"]
    signs_from = (NOW + TTL).strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = json.loads(_secret_value(cli, ep))["previous_expires_at"]
    assert f"from {signs_from} every webhook carries a signature by the new secret" in result.stdout
    assert f"until {expires} every webhook also carries one by the old secret" in result.stdout
    assert new_secret in result.stdout


def test_an_overlap_shorter_than_the_cache_age_is_refused(cli: CliHarness, ep: str) -> None:
    before = _secret_value(cli, ep)

    result = cli.invoke("endpoints", "rotate-secret", ep, "--overlap", f"{SECRET_CACHE_TTL_S - 1}s")

    assert result.exit_code == 2
    assert f"at least {SECRET_CACHE_TTL_S} s" in result.stderr
    assert _secret_value(cli, ep) == before


def test_rotating_again_while_the_old_secret_still_signs_is_refused(cli: CliHarness, ep: str) -> None:
    first = cli.json("endpoints", "rotate-secret", ep, "--overlap", "1h")
    after_first = _secret_value(cli, ep)

    refused = cli.invoke("endpoints", "rotate-secret", ep)

    assert refused.exit_code == 2
    assert f"still signs until {first['previous_expires_at']}" in refused.stderr
    assert "--drop-previous" in refused.stderr
    assert _secret_value(cli, ep) == after_first

    cli.now = _instant(first["previous_expires_at"])
    second = cli.json("endpoints", "rotate-secret", ep, "--overlap", "90m")
    document = json.loads(_secret_value(cli, ep))
    assert (document["current"], document["previous"]) == (second["secret"], first["secret"])


def test_drop_previous_rotates_at_once(cli: CliHarness, ep: str) -> None:
    first = cli.json("endpoints", "rotate-secret", ep)

    second = cli.json("endpoints", "rotate-secret", ep, "--drop-previous")

    document = json.loads(_secret_value(cli, ep))
    assert (document["current"], document["previous"]) == (second["secret"], first["secret"])
    assert parse_secret_string(json.dumps(document)).active(NOW) == (second["secret"], first["secret"])


@pytest.mark.parametrize("overlap", ["soon", "0", "-5h"])
def test_bad_overlap_is_bad_input(cli: CliHarness, overlap: str, ep: str) -> None:
    before = _secret_value(cli, ep)

    result = cli.invoke("endpoints", "rotate-secret", ep, "--overlap", overlap)

    assert result.exit_code == 2
    assert _secret_value(cli, ep) == before


def test_rotating_a_missing_secret_is_bad_input(cli: CliHarness) -> None:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    cli.aws("secretsmanager").create_secret(Name=f"hookline/team-{name}", SecretString=generate_secret())
    cli.invoke("endpoints", "add", name, "--url", RECEIVER, "--secret-id", f"hookline/team-{name}")
    cli.aws("secretsmanager").delete_secret(SecretId=f"hookline/team-{name}", ForceDeleteWithoutRecovery=True)

    result = cli.invoke("endpoints", "rotate-secret", name)

    assert result.exit_code == 2
    assert f"hookline/team-{name}" in result.stderr


def test_the_old_secret_is_never_printed(cli: CliHarness, ep: str) -> None:
    old = _secret_value(cli, ep)

    result = cli.invoke("endpoints", "rotate-secret", ep)

    assert result.exit_code == 0
    assert old not in result.stdout + result.stderr
