"""SSRF network guard: refuse targets that are not public internet addresses, before and at connect time.

Two layers, both needed:

* ``check_url`` judges a URL before any network I/O: scheme, userinfo, and hosts written as IP literals in any
  notation a resolver accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, ``[::ffff:7f00:1]``...).
* ``GuardedNetworkBackend`` is the httpcore network backend of hookline's HTTP client. It resolves the host itself,
  refuses the connection if ANY resolved address is forbidden (a name with one public and one private address is
  a rebinding trick, not a receiver), then connects to the vetted address literal, never to the name again, so
  there is no window in which DNS can change its answer. TLS still uses the original host name for SNI and
  certificate verification (httpcore passes ``server_hostname`` to ``start_tls`` separately).

``allow_private=True`` opens loopback only (127.0.0.0/8 and ::1), for the local stack and tests. Every other
forbidden range stays forbidden even then.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from hookline.asyncio_backend import AsyncioBackend
from hookline.exceptions import ConnectError, TargetRefusedError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from httpcore._backends.base import SOCKET_OPTION

__all__ = [
    "GuardedNetworkBackend",
    "Resolver",
    "check_address",
    "check_url",
    "forbidden_reason",
    "parse_ip_literal",
    "system_resolver",
]

type IPAddress = IPv4Address | IPv6Address
type Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""An async resolver: (host, port) -> IP address strings. Raises OSError (socket.gaierror) when it cannot."""

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain")
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")

# Order matters: the first match names the reason. Specific ranges come before the ranges that contain them.
_IPV4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "this_network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link_local"),  # includes the instance metadata service 169.254.169.254
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmark"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_IPV6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), reason)
    for network, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
        ("100::/64", "reserved"),  # discard-only
        ("2001:2::/48", "benchmark"),
        ("2001:10::/28", "reserved"),  # ORCHID
        ("2001:20::/28", "reserved"),  # ORCHIDv2
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "reserved"),  # SRv6 SIDs
        ("fc00::/7", "private"),  # unique local, includes AWS's fd00:ec2::254 metadata address
        ("fe80::/10", "link_local"),
        ("fec0::/10", "site_local"),
        ("ff00::/8", "multicast"),
    )
)
_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # SIIT
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")  # local-use NAT64: the IPv4 part's position depends on the prefix
_SIX_TO_FOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_LOOPBACK_V4 = IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = IPv6Address("::1")


def _embedded_v4_reason(embedded: IPv4Address | None, mechanism: str) -> str:
    # The embedded address's own reason is the more useful one ("loopback" rather than "ipv4_mapped").
    inner = forbidden_reason(embedded) if embedded is not None else None
    return inner if inner is not None else mechanism


def _ipv6_reason(ip: IPv6Address) -> str | None:
    # Transition mechanisms reach IPv4 hosts through an IPv6 address. They are refused whatever they embed: a
    # receiver publishes its IPv4 address as an A record; one wrapped in IPv6 is a way round an IPv4 check.
    if ip in _IPV4_MAPPED:
        return _embedded_v4_reason(ip.ipv4_mapped, "ipv4_mapped")
    if ip in _IPV4_TRANSLATED:
        return _embedded_v4_reason(IPv4Address(int(ip) & 0xFFFFFFFF), "ipv4_translated")
    if ip in _NAT64:
        return _embedded_v4_reason(IPv4Address(int(ip) & 0xFFFFFFFF), "nat64")
    if ip in _NAT64_LOCAL:
        return "nat64"
    if ip in _SIX_TO_FOUR:
        return _embedded_v4_reason(ip.sixtofour, "6to4")
    if ip in _TEREDO:
        teredo = ip.teredo
        return _embedded_v4_reason(teredo[1] if teredo else None, "teredo")
    for network, reason in _IPV6_RANGES:
        if ip in network:
            return reason
    # Everything outside 2000::/3 is unallocated or special-purpose: no receiver lives there. The is_global check
    # is a backstop for special-purpose ranges inside it that were registered after this table was written.
    if ip not in _GLOBAL_UNICAST or not ip.is_global:
        return "reserved"
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public internet address (e.g. "loopback", "private", "nat64"), or None if it is."""
    if isinstance(ip, IPv6Address):
        # A zone id ("fe80::1%eth0") does not change which range the address is in.
        return _ipv6_reason(IPv6Address(int(ip)) if ip.scope_id else ip)
    for network, reason in _IPV4_RANGES:
        if ip in network:
            return reason
    # Backstop for special-purpose ranges registered after this table was written.
    if not ip.is_global:
        return "reserved"
    return None


def _is_opened_loopback(ip: IPAddress) -> bool:
    """Loopback as allow_private opens it: 127.0.0.0/8 and ::1, not loopback wrapped in IPv6 transition forms."""
    if isinstance(ip, IPv4Address):
        return ip in _LOOPBACK_V4
    return int(ip) == int(_LOOPBACK_V6)


def _refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    reason = forbidden_reason(ip)
    if reason is not None and allow_private and _is_opened_loopback(ip):
        return None
    return reason


def check_address(ip: IPAddress, *, allow_private: bool, host: str | None = None) -> None:
    """Raise TargetRefusedError("private_address") unless ``ip`` may be connected to."""
    reason = _refusal(ip, allow_private=allow_private)
    if reason is not None:
        shown = ip.compressed if host is None or host == ip.compressed else f"{_short(host)} ({ip.compressed})"
        raise TargetRefusedError(
            "private_address", f"target refused: {shown} is a {reason.replace('_', '-')} address", address_class=reason
        )


def _inet_aton_part(part: str) -> int:
    """One part of a BSD inet_aton address: decimal, 0-prefixed octal or 0x-prefixed hexadecimal."""
    if part[:2].lower() == "0x":
        digits = part[2:]
        # glibc accepts a bare "0x" as zero.
        return int(digits, 16) if digits else 0
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8)
    return int(part, 10)


def _parse_inet_aton(host: str) -> IPv4Address | None:
    """``host`` as the C library's inet_aton reads it ("127.1", "0x7f.1", "2130706433"), or None if it cannot."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_LABEL.fullmatch(part) for part in parts):
        return None
    try:
        values = [_inet_aton_part(part) for part in parts]
    except ValueError:  # "08" is not octal
        return None
    # The last part fills every remaining byte: a.b.c.d, a.b.c(16 bits), a.b(24 bits), a(32 bits).
    last_bits = 8 * (5 - len(values))
    if any(value > 0xFF for value in values[:-1]) or values[-1] >= 1 << last_bits:
        return None
    number = 0
    for value in values[:-1]:
        number = number << 8 | value
    return IPv4Address(number << last_bits | values[-1])


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes if it is an IP literal in any notation, else None (a name).

    Raises TargetRefusedError("invalid_host") for hosts that are neither a valid literal nor a valid name, such as
    "256.1.1.1" or "1.2.3.08": a resolver would not send them to DNS as names, and guessing is unsafe.
    """
    candidate = host.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if ":" in candidate:
        # IPv6, possibly with a zone id ("fe80::1%eth0", percent-encoded as %25 in URLs); the zone does not change
        # which range the address is in.
        address = unquote(candidate).split("%", 1)[0]
        try:
            return IPv6Address(address)
        except ValueError:
            raise TargetRefusedError("invalid_host", f"target refused: invalid IPv6 address {_short(host)!r}") from None
    if candidate.endswith("."):
        candidate = candidate[:-1]
    last_label = candidate.rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.fullmatch(last_label):
        return None
    parsed = _parse_inet_aton(candidate)
    if parsed is None:
        # A name never ends in a numeric label (WHATWG URL "ends in a number"): this is a malformed address.
        raise TargetRefusedError("invalid_host", f"target refused: invalid IPv4 address {_short(host)!r}")
    return parsed


def _check_host(host: str, *, allow_private: bool) -> None:
    decoded = unquote(host) if "%" in host and ":" not in host else host
    literal = parse_ip_literal(decoded)
    if literal is not None:
        check_address(literal, allow_private=allow_private, host=host)
        return
    if decoded != host or not _HOSTNAME.fullmatch(decoded) or ".." in decoded:
        raise TargetRefusedError("invalid_host", f"target refused: invalid host name {_short(host)!r}")
    lowered = decoded.lower().rstrip(".")
    # RFC 6761: these names always resolve to loopback.
    if not allow_private and (lowered in _LOCALHOST_NAMES or lowered.endswith(".localhost")):
        raise TargetRefusedError(
            "private_address", f"target refused: {_short(host)} is a loopback name", address_class="loopback"
        )


def _fallback_host(url: str) -> str | None:
    """The host as urllib reads it, for URLs httpx will not parse (e.g. httpx rejects "0177.0.0.1")."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


def check_url(url: str | httpx.URL, *, allow_private: bool) -> None:
    """Refuse a target URL before any network I/O; raise TargetRefusedError with a ``reason`` code."""
    # The verdict is a pure function of the text: a URL that passed once passes again (the delivery path checks
    # every target twice per message, and parsing costs more than the HTTP request's own framing). Only passes
    # are remembered (lru_cache keeps no exceptions); a refusal is judged afresh, with a fresh exception.
    _check_url_text(url if isinstance(url, str) else str(url), allow_private)


@functools.lru_cache(maxsize=1024)
def _check_url_text(url: str, allow_private: bool) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        host = _fallback_host(url)
        if host:
            # Judge the host anyway: an odd-notation private address deserves its real reason.
            _check_host(host, allow_private=allow_private)
        raise TargetRefusedError("invalid_url", "target refused: the URL does not parse") from None
    if parsed.scheme not in _ALLOWED_SCHEMES:
        raise TargetRefusedError("scheme", f"target refused: scheme {_short(parsed.scheme, 20)!r} is not http(s)")
    if parsed.userinfo:
        # Never echo userinfo: it is a password.
        raise TargetRefusedError("credentials", "target refused: credentials in the URL are not allowed")
    host = parsed.raw_host.decode("ascii", errors="replace")
    if not host:
        raise TargetRefusedError("no_host", "target refused: the URL has no host")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise TargetRefusedError("invalid_url", f"target refused: port {parsed.port} is out of range")
    _check_host(host, allow_private=allow_private)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the event loop's getaddrinfo (the system resolver, in a thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore backend that resolves, vets every address, then connects to the vetted address literal."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._resolver: Resolver = system_resolver if resolver is None else resolver
        self._inner = AsyncioBackend() if inner is None else inner

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` stands for, each vetted; TargetRefusedError if any is forbidden."""
        literal = parse_ip_literal(host)
        if literal is not None:
            check_address(literal, allow_private=self.allow_private, host=host)
            return [literal]
        _check_host(host, allow_private=self.allow_private)
        try:
            answers = await self._resolver(host, port)
        except OSError as exc:
            raise ConnectError("dns_failure", f"could not resolve {_short(host)}: {exc.strerror or exc}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                address = ip_address(answer.split("%", 1)[0])
            except ValueError:
                raise TargetRefusedError(
                    "invalid_host", f"target refused: {_short(host)} resolved to a non-address"
                ) from None
            check_address(address, allow_private=self.allow_private, host=host)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ConnectError("dns_failure", f"could not resolve {_short(host)}: no addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and vet ``host``, then connect to the first vetted address that accepts, within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolve(host, port)
                # Try the addresses in resolver order (RFC 6724); the last one's error is the one reported.
                for address in addresses[:-1]:
                    try:
                        return await self._connect(address, port, timeout, local_address, socket_options)
                    except httpcore.ConnectError:
                        continue
                return await self._connect(addresses[-1], port, timeout, local_address, socket_options)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connect to {_short(host)} timed out") from None

    async def _connect(
        self,
        address: IPAddress,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        # The vetted literal, never the name: a second lookup could answer differently (DNS rebinding).
        return await self._inner.connect_tcp(
            address.compressed, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Always refused: receivers are reached over TCP only."""
        raise TargetRefusedError("scheme", "target refused: unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the inner backend (httpcore uses it between connect retries)."""
        await self._inner.sleep(seconds)
