"""The one place that decides which template resources moto's CloudFormation creates, and what happens to the rest.

Everything here is data keyed by resource Type, so new resources in template.yaml need no code change:

* ``MOTO``: created by moto's CloudFormation (tables, queues with redrive, topics, dashboards, log groups ...).
  This is the default for any type not listed.
* ``LOCAL``: kept out of moto and emulated by the local stack. Lambda functions and layers run as local worker
  processes; event source mappings are emulated (moto would run them itself through Docker and consume the queue);
  EventBridge rules and Scheduler schedules that target a function are run by the schedule emulator.
* ``SUPPORT``: kept out of moto when every resource that uses it is kept out (the functions' execution roles and
  the scheduler's invoke role); kept when anything else uses it.
* ``API``: moto's CloudFormation lacks the type but moto's API has it, so it is created through the API once the
  stack exists (CloudWatch alarms, SNS subscriptions).

``PROPERTY_GAPS`` lists properties moto's CloudFormation accepts but ignores; they are applied through the API after
the stack is created (a table's TimeToLiveSpecification).

Refs and GetAtts to a resource kept out of moto are replaced by stand-in names and ARNs (the same ones the local
stack then uses, e.g. as the Lambda context's function name). Intrinsics inside kept-out resources that need
moto's answer (a queue's ARN, a table's name) become extra stack outputs that moto resolves for us.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hookline_local.intrinsics import Resolver, is_intrinsic, references, resolve_pseudo, substitute

__all__ = [
    "OUTPUT_PREFIX",
    "PROPERTY_GAPS",
    "RESOURCE_HANDLING",
    "Handling",
    "KeptOut",
    "StackPlan",
    "describe",
    "fill_outputs",
    "handling_for",
    "plan_stack",
]

OUTPUT_PREFIX = "HooklineLocal"
_PLACEHOLDER = "__hookline_output__"


class Handling(StrEnum):
    """What the local stack does with a resource type."""

    MOTO = "moto"
    LOCAL = "local"
    SUPPORT = "support"
    API = "api"


RESOURCE_HANDLING: dict[str, Handling] = {
    "AWS::Lambda::Function": Handling.LOCAL,
    "AWS::Lambda::LayerVersion": Handling.LOCAL,
    "AWS::Lambda::LayerVersionPermission": Handling.LOCAL,
    "AWS::Lambda::EventSourceMapping": Handling.LOCAL,
    "AWS::Lambda::Permission": Handling.LOCAL,
    "AWS::Lambda::Version": Handling.LOCAL,
    "AWS::Lambda::Alias": Handling.LOCAL,
    "AWS::Lambda::EventInvokeConfig": Handling.LOCAL,
    "AWS::Lambda::Url": Handling.LOCAL,
    "AWS::Events::Rule": Handling.LOCAL,
    "AWS::Scheduler::Schedule": Handling.LOCAL,
    "AWS::Scheduler::ScheduleGroup": Handling.LOCAL,
    "AWS::CodeDeploy::Application": Handling.LOCAL,
    "AWS::CodeDeploy::DeploymentGroup": Handling.LOCAL,
    "AWS::IAM::Role": Handling.SUPPORT,
    "AWS::IAM::Policy": Handling.SUPPORT,
    "AWS::IAM::ManagedPolicy": Handling.SUPPORT,
    "AWS::CloudWatch::Alarm": Handling.API,
    "AWS::SNS::Subscription": Handling.API,
}

# Resource type -> properties moto's CloudFormation ignores; deploy.py applies them through the API.
PROPERTY_GAPS: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("TimeToLiveSpecification",),
}

# Stand-ins for resources kept out of moto: (name property, Ref returns, {attribute: value}) with {name}, {arn},
# {region}, {account} filled in. The ARN formats are the real services' formats.
_ARN_FORMAT: dict[str, str] = {
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::LayerVersion": "arn:aws:lambda:{region}:{account}:layer:{name}:1",
    "AWS::Lambda::Version": "arn:aws:lambda:{region}:{account}:function:{name}:1",
    "AWS::Lambda::Alias": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Url": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Scheduler::Schedule": "arn:aws:scheduler:{region}:{account}:schedule/default/{name}",
    "AWS::Scheduler::ScheduleGroup": "arn:aws:scheduler:{region}:{account}:schedule-group/{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::SNS::Subscription": "arn:aws:sns:{region}:{account}:{name}",
}
_NAME_PROPERTY: dict[str, str] = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": "PolicyName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}
_REF_RETURNS_ARN = {
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Version",
    "AWS::IAM::ManagedPolicy",
    "AWS::SNS::Subscription",
}


@dataclass(frozen=True)
class KeptOut:
    """A resource moto's CloudFormation does not create; its properties hold placeholders until fill_outputs."""

    logical_id: str
    type: str
    handling: Handling
    name: str
    arn: str
    resource: dict[str, Any]
    condition_output: str | None = None

    def ref(self) -> str:
        """What Ref returns for this resource."""
        return self.arn if self.type in _REF_RETURNS_ARN else self.name

    def attribute(self, attribute: str) -> str:
        """What Fn::GetAtt returns for this resource (Arn and the name attributes)."""
        if attribute == "Arn" or attribute.endswith("Arn"):
            return self.arn
        if attribute in {"Name", "RoleId", "Id", "FunctionName", "LayerName", "PolicyId"}:
            return self.name
        raise ValueError(f"the local stack has no value for {self.logical_id}.{attribute} ({self.type})")


@dataclass(frozen=True)
class StackPlan:
    """The template moto creates, the resources kept out of it, and the extra outputs they need from moto."""

    moto_template: dict[str, Any]
    kept_out: dict[str, KeptOut]
    extra_outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[KeptOut]:
        """The kept-out resources of one type, in template order."""
        return [item for item in self.kept_out.values() if item.type == resource_type]


def handling_for(resource_type: str) -> Handling:
    """How the local stack handles a resource type (MOTO unless listed)."""
    return RESOURCE_HANDLING.get(resource_type, Handling.MOTO)


def _referrers(resources: dict[str, Any], outputs: dict[str, Any]) -> dict[str, set[str]]:
    referrers: dict[str, set[str]] = {logical_id: set() for logical_id in resources}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        used = references(resource.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)
        for target in used & referrers.keys():
            referrers[target].add(logical_id)
    for key, output in outputs.items():
        for target in references(output) & referrers.keys():
            referrers[target].add(f"Outputs.{key}")
    return referrers


def _kept_out_ids(resources: dict[str, Any], outputs: dict[str, Any]) -> set[str]:
    kept_out = {lid for lid, res in resources.items() if handling_for(res.get("Type", "")) is not Handling.MOTO}
    support = {lid for lid in kept_out if handling_for(resources[lid]["Type"]) is Handling.SUPPORT}
    emulated = kept_out - support - {lid for lid in kept_out if handling_for(resources[lid]["Type"]) is Handling.API}
    referrers = _referrers(resources, outputs)
    dropped = set(emulated)
    changed = True
    while changed:  # a role used only by a dropped policy is dropped too
        changed = False
        for logical_id in support - dropped:
            users = referrers[logical_id]
            if users and users <= dropped:
                dropped.add(logical_id)
                changed = True
    return kept_out - (support - dropped)


def _stand_in_name(logical_id: str, resource: dict[str, Any], stack_name: str, values: dict[str, str]) -> str:
    prop = _NAME_PROPERTY.get(resource.get("Type", ""))
    declared = resolve_pseudo(resource.get("Properties", {}).get(prop), values) if prop else None
    return declared if isinstance(declared, str) and declared else f"{stack_name}-{logical_id}"


def _stand_ins(
    resources: dict[str, Any], kept_ids: set[str], values: dict[str, str], *, stack_name: str
) -> dict[str, KeptOut]:
    """Names and ARNs for the kept-out resources (the real services' formats), properties not yet filled."""
    stand_ins: dict[str, KeptOut] = {}
    for logical_id in kept_ids:
        resource = resources[logical_id]
        resource_type = resource["Type"]
        name = _stand_in_name(logical_id, resource, stack_name, values)
        arn_format = _ARN_FORMAT.get(resource_type, "arn:aws:local:{region}:{account}:{name}")
        arn = arn_format.format(region=values["AWS::Region"], account=values["AWS::AccountId"], name=name)
        stand_ins[logical_id] = KeptOut(logical_id, resource_type, handling_for(resource_type), name, arn, {})
    return stand_ins


class _ExtraOutputs:
    """Intrinsics in kept-out resources that only moto can resolve, turned into extra stack outputs (deduplicated)."""

    def __init__(self) -> None:
        self.expressions: dict[str, Any] = {}

    def __call__(self, expression: Any) -> dict[str, str]:
        """The placeholder standing for ``expression`` until fill_outputs replaces it with moto's answer."""
        for existing, value in self.expressions.items():
            if value == expression:
                return {_PLACEHOLDER: existing}
        key = f"{OUTPUT_PREFIX}{len(self.expressions)}"
        self.expressions[key] = expression
        return {_PLACEHOLDER: key}


def _moto_resources(resources: dict[str, Any], kept_ids: set[str], stand_in: Resolver) -> dict[str, Any]:
    """The resources moto creates, references to kept-out ones replaced, DependsOn on them dropped."""
    moto_resources: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if logical_id in kept_ids:
            continue
        kept = substitute(copy.deepcopy(resource), stand_in)
        depends = kept.get("DependsOn")
        if depends is not None:
            remaining = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in kept_ids]
            if remaining:
                kept["DependsOn"] = remaining
            else:
                del kept["DependsOn"]
        moto_resources[logical_id] = kept
    return moto_resources


def plan_stack(
    template: dict[str, Any], *, stack_name: str, region: str, account_id: str, parameters: dict[str, str]
) -> StackPlan:
    """Split a translated template into what moto creates and what the local stack handles (see module doc)."""
    resources: dict[str, Any] = template.get("Resources", {})
    outputs: dict[str, Any] = template.get("Outputs", {}) or {}
    kept_ids = _kept_out_ids(resources, outputs)
    values = {**parameters, "AWS::Region": region, "AWS::AccountId": account_id, "AWS::StackName": stack_name}
    values |= {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    stand_ins = _stand_ins(resources, kept_ids, values, stack_name=stack_name)

    def stand_in(logical_id: str, attribute: str | None) -> str | None:
        item = stand_ins.get(logical_id)
        if item is None:
            return None
        return item.ref() if attribute is None else item.attribute(attribute)

    to_output = _ExtraOutputs()
    kept_out: dict[str, KeptOut] = {}
    for logical_id, item in stand_ins.items():
        resource = resolve_pseudo(substitute(copy.deepcopy(resources[logical_id]), stand_in), values)
        condition = resource.get("Condition")
        condition_output = None
        if isinstance(condition, str):
            condition_output = to_output({"Fn::If": [condition, "true", "false"]})[_PLACEHOLDER]
        resource["Properties"] = _extract(resource.get("Properties", {}), to_output)
        kept_out[logical_id] = KeptOut(
            logical_id, item.type, item.handling, item.name, item.arn, resource, condition_output
        )
    moto_template = {key: value for key, value in template.items() if key not in {"Resources", "Outputs", "Transform"}}
    moto_template["Resources"] = _moto_resources(resources, kept_ids, stand_in)
    moto_outputs = {key: substitute(copy.deepcopy(value), stand_in) for key, value in outputs.items()}
    moto_outputs |= {key: {"Value": expression} for key, expression in to_output.expressions.items()}
    moto_template["Outputs"] = moto_outputs
    return StackPlan(moto_template, kept_out, to_output.expressions)


def _extract(node: Any, to_output: Any) -> Any:
    if isinstance(node, list):
        return [_extract(element, to_output) for element in node]
    if not isinstance(node, dict):
        return node
    if is_intrinsic(node):
        return to_output(node)
    return {key: _extract(value, to_output) for key, value in node.items()}


def fill_outputs(node: Any, outputs: dict[str, str]) -> Any:
    """Replace the placeholders left by plan_stack with the values moto resolved for them."""
    if isinstance(node, list):
        return [fill_outputs(element, outputs) for element in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {_PLACEHOLDER}:
        key = node[_PLACEHOLDER]
        if key not in outputs:
            raise KeyError(f"moto did not resolve {key}")
        return outputs[key]
    return {key: fill_outputs(value, outputs) for key, value in node.items()}


def describe(plan: StackPlan) -> str:
    """A one-line summary of what was kept out of moto (for the local stack's log)."""
    summary = {item.logical_id: f"{item.type} ({item.handling})" for item in plan.kept_out.values()}
    return json.dumps(summary, sort_keys=True)
