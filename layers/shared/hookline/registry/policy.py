"""The one validation path of registry writes: the item contract plus the stack's rules (network guard, secret prefix).

The CLI, IntegrationService and any future API register and update endpoints through an EndpointRegistry that
carries a WritePolicy, so they refuse the same things with the same errors: every URL goes through the delivery
function's network guard (``hookline.netguard.check_url``; 169.254.169.254, private addresses, credentials in the
URL, other schemes ...), URLs are at most 2048 characters, and ``secret_id`` must lie under the stack's
signing-secret prefix (the DeliveryFunction may read nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hookline.exceptions import TargetRefusedError
from hookline.netguard import check_url
from hookline.registry.errors import SecretPrefixError, TargetNotAllowedError
from hookline.registry.items import check_item
from hookline.registry.model import DEFAULT_SECRET_PREFIX

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from hookline.registry.model import Endpoint

__all__ = ["MAX_AUTHORITY_LENGTH", "MAX_URL_LENGTH", "WritePolicy", "check_endpoint"]

MAX_URL_LENGTH = 2048
MAX_AUTHORITY_LENGTH = 259
"""253 characters of DNS name plus a port (docs/contracts.md)."""


@dataclass(frozen=True)
class WritePolicy:
    """The stack's rules for registry writes: whether targets may be private (loopback) and the secret prefix."""

    allow_private_targets: bool = False
    secret_prefix: str = DEFAULT_SECRET_PREFIX

    def secret_id_for(self, name: str) -> str:
        """The Secrets Manager id of an endpoint's generated secret: the prefix followed by the endpoint name."""
        return f"{self.secret_prefix}{name}"


def _urls(endpoint: Endpoint, changed: Collection[str] | None) -> Iterator[tuple[str, str]]:
    """(field, url) of every URL the write sets."""
    if changed is None or "url" in changed:
        yield "url", endpoint.url
    if changed is None or "fallback_urls" in changed:
        yield from (("fallback_urls", url) for url in endpoint.fallback_urls)
    if (changed is None or "health" in changed) and endpoint.health.url:
        yield "health.url", endpoint.health.url


def _check_target(field: str, url: str, policy: WritePolicy) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise TargetNotAllowedError(field, url, "too_long", f"longer than {MAX_URL_LENGTH} characters")
    # A DNS name is at most 253 characters; a longer host never resolves, and its origin keys DynamoDB items.
    if len(urlsplit(url).netloc.rpartition("@")[2]) > MAX_AUTHORITY_LENGTH:
        raise TargetNotAllowedError(
            field, url, "too_long", f"host and port longer than {MAX_AUTHORITY_LENGTH} characters"
        )
    try:
        check_url(url, allow_private=policy.allow_private_targets)
    except TargetRefusedError as error:
        raise TargetNotAllowedError(field, url, error.reason, str(error), address_class=error.address_class) from None


def check_endpoint(endpoint: Endpoint, policy: WritePolicy, *, changed: Collection[str] | None = None) -> None:
    """Refuse a write that breaks the item contract or the stack's rules; RegistryItemError names the field.

    ``changed`` limits the stack's rules to the fields an update sets, so an old item whose secret predates the
    prefix can still get, say, a new rate limit; the item contract is always checked whole.
    """
    check_item(endpoint)
    for field, url in _urls(endpoint, changed):
        _check_target(field, url, policy)
    if (changed is None or "secret_id" in changed) and not endpoint.secret_id.startswith(policy.secret_prefix):
        raise SecretPrefixError(
            f"secret id {endpoint.secret_id!r} is outside the stack's signing-secret prefix {policy.secret_prefix!r}:"
            " the delivery function may read only secrets under it"
        )
