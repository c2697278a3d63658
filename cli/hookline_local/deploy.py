"""Create the translated template in moto's CloudFormation, then the resources its CloudFormation lacks."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookline_local.clients import ACCOUNT_ID
from hookline_local.exceptions import DeployError
from hookline_local.workarounds import (
    OUTPUT_PREFIX,
    PROPERTY_GAPS,
    Handling,
    KeptOut,
    StackPlan,
    describe,
    fill_outputs,
    plan_stack,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from hookline_local.template import TranslatedTemplate

__all__ = [
    "ClientFactory",
    "DeployError",
    "DeployedStack",
    "StackResource",
    "StackTarget",
    "apply_property_overrides",
    "deploy_stack",
]

type ClientFactory = Callable[[str], Any]
"""service name -> a boto3 client bound to the moto that receives the stack."""

_log = logging.getLogger("hookline.local")


@dataclass(frozen=True)
class StackTarget:
    """Where a stack is created: its name, region and account, and moto's URL (None: moto in-process, mock_aws)."""

    stack_name: str
    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    endpoint_url: str | None = None


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


def _localize(node: Any, target: StackTarget) -> Any:
    """Point queue URLs at the moto endpoint (its CloudFormation names them after the public SQS host)."""
    if target.endpoint_url is None:
        return node  # in-process moto answers the public host itself
    public = f"https://sqs.{target.region}.amazonaws.com/"
    if isinstance(node, str):
        return target.endpoint_url.rstrip("/") + "/" + node.removeprefix(public) if node.startswith(public) else node
    if isinstance(node, list):
        return [_localize(item, target) for item in node]
    if isinstance(node, dict):
        return {key: _localize(value, target) for key, value in node.items()}
    return node


def _create_in_moto(plan: StackPlan, parameters: Mapping[str, str], target: StackTarget, cloudformation: Any) -> Any:
    """create_stack with the part of the template moto creates; the stack description once CREATE_COMPLETE."""
    declared = plan.moto_template.get("Parameters") or {}
    try:
        cloudformation.create_stack(
            StackName=target.stack_name,
            TemplateBody=json.dumps(plan.moto_template),
            Parameters=[
                {"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items() if key in declared
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cloudformation.describe_stacks(StackName=target.stack_name)["Stacks"][0]
    except Exception as exc:
        raise DeployError(f"moto could not create stack {target.stack_name}: {exc}") from exc
    if stack["StackStatus"] != "CREATE_COMPLETE":
        failure = _stack_failure(cloudformation, target.stack_name)
        raise DeployError(f"stack {target.stack_name} is {stack['StackStatus']}: {failure}")
    return stack


def _created_resources(cloudformation: Any, target: StackTarget) -> dict[str, StackResource]:
    described = cloudformation.describe_stack_resources(StackName=target.stack_name)["StackResources"]
    return {
        item["LogicalResourceId"]: StackResource(
            item["LogicalResourceId"],
            item["ResourceType"],
            _localize(item["PhysicalResourceId"], target),
            Handling.MOTO,
        )
        for item in described
        # moto lists a resource its Conditions left out as a bare entry with no logical id: it was not created.
        if "LogicalResourceId" in item
    }


def _kept_out_resources(
    plan: StackPlan, outputs: Mapping[str, str], resources: dict[str, StackResource], client: ClientFactory
) -> dict[str, KeptOut]:
    """The kept-out resources with moto's answers filled in; API-only types created; ``resources`` extended."""
    kept_out: dict[str, KeptOut] = {}
    for logical_id, item in plan.kept_out.items():
        if item.condition_output is not None and outputs.get(item.condition_output) != "true":
            continue  # its Condition is false: CloudFormation would not create it either
        resource = dict(item.resource)
        try:
            resource["Properties"] = fill_outputs(resource.get("Properties", {}), dict(outputs))
        except KeyError as exc:
            raise DeployError(f"{logical_id}: {exc}") from exc
        filled = KeptOut(item.logical_id, item.type, item.handling, item.name, item.arn, resource, None)
        kept_out[logical_id] = filled
        physical_id = _create_api_resource(filled, client) if item.handling is Handling.API else item.ref()
        resources[logical_id] = StackResource(logical_id, item.type, physical_id, item.handling)
    return kept_out


def _alias_layers(
    kept_out: Mapping[str, KeptOut], resources: dict[str, StackResource], code: Mapping[str, Any]
) -> None:
    """SAM renames layers (SharedLayer -> SharedLayer<hash>); keep the template's name as an alias too."""
    for item in kept_out.values():
        content = item.resource.get("Properties", {}).get("Content")
        original = content.get("S3Key") if isinstance(content, dict) else None
        if isinstance(original, str) and original not in resources and original in code:
            resources[original] = StackResource(original, item.type, item.ref(), item.handling)


def _fill_property_gaps(
    template: Mapping[str, Any], resources: Mapping[str, StackResource], client: ClientFactory
) -> None:
    """Apply the properties moto's CloudFormation accepts but ignores (see workarounds.PROPERTY_GAPS)."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        created = resources.get(logical_id)
        if created is None or created.handling is not Handling.MOTO:
            continue
        for prop in PROPERTY_GAPS.get(created.type, ()):
            value = (resource.get("Properties") or {}).get(prop)
            if value is not None:
                _GAP_FILLERS[prop](created, value, client)


def deploy_stack(
    translated: TranslatedTemplate,
    target: StackTarget,
    *,
    client: ClientFactory,
    property_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    only: Iterable[str] | None = None,
) -> DeployedStack:
    """Create the stack in moto (see workarounds.py for what is kept out) and return what was created.

    ``client(service)`` builds a boto3 client for that moto; ``only``: just these resources and what they need.
    """
    if only is not None:
        translated = translated.only(only)
    template = apply_property_overrides(translated.template, property_overrides or {})
    plan = plan_stack(
        template,
        stack_name=target.stack_name,
        region=target.region,
        account_id=target.account_id,
        parameters=translated.parameters,
    )
    _log.info("kept out of moto's CloudFormation: %s", describe(plan))
    cloudformation = client("cloudformation")
    stack = _create_in_moto(plan, translated.parameters, target, cloudformation)
    all_outputs = {o["OutputKey"]: _localize(str(o.get("OutputValue", "")), target) for o in stack.get("Outputs", [])}
    resources = _created_resources(cloudformation, target)
    kept_out = _kept_out_resources(plan, all_outputs, resources, client)
    _alias_layers(kept_out, resources, translated.code_paths)
    _fill_property_gaps(template, resources, client)
    outputs = {key: value for key, value in all_outputs.items() if key not in plan.extra_outputs}
    if any(key.startswith(OUTPUT_PREFIX) for key in outputs):
        _log.warning("template outputs named %s* are reserved by the local stack", OUTPUT_PREFIX)
    parameters = dict(translated.parameters)
    return DeployedStack(target.stack_name, target.region, target.account_id, parameters, outputs, resources, kept_out)


def _create_schedule_group(item: KeptOut, properties: dict[str, Any], scheduler: Any) -> str:
    # Functions create one-time schedules in it while they run (scheduler_api.py fires them).
    del properties
    scheduler.create_schedule_group(Name=item.name)
    return item.name


# Types workarounds.py marks API: the creator and the client it needs.
_API_CREATORS: dict[str, tuple[str, Callable[[KeptOut, dict[str, Any], Any], str]]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch", _create_alarm),
    "AWS::SNS::Subscription": ("sns", _create_subscription),
    "AWS::Scheduler::ScheduleGroup": ("scheduler", _create_schedule_group),
}


def _create_api_resource(item: KeptOut, client: ClientFactory) -> str:
    if item.type not in _API_CREATORS:
        raise DeployError(f"no API creator for {item.type} ({item.logical_id})")
    service, create = _API_CREATORS[item.type]
    try:
        return create(item, item.resource.get("Properties", {}), client(service))
    except Exception as exc:
        raise DeployError(f"cannot create {item.logical_id} ({item.type}) through the API: {exc}") from exc


def _time_to_live(table: StackResource, specification: Any, client: ClientFactory) -> None:
    if isinstance(specification, dict) and str(specification.get("Enabled")).lower() == "true":
        client("dynamodb").update_time_to_live(
            TableName=table.physical_id,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": specification["AttributeName"]},
        )


# Properties in workarounds.PROPERTY_GAPS and what applies each through the API.
_GAP_FILLERS: dict[str, Callable[[StackResource, Any, ClientFactory], None]] = {
    "TimeToLiveSpecification": _time_to_live,
}
