"""One Architecture parameter drives both functions and the shared layer; the layer is a makefile build."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.template import load_template, properties, resource

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = {"Ref": "Architecture"}


def test_architecture_parameter_defaults_to_arm64() -> None:
    parameter = load_template()["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64"
    assert parameter["AllowedValues"] == ["arm64", "x86_64"]


def test_every_function_runs_on_the_parameter_architecture() -> None:
    template = load_template()
    assert template["Globals"]["Function"]["Architectures"] == [ARCHITECTURE]
    functions = [name for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"]
    assert functions
    for name in functions:
        assert "Architectures" not in properties(name), f"{name} overrides the Architecture parameter"


def test_the_layer_is_built_and_declared_for_the_parameter_architecture() -> None:
    layer = resource("SharedLayer")
    assert layer["Properties"]["CompatibleArchitectures"] == [ARCHITECTURE]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": ARCHITECTURE}


def test_the_layer_makefile_has_the_target_sam_build_runs() -> None:
    makefile = (ROOT / properties("SharedLayer")["ContentUri"] / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^build-SharedLayer:", makefile, re.MULTILINE)
    assert "--no-deps" in makefile
    assert "requirements-layer.txt" in makefile
