"""Read template.yaml and translate it with aws-sam-translator, offline, keeping track of local code paths."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3

from hookline_local.exceptions import TemplateError
from hookline_local.intrinsics import references

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "SqsSource",
    "TemplateError",
    "TranslatedTemplate",
    "load_template",
    "parameter_values",
    "sqs_event_sources",
    "translate",
]

# Local CodeUri/ContentUri are swapped for s3://<_LOCAL_BUCKET>/<logical id> before translation (the translator only
# accepts S3 locations, like `sam validate` does) and mapped back to their directories afterwards.
_LOCAL_BUCKET = "hookline-local"
_CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


@cache
def _cfn_loader() -> Any:
    """A YAML loader that understands CloudFormation short-form intrinsics (!Ref, !GetAtt, !Sub ...).

    Built on first use: PyYAML comes with the `local` extra, and importing this module must not need it.
    """
    import yaml  # type: ignore[import-untyped]

    class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
        """SafeLoader plus the ``!`` tags, as their long-form dicts."""

    def intrinsic(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag_suffix == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    CfnLoader.add_multi_constructor("!", intrinsic)
    return CfnLoader


def load_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template (YAML or JSON), intrinsics in their long form."""
    import yaml

    try:
        with path.open(encoding="utf-8") as handle:
            template = yaml.load(handle, Loader=_cfn_loader())  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def parameter_values(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The template's parameter defaults with ``overrides`` applied; unknown or missing parameters raise."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameters: {', '.join(unknown)} (declared: {', '.join(declared)})")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            default = spec["Default"]
            values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            raise TemplateError(f"template parameter {name} has no default: pass a value for it")
    return values


class SqsSource(NamedTuple):
    """A queue that feeds a function (an SQS event source of the template), by logical ids."""

    queue: str
    function: str


def _getatt_target(value: Any) -> str | None:
    """The logical id in ``{"Fn::GetAtt": [Id, "Arn"]}`` or ``{"Ref": Id}``."""
    if isinstance(value, dict) and len(value) == 1:
        key, target = next(iter(value.items()))
        if key == "Fn::GetAtt":
            target = target.split(".", 1)[0] if isinstance(target, str) else target[0]
        if key in {"Fn::GetAtt", "Ref"} and isinstance(target, str):
            return target
    return None


def sqs_event_sources(template: dict[str, Any]) -> list[SqsSource]:
    """Every queue -> function pair the template declares: SAM ``Events`` of type SQS and EventSourceMappings."""
    resources: dict[str, Any] = template.get("Resources") or {}
    pairs: list[tuple[str | None, str | None]] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            events = (properties.get("Events") or {}).values()
            pairs += [(_getatt_target((e.get("Properties") or {}).get("Queue")), logical_id) for e in events]
        elif resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            pairs.append(
                (_getatt_target(properties.get("EventSourceArn")), _getatt_target(properties.get("FunctionName")))
            )
    return [
        SqsSource(queue, function)
        for queue, function in pairs
        if queue is not None and function is not None and resources.get(queue, {}).get("Type") == "AWS::SQS::Queue"
    ]


@dataclass(frozen=True)
class TranslatedTemplate:
    """Plain CloudFormation (SAM resources expanded) and the local directories behind its code locations."""

    template: dict[str, Any]
    parameters: dict[str, str]
    code_paths: dict[str, Path]

    def only(self, logical_ids: Iterable[str]) -> TranslatedTemplate:
        """The same template with only these resources and what they need (Ref, GetAtt, Sub, DependsOn), and the
        outputs that refer to nothing else: how tests create a few tables or queues exactly as the stack has them."""
        resources: dict[str, Any] = self.template.get("Resources", {})
        wanted = list(logical_ids)
        unknown = sorted(set(wanted) - set(resources))
        if unknown:
            raise TemplateError(f"the template has no resources {', '.join(unknown)}")
        kept: set[str] = set()
        while wanted:
            logical_id = wanted.pop()
            if logical_id in kept:
                continue
            kept.add(logical_id)
            resource = resources[logical_id]
            depends = resource.get("DependsOn", [])
            needed = references(resource) | set([depends] if isinstance(depends, str) else depends)
            wanted.extend(needed & resources.keys())
        outputs = {
            key: output
            for key, output in (self.template.get("Outputs") or {}).items()
            if references(output) & resources.keys() <= kept
        }
        template = {**self.template, "Resources": {k: v for k, v in resources.items() if k in kept}, "Outputs": outputs}
        return TranslatedTemplate(template, self.parameters, self.code_paths)

    def local_code_path(self, location: Any) -> Path | None:
        """The directory behind a translated Code/Content location ({S3Bucket, S3Key}), if it was a local path."""
        if isinstance(location, dict) and location.get("S3Bucket") == _LOCAL_BUCKET:
            return self.code_paths.get(str(location.get("S3Key")))
        return None


def _swap_local_uris(template: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    code_paths: dict[str, Path] = {}
    for logical_id, resource in template["Resources"].items():
        prop = _CODE_PROPERTY.get(resource.get("Type", ""))
        if prop is None:
            continue
        properties = resource.setdefault("Properties", {})
        if "InlineCode" in properties:
            continue
        uri = properties.get(prop, globals_function.get(prop, ".") if prop == "CodeUri" else None)
        if isinstance(uri, str) and not uri.startswith("s3://"):
            code_paths[logical_id] = (base_dir / uri).resolve()
            properties[prop] = f"s3://{_LOCAL_BUCKET}/{logical_id}"
    return code_paths


def translate(  # noqa: PLR0913 - the stack identity to translate for, each a keyword with a default
    template: dict[str, Any],
    *,
    base_dir: Path,
    parameters: dict[str, str] | None = None,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    stack_name: str = "hookline-local",
) -> TranslatedTemplate:
    """Expand the SAM transform offline (bundled managed-policy map, no AWS call) and return plain CloudFormation."""
    from samtranslator.model.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    sam_template = copy.deepcopy(template)
    values = parameter_values(sam_template, parameters)
    code_paths = _swap_local_uris(sam_template, base_dir)
    if "Transform" not in sam_template:
        return TranslatedTemplate(sam_template, values, code_paths)
    # The session only answers "which region"; it never makes a request.
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    pseudo = {"AWS::Region": region, "AWS::AccountId": account_id, "AWS::StackName": stack_name}
    try:
        translated = Translator(None, Parser(), boto_session=session).translate(
            sam_template, {**values, **pseudo}, get_managed_policy_map=dict
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"SAM translation failed: {causes}") from exc
    return TranslatedTemplate(translated, values, code_paths)
