"""The shared layer ships only what the Lambda runtime lacks, and everything the layer's code imports.

requirements-layer.txt is what layers/shared/Makefile installs (--no-deps); requirements-runtime.txt is what the
python3.13 runtime provides. These tests read the installed metadata of the dev venv, which `make venv` constrains
to the layer's versions, so they need no network and no `sam build`.
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts.layer_requirements import (
    LAYER_REQUIREMENTS,
    RUNTIME_REQUIREMENTS,
    Pinned,
    canonical_name,
    parse_pins,
    read_pins,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
LAYER_SOURCES = ROOT / "layers" / "shared"
OWN_PACKAGES = frozenset({"hookline", "resilience"})
BOTO3_FAMILY = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"})

LAYER = read_pins(LAYER_REQUIREMENTS)
RUNTIME = read_pins(RUNTIME_REQUIREMENTS)
AVAILABLE = {**RUNTIME, **LAYER}


def test_the_layer_leaves_boto3_botocore_and_their_dependencies_to_the_runtime() -> None:
    assert LAYER, "requirements-layer.txt pins nothing"
    assert not BOTO3_FAMILY & LAYER.keys()
    assert RUNTIME.keys() >= BOTO3_FAMILY


def test_every_top_level_requirement_ships_at_its_pin() -> None:
    for name, version in read_pins(LAYER_SOURCES / "requirements.txt").items():
        assert AVAILABLE.get(name) == version, f"{name}=={version} is not in requirements-layer.txt at that version"


def _requested_extras() -> dict[str, set[str]]:
    extras: dict[str, set[str]] = {}
    for line in (LAYER_SOURCES / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line.split("#", 1)[0].strip())
            extras.setdefault(canonical_name(requirement.name), set()).update(requirement.extras)
    return extras


@pytest.mark.parametrize("name", sorted(LAYER))
def test_every_dependency_of_a_shipped_package_ships_or_comes_with_the_runtime(name: str) -> None:
    extras = _requested_extras().get(name, set())
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        wanted = any(
            requirement.marker is None or requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
        )
        if not wanted:
            continue
        dependency = canonical_name(requirement.name)
        assert dependency in AVAILABLE, f"{name} needs {requirement}, which neither the layer nor the runtime has"
        assert requirement.specifier.contains(AVAILABLE[dependency], prereleases=True), (
            f"{name} needs {requirement}; the layer/runtime has {dependency}=={AVAILABLE[dependency]}"
        )


def test_the_dev_venv_runs_the_versions_the_layer_ships() -> None:
    installed = {name: metadata.version(name) for name in LAYER}
    assert installed == LAYER, "run `make venv` (the venv is constrained to requirements-layer.txt)"


def _runtime_imports(path: Path) -> set[str]:
    """Top-level modules a file imports when it runs (imports under ``if TYPE_CHECKING:`` never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for statement in node.body for child in ast.walk(statement))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def test_every_module_the_functions_and_the_layer_import_is_shipped_or_in_the_runtime() -> None:
    sources = [*LAYER_SOURCES.rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]
    imported = set().union(*(_runtime_imports(path) for path in sources))
    providers = metadata.packages_distributions()
    missing = {
        module: providers.get(module, ["<no installed distribution>"])
        for module in imported - OWN_PACKAGES - sys.stdlib_module_names
        if not {canonical_name(dist) for dist in providers.get(module, [])} & AVAILABLE.keys()
    }
    assert not missing, f"imported by the layer or a function but shipped by neither it nor the runtime: {missing}"


def test_runtime_imports_skip_type_checking_blocks(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nimport httpx.x\nfrom . import sibling\n"
        "if TYPE_CHECKING:\n    import mypy_boto3_sqs\n\ndef lazy():\n    from anyio import to_thread\n"
    )
    assert _runtime_imports(source) == {"typing", "httpx", "anyio"}


def test_rendered_requirements_read_back_as_the_same_pins() -> None:
    pins = [Pinned("wrapt", "2.5.2", "ab" * 32), Pinned("anyio", "4.16.0", "cd" * 32)]
    text = render(pins)
    assert parse_pins(text) == {"anyio": "4.16.0", "wrapt": "2.5.2"}
    assert text.index("anyio==") < text.index("wrapt==")
    assert f"--hash=sha256:{'ab' * 32}" in text
