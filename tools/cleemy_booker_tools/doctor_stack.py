"""The deployed stack as the doctor reads it: CloudFormation's description of it (parameters,
outputs, resources), its functions' configuration as Lambda runs them, and the checks on those.

Everything is found from the stack itself, the way ``replay`` and ``audit`` find their queues
and table with ``--stack``: outputs first (what the template promises to name), the stack's
resources by logical id where no output names a thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cleemy_booker.config import ConfigError, PollerSettings
from cleemy_booker_tools.doctor_report import Check, blocking, ok, warning

#: Error codes meaning "this AWS (an emulator) does not offer that call", not "you may not".
UNAVAILABLE = frozenset(
    {
        "InvalidAction",
        "UnknownOperationException",
        "UnsupportedOperation",
        "NotImplemented",
        "NotImplementedException",
        "InternalFailure",
    }
)
#: Error codes meaning "no such thing", whichever service says it.
NOT_FOUND = frozenset(
    {
        "ResourceNotFoundException",
        "ParameterNotFound",
        "NotFound",
        "NotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
#: The errors an AWS call may raise here: botocore's, and moto's for calls it lacks.
AWS_ERRORS = (ClientError, BotoCoreError, NotImplementedError)


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def unavailable(error: BaseException) -> bool:
    """The call does not exist here (emulators): a "could not tell", not a failure."""
    if isinstance(error, NotImplementedError):
        return True
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(error) in UNAVAILABLE or status == 501


def not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND


class StackMissing(LookupError):
    """No stack of that name could be read; the message says why."""


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    type: str
    physical_id: str


@dataclass(frozen=True)
class StackView:
    """What CloudFormation says of a stack. Tests build one from moto's resources (moto cannot
    deploy the SAM template); ``read_stack`` builds it from a real stack."""

    name: str
    region: str | None
    status: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[StackResource, ...] = ()

    def physical(self, output_key: str | None, logical_id: str) -> str | None:
        """A resource's name, ARN or URL: from the output that names it, else its resource."""
        if output_key and self.outputs.get(output_key):
            return self.outputs[output_key]
        found = [r for r in self.resources if r.logical_id == logical_id]
        return found[0].physical_id if found else None

    def of_type(self, resource_type: str, prefix: str = "") -> list[StackResource]:
        return [
            resource
            for resource in self.resources
            if resource.type == resource_type and resource.logical_id.startswith(prefix)
        ]


def read_stack(cloudformation: Any, name: str) -> StackView:
    """The stack's description and resources; ``StackMissing`` when there is none to read."""
    try:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        raise StackMissing(str(error)) from None
    return StackView(
        name=str(stack.get("StackName", name)),
        region=_region_of(str(stack.get("StackId", ""))),
        status=str(stack.get("StackStatus", "")),
        parameters={p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in _params(stack)},
        outputs={o["OutputKey"]: str(o["OutputValue"]) for o in stack.get("Outputs", [])},
        resources=_resources(cloudformation, name),
    )


def _params(stack: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(stack.get("Parameters", []))


def _resources(cloudformation: Any, name: str) -> tuple[StackResource, ...]:
    """Every resource of the stack (the template has fewer than DescribeStackResources' 100);
    none where the call is missing: the checks that need one then say they could not tell."""
    try:
        found = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    except AWS_ERRORS:
        return ()
    return tuple(
        StackResource(r["LogicalResourceId"], r["ResourceType"], str(r.get("PhysicalResourceId")))
        for r in found
        if r.get("PhysicalResourceId")
    )


def _region_of(stack_id: str) -> str | None:
    """``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`` → REGION."""
    parts = stack_id.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


# --- the stack itself -------------------------------------------------------------------------

_FAILED_WORDS = ("FAILED", "ROLLBACK_COMPLETE", "DELETE")


def stack_check(view: StackView) -> Check:
    status = view.status
    if status == "UPDATE_ROLLBACK_COMPLETE":
        return warning(
            "stack",
            f"{status}: its last update was rolled back, the version before it runs",
            "read the stack's events for the failed update, fix it and deploy again",
        )
    if status.endswith("_IN_PROGRESS"):
        return warning(
            "stack", f"{status}: being changed", "run doctor again once the stack has settled"
        )
    if any(word in status for word in _FAILED_WORDS) or not status.endswith("_COMPLETE"):
        return blocking(
            "stack",
            f"{status or 'no status'}: the stack is not deployed as its template says",
            "read the stack's events (aws cloudformation describe-stack-events), fix, deploy again",
        )
    resources = f", {len(view.resources)} resources" if view.resources else ""
    return ok("stack", f"{status}{resources}")


def dry_run_check(view: StackView, poller: Function | None) -> Check:
    """DryRun as the stack was given it, else as the poller runs with it."""
    value = view.parameters.get("DryRun")
    if value is None and poller is not None:
        value = poller.environment.get("DRY_RUN")
    if value is None:
        return warning(
            "dry run", "could not tell (no DryRun parameter)", "look at the poller's DRY_RUN"
        )
    if value.strip().lower() == "true":
        return warning(
            "dry run",
            "DryRun=true: documents are decided and recorded, never updated or booked",
            "deploy with DryRun=false to go live",
        )
    return ok("dry run", f"DryRun={value}: ready documents are booked")


# --- the functions ----------------------------------------------------------------------------

#: (what it is, the output naming it, its logical id) for each function of the template.
FUNCTIONS = (
    ("inbox poller", "InboxPollerFunctionName", "InboxPollerFunction"),
    ("document processor", "DocumentProcessorFunctionName", "DocumentProcessorFunction"),
    ("morning digest", "MorningDigestFunctionName", "MorningDigestFunction"),
)
POLLER = "inbox poller"


@dataclass(frozen=True)
class Function:
    """A function of the stack as Lambda runs it (its configuration; empty if unreadable)."""

    role: str
    logical_id: str
    name: str | None
    configuration: Mapping[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def architectures(self) -> list[str]:
        # Lambda's default when a function names none.
        return list(self.configuration.get("Architectures") or ["x86_64"])

    @property
    def layers(self) -> list[str]:
        return [str(layer["Arn"]) for layer in self.configuration.get("Layers", [])]

    @property
    def environment(self) -> dict[str, str]:
        variables = self.configuration.get("Environment", {}).get("Variables", {})
        return {str(k): str(v) for k, v in variables.items()}

    def log_group(self, view: StackView) -> str | None:
        """Where its runs are logged: its logging configuration (AWS), else the stack's log
        group for it (the template names one per function), else Lambda's default."""
        configured = self.configuration.get("LoggingConfig", {}).get("LogGroup")
        if configured:
            return str(configured)
        own = view.physical(None, self.logical_id.removesuffix("Function") + "LogGroup")
        return own or (f"/aws/lambda/{self.name}" if self.name else None)


def read_functions(lambda_: Any, view: StackView) -> list[Function]:
    return [_read_function(lambda_, view, *names) for names in FUNCTIONS]


def _read_function(
    lambda_: Any, view: StackView, role: str, output_key: str, logical_id: str
) -> Function:
    name = view.physical(output_key, logical_id)
    if name is None:
        return Function(role, logical_id, None, problem="the stack names no such function")
    try:
        configuration = lambda_.get_function(FunctionName=name)["Configuration"]
    except AWS_ERRORS as error:
        return Function(role, logical_id, name, problem=f"cannot be read: {error}")
    return Function(role, logical_id, name, configuration)


def functions_check(functions: list[Function]) -> Check:
    broken = [f"{f.role} {f.name or ''}: {f.problem}" for f in functions if f.problem]
    failed = [
        f"{f.role}: state {f.configuration.get('State')}, last update "
        f"{f.configuration.get('LastUpdateStatus')}"
        for f in functions
        if not f.problem
        and (f.configuration.get("State") == "Failed" or _update_failed(f.configuration))
    ]
    if broken or failed:
        return blocking(
            "functions",
            "; ".join(broken + failed),
            "deploy the stack again (sam deploy); a function that failed to update says why "
            "in its LastUpdateStatusReason",
        )
    words = ", ".join(
        f"{f.role} {'/'.join(f.architectures)} ({f.configuration.get('State', '?')})"
        for f in functions
    )
    return ok("functions", words)


def _update_failed(configuration: Mapping[str, Any]) -> bool:
    return configuration.get("LastUpdateStatus") == "Failed"


def layers_check(lambda_: Any, functions: list[Function]) -> Check:
    """Each function's architecture against what each of its layers is built for: the domain
    layer carries compiled wheels (pydantic_core), so a mismatch fails every cold start."""
    declared: dict[str, list[str]] = {}
    #: layer → the functions it does not fit, "role (architecture)".
    misfits: dict[str, list[str]] = {}
    missing: list[str] = []
    for function in (f for f in functions if not f.problem):
        if not function.layers:
            missing.append(function.role)
        for arn in function.layers:
            if arn not in declared:
                declared[arn] = _layer_architectures(lambda_, arn)
            if declared[arn] and not set(function.architectures) <= set(declared[arn]):
                misfits.setdefault(arn, []).append(
                    f"{function.role} ({'/'.join(function.architectures)})"
                )
    return _layers_verdict(declared, misfits, missing)


def _layers_verdict(
    declared: Mapping[str, list[str]], misfits: Mapping[str, list[str]], missing: list[str]
) -> Check:
    if misfits or missing:
        found = [
            f"layer {_layer_name(arn)} is built for {'/'.join(declared[arn])}, not for "
            f"{', '.join(roles)}"
            for arn, roles in misfits.items()
        ]
        found += [f"{role} has no layer (no domain package)" for role in missing]
        return blocking(
            "layer architecture",
            "; ".join(found) + ": every cold start fails",
            "build and deploy again, the functions and their layer for one architecture "
            "(sam build, then sam deploy)",
        )
    silent = sorted(_layer_name(arn) for arn, built_for in declared.items() if not built_for)
    if silent:
        return warning(
            "layer architecture",
            f"could not tell: layer {', '.join(silent)} declares no compatible architecture",
            "publish the layer with CompatibleArchitectures (the template sets it)",
        )
    words = ", ".join(f"{_layer_name(arn)} {'/'.join(a)}" for arn, a in declared.items())
    return ok("layer architecture", f"matches the functions': {words}")


def _layer_architectures(lambda_: Any, arn: str) -> list[str]:
    """``arn:...:layer:NAME:VERSION`` → what GetLayerVersion says it is built for."""
    layer, _, version = arn.rpartition(":")
    answer = lambda_.get_layer_version(LayerName=layer, VersionNumber=int(version))
    return [str(a) for a in answer.get("CompatibleArchitectures", [])]


def _layer_name(arn: str) -> str:
    """``NAME:VERSION`` from a layer version's ARN."""
    return ":".join(arn.split(":")[-2:])


# --- the poller's configuration ---------------------------------------------------------------


def settings_check(poller: Function | None) -> tuple[PollerSettings | None, Check]:
    """The poller's environment validated by the package's own settings, as its cold start
    does: what the doctor then talks to Lucca with (base URL, secret, budget, page size)."""
    if poller is None or poller.problem:
        why = poller.problem if poller else "no poller function"
        return None, blocking(
            "configuration", f"cannot read the poller's configuration: {why}", "see functions"
        )
    try:
        settings = PollerSettings.from_env(poller.environment)
    except ConfigError as error:
        return None, blocking(
            "configuration",
            f"the poller's cold start refuses its environment: {error}",
            "fix the stack parameters it names and deploy again",
        )
    filters = "&".join(f"{k}={v}" for k, v in settings.inbox_filters.items()) or "none"
    return settings, ok(
        "configuration",
        f"Lucca {settings.lucca_base_url}, secret {settings.api_key_secret}, budget "
        f"{settings.budget_limit} per {settings.budget_window_seconds:g} s, page size "
        f"{settings.page_size}, filters {filters}",
    )
