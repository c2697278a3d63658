"""Create the translated template in moto's CloudFormation, then the resources its CloudFormation lacks."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookline_local.exceptions import DeployError
from hookline_local.workarounds import (
    OUTPUT_PREFIX,
    Handling,
    KeptOut,
    StackPlan,
    describe,
    fill_outputs,
    plan_stack,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hookline_local.template import TranslatedTemplate

__all__ = ["DeployError", "DeployedStack", "StackResource", "apply_property_overrides", "deploy_stack"]

_log = logging.getLogger("hookline.local")


@dataclass(frozen=True)
class StackResource:
    """One template resource and its physical id (moto's, or the local stand-in for kept-out resources)."""

    logical_id: str
    type: str
    physical_id: str
    handling: Handling


@dataclass(frozen=True)
class DeployedStack:
    """The stack as created: parameters, outputs, resources and the kept-out resources with resolved properties."""

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    resources: dict[str, StackResource]
    kept_out: dict[str, KeptOut]

    def physical_id(self, logical_id: str) -> str:
        """The physical id of a resource (KeyError if the template has none by that name)."""
        return self.resources[logical_id].physical_id

    def of_type(self, resource_type: str) -> list[StackResource]:
        """The created resources of one type."""
        return [item for item in self.resources.values() if item.type == resource_type]


def apply_property_overrides(template: dict[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of a translated template with some resources' Properties replaced key by key (tests, demo)."""
    result = copy.deepcopy(template)
    resources = result.get("Resources", {})
    for logical_id, properties in overrides.items():
        if logical_id not in resources:
            raise DeployError(f"property override for unknown resource {logical_id}")
        resources[logical_id].setdefault("Properties", {}).update(copy.deepcopy(dict(properties)))
    return result


def _coerce(value: Any, shape: Any) -> Any:
    """CloudFormation hands numbers and booleans around as strings; the API wants its own types."""
    type_name = getattr(shape, "type_name", "string")
    if type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {key: _coerce(item, members[key]) for key, item in value.items() if key in members}
    if type_name == "list" and isinstance(value, list):
        return [_coerce(item, shape.member) for item in value]
    if type_name in {"integer", "long"}:
        return int(float(value))
    if type_name in {"double", "float"}:
        return float(value)
    if type_name == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


def _api_params(client: Any, operation: str, properties: dict[str, Any]) -> dict[str, Any]:
    shape = client.meta.service_model.operation_model(operation).input_shape
    params: dict[str, Any] = _coerce(properties, shape)
    return params


def _create_alarm(item: KeptOut, properties: dict[str, Any], cloudwatch: Any) -> str:
    params = _api_params(cloudwatch, "PutMetricAlarm", {**properties, "AlarmName": item.name})
    cloudwatch.put_metric_alarm(**params)
    return item.name


def _create_subscription(item: KeptOut, properties: dict[str, Any], sns: Any) -> str:
    attributes = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in properties.items()
        if key in {"FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy"}
    }
    response = sns.subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties.get("Endpoint", ""),
        Attributes={
            key: str(value).lower() if key == "RawMessageDelivery" else value for key, value in attributes.items()
        },
        ReturnSubscriptionArn=True,
    )
    arn: str = response["SubscriptionArn"]
    return arn


def _stack_failure(cloudformation: Any, stack_name: str) -> str:
    try:
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    except Exception:  # noqa: BLE001 - only to enrich the error message
        return "no events"
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if "FAILED" in e["ResourceStatus"]
    ]
    return "; ".join(reasons) or "no failure events"


def _localize(node: Any, endpoint_url: str, region: str) -> Any:
    """Point queue URLs at the moto endpoint (its CloudFormation names them after the public SQS host)."""
    public = f"https://sqs.{region}.amazonaws.com/"
    if isinstance(node, str):
        return endpoint_url.rstrip("/") + "/" + node.removeprefix(public) if node.startswith(public) else node
    if isinstance(node, list):
        return [_localize(item, endpoint_url, region) for item in node]
    if isinstance(node, dict):
        return {key: _localize(value, endpoint_url, region) for key, value in node.items()}
    return node


def deploy_stack(
    translated: TranslatedTemplate,
    *,
    endpoint_url: str,
    stack_name: str,
    region: str,
    account_id: str,
    cloudformation: Any,
    cloudwatch: Any,
    sns: Any,
    property_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> DeployedStack:
    """Create the stack in moto (see workarounds.py for what is kept out) and return what was created."""
    template = apply_property_overrides(translated.template, property_overrides or {})
    plan: StackPlan = plan_stack(
        template, stack_name=stack_name, region=region, account_id=account_id, parameters=translated.parameters
    )
    _log.info("kept out of moto's CloudFormation: %s", describe(plan))
    declared = plan.moto_template.get("Parameters") or {}
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(plan.moto_template),
            Parameters=[
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in translated.parameters.items()
                if key in declared
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as exc:
        raise DeployError(f"moto could not create stack {stack_name}: {exc}") from exc
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {_stack_failure(cloudformation, stack_name)}")
    all_outputs = {
        o["OutputKey"]: _localize(str(o.get("OutputValue", "")), endpoint_url, region) for o in stack.get("Outputs", [])
    }
    outputs = {key: value for key, value in all_outputs.items() if key not in plan.extra_outputs}
    resources = {
        item["LogicalResourceId"]: StackResource(
            item["LogicalResourceId"],
            item["ResourceType"],
            _localize(item["PhysicalResourceId"], endpoint_url, region),
            Handling.MOTO,
        )
        for item in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    }
    kept_out: dict[str, KeptOut] = {}
    for logical_id, item in plan.kept_out.items():
        if item.condition_output is not None and all_outputs.get(item.condition_output) != "true":
            continue  # its Condition is false: CloudFormation would not create it either
        resource = dict(item.resource)
        try:
            resource["Properties"] = fill_outputs(resource.get("Properties", {}), all_outputs)
        except KeyError as exc:
            raise DeployError(f"{logical_id}: {exc}") from exc
        filled = KeptOut(item.logical_id, item.type, item.handling, item.name, item.arn, resource, None)
        kept_out[logical_id] = filled
        physical_id = item.ref()
        if item.handling is Handling.API:
            physical_id = _create_api_resource(filled, clients={"cloudwatch": cloudwatch, "sns": sns})
        resources[logical_id] = StackResource(logical_id, item.type, physical_id, item.handling)
    for item in list(kept_out.values()):
        # SAM renames layers (SharedLayer -> SharedLayer<hash>); keep the template's name as an alias too.
        content = item.resource.get("Properties", {}).get("Content")
        original = content.get("S3Key") if isinstance(content, dict) else None
        if isinstance(original, str) and original not in resources and original in translated.code_paths:
            resources[original] = StackResource(original, item.type, item.ref(), item.handling)
    if any(key.startswith(OUTPUT_PREFIX) for key in outputs):
        _log.warning("template outputs named %s* are reserved by the local stack", OUTPUT_PREFIX)
    return DeployedStack(stack_name, region, account_id, dict(translated.parameters), outputs, resources, kept_out)


# Types workarounds.py marks API: the creator and the client it needs.
_API_CREATORS: dict[str, tuple[str, Callable[[KeptOut, dict[str, Any], Any], str]]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch", _create_alarm),
    "AWS::SNS::Subscription": ("sns", _create_subscription),
}


def _create_api_resource(item: KeptOut, *, clients: Mapping[str, Any]) -> str:
    if item.type not in _API_CREATORS:
        raise DeployError(f"no API creator for {item.type} ({item.logical_id})")
    service, create = _API_CREATORS[item.type]
    try:
        return create(item, item.resource.get("Properties", {}), clients[service])
    except Exception as exc:
        raise DeployError(f"cannot create {item.logical_id} ({item.type}) through the API: {exc}") from exc
