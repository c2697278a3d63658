"""hookline's error tree: every public error of the ``hookline`` package derives from HooklineError.

Classes live next to the code that raises them (the module is named on the right); this is the one drawing.
Builtin bases that callers may rely on are kept (ValueError, LookupError). Foreign errors are mapped once, where
they enter: httpx/httpcore in ``hookline.http`` (TargetError), botocore in each store (the registry's
``EndpointRegistry``: RegistryError; Secrets Manager in ``SigningSecretStore``: SecretError). ``resilience`` has a
root of its own (ResilienceError): it never imports hookline.

HooklineError
 +-- SecretFormatError            a signing secret is malformed (ValueError); the message never contains the secret
 +-- SignatureVerificationError   a webhook signature, id or timestamp did not verify
 +-- TargetError                  a request to a receiver did not produce a response; ``reason`` is a short code and
 |    |                           ``str(error)`` is at most 300 characters, names only the target's origin (never
 |    |                           its path or query, which often embed tokens) and is safe for a DLQ ``last_error``
 |    +-- TargetRefusedError      the network guard refused the URL or a resolved address before any connect
 |    |                           (ValueError; permanent: retrying cannot help). reason: scheme, credentials,
 |    |                           no_host, invalid_url, invalid_host, private_address
 |    +-- RequestTimeoutError     the whole-request deadline or the connect timeout passed.
 |    |                           reason: timeout, connect_timeout
 |    +-- ConnectError            no connection, or the connection broke before a complete response.
 |                                reason: dns_failure, connection_refused, connection_reset, tls_error, protocol_error,
 |                                network_error
 +-- MessageError                 hookline.messages: a webhook message breaks the contract (ValueError); ``reason`` is
 |                                its dead-letter reason
 +-- PlanError                    hookline.delivery.targets: the message cannot be delivered as it stands (ValueError;
 |                                dead-letter at once with ``reason``)
 +-- DeliveryFailedError          hookline.delivery.client: ``deliver(..., raise_on_failure=True)`` did not deliver
 +-- RequeueError                 hookline.delivery.requeue: SQS did not accept a record's re-enqueue entry (the record
 |                                comes back through batchItemFailures)
 +-- RetryStateError              hookline.delivery.retrystate: a retry attribute this version cannot read (ValueError;
 |                                the record's receive count counts instead)
 +-- PacingError                  hookline.pacing: per-endpoint flow control
 |    +-- PacingConfigError       invalid limits or pacer configuration (ValueError)
 |    +-- PacingStoreError        the pace store failed (the pacer fails open: its callers never see it)
 +-- RotationError                hookline.rotation: a rotation was refused, it would break a promise to receivers
 |    |                           (ValueError)
 |    +-- OverlapTooShortError    the overlap asked for is shorter than the functions' secret cache age
 |    +-- PreviousStillSigningError   the last rotation's old secret still signs (``expires_at``)
 +-- SecretError                  hookline.secrets: a signing secret could not be obtained (names its id, not value)
 |    +-- SecretMissingError      it does not exist or cannot be read (permanent; reason secret_missing)
 |    +-- SecretInvalidError      it exists but is not a valid signing secret (permanent; reason secret_invalid)
 |    +-- SecretUnavailableError  Secrets Manager failed transiently (throttled, unreachable); retry the message
 +-- RegistryError                hookline.registry: the endpoint registry
 |    +-- RegistryItemError       an item or registration breaks the contract (ValueError); the message names the field
 |    |    +-- TargetNotAllowedError   a registration's URL is refused by the network guard (``field``, ``reason``)
 |    |    +-- SecretPrefixError       a registration's secret id is outside the stack's signing-secret prefix
 |    +-- EndpointNotFoundError   no endpoint with that name (LookupError)
 |    +-- EndpointExistsError     register() of a name that is taken
 |    +-- RegistryUnavailableError    DynamoDB did not carry out the request (throttled, denied, unreachable)
 +-- SettingsError                hookline.settings: an environment variable is missing or malformed (ValueError)
 +-- LocalStackError              hookline.local: the local stack asked for is unreadable or not running
 +-- PacingError                  hookline.pacing: per-key flow control
 |    +-- PacingConfigError       invalid limits or pacer configuration (ValueError)
 |    +-- PacingStoreError        the pace store could not be read or written (the pacer itself fails open)
 +-- HistoryError                 hookline.history: delivery history, kept payloads, replay
      +-- HistoryOffError         the stack keeps no history (HistoryRetentionDays=0) or no payloads
      +-- HistoryQueryError       a history query failed, was cancelled or timed out (CloudWatch Logs)
      +-- TimeRangeError          a --since/--until value is malformed or the range is empty (ValueError)
      +-- PayloadStoreError       the payload table refused or failed a read, write or delete
      +-- ReplayRefusedError      a kept payload cannot be sent again as the same bytes (ValueError)
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "HooklineError",
    "RequestTimeoutError",
    "SecretFormatError",
    "SignatureVerificationError",
    "TargetError",
    "TargetRefusedError",
]

_MAX_MESSAGE = 300


class HooklineError(Exception):
    """Root of every public error the hookline package raises."""


class SecretFormatError(HooklineError, ValueError):
    """A signing secret string is malformed; the message describes the problem, never the secret."""


class SignatureVerificationError(HooklineError):
    """A webhook did not verify: bad or missing signature, or a timestamp outside the tolerance."""


class TargetError(HooklineError):
    """A request to a receiver produced no response; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        # Bounded so that the message fits a DLQ attribute and a log line as-is.
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.reason = reason
        self.message = message


class TargetRefusedError(TargetError, ValueError):
    """The network guard refused the target before any connect; ``address_class`` says why (e.g. "loopback")."""

    def __init__(self, reason: str, message: str, *, address_class: str | None = None) -> None:
        super().__init__(reason, message)
        self.address_class = address_class


class RequestTimeoutError(TargetError):
    """The request did not complete within its deadline."""


class ConnectError(TargetError):
    """The connection could not be made or broke before a complete response."""
