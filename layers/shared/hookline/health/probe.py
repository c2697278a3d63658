"""One probe of one integration, through hookline's guarded HTTP client (the same one delivery uses)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hookline.exceptions import TargetError
from hookline.health.model import ProbeResult
from hookline.http import send_limited

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from hookline.registry import Endpoint

__all__ = ["DEFAULT_PROBE_TIMEOUT_S", "MATCH_BODY_BYTES", "probe", "probe_url"]

DEFAULT_PROBE_TIMEOUT_S = 10.0  # a probe never waits longer than this, whatever the endpoint's delivery timeout
MATCH_BODY_BYTES = 65_536  # body_contains is searched in at most this much of the response (delivery's limit too)
_NO_MATCH_BODY_BYTES = 1_024  # without body_contains the body is not needed; read little of it
USER_AGENT = "hookline-health/1"


def probe_url(endpoint: Endpoint) -> str:
    """The URL a probe requests: the health URL if configured, else the endpoint's primary URL."""
    return endpoint.health.url or endpoint.url


async def probe(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    *,
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    timer: Callable[[], float] = time.perf_counter,
) -> ProbeResult:
    """Request the probe URL once (HEAD or GET, the endpoint's static headers, no redirects); report what happened."""
    url = probe_url(endpoint)
    method = endpoint.health.method
    wants_body = endpoint.health.body_contains is not None and method == "GET"
    started = timer()
    try:
        result = await send_limited(
            client,
            method,
            url,
            headers={**endpoint.headers, "user-agent": USER_AGENT},
            timeout_s=min(timeout_s, endpoint.timeout_s),
            max_body_bytes=MATCH_BODY_BYTES if wants_body else _NO_MATCH_BODY_BYTES,
            capture_certificate=url.lower().startswith("https://"),
        )
    except TargetError as error:
        return ProbeResult(
            url=url,
            method=method,
            latency_ms=round((timer() - started) * 1000),
            error=str(error),
            error_reason=error.reason,
        )
    return ProbeResult(
        url=url,
        method=method,
        latency_ms=round(result.latency_ms),
        status_code=result.status_code,
        body=result.body,
        certificate_not_after=result.certificate_not_after,
    )
