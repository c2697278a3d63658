"""The shared async HTTP client (guarded, pooled, no redirects) and one bounded request: ``send_limited``.

Design (docs/contracts.md "The request to a receiver"): connect timeout 5 s, the whole request bounded by ``timeout_s``
(connect + send + read, enforced with ``asyncio.timeout``), at most ``max_body_bytes`` of a response kept, 3xx
returned as a normal result (callers treat it as failure), every connect vetted by the network guard.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

import hookline
from hookline.exceptions import ConnectError, RequestTimeoutError, TargetError, TargetRefusedError
from hookline.http_pool import Http11ConnectionPool
from hookline.netguard import GuardedNetworkBackend, check_url

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpcore

    from hookline.netguard import Resolver

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_USER_AGENT",
    "MAX_TIMEOUT_S",
    "GuardedTransport",
    "HttpResult",
    "build_async_client",
    "parse_retry_after",
    "send_limited",
]

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 30.0
DEFAULT_MAX_BODY_BYTES = 65_536
DEFAULT_USER_AGENT = f"hookline/{hookline.__version__}"
_KEEPALIVE_EXPIRY_S = 20.0  # below the 60 s idle timeout of common load balancers
_DELTA_SECONDS = re.compile(r"[+-]?[0-9]{1,12}(?:\.[0-9]{1,6})?")
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True, slots=True)
class HttpResult:
    """A response as hookline keeps it: status, headers, at most ``max_body_bytes`` of body, timings."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    latency_ms: float
    retry_after_s: float | None = None
    certificate_not_after: datetime | None = None
    # Set when the body broke off (reason code, e.g. "timeout", "connection_reset") after the status had arrived:
    # the receiver answered, so the status counts; the body is what arrived (``truncated`` is True).
    body_error: str | None = None

    @property
    def is_success(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status_code < 300


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with a connection pool whose network backend is the network guard.

    httpx.AsyncHTTPTransport takes no network backend, so after its constructor has run we swap its pool for an
    ``Http11ConnectionPool`` (httpcore's pool with a linear assignment pass, hookline.http_pool) built from the same
    public arguments plus ``network_backend``. Request and
    response conversion and httpcore-to-httpx exception mapping stay httpx's own, which a hand-written transport
    would have to copy. Tests assert the guard really sits under the pool.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, keepalive_expiry=_KEEPALIVE_EXPIRY_S)
        ssl_context = (
            verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify, trust_env=False)
        )
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self.network_backend = GuardedNetworkBackend(
            allow_private=allow_private, resolver=resolver, inner=network_backend
        )
        self._pool = Http11ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.network_backend,
        )


class _NoCookies(httpx.Cookies):
    """A cookie jar that never keeps a cookie."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore Set-Cookie (httpx would otherwise build urllib request/response adapters for every response)."""


class _CookielessClient(httpx.AsyncClient):
    """httpx.AsyncClient without a cookie jar.

    Receivers of different customers often share a host (hooks.zapier.com, an ALB): a cookie set in one answer must
    not ride along to the next customer's delivery. Cookies passed per request still go out.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        """A jar that stays empty."""
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("hookline's HTTP client keeps no cookies")
        self._no_cookies = _NoCookies()


def _request_guard(allow_private: bool) -> Callable[[httpx.Request], object]:
    async def guard(request: httpx.Request) -> None:
        # Scheme, userinfo and literal addresses are judged before the pool is even asked for a connection.
        check_url(request.url, allow_private=allow_private)

    return guard


def build_async_client(  # noqa: PLR0913 - client settings and test seams, each a keyword with a default
    *,
    allow_private: bool,
    max_connections: int = 100,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    user_agent: str = DEFAULT_USER_AGENT,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """One pooled client per environment: guarded connects, no redirects, no proxies from the environment, no
    cookie jar.

    ``transport`` replaces the guarded transport (tests pass httpx.MockTransport; URLs are still checked by
    ``check_url``). ``resolver`` and ``network_backend`` (the backend under the guard) are for tests too;
    ``verify`` takes an ssl.SSLContext, e.g. one trusting a test CA.
    """
    if transport is None:
        transport = GuardedTransport(
            allow_private=allow_private,
            resolver=resolver,
            verify=verify,
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=_KEEPALIVE_EXPIRY_S,
            ),
            network_backend=network_backend,
        )
    return _CookielessClient(
        transport=transport,
        # send_limited bounds the whole request with one deadline; per-read/write/pool timers under it would only
        # cost a timer per socket operation. The connect timeout also bounds the guard's resolve + connect.
        timeout=httpx.Timeout(None, connect=connect_timeout_s),
        follow_redirects=False,
        trust_env=False,
        # identity: a compressed body could inflate far beyond the read limit (send_limited decodes gzip/deflate
        # with a bound anyway, for servers that compress regardless).
        headers={"user-agent": user_agent, "accept-encoding": "identity"},
        event_hooks={"request": [_request_guard(allow_private)]},
    )


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait per a Retry-After value: delta-seconds or HTTP-date (RFC 9110); negative -> 0, bad -> None."""
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return max(0.0, float(text))
    when = _parse_http_date(text)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _parse_http_date(value: str | None) -> datetime | None:
    if not value or not any(char.isalpha() for char in value):
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # HTTP-dates are always GMT; asctime format carries no zone at all.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _retry_after_s(headers: httpx.Headers, wall_clock: Callable[[], datetime]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    # The server's own Date is the reference for an HTTP-date, which makes clock skew irrelevant.
    return parse_retry_after(value, now=_parse_http_date(headers.get("date")) or wall_clock())


# Parsing a URL costs about as much as framing the whole HTTP/1.1 request, and a delivery environment sends to a
# handful of URLs again and again; httpx.URL is immutable, so one parse per text serves every request.
_parse_url = functools.lru_cache(maxsize=1024)(httpx.URL)


def _origin(url: str | httpx.URL) -> str:
    """scheme://host[:port] only, for error messages: paths and queries of webhook URLs often embed tokens."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = parsed.host if ":" not in parsed.host else f"[{parsed.host}]"
        origin = f"{parsed.scheme}://{host}" + (f":{parsed.port}" if parsed.port else "")
    except (httpx.InvalidURL, TypeError, ValueError):
        return "the target"
    return origin if len(origin) <= 120 else origin[:117] + "..."


def _der_length(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    return int.from_bytes(data[offset + 1 : offset + 1 + size], "big"), offset + 1 + size


def _der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each element in data[start:end]."""
    children = []
    offset = start
    while offset < end:
        tag = data[offset]
        length, content = _der_length(data, offset + 1)
        children.append((tag, content, content + length))
        offset = content + length
    return children


def _der_not_after(der: bytes) -> datetime | None:
    """notAfter of a DER certificate (Certificate > TBSCertificate > Validity), without a crypto library."""
    try:
        _, cert_start, cert_end = _der_children(der, 0, len(der))[0]
        _, tbs_start, tbs_end = _der_children(der, cert_start, cert_end)[0]
        fields = _der_children(der, tbs_start, tbs_end)
        # An explicit [0] version tag comes first in v3 certificates; validity follows serial, signature, issuer.
        validity = fields[4] if fields[0][0] == 0xA0 else fields[3]
        _not_before, (tag, start, end) = _der_children(der, validity[1], validity[2])
        text = der[start:end].decode("ascii")
        fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def _certificate_not_after(response: httpx.Response) -> datetime | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    certificate = ssl_object.getpeercert()
    not_after = certificate.get("notAfter") if certificate else None
    if isinstance(not_after, str):
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    # Without verification getpeercert() is empty; the raw certificate still carries the date.
    der = ssl_object.getpeercert(binary_form=True)
    return _der_not_after(der) if der else None


async def _read_limited(response: httpx.Response, max_body_bytes: int, kept: bytearray) -> bool:
    """Append at most ``max_body_bytes`` of the body (decoded if gzip/deflate) to ``kept``; True if there was more.

    ``kept`` is the caller's, so that what arrived survives a read that fails half-way.
    """
    if response.is_stream_consumed:
        # Built in memory (httpx.MockTransport with content=bytes): already decoded, nothing left to bound.
        kept += response.content[:max_body_bytes]
        return len(response.content) > max_body_bytes
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = zlib.decompressobj(_ZLIB_WBITS[encoding]) if encoding in _ZLIB_WBITS else None
    async for raw in response.aiter_raw():
        if decoder is None:
            kept += raw
        else:
            try:
                # max_length bounds the inflated size: a small compressed chunk can expand a thousandfold.
                kept += decoder.decompress(raw, max_body_bytes + 1 - len(kept))
            except zlib.error:
                return False  # a corrupt body: keep what decoded so far
            if decoder.unconsumed_tail:
                del kept[max_body_bytes:]
                return True
        if len(kept) > max_body_bytes:
            del kept[max_body_bytes:]
            return True
    return False


def _find_cause(
    error: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _transport_error(error: httpx.TransportError, origin: str) -> TargetError:
    """Map an httpx transport error to hookline's small tree, with a bounded message naming only the origin."""
    if isinstance(error, httpx.ConnectTimeout):
        return RequestTimeoutError("connect_timeout", f"connect to {origin} timed out")
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeoutError("timeout", f"{origin} did not answer in time")
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return TargetRefusedError("scheme", f"target refused: unsupported URL for {origin}")
    tls_cause = _find_cause(error, ssl.SSLError)
    if tls_cause is not None:
        detail = getattr(tls_cause, "reason", None) or type(tls_cause).__name__
        return ConnectError("tls_error", f"TLS handshake with {origin} failed: {detail}")
    if _find_cause(error, ConnectionRefusedError) is not None or "refused" in str(error).lower():
        return ConnectError("connection_refused", f"connection refused by {origin}")
    if isinstance(error, httpx.ConnectError):
        return ConnectError("network_error", f"could not connect to {origin}: {str(error)[:100]}")
    if (
        _find_cause(error, (ConnectionResetError, BrokenPipeError)) is not None
        or isinstance(error, httpx.ReadError | httpx.WriteError)
        or any(word in str(error).lower() for word in ("disconnected", "peer closed"))
    ):
        return ConnectError("connection_reset", f"connection to {origin} was reset or closed before a response")
    if isinstance(error, httpx.ProtocolError):
        return ConnectError("protocol_error", f"HTTP protocol error with {origin}")
    return ConnectError("network_error", f"request to {origin} failed: {type(error).__name__}")


async def send_limited(  # noqa: PLR0913 - one request's bounds and injected clocks, each a keyword with a default
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    content: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    capture_certificate: bool = False,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = _utc_now,
) -> HttpResult:
    """Send one request, bounded in time and in response size; never follows redirects.

    Raises RequestTimeoutError, ConnectError or TargetRefusedError (each with ``reason``) when no response status
    arrived within ``timeout_s``. Any status, 3xx included, is a result; if the body then breaks off or runs past
    the deadline, the result carries what arrived, ``truncated=True`` and ``body_error``.
    """
    if timeout_s <= 0 or max_body_bytes < 0:
        raise ValueError("timeout_s must be positive and max_body_bytes non-negative")
    started = clock()
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            target = url if isinstance(url, httpx.URL) else _parse_url(url)
            request = client.build_request(method, target, content=content, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
    except TimeoutError:
        raise RequestTimeoutError("timeout", f"no response from {_origin(url)} within {timeout_s:g} s") from None
    except httpx.TransportError as error:
        raise _transport_error(error, _origin(url)) from None
    except httpx.InvalidURL:
        raise TargetRefusedError("invalid_url", "target refused: the URL does not parse") from None
    # The status has arrived: from here on a failure only cuts the body short, it does not undo the answer (a
    # receiver that said 200 and then stalled or reset did get the webhook; retrying would duplicate it).
    kept = bytearray()
    body_error: str | None = None
    try:
        # The TLS stream is only reachable while the response is open.
        not_after = _certificate_not_after(response) if capture_certificate else None
        async with asyncio.timeout_at(deadline.when()):
            truncated = await _read_limited(response, max_body_bytes, kept)
    except TimeoutError:
        body_error, truncated = "timeout", True
    except httpx.TransportError as error:
        body_error, truncated = _transport_error(error, _origin(url)).reason, True
    finally:
        await response.aclose()
    latency_ms = (clock() - started) * 1000.0
    return HttpResult(
        status_code=response.status_code,
        headers=response.headers,
        body=bytes(kept),
        truncated=truncated,
        latency_ms=latency_ms,
        retry_after_s=_retry_after_s(response.headers, wall_clock),
        certificate_not_after=not_after,
        body_error=body_error,
    )
