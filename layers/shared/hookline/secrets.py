"""Signing secrets from Secrets Manager through Powertools Parameters (cached), in both contract forms.

A secret that does not exist, cannot be read or does not parse is a permanent problem of the message or endpoint
(``SecretMissingError`` / ``SecretInvalidError``: dead-letter at once); throttling and network errors are
transient (``SecretUnavailableError``: try the message again later).

Secrets are cached for ``SECRET_CACHE_TTL_S``. That one constant is also what ``hookline endpoints rotate-secret``
adds to the write time to promise when the new secret signs every webhook (docs/contracts.md "Signing secret").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from hookline.exceptions import HooklineError, SecretFormatError
from hookline.metrics import Reason
from hookline.signing import SigningSecrets, parse_secret_string

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "SECRET_CACHE_TTL_S",
    "SecretError",
    "SecretInvalidError",
    "SecretMissingError",
    "SecretUnavailableError",
    "SigningSecretStore",
]

SECRET_CACHE_TTL_S = 300
"""Seconds a function may keep signing with a secret it read: the delivery functions' cache age for signing secrets.

Secret rotation is planned around it (``hookline endpoints rotate-secret``); change it only together with the
rotation promise in docs/contracts.md.
"""
# Secrets Manager errors that retrying cannot fix: the secret is absent, being deleted, or not readable by us.
_PERMANENT_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "InvalidRequestException",
        "InvalidParameterException",
        "DecryptionFailure",
    }
)


class SecretError(HooklineError):
    """Base class: a signing secret could not be obtained. The message names the secret id, never its value."""

    reason: Reason | None = None


class SecretMissingError(SecretError):
    """The secret does not exist, is scheduled for deletion or is not readable by this function."""

    reason = Reason.SECRET_MISSING


class SecretInvalidError(SecretError):
    """The secret's value is not a ``whsec_`` secret or the rotation JSON."""

    reason = Reason.SECRET_INVALID


class SecretUnavailableError(SecretError):
    """Secrets Manager could not be reached or throttled us; the message should be tried again later."""


def _error_code(error: BaseException) -> str | None:
    # Powertools wraps every SDK error in GetParameterError; the botocore error is its __cause__/__context__.
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        current = current.__cause__ or current.__context__
    return None


class SigningSecretStore:
    """Reads signing secrets by Secrets Manager id, cached for ``max_age_s`` by Powertools Parameters."""

    def __init__(
        self,
        *,
        provider: SecretsProvider | None = None,
        client: SecretsManagerClient | None = None,
        max_age_s: int = SECRET_CACHE_TTL_S,
    ) -> None:
        if provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            provider = SecretsProvider(boto3_client=client)
        self._provider = provider
        self._max_age_s = max_age_s
        self._parsed: dict[str, tuple[str, SigningSecrets]] = {}
        self._lock = threading.Lock()

    @property
    def max_age_s(self) -> int:
        """How long a value read from Secrets Manager is used before it is read again."""
        return self._max_age_s

    def get(self, secret_id: str) -> SigningSecrets:
        """The signing secrets stored under ``secret_id``; SecretError subclasses when they cannot be used."""
        try:
            value: Any = self._provider.get(secret_id, max_age=self._max_age_s)
        except Exception as error:
            code = _error_code(error)
            if code in _PERMANENT_CODES:
                raise SecretMissingError(f"signing secret {secret_id!r} is not readable ({code})") from None
            raise SecretUnavailableError(
                f"signing secret {secret_id!r} could not be read ({code or type(error).__name__})"
            ) from None
        if not isinstance(value, str):
            raise SecretInvalidError(f"signing secret {secret_id!r} must be a SecretString, not binary")
        with self._lock:
            cached = self._parsed.get(secret_id)
        if cached is not None and cached[0] == value:
            return cached[1]
        try:
            secrets = parse_secret_string(value)
        except SecretFormatError as error:
            raise SecretInvalidError(f"signing secret {secret_id!r} is malformed: {error}") from None
        with self._lock:
            self._parsed[secret_id] = (value, secrets)
        return secrets

    def invalidate(self, secret_id: str | None = None) -> None:
        """Forget parsed secrets (the provider's own cache expires after ``max_age_s``)."""
        with self._lock:
            if secret_id is None:
                self._parsed.clear()
            else:
                self._parsed.pop(secret_id, None)
        if secret_id is None:
            self._provider.clear_cache()  # type: ignore[no-untyped-call]
