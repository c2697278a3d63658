"""Errors raised by hookline's signing, network guard and HTTP primitives.

HooklineError
 +-- SecretFormatError            a signing secret is malformed (ValueError); the message never contains the secret
 +-- SignatureVerificationError   a webhook signature, id or timestamp did not verify
 +-- TargetError                  a request to a receiver did not produce a response; ``reason`` is a short code and
      |                           ``str(error)`` is at most 300 characters, names only the target's origin (never
      |                           its path or query, which often embed tokens) and is safe for a DLQ ``last_error``
      +-- TargetRefusedError      the network guard refused the URL or a resolved address before any connect
      |                           (ValueError; permanent: retrying cannot help). reason: scheme, credentials,
      |                           no_host, invalid_url, invalid_host, private_address
      +-- RequestTimeoutError     the whole-request deadline or the connect timeout passed.
      |                           reason: timeout, connect_timeout
      +-- ConnectError            no connection, or the connection broke before a complete response.
                                  reason: dns_failure, connection_refused, connection_reset, tls_error, protocol_error,
                                  network_error
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
    """Base class of the errors hookline's shared primitives raise."""


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
