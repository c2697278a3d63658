"""``hookline endpoints``: register, inspect, enable/disable, remove endpoints and rotate their signing secrets."""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import urlsplit, urlunsplit

import typer
from botocore.exceptions import BotoCoreError, ClientError

from hookline.exceptions import SecretFormatError
from hookline.registry import (
    DEFAULT_SECRET_PREFIX,
    MAX_TIMEOUT_S,
    Endpoint,
    EndpointExistsError,
    EndpointNotFoundError,
    HealthCheck,
    RegistryItemError,
    TargetNotAllowedError,
    endpoint_from_item,
)
from hookline.rotation import OverlapTooShortError, PreviousStillSigningError, format_instant, plan_rotation
from hookline.secrets import (
    SECRET_CACHE_TTL_S,
    SecretInvalidError,
    SecretMissingError,
    SecretUnavailableError,
    SigningSecretStore,
)
from hookline.signing import SCHEMES, generate_secret, parse_secret_string
from hookline_cli.output import (
    JsonFlag,
    OperationalError,
    UsageError,
    cli_errors,
    emit,
    format_time,
    report_error,
    table,
)
from hookline_cli.resources import Resources, get_resources

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from rich.console import Console

    from hookline.registry import EndpointRegistry, HealthStatus, Scheme, WritePolicy
    from hookline.rotation import Rotation
    from hookline.signing import SigningSecrets

__all__ = [
    "app",
    "endpoint_view",
    "health_status_view",
    "parse_duration",
    "require_endpoint",
    "secret_id_for",
    "shown_url",
]

app = typer.Typer(help="Register and manage webhook endpoints.", no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_REDACTED = "<redacted>"
_LIST_HINT = "`hookline endpoints list` shows the registered ones"
# Registry field -> the `endpoints add` option that sets it (errors name what the user typed).
_OPTIONS = {"url": "--url", "fallback_urls": "--fallback-url", "health.url": "--health-url"}


def secret_id_for(name: str, prefix: str = DEFAULT_SECRET_PREFIX) -> str:
    """The Secrets Manager id ``--generate-secret`` uses for an endpoint: the stack's prefix + name."""
    return f"{prefix}{name}"


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``24h`` or ``7d`` as a timedelta; UsageError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"invalid duration {text!r}: use seconds or a number with s, m, h or d (e.g. 24h)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def shown_url(url: str) -> str:
    """``url`` with any user:password part redacted (registry writes refuse them; other tools' items may have one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{_REDACTED}@{parts.netloc.rpartition('@')[2]}"))


def endpoint_view(endpoint: Endpoint) -> dict[str, Any]:
    """The JSON form of an endpoint (stable keys). Header values are redacted: they often carry credentials."""
    check = endpoint.health
    return {
        "name": endpoint.name,
        "url": shown_url(endpoint.url),
        "fallback_urls": [shown_url(url) for url in endpoint.fallback_urls],
        "secret_id": endpoint.secret_id,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "scheme": endpoint.scheme,
        "timeout_s": endpoint.timeout_s,
        "headers": dict.fromkeys(sorted(endpoint.headers), _REDACTED),
        "event_types": list(endpoint.event_types),
        "rate_limit_per_s": endpoint.rate_limit_per_s,
        "max_in_flight": endpoint.max_in_flight,
        "health_check": {
            "url": check.url and shown_url(check.url),
            "method": check.method,
            "expect_status": list(check.expect_status),
            "max_latency_ms": check.max_latency_ms,
            "body_contains": check.body_contains,
            "min_cert_days": check.min_cert_days,
            "failure_threshold": check.failure_threshold,
            "success_threshold": check.success_threshold,
        },
        "health": health_status_view(endpoint.status),
    }


def health_status_view(status: HealthStatus) -> dict[str, Any]:
    """The JSON form of an endpoint's recorded health (stable keys), in ``endpoints show`` and ``health``."""
    return {
        "state": status.state,
        "last_checked_at": status.last_checked_at,
        "last_latency_ms": status.last_latency_ms,
        "consecutive_failures": status.consecutive_failures,
        "consecutive_successes": status.consecutive_successes,
        "last_error": status.last_error,
    }


def _rate_text(rate: float | None) -> str | None:
    return None if rate is None else f"{rate:g}/s"


def _limits_text(endpoint: Endpoint) -> str | None:
    """The flow-control limits in a few characters for the list table (None = no limits)."""
    parts = [_rate_text(endpoint.rate_limit_per_s)]
    if endpoint.max_in_flight is not None:
        parts.append(f"{endpoint.max_in_flight} in flight")
    return ", ".join(part for part in parts if part) or None


def require_endpoint(registry: EndpointRegistry, name: str) -> Endpoint:
    """The endpoint called ``name``; UsageError (exit 2) when there is none."""
    with _known(name, hint=_LIST_HINT):
        return registry.require(name, fresh=True)


@contextmanager
def _known(name: str, *, hint: str | None = None) -> Iterator[None]:
    """The registry's EndpointNotFoundError for ``name`` as the CLI's usage error (exit 2)."""
    try:
        yield
    except EndpointNotFoundError:
        raise UsageError(f"unknown endpoint {name!r}", hint=hint) from None


def _refused(error: RegistryItemError, policy: WritePolicy) -> UsageError:
    """The CLI error for a registration the registry's write policy refused, naming the option as typed."""
    if not isinstance(error, TargetNotAllowedError):
        return UsageError(str(error))
    hint = None
    if error.address_class == "loopback" and not policy.allow_private_targets:
        hint = "loopback targets are allowed only against the local stack (see HOOKLINE_ALLOW_PRIVATE_TARGETS)"
    option = _OPTIONS.get(error.field, error.field)
    return UsageError(f"{option} {error.url!r} refused by the network guard: {error.detail}", hint=hint)


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header must be KEY=VALUE, got {key.strip() or value!r}")
        headers[key.strip()] = item
    return headers


def _check_secret(resources: Resources, secret_id: str) -> None:
    store = SigningSecretStore(client=resources.client("secretsmanager"))
    try:
        store.get(secret_id)
    except (SecretMissingError, SecretInvalidError) as error:
        raise UsageError(str(error), hint="create it with a whsec_ value, or use --generate-secret") from None
    except SecretUnavailableError as error:
        raise OperationalError(str(error)) from None


def _create_secret(resources: Resources, secret_id: str, endpoint_name: str) -> str:
    secret = generate_secret()
    try:
        resources.client("secretsmanager").create_secret(
            Name=secret_id,
            SecretString=secret,
            Description=f"hookline signing secret of endpoint {endpoint_name}",
            Tags=[{"Key": "hookline:endpoint", "Value": endpoint_name}],
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceExistsException":
            raise UsageError(
                f"secret {secret_id!r} exists already", hint=f"reuse it with --secret-id {secret_id}"
            ) from None
        raise
    return secret


def _discard_secret(resources: Resources, secret_id: str) -> None:
    try:
        resources.client("secretsmanager").delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    except (ClientError, BotoCoreError) as error:
        report_error(f"could not delete the unused secret {secret_id}: {error}; delete it by hand")


@app.command("add")
@cli_errors
def add(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Endpoint name (1-128 of A-Z a-z 0-9 . _ : -).")],
    *,
    url: Annotated[str, typer.Option("--url", help="The receiver URL (http or https).")],
    fallback_url: Annotated[
        list[str] | None, typer.Option("--fallback-url", help="Alternate URL, tried in order (repeatable).")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate-secret", help="Create secret PREFIX/NAME (PREFIX: the stack's); printed once.")
    ] = False,
    secret_id: Annotated[
        str | None, typer.Option("--secret-id", help="Existing secret (whsec_) under the stack's secret prefix.")
    ] = None,
    scheme: Annotated[str, typer.Option("--scheme", help="standard, github or stripe.")] = "standard",
    health_url: Annotated[str | None, typer.Option("--health-url", help="URL the health function probes.")] = None,
    health_method: Annotated[str, typer.Option("--health-method", help="GET or HEAD.")] = "GET",
    expect_status: Annotated[
        str | None, typer.Option("--expect-status", help="Expected probe status: 200, 200,204 or 200-299.")
    ] = None,
    max_latency_ms: Annotated[int | None, typer.Option("--max-latency-ms", help="Slower probes fail.")] = None,
    min_cert_days: Annotated[
        int | None, typer.Option("--min-cert-days", help="Fail when the cert expires sooner.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help=f"Request timeout, 1-{MAX_TIMEOUT_S:g} s.")] = 15.0,
    header: Annotated[list[str] | None, typer.Option("--header", help="Static header KEY=VALUE (repeatable).")] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--event-type", help="Deliver only these event types (repeatable).")
    ] = None,
    json_flag: JsonFlag = False,
) -> None:
    """Register an endpoint. With --generate-secret the new secret is printed once; store it at the receiver."""
    if generate == (secret_id is not None):
        raise UsageError("give exactly one of --generate-secret or --secret-id")
    _check_options(scheme, timeout)
    resources = get_resources(ctx)
    registry = resources.registry()
    policy = cast("WritePolicy", registry.write_policy)
    try:
        candidate = Endpoint(
            name=name,
            url=url,
            secret_id=secret_id or secret_id_for(name, policy.secret_prefix),
            fallback_urls=tuple(fallback_url or []),
            scheme=cast("Scheme", scheme),
            timeout_s=timeout,
            headers=_parse_headers(header or []),
            event_types=tuple(event_type or []),
            health=_health_check(health_url, health_method, expect_status, max_latency_ms, min_cert_days),
        )
        registry.check(candidate)  # the registry's write rules judge everything before anything is created
    except RegistryItemError as error:
        raise _refused(error, policy) from None
    if registry.get(name, fresh=True) is not None:
        raise UsageError(f"an endpoint named {name!r} exists already")
    secret = _provide_secret(resources, candidate, generate=generate)
    _register(resources, registry, candidate, secret)
    _print_added(ctx, candidate, secret, json_flag=json_flag)


def _check_options(scheme: str, timeout: float) -> None:
    """Option-level checks of `endpoints add`, reported with the option's name."""
    if scheme not in SCHEMES:
        raise UsageError(f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if not 1 <= timeout <= MAX_TIMEOUT_S:
        raise UsageError(f"--timeout must be between 1 and {MAX_TIMEOUT_S:g} seconds")


def _health_check(
    url: str | None, method: str, expect_status: str | None, max_latency_ms: int | None, min_cert_days: int | None
) -> HealthCheck:
    """The health check the options describe, parsed like a registry item's ``health`` map (RegistryItemError)."""
    item: dict[str, Any] = {"url": url, "method": method}
    optional = {"expect_status": expect_status, "max_latency_ms": max_latency_ms, "min_cert_days": min_cert_days}
    item.update({key: value for key, value in optional.items() if value is not None})
    return endpoint_from_item({"name": "health-check", "url": "-", "secret_id": "-", "health": item}).health


def _provide_secret(resources: Resources, candidate: Endpoint, *, generate: bool) -> str | None:
    """Create the endpoint's new secret (returned, to print once) or check that the given one exists and parses."""
    if generate:
        return _create_secret(resources, candidate.secret_id, candidate.name)
    _check_secret(resources, candidate.secret_id)
    return None


def _register(resources: Resources, registry: EndpointRegistry, candidate: Endpoint, secret: str | None) -> None:
    try:
        registry.register(candidate)
    except Exception as error:
        if secret is not None:
            # The endpoint was not registered: do not leave behind a secret nobody will ever see again.
            _discard_secret(resources, candidate.secret_id)
        if isinstance(error, EndpointExistsError):
            raise UsageError(f"an endpoint named {candidate.name!r} exists already") from None
        raise


def _print_added(ctx: typer.Context, endpoint: Endpoint, secret: str | None, *, json_flag: bool) -> None:
    def render(console: Console) -> None:
        console.print(f"registered endpoint {endpoint.name} -> {endpoint.url}", markup=False)
        console.print(f"signing secret id: {endpoint.secret_id}", markup=False)
        if secret is not None:
            console.print("signing secret (shown once, store it at the receiver now):", markup=False)
            console.print(secret, markup=False)

    emit(ctx, {"endpoint": endpoint_view(endpoint), "secret": secret}, render, json_flag=json_flag)


@app.command("list")
@cli_errors
def list_(ctx: typer.Context, json_flag: JsonFlag = False) -> None:
    """List every endpoint with its state; items that break the registry contract are reported and skipped."""
    scan = get_resources(ctx).registry().scan(endpoint_from_item)
    for item in scan.invalid:
        typer.echo(f"warning: skipped registry item {item.name}: {item.problem}", err=True)
    endpoints = sorted(scan.valid, key=lambda endpoint: endpoint.name)
    data = [endpoint_view(endpoint) for endpoint in endpoints]

    def render(console: Console) -> None:
        if not endpoints:
            console.print("no endpoints registered (add one with `hookline endpoints add`)", markup=False)
            return
        rows = [
            (
                endpoint.name,
                "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason or '-'})",
                shown_url(endpoint.url),
                len(endpoint.fallback_urls) or None,
                endpoint.scheme,
                ", ".join(endpoint.event_types) or "all",
                _limits_text(endpoint),
                endpoint.status.state,
            )
            for endpoint in endpoints
        ]
        columns = ["name", "status", "url", "fallbacks", "scheme", "events", "limits", "health"]
        console.print(table("Endpoints", columns, rows))

    emit(ctx, data, render, json_flag=json_flag)


@app.command("show")
@cli_errors
def show(ctx: typer.Context, name: str, json_flag: JsonFlag = False) -> None:
    """Show one endpoint's configuration and health."""
    endpoint = require_endpoint(get_resources(ctx).registry(), name)
    view = endpoint_view(endpoint)

    def render(console: Console) -> None:
        check = view["health_check"]
        health = view["health"]
        rows: list[tuple[str, Any]] = [
            ("name", endpoint.name),
            ("status", "enabled" if endpoint.enabled else f"disabled: {endpoint.disabled_reason or '-'}"),
            ("url", view["url"]),
            ("fallback urls", "\n".join(view["fallback_urls"]) or None),
            ("secret id", endpoint.secret_id),
            ("scheme", endpoint.scheme),
            ("timeout", f"{endpoint.timeout_s:g} s"),
            ("headers", ", ".join(view["headers"]) or None),
            ("event types", ", ".join(endpoint.event_types) or "all"),
            ("rate limit", _rate_text(endpoint.rate_limit_per_s) or "none"),
            ("max in flight", endpoint.max_in_flight or "none"),
            ("health check", check["url"] and f"{check['method']} {check['url']}"),
            ("health", health["state"]),
            ("last checked", format_time(health["last_checked_at"])),
            ("last latency", health["last_latency_ms"] is not None and f"{health['last_latency_ms']} ms" or None),
            ("failures / successes", f"{health['consecutive_failures']} / {health['consecutive_successes']}"),
            ("last error", health["last_error"]),
        ]
        console.print(table(f"Endpoint {endpoint.name}", ["field", "value"], rows))

    emit(ctx, view, render, json_flag=json_flag)


@app.command("set")
@cli_errors
def set_(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    name: str,
    *,
    rate_limit: Annotated[
        float | None, typer.Option("--rate-limit", help="Requests per second, fleet-wide (> 0; 0.5 = one per 2 s).")
    ] = None,
    max_in_flight: Annotated[
        int | None, typer.Option("--max-in-flight", help="Concurrent requests, fleet-wide (>= 1).")
    ] = None,
    clear_rate_limit: Annotated[bool, typer.Option("--clear-rate-limit", help="Remove the rate limit.")] = False,
    clear_max_in_flight: Annotated[
        bool, typer.Option("--clear-max-in-flight", help="Remove the in-flight limit.")
    ] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Set or clear an endpoint's flow-control limits; fields not named keep their value."""
    changes = _limit_changes(rate_limit, max_in_flight, clear_rate_limit, clear_max_in_flight)
    registry = get_resources(ctx).registry()
    try:
        with _known(name, hint=_LIST_HINT):
            endpoint = registry.update(name, **changes)
    except RegistryItemError as error:
        raise UsageError(str(error)) from None

    def render(console: Console) -> None:
        rate = _rate_text(endpoint.rate_limit_per_s) or "none"
        console.print(
            f"endpoint {name}: rate limit {rate}, max in flight {endpoint.max_in_flight or 'none'}", markup=False
        )

    emit(ctx, endpoint_view(endpoint), render, json_flag=json_flag)


def _limit_changes(
    rate_limit: float | None, max_in_flight: int | None, clear_rate_limit: bool, clear_max_in_flight: bool
) -> dict[str, Any]:
    """The registry changes `endpoints set` asks for; UsageError for contradictory or out-of-range options."""
    if rate_limit is not None and clear_rate_limit:
        raise UsageError("give --rate-limit or --clear-rate-limit, not both")
    if max_in_flight is not None and clear_max_in_flight:
        raise UsageError("give --max-in-flight or --clear-max-in-flight, not both")
    if rate_limit is not None and not 0 < rate_limit < math.inf:
        raise UsageError(f"--rate-limit must be a number of requests per second above 0, got {rate_limit:g}")
    if max_in_flight is not None and max_in_flight < 1:
        raise UsageError(f"--max-in-flight must be at least 1, got {max_in_flight}")
    changes: dict[str, Any] = {}
    if rate_limit is not None or clear_rate_limit:
        changes["rate_limit_per_s"] = rate_limit
    if max_in_flight is not None or clear_max_in_flight:
        changes["max_in_flight"] = max_in_flight
    if not changes:
        raise UsageError(
            "nothing to set: give --rate-limit, --max-in-flight, --clear-rate-limit or --clear-max-in-flight"
        )
    return changes


@app.command("enable")
@cli_errors
def enable(ctx: typer.Context, name: str) -> None:
    """Enable an endpoint (clears its disabled reason)."""
    with _known(name):
        get_resources(ctx).registry().enable(name)
    typer.echo(f"enabled endpoint {name}")


@app.command("disable")
@cli_errors
def disable(
    ctx: typer.Context,
    name: str,
    reason: Annotated[str, typer.Option("--reason", help="Why; shown in `endpoints show`.")] = "disabled by operator",
) -> None:
    """Disable an endpoint: its messages are dead-lettered (endpoint_disabled) until it is enabled again."""
    with _known(name):
        get_resources(ctx).registry().disable(name, reason)
    typer.echo(f"disabled endpoint {name}")


@app.command("remove")
@cli_errors
def remove(
    ctx: typer.Context,
    name: str,
    delete_secret: Annotated[
        bool, typer.Option("--delete-secret", help="Also schedule its secret for deletion (if no other uses it).")
    ] = False,
    delete_shared_secret: Annotated[
        bool, typer.Option("--delete-shared-secret", help="Schedule its secret for deletion even if others use it.")
    ] = False,
) -> None:
    """Remove an endpoint from the registry (its secret stays unless asked)."""
    resources = get_resources(ctx)
    registry = resources.registry()
    endpoint = require_endpoint(registry, name)
    others = [user for user in registry.secret_users(endpoint.secret_id) if user != name]
    if others and delete_secret and not delete_shared_secret:
        raise UsageError(
            f"secret {endpoint.secret_id!r} is also used by endpoint {', '.join(others)}; nothing was removed",
            hint="remove it without --delete-secret, or pass --delete-shared-secret to delete the secret anyway",
        )
    with _known(name):
        registry.remove(name)
    typer.echo(f"removed endpoint {name}")
    if delete_secret or delete_shared_secret:
        resources.client("secretsmanager").delete_secret(SecretId=endpoint.secret_id, RecoveryWindowInDays=7)
        typer.echo(f"secret {endpoint.secret_id} scheduled for deletion in 7 days")
        if others:
            typer.echo(f"warning: secret {endpoint.secret_id} is still used by endpoint {', '.join(others)}", err=True)


@app.command("rotate-secret")
@cli_errors
def rotate_secret(
    ctx: typer.Context,
    name: str,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            help=f"How long both secrets sign every webhook, from signs_from (e.g. 24h, 90m; at least "
            f"{SECRET_CACHE_TTL_S} s).",
        ),
    ] = "24h",
    drop_previous: Annotated[
        bool,
        typer.Option(
            "--drop-previous",
            help="Rotate even while the previous rotation's old secret still signs; it stops signing now.",
        ),
    ] = False,
    json_flag: JsonFlag = False,
) -> None:
    """Generate a new signing secret; prints it once, with signs_from and the old secret's expiry."""
    resources = get_resources(ctx)
    window = parse_duration(overlap)
    endpoint = require_endpoint(resources.registry(), name)
    client = resources.client("secretsmanager")
    stored = _stored_secrets(client, endpoint)
    try:
        rotation = plan_rotation(stored, now=resources.clock(), overlap=window, drop_previous=drop_previous)
    except OverlapTooShortError as error:
        raise UsageError(f"--overlap {overlap}: {error}") from None
    except PreviousStillSigningError as error:
        raise UsageError(str(error), hint="wait until then, or pass --drop-previous to stop it now") from None
    client.put_secret_value(SecretId=endpoint.secret_id, SecretString=rotation.secret_string)
    _print_rotated(ctx, endpoint, rotation, written_at=resources.clock(), json_flag=json_flag)


def _stored_secrets(client: Any, endpoint: Endpoint) -> SigningSecrets:
    """The endpoint's secret as stored (current and previous); UsageError when it is missing or not a whsec_ one."""
    try:
        raw = client.get_secret_value(SecretId=endpoint.secret_id).get("SecretString")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise UsageError(f"secret {endpoint.secret_id!r} of endpoint {endpoint.name!r} does not exist") from None
        raise
    if not isinstance(raw, str):
        raise UsageError(f"secret {endpoint.secret_id!r} is binary, not a whsec_ SecretString")
    try:
        return parse_secret_string(raw)
    except SecretFormatError as error:
        raise UsageError(f"secret {endpoint.secret_id!r} is malformed: {error}") from None


def _print_rotated(
    ctx: typer.Context, endpoint: Endpoint, rotation: Rotation, *, written_at: datetime, json_flag: bool
) -> None:
    """The new secret, once, with when it signs alone and when the old one stops (warned if the write was slow)."""
    signs_from = format_instant(rotation.signs_from(written_at))
    expires = format_instant(rotation.previous_expires_at)
    if rotation.overlap(written_at) < timedelta(seconds=rotation.cache_ttl_s):
        report_error(f"the write took so long that both secrets sign only from {signs_from} until {expires}")
    data = {
        "endpoint": endpoint.name,
        "secret_id": endpoint.secret_id,
        "secret": rotation.secret,
        "signs_from": signs_from,
        "previous_expires_at": expires,
    }

    def render(console: Console) -> None:
        lines = [
            f"rotated the signing secret of {endpoint.name} ({endpoint.secret_id})",
            f"until {signs_from} some webhooks carry only the old secret's signature (functions cache secrets for "
            f"{rotation.cache_ttl_s:g} s)",
            f"from {signs_from} every webhook carries a signature by the new secret",
            f"until {expires} every webhook also carries one by the old secret",
            f"switch the receiver to the new secret between {signs_from} and {expires} (accepting both meanwhile)",
            "new signing secret (shown once, give it to the receiver now):",
            rotation.secret,
        ]
        for line in lines:
            console.print(line, markup=False)

    emit(ctx, data, render, json_flag=json_flag)
