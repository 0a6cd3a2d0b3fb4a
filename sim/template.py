"""Production constants, read from ``template.yaml`` itself (never copied).

Parameters take their defaults unless a scenario overrides them; function timeouts, memory,
environment, the schedule, the event source's batch settings, the queues' visibility, retention
and redrive, and the tables' keys and TTL attributes all come from the template's resources.
Intrinsic functions are resolved as far as the simulation needs: ``!Ref`` (parameters, and
resources by logical id), ``!GetAtt X.Arn``/``.QueueName``, ``!Sub`` with ``${AWS::…}``, and
``!If`` on the template's conditions (``!Equals``, ``!Not``, ``!And``, ``!Or``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
REGION = "eu-west-3"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags kept as ``{"!Tag": value}``."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"!" + suffix: value}


_CfnLoader.add_multi_constructor("!", _tagged)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    timeout: float
    memory_mb: int
    environment: dict[str, str]
    reserved_concurrency: int | None
    code_uri: str
    #: Lambda's asynchronous invocation settings (EventInvokeConfig; Lambda's defaults: 2, 6 h).
    async_retries: int = 2
    async_max_event_age: int = 21600


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    visibility_timeout: int
    retention_seconds: int
    max_receive_count: int | None
    dead_letter_logical_id: str | None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]]
    ttl_attribute: str | None

    def create(self, dynamodb: Any, name: str | None = None) -> str:
        """Create this table in ``dynamodb`` (boto3, moto or the simulation's): the template's
        keys, indexes and expiry, so every copy of a table has the one definition."""
        table = name or self.logical_id
        shape: dict[str, Any] = {
            "TableName": table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
        }
        if self.global_secondary_indexes:
            shape["GlobalSecondaryIndexes"] = self.global_secondary_indexes
        dynamodb.create_table(**shape)
        if self.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"AttributeName": self.ttl_attribute, "Enabled": True},
            )
        return table


@dataclass(frozen=True)
class ScheduleSpec:
    expression: str
    retry_attempts: int
    max_event_age: int


@dataclass(frozen=True)
class SqsSourceSpec:
    batch_size: int
    batching_window: float
    max_concurrency: int


class Template:
    """The template resolved with parameter defaults and a scenario's overrides."""

    def __init__(self, overrides: dict[str, str] | None = None, path: Path = TEMPLATE) -> None:
        self.raw = load_template(path)
        self.parameters: dict[str, str] = {
            name: str(spec.get("Default", ""))
            for name, spec in self.raw.get("Parameters", {}).items()
        }
        unknown = sorted(set(overrides or {}) - set(self.parameters))
        if unknown:
            raise ValueError(f"unknown template parameter(s): {', '.join(unknown)}")
        self.parameters.update({k: str(v) for k, v in (overrides or {}).items()})
        self.resources: dict[str, Any] = self.raw["Resources"]
        self.names: dict[str, str] = {}

    # --- intrinsic functions ---------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((tag, arg),) = value.items()
            if tag in ("!Ref", "Ref"):
                return self._ref(str(arg))
            if tag in ("!GetAtt", "Fn::GetAtt"):
                logical, _, attribute = (arg if isinstance(arg, str) else ".".join(arg)).partition(
                    "."
                )
                return self._get_att(logical, attribute)
            if tag in ("!Sub", "Fn::Sub"):
                return self._sub(arg)
            if tag in ("!If", "Fn::If"):
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, arg: Any) -> str:
        """``!Sub text`` or ``!Sub [text, {name: value}]``; ``${X.Attr}`` is a ``!GetAtt``."""
        text, variables = (arg[0], self.resolve(arg[1])) if isinstance(arg, list) else (arg, {})

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, _, attribute = name.partition(".")
                return self._get_att(logical, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", value, str(text))

    def condition(self, name: str) -> bool:
        return self._holds(self.raw.get("Conditions", {})[name])

    def _holds(self, expression: Any) -> bool:
        ((tag, arg),) = expression.items()
        if tag in ("!Equals", "Fn::Equals"):
            left, right = (self.resolve(a) for a in arg)
            return bool(left == right)
        if tag in ("!Not", "Fn::Not"):
            return not self._holds(arg[0])
        if tag in ("!And", "Fn::And"):
            return all(self._holds(a) for a in arg)
        if tag in ("!Or", "Fn::Or"):
            return any(self._holds(a) for a in arg)
        if tag in ("Condition", "!Condition"):
            return self.condition(str(arg))
        raise ValueError(f"unsupported condition {tag}")

    def exists(self, logical_id: str) -> bool:
        """The resource is created with these parameters (its ``Condition`` holds)."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::StackName":
            return "cleemy-booker-sim"
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.names.get(name, name)
        raise KeyError(f"!Ref {name}: not a parameter or resource")

    def _get_att(self, logical: str, attribute: str) -> str:
        name = self.names.get(logical, logical)
        if attribute == "Arn":
            kind = self.resources[logical]["Type"]
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}"
            return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical}"
        if attribute == "QueueName":
            return logical
        return name

    # --- what the simulation needs ---------------------------------------------------------

    def function(self, logical_id: str) -> FunctionSpec:
        globals_ = self.raw.get("Globals", {}).get("Function", {})
        props = self.resources[logical_id]["Properties"]
        env = {
            **self.resolve(globals_.get("Environment", {}).get("Variables", {})),
            **self.resolve(props.get("Environment", {}).get("Variables", {})),
        }
        reserved = props.get("ReservedConcurrentExecutions")
        invoke = props.get("EventInvokeConfig", {})
        return FunctionSpec(
            logical_id=logical_id,
            timeout=float(self.resolve(props.get("Timeout", globals_.get("Timeout", 3)))),
            memory_mb=int(self.resolve(props.get("MemorySize", globals_.get("MemorySize", 128)))),
            environment={k: str(v) for k, v in env.items()},
            reserved_concurrency=None if reserved is None else int(self.resolve(reserved)),
            code_uri=str(props["CodeUri"]),
            async_retries=int(self.resolve(invoke.get("MaximumRetryAttempts", 2))),
            async_max_event_age=int(self.resolve(invoke.get("MaximumEventAgeInSeconds", 21600))),
        )

    def create_documents_queues(self, sqs: Any, region: str = "eu-west-3") -> dict[str, str]:
        """Create the documents queue and its dead-letter queue in ``sqs`` (boto3, moto or the
        simulation's) as the template defines them: visibility, retention, the redrive and its
        ``maxReceiveCount``. Their URLs, by logical id."""
        queue = self.queue("DocumentsQueue")
        dead = self.queue(str(queue.dead_letter_logical_id))
        urls = {
            dead.logical_id: sqs.create_queue(
                QueueName=dead.logical_id,
                Attributes={"MessageRetentionPeriod": str(dead.retention_seconds)},
            )["QueueUrl"]
        }
        redrive = {
            "deadLetterTargetArn": f"arn:aws:sqs:{region}:123456789012:{dead.logical_id}",
            "maxReceiveCount": queue.max_receive_count,
        }
        urls[queue.logical_id] = sqs.create_queue(
            QueueName=queue.logical_id,
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout),
                "MessageRetentionPeriod": str(queue.retention_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        return urls

    def queue(self, logical_id: str) -> QueueSpec:
        props = self.resources[logical_id]["Properties"]
        redrive = props.get("RedrivePolicy")
        dead_letter = None
        if redrive:
            target = redrive["deadLetterTargetArn"]
            dead_letter = str(target["!GetAtt"]).split(".")[0]
        return QueueSpec(
            logical_id=logical_id,
            visibility_timeout=int(self.resolve(props.get("VisibilityTimeout", 30))),
            retention_seconds=int(self.resolve(props.get("MessageRetentionPeriod", 345600))),
            max_receive_count=int(self.resolve(redrive["maxReceiveCount"])) if redrive else None,
            dead_letter_logical_id=dead_letter,
        )

    def table(self, logical_id: str) -> TableSpec:
        props = self.resources[logical_id]["Properties"]
        ttl = props.get("TimeToLiveSpecification") or {}
        return TableSpec(
            logical_id=logical_id,
            key_schema=props["KeySchema"],
            attribute_definitions=props["AttributeDefinitions"],
            global_secondary_indexes=props.get("GlobalSecondaryIndexes", []),
            ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
        )

    def tables(self) -> list[TableSpec]:
        return [
            self.table(name)
            for name, resource in self.resources.items()
            if resource["Type"] == "AWS::DynamoDB::Table" and self.exists(name)
        ]

    def schedule(self, function_id: str) -> ScheduleSpec:
        for event in self.resources[function_id]["Properties"].get("Events", {}).values():
            if event["Type"] in ("ScheduleV2", "Schedule"):
                props = event["Properties"]
                retry = props.get("RetryPolicy", {})
                return ScheduleSpec(
                    expression=str(self.resolve(props["ScheduleExpression"])),
                    retry_attempts=int(retry.get("MaximumRetryAttempts", 185)),
                    max_event_age=int(retry.get("MaximumEventAgeInSeconds", 86400)),
                )
        raise KeyError(f"{function_id} has no schedule")

    def sqs_source(self, function_id: str) -> SqsSourceSpec:
        """The function's SQS trigger: an ``AWS::Lambda::EventSourceMapping`` naming it (what
        the template declares), or a SAM ``SQS`` event of the function (what SAM would
        generate one from); the same properties either way."""
        for props in self._sqs_sources(function_id):
            scaling = props.get("ScalingConfig", {})
            return SqsSourceSpec(
                batch_size=int(self.resolve(props.get("BatchSize", 10))),
                batching_window=float(self.resolve(props.get("MaximumBatchingWindowInSeconds", 0))),
                max_concurrency=int(self.resolve(scaling.get("MaximumConcurrency", 1000))),
            )
        raise KeyError(f"{function_id} has no SQS event source")

    def _sqs_sources(self, function_id: str) -> list[dict[str, Any]]:
        declared = [
            resource["Properties"]
            for name, resource in self.resources.items()
            if resource["Type"] == "AWS::Lambda::EventSourceMapping"
            and self.exists(name)
            and resource["Properties"].get("FunctionName") == {"!Ref": function_id}
            and ":sqs:" in str(self.resolve(resource["Properties"].get("EventSourceArn")))
        ]
        events = self.resources[function_id]["Properties"].get("Events", {}).values()
        return declared + [e["Properties"] for e in events if e["Type"] == "SQS"]


def rate_seconds(expression: str) -> float:
    """``rate(5 minutes)`` in seconds (the scenarios' schedules are rates)."""
    match = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression)
    if match is None:
        raise ValueError(f"unsupported schedule expression {expression!r} (rate(...) only)")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return int(match.group(1)) * unit
