"""Walk and rewrite CloudFormation intrinsic functions (Ref, Fn::GetAtt, Fn::Sub) in a parsed template."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["Resolver", "is_intrinsic", "references", "resolve_pseudo", "substitute"]

# Resolver(logical_id, attribute or None) -> replacement string, or None to leave the reference alone.
type Resolver = Callable[[str, str | None], str | None]

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def is_intrinsic(node: Any) -> bool:
    """True for a one-key dict that is an intrinsic function (Ref, Condition or Fn::*)."""
    if not isinstance(node, dict) or len(node) != 1:
        return False
    key = next(iter(node))
    return key in {"Ref", "Condition"} or key.startswith("Fn::")


def _getatt_parts(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and "." in value:
        logical_id, attribute = value.split(".", 1)
        return logical_id, attribute
    if isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value):
        return value[0], value[1]
    return None


def _sub_names(template: str) -> Iterator[tuple[str, str | None]]:
    for match in _SUB_VARIABLE.finditer(template):
        name = match.group(1).strip()
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            yield logical_id, attribute
        else:
            yield name, None


def references(node: Any) -> set[str]:
    """Every logical id or parameter name that ``node`` refers to (pseudo parameters AWS::* excluded)."""
    found: set[str] = set()

    def visit(item: Any) -> None:
        if isinstance(item, list):
            for element in item:
                visit(element)
            return
        if not isinstance(item, dict):
            return
        if is_intrinsic(item):
            key, value = next(iter(item.items()))
            if key == "Ref" and isinstance(value, str):
                found.add(value)
                return
            if key == "Fn::GetAtt" and (parts := _getatt_parts(value)):
                found.add(parts[0])
                return
            if key == "Fn::Sub":
                template, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                local = set(variables) if isinstance(variables, dict) else set()
                if isinstance(template, str):
                    found.update(name for name, _ in _sub_names(template) if name not in local)
                visit(variables)
                return
        for child in item.values():
            visit(child)

    visit(node)
    return {name for name in found if not name.startswith("AWS::")}


def substitute(node: Any, resolver: Resolver) -> Any:
    """A copy of ``node`` with every Ref/GetAtt/${...} that ``resolver`` knows replaced by its string value."""
    if isinstance(node, list):
        return [substitute(element, resolver) for element in node]
    if not isinstance(node, dict):
        return node
    if is_intrinsic(node):
        key, value = next(iter(node.items()))
        if key == "Ref" and isinstance(value, str):
            replacement = resolver(value, None)
            return node if replacement is None else replacement
        if key == "Fn::GetAtt" and (parts := _getatt_parts(value)):
            replacement = resolver(*parts)
            return node if replacement is None else replacement
        if key == "Fn::Sub":
            return _substitute_sub(value, resolver)
    return {key: substitute(child, resolver) for key, child in node.items()}


def _substitute_sub(value: Any, resolver: Resolver) -> Any:
    template, variables = (value[0], value[1]) if isinstance(value, list) else (value, None)
    if not isinstance(template, str):
        return {"Fn::Sub": substitute(value, resolver)}
    local = set(variables) if isinstance(variables, dict) else set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        logical_id, _, attribute = name.partition(".")
        if logical_id in local:
            return match.group(0)
        replacement = resolver(logical_id, attribute or None)
        # A literal may itself contain "${": escape it the way Fn::Sub does ("${!").
        return match.group(0) if replacement is None else replacement.replace("${", "${!")

    rewritten = _SUB_VARIABLE.sub(replace, template)
    if variables is None:
        # Nothing left to substitute: the value is the plain string.
        return {"Fn::Sub": rewritten} if _SUB_VARIABLE.search(rewritten) else rewritten.replace("${!", "${")
    return {"Fn::Sub": [rewritten, substitute(variables, resolver)]}


def resolve_pseudo(node: Any, values: dict[str, str]) -> Any:
    """Resolve Refs and ${...} that name entries of ``values`` (pseudo parameters, parameters); the rest stays."""

    def resolver(name: str, attribute: str | None) -> str | None:
        return values.get(name) if attribute is None else None

    return substitute(node, resolver)
