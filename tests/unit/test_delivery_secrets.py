"""Signing secrets through Powertools Parameters: both forms, caching, clear errors that never show the value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hookline.metrics import Reason
from hookline.secrets import (
    SecretInvalidError,
    SecretMissingError,
    SecretUnavailableError,
    SigningSecretStore,
)
from hookline.signing import generate_secret
from tests.support.aws import client

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class CountingSecretsManager:
    """Wraps a boto3 Secrets Manager client and counts GetSecretValue calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.get_secret_value(**kwargs)


class FailingProvider:
    """A Parameters provider whose get raises the given error (as Powertools wraps SDK errors)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self, name: str, **kwargs: Any) -> Any:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            raise self.error
        except Exception as exc:
            raise GetParameterError(str(exc)) from None

    def clear_cache(self) -> None:
        """Nothing cached."""


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "nope"}}, "GetSecretValue")


@pytest.mark.usefixtures("aws")
def test_bare_secret_is_read_and_cached() -> None:
    sm = CountingSecretsManager(client("secretsmanager"))
    secret = generate_secret()
    sm.create_secret(Name="hookline/acme", SecretString=secret)
    store = SigningSecretStore(client=sm, max_age_s=300)  # type: ignore[arg-type]
    first = store.get("hookline/acme")
    second = store.get("hookline/acme")
    assert first.active(NOW) == (secret,)
    assert second is first
    assert sm.calls == 1


@pytest.mark.usefixtures("aws")
def test_rotation_json_yields_two_active_secrets_until_expiry() -> None:
    sm = client("secretsmanager")
    current, previous = generate_secret(), generate_secret()
    value = {"current": current, "previous": previous, "previous_expires_at": "2026-11-29T00:00:00Z"}
    sm.create_secret(Name="hookline/rot", SecretString=json.dumps(value))
    secrets = SigningSecretStore(client=sm).get("hookline/rot")
    assert secrets.active(NOW) == (current, previous)
    assert secrets.active(datetime(2026, 11, 30, tzinfo=UTC)) == (current,)


@pytest.mark.usefixtures("aws")
def test_missing_secret_is_a_clear_permanent_error() -> None:
    store = SigningSecretStore(client=client("secretsmanager"))
    with pytest.raises(SecretMissingError) as caught:
        store.get("hookline/nope")
    assert caught.value.reason is Reason.SECRET_MISSING
    assert "hookline/nope" in str(caught.value)
    assert "ResourceNotFoundException" in str(caught.value)


@pytest.mark.usefixtures("aws")
def test_malformed_secret_is_invalid_and_the_value_is_not_in_the_error() -> None:
    sm = client("secretsmanager")
    sm.create_secret(Name="hookline/bad", SecretString="not-a-whsec-value-s3cr3t")
    with pytest.raises(SecretInvalidError) as caught:
        SigningSecretStore(client=sm).get("hookline/bad")
    assert caught.value.reason is Reason.SECRET_INVALID
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.usefixtures("aws")
def test_binary_secret_is_invalid() -> None:
    sm = client("secretsmanager")
    sm.create_secret(Name="hookline/bin", SecretBinary=b"\x00\x01")
    with pytest.raises(SecretInvalidError):
        SigningSecretStore(client=sm).get("hookline/bin")


@pytest.mark.parametrize("code", ["AccessDeniedException", "InvalidRequestException", "DecryptionFailure"])
def test_permanent_codes_are_missing(code: str) -> None:
    store = SigningSecretStore(provider=FailingProvider(_client_error(code)))  # type: ignore[arg-type]
    with pytest.raises(SecretMissingError):
        store.get("hookline/x")


@pytest.mark.parametrize("error", [_client_error("ThrottlingException"), ConnectionError("unreachable")])
def test_transient_errors_are_unavailable_not_missing(error: Exception) -> None:
    store = SigningSecretStore(provider=FailingProvider(error))  # type: ignore[arg-type]
    with pytest.raises(SecretUnavailableError) as caught:
        store.get("hookline/x")
    assert caught.value.reason is None
