"""pyproject.toml builds without setuptools deprecation warnings (they scroll past every `make venv`)."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_project_metadata_applies_without_deprecation_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distribution = apply_configuration(Distribution(), PYPROJECT)

    assert [str(warning.message).splitlines()[0] for warning in caught] == []
    assert distribution.metadata.license_expression == "Apache-2.0"  # type: ignore[attr-defined]


def test_the_build_requires_a_setuptools_that_reads_spdx_licenses() -> None:
    requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["build-system"]["requires"]

    assert "setuptools>=77" in requires
