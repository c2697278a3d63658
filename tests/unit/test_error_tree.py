"""One error tree: every public error of the hookline package derives from HooklineError and is drawn once."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import hookline
import hookline.exceptions
from hookline.exceptions import HooklineError


def _public_errors() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(hookline.__path__, "hookline."):
        module = importlib.import_module(module_info.name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, Exception) and name.endswith("Error"):
                found[name] = value
    return found


ERRORS = _public_errors()
BRANCHES = {name: error for name, error in ERRORS.items() if error is not HooklineError}


def test_the_tree_covers_the_registry_secrets_messages_settings_and_delivery() -> None:
    expected = {"RegistryError", "SecretError", "MessageError", "PlanError", "SettingsError", "DeliveryFailedError"}
    assert expected <= set(ERRORS)


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_every_public_error_is_under_the_root_and_drawn_in_the_tree(name: str) -> None:
    assert issubclass(BRANCHES[name], HooklineError)
    assert f"-- {name} " in (hookline.exceptions.__doc__ or "")


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("MessageError", ValueError),
        ("PlanError", ValueError),
        ("SettingsError", ValueError),
        ("RegistryItemError", ValueError),
        ("EndpointNotFoundError", LookupError),
        ("TargetRefusedError", ValueError),
        ("SecretFormatError", ValueError),
    ],
)
def test_builtin_bases_callers_rely_on_are_kept(name: str, builtin: type[Exception]) -> None:
    assert issubclass(ERRORS[name], builtin)
