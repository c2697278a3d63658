"""Without the `local` extra, `hookline local up` and `hookline demo` name it and exit 1: no traceback, nothing started.

A plain ``pip install .`` has no moto[server], aws-sam-translator or PyYAML. Here the CLI runs in a child process
whose import system refuses those packages (a finder injected at the head of ``sys.meta_path``), exactly as if
they were not installed; nothing is uninstalled and the test process's own imports are untouched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hookline_local import INSTALL_HINT, LocalExtraMissingError, LocalStackError, require_local_extra
from hookline_local.requirements import missing_requirements
from tests.support.aws import child_environ

ROOT = Path(__file__).resolve().parents[2]

# Runs `hookline ARGS` with the top-level packages named in HOOKLINE_TEST_MISSING made unimportable.
_WITHOUT_PACKAGES = """
import os, sys
from importlib.abc import MetaPathFinder

missing = set(os.environ["HOOKLINE_TEST_MISSING"].split(","))

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv[0] = "hookline"
from hookline_cli.main import main
main()
"""


def _hookline_without(missing: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = child_environ()
    env["HOOKLINE_TEST_MISSING"] = missing
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_PACKAGES, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with this repo's template and code (anything written lands in tmp)."""
    for name in ("template.yaml", "functions", "layers"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@pytest.mark.parametrize(
    ("missing", "named"),
    [("samtranslator", "aws-sam-translator"), ("moto,flask", "moto[server]"), ("yaml", "PyYAML")],
)
def test_local_up_without_the_extra_names_it_and_exits_1(project: Path, missing: str, named: str) -> None:
    result = _hookline_without(missing, "local", "up", "--root", str(project), cwd=project)
    assert result.returncode == 1, result.stderr
    assert INSTALL_HINT in result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert not (project / ".hookline").exists()


def test_demo_without_the_extra_names_it_and_exits_1(project: Path) -> None:
    result = _hookline_without("samtranslator,moto", "demo", "--root", str(project), cwd=project)
    assert result.returncode == 1, result.stderr
    assert INSTALL_HINT in result.stderr
    assert "aws-sam-translator, moto[server]" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (project / ".hookline").exists()


def test_other_commands_work_without_the_extra(project: Path) -> None:
    result = _hookline_without("samtranslator,moto,yaml,flask", "verify", "--help", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def _find_spec_without(*names: str) -> Any:
    def find_spec(name: str) -> object | None:
        return None if name in names else object()

    return find_spec


def test_missing_requirements_lists_each_distribution_once() -> None:
    assert missing_requirements(find_spec=_find_spec_without()) == []
    assert missing_requirements(find_spec=_find_spec_without("flask", "flask_cors")) == ["moto[server]"]
    assert missing_requirements(find_spec=_find_spec_without("yaml", "moto")) == ["PyYAML", "moto[server]"]


def test_a_finder_that_refuses_counts_as_missing() -> None:
    def refusing(name: str) -> object:
        if name == "samtranslator":
            raise ModuleNotFoundError(name)
        return object()

    with pytest.raises(LocalExtraMissingError) as caught:
        require_local_extra(find_spec=refusing)
    assert isinstance(caught.value, LocalStackError) and isinstance(caught.value, ImportError)
    assert "aws-sam-translator" in str(caught.value) and INSTALL_HINT in str(caught.value)
