"""``hookline verify``: check a received webhook's Standard Webhooks signature, as a receiver would."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hookline.exceptions import SecretFormatError, SignatureVerificationError
from hookline.signing import DEFAULT_TOLERANCE_S, as_signing_secrets, verify_standard
from hookline_cli.inputs import read_value
from hookline_cli.output import EXIT_FAILURE, UsageError, cli_errors
from hookline_cli.resources import get_resources

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SECRET_ENV", "verify"]

SECRET_ENV = "HOOKLINE_SECRET"


def _secret(value: str | None, environ: Mapping[str, str]) -> str:
    if value is None:
        value = environ.get(SECRET_ENV)
        if not value:
            raise UsageError(f"no signing secret: pass --secret @FILE or set {SECRET_ENV}")
        return value
    if value == "@-":
        raise UsageError("--secret cannot be read from stdin; use @FILE or the HOOKLINE_SECRET variable")
    return read_value(value, label="--secret").decode("utf-8", errors="replace")


@cli_errors
def verify(  # noqa: PLR0913 - Typer command: one parameter per CLI option
    ctx: typer.Context,
    *,
    webhook_id: Annotated[str, typer.Option("--id", help="The webhook-id header.")],
    timestamp: Annotated[str, typer.Option("--timestamp", help="The webhook-timestamp header (unix seconds).")],
    signature: Annotated[str, typer.Option("--signature", help="The webhook-signature header.")],
    body: Annotated[str, typer.Option("--body", help="The raw request body: @FILE, @- for stdin, or the text.")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help=f"whsec_ secret, rotation JSON or a plain secret (8+ characters, as given to in-process delivery): "
            f"@FILE (keeps it out of shell history) or the value; default ${SECRET_ENV}.",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Accepted clock difference in seconds.", min=0)
    ] = DEFAULT_TOLERANCE_S,
) -> None:
    """Verify a webhook's signature: prints "valid" (exit 0) or why it is not (exit 1)."""
    resources = get_resources(ctx)
    try:
        # Surrounding whitespace (the newline at the end of a secret file) is never part of the secret.
        secrets = as_signing_secrets(_secret(secret, resources.environ).strip())
        payload = read_value(body, label="--body")
        verify_standard(
            secrets, webhook_id, timestamp, payload, signature, now=resources.clock(), tolerance_s=tolerance
        )
    except SecretFormatError as error:
        raise UsageError(f"the signing secret is malformed: {error}") from None
    except SignatureVerificationError as error:
        typer.echo(f"invalid: {error}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo("valid")
