"""Registry errors; the tree is drawn once, in hookline/exceptions.py."""

from __future__ import annotations

from hookline.exceptions import HooklineError

__all__ = [
    "EndpointExistsError",
    "EndpointNotFoundError",
    "RegistryError",
    "RegistryItemError",
    "RegistryUnavailableError",
    "SecretPrefixError",
    "TargetNotAllowedError",
]


class RegistryError(HooklineError):
    """Base class of registry errors."""


class RegistryItemError(RegistryError, ValueError):
    """A registry item or registration request does not follow the contract."""


class TargetNotAllowedError(RegistryItemError):
    """A registration's URL is refused by the network guard; ``field`` names it (``url``, ``fallback_urls`` ...).

    The message never contains the URL (it may carry credentials); ``url`` holds it for a caller that typed it.
    ``reason`` is the guard's code and ``detail`` its explanation.
    """

    def __init__(self, field: str, url: str, reason: str, detail: str, *, address_class: str | None = None) -> None:
        super().__init__(f"{field} refused by the network guard: {detail}")
        self.field = field
        self.url = url
        self.reason = reason
        self.detail = detail
        self.address_class = address_class


class SecretPrefixError(RegistryItemError):
    """A registration's ``secret_id`` is outside the stack's signing-secret prefix: delivery could never read it."""


class EndpointNotFoundError(RegistryError, LookupError):
    """No endpoint with that name is registered."""


class EndpointExistsError(RegistryError):
    """An endpoint with that name is registered already."""


class RegistryUnavailableError(RegistryError):
    """DynamoDB did not carry out a registry request (throttled, denied, unreachable); the cause is chained."""
