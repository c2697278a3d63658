"""What the local stack needs beyond hookline itself (the `local` extra), checked before anything starts.

``hookline_local`` ships in the same distribution as the CLI, but moto's server and the SAM translator are heavy and
only needed offline, so they live in an optional dependency group: ``pip install 'hookline[local]'``. Importing
``hookline_local`` never needs them (they are imported where used); ``require_local_extra()`` turns their absence
into one clear error naming the extra, instead of a ModuleNotFoundError deep inside a start.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from hookline_local.exceptions import LocalExtraMissingError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["INSTALL_HINT", "LOCAL_EXTRA", "missing_requirements", "require_local_extra"]

LOCAL_EXTRA = "local"
INSTALL_HINT = f"pip install 'hookline[{LOCAL_EXTRA}]'"
# Import name -> the distribution (as the extra lists it) that provides it.
_REQUIRED: dict[str, str] = {
    "yaml": "PyYAML",
    "samtranslator": "aws-sam-translator",
    "moto": "moto[server]",
    "flask": "moto[server]",
    "flask_cors": "moto[server]",
}


def _importable(name: str, find_spec: Callable[[str], Any]) -> bool:
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):  # a finder may refuse outright; a broken install has no usable spec
        return False


def missing_requirements(*, find_spec: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """The distributions of the `local` extra that cannot be imported, sorted (empty when all are there)."""
    return sorted({dist for module, dist in _REQUIRED.items() if not _importable(module, find_spec)})


def require_local_extra(*, find_spec: Callable[[str], Any] = importlib.util.find_spec) -> None:
    """Raise LocalExtraMissingError, naming the extra and how to install it, unless every requirement imports."""
    missing = missing_requirements(find_spec=find_spec)
    if missing:
        raise LocalExtraMissingError(
            f"the embedded local stack needs the `{LOCAL_EXTRA}` extra ({', '.join(missing)} not installed): "
            f"{INSTALL_HINT}  (in a checkout of hookline: make venv)"
        )
