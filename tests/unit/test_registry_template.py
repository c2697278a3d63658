"""What template.yaml publishes for registry writers: the signing-secret prefix in force (docs/contracts.md)."""

from __future__ import annotations

from hookline.registry import DEFAULT_SECRET_PREFIX
from hookline_cli.resources import OUTPUT_KEYS
from tests.support.template import load_template, parameter_default


def test_signing_secret_prefix_is_a_stack_output_the_cli_reads() -> None:
    outputs = load_template()["Outputs"]
    assert outputs["SigningSecretPrefix"]["Value"] == {"Ref": "SigningSecretPrefix"}
    assert OUTPUT_KEYS["signing_secret_prefix"] == "SigningSecretPrefix"


def test_the_code_default_is_the_parameter_default() -> None:
    """Stacks that predate the output were deployed with the parameter's default; the CLI falls back to it."""
    assert parameter_default("SigningSecretPrefix") == DEFAULT_SECRET_PREFIX
