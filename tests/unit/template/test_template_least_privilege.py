"""Least privilege, read from the template and checked against the code: each function's role
grants exactly the calls its code makes (and, for the processor, the calls its event source
mapping makes with its role), on the resources it makes them on; no SAM policy template or
event that grants more behind the template's back; the schedules' dead-letter queue reached
through the schedules' own roles. The calls are listed here once (``CALLS``); a run of the three
functions on moto records every call they make and finds each one in that list."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.client import BaseClient

from sim.template import SqsSourceSpec, Template, load_template
from tests.aws import REGION, Stack, stack_fixture
from tests.harness import (
    FakeLambdaContext,
    drive_queue,
    handlers_env,
    load_handler,
    simulator_fixture,
)

ROOT = Path(__file__).resolve().parents[3]
RAW = load_template()
RESOURCES: dict[str, Any] = RAW["Resources"]
FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
LEDGER, BY_STATUS = "LedgerTable", "LedgerTable/index/ByStatus"
#: The secret named by LuccaApiKeySecretName, and the SSM parameter named by RulesSource.
API_KEY, RULES = "LuccaApiKeySecret", "RulesParameter"

#: What each function's code calls, on what (IAM action, resource): the grants its role needs,
#: and no other.
CALLS: dict[str, set[tuple[str, str]]] = {
    "InboxPollerFunction": {
        # Claims (a document's state), the lease, the marks (the last complete listing).
        ("dynamodb:GetItem", LEDGER),
        ("dynamodb:UpdateItem", LEDGER),
        ("dynamodb:DeleteItem", LEDGER),  # a claim released; the lease given back
        ("dynamodb:Query", BY_STATUS),  # the held documents, for their alarm's gauge
        ("dynamodb:GetItem", "BudgetTable"),
        ("dynamodb:UpdateItem", "BudgetTable"),
        ("sqs:SendMessage", "DocumentsQueue"),  # SendMessageBatch
        ("sqs:GetQueueAttributes", "DocumentsQueue"),  # the queue's depth
        ("secretsmanager:GetSecretValue", API_KEY),
        ("ssm:GetParameter", RULES),  # the rules' fingerprint (RulesSource=ssm:/name only)
    },
    "DocumentProcessorFunction": {
        ("dynamodb:GetItem", LEDGER),
        ("dynamodb:PutItem", LEDGER),  # the trail's events; an invoice number claimed
        ("dynamodb:UpdateItem", LEDGER),
        ("dynamodb:DeleteItem", LEDGER),  # an invoice number released
        # Powertools' idempotency: the record, in progress then completed, or deleted.
        ("dynamodb:GetItem", "IdempotencyTable"),
        ("dynamodb:PutItem", "IdempotencyTable"),
        ("dynamodb:UpdateItem", "IdempotencyTable"),
        ("dynamodb:DeleteItem", "IdempotencyTable"),
        ("dynamodb:GetItem", "BudgetTable"),
        ("dynamodb:UpdateItem", "BudgetTable"),
        ("sqs:SendMessage", "DocumentsQueue"),  # a deferral
        ("sqs:SendMessage", "DeadLetterQueue"),  # a dead letter, with its reason
        ("secretsmanager:GetSecretValue", API_KEY),
        ("ssm:GetParameter", RULES),
        # Not the code's: what the event source mapping does with the function's role.
        ("sqs:ReceiveMessage", "DocumentsQueue"),
        ("sqs:DeleteMessage", "DocumentsQueue"),
        ("sqs:GetQueueAttributes", "DocumentsQueue"),
    },
    "MorningDigestFunction": {
        ("dynamodb:GetItem", LEDGER),  # up to when the last digest told
        ("dynamodb:UpdateItem", LEDGER),  # ... and this one's mark
        ("dynamodb:Query", LEDGER),  # a booked document's trail
        ("dynamodb:Query", BY_STATUS),  # held, failed, booked, queued
        ("sns:Publish", "DigestTopic"),
        ("cloudwatch:GetMetricData", "*"),  # takes no resource-level permission
        ("sqs:GetQueueAttributes", "DeadLetterQueue"),  # the dead letters waiting
    },
}
#: What the event source mapping of the processor's queue calls (Lambda, with the role).
EVENT_SOURCE_CALLS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_id(expression: Any) -> str:
    """The resource a statement's Resource names, as a logical id (``LedgerTable``,
    ``LedgerTable/index/ByStatus``), ``LuccaApiKeySecret``, ``RulesParameter`` or ``*``."""
    if expression == "*":
        return "*"
    if isinstance(expression, dict) and len(expression) == 1:
        ((tag, arg),) = expression.items()
        if tag in ("!If", "Fn::If"):
            branches = {_resource_id(branch) for branch in arg[1:]}
            assert len(branches) == 1, f"{expression} names {branches}"
            return branches.pop()
        if tag in ("!GetAtt", "Fn::GetAtt"):
            logical, _, attribute = str(arg).partition(".")
            assert attribute == "Arn", expression
            return logical
        if tag in ("!Ref", "Ref"):
            return str(arg)
        if tag in ("!Sub", "Fn::Sub"):
            text = str(arg[0] if isinstance(arg, list) else arg)
            own = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)?", text)
            if own:
                return own.group(1) + (own.group(2) or "")
            if ":table/${ExistingLedgerTable}" in text:  # the ledger of an earlier stack
                return LEDGER + text.split("${ExistingLedgerTable}", 1)[1]
            if ":secret:${LuccaApiKeySecretName}-??????" in text:
                return API_KEY
            if text.endswith(":parameter/${Name}"):
                return RULES
    raise AssertionError(f"what resource is {expression}?")


def _grants(function: str) -> tuple[set[tuple[str, str]], list[Any]]:
    """(action, resource) the function's role is granted by the template's statements, and
    what else would grant something the template does not show (a SAM policy template, a
    managed policy, an event SAM attaches a policy for)."""
    props = RESOURCES[function]["Properties"]
    grants: set[tuple[str, str]] = set()
    hidden: list[Any] = []
    for policy in props.get("Policies", []):
        branches = [policy]
        if isinstance(policy, dict) and set(policy) & {"!If", "Fn::If"}:
            branches = next(iter(policy.values()))[1:]  # a grant under a condition is a grant
        for branch in branches:
            if branch in ({"!Ref": "AWS::NoValue"}, {"Ref": "AWS::NoValue"}):
                continue
            if not (isinstance(branch, dict) and set(branch) == {"Statement"}):
                hidden.append(branch)
                continue
            for statement in branch["Statement"]:
                assert statement["Effect"] == "Allow", statement
                for action in _listed(statement["Action"]):
                    for resource in _listed(statement["Resource"]):
                        grants.add((str(action), _resource_id(resource)))
    for name, event in props.get("Events", {}).items():
        if event["Type"] in ("SQS", "Kinesis", "DynamoDB", "MSK", "MQ"):
            hidden.append(f"{name}: SAM attaches an AWS managed policy for its poller")
    return grants, hidden


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_is_granted_exactly_the_calls_its_code_makes(function: str) -> None:
    grants, hidden = _grants(function)
    assert hidden == [], f"{function} is granted more than the template shows: {hidden}"
    assert grants - CALLS[function] == set(), f"{function} is granted calls it never makes"
    assert CALLS[function] - grants == set(), f"{function} may not make calls it makes"


def test_only_what_takes_no_resource_level_permission_is_granted_on_every_resource() -> None:
    for function in FUNCTIONS:
        for action, resource in _grants(function)[0]:
            if resource == "*":
                assert action == "cloudwatch:GetMetricData", f"{function}: {action} on *"


# --- the processor's trigger ---------------------------------------------------------------------


def _mappings() -> dict[str, Any]:
    return {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}


def test_the_processor_is_triggered_by_a_declared_mapping_of_its_queue() -> None:
    """Not SAM's SQS event: SAM would attach AWSLambdaSQSQueueExecutionRole, which receives and
    deletes on every queue of the account. The mapping keeps the batch settings, the partial
    batch responses and the concurrency cap; the simulation reads it."""
    events = RESOURCES["DocumentProcessorFunction"]["Properties"].get("Events", {})
    assert [e for e in events.values() if e["Type"] == "SQS"] == []
    (mapping,) = _mappings().values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"!Ref": "DocumentProcessorFunction"}
    assert _resource_id(props["EventSourceArn"]) == "DocumentsQueue"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"!Ref": "ProcessorMaxConcurrency"}}
    assert (props["BatchSize"], props["MaximumBatchingWindowInSeconds"]) == (5, 5)
    spec = Template().sqs_source("DocumentProcessorFunction")
    assert spec == SqsSourceSpec(batch_size=5, batching_window=5.0, max_concurrency=2)
    granted = {a for a, r in _grants("DocumentProcessorFunction")[0] if r == "DocumentsQueue"}
    assert granted >= EVENT_SOURCE_CALLS


# --- the schedules' dead-letter queue --------------------------------------------------------


def test_the_schedules_reach_their_dead_letter_queue_through_their_own_roles() -> None:
    """EventBridge Scheduler sends a failed invocation to its DLQ with the schedule's execution
    role: SAM grants that role sqs:SendMessage on the DeadLetterConfig's queue. A queue policy
    for the scheduler's service principal grants nothing that is used."""
    schedules = [
        (function, event["Properties"])
        for function, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    ]
    assert schedules
    for function, props in schedules:
        queue = _resource_id(props["DeadLetterConfig"]["Arn"])
        assert queue == "SchedulerDeadLetterQueue", function
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        text = json.dumps(resource["Properties"]["PolicyDocument"])
        assert "scheduler.amazonaws.com" not in text, f"{name} grants the scheduler nothing used"


#: Run in the SAM CLI's environment (samtranslator is not a test dependency): the template as
#: SAM transforms it, its roles' policies printed as JSON.
_TRANSFORM = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if key in props:
            props[key] = "s3://bucket/artifact.zip"
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""
SAM_PYTHON = ROOT / ".venvs" / "sam" / "bin" / "python"
#: What SAM gives every function's role: CloudWatch Logs, and X-Ray for Tracing: Active.
BASIC_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.skip("no SAM CLI environment (make setup creates .venvs/sam)")
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-3"}
    result = subprocess.run(  # noqa: S603 - the project's own SAM environment
        [str(SAM_PYTHON), "-c", _TRANSFORM, str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template: dict[str, Any] = json.loads(result.stdout)
    return template


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        yield from policy["PolicyDocument"]["Statement"]


def test_sam_grants_no_role_more_than_the_template_shows(transformed: dict[str, Any]) -> None:
    roles = {n: r for n, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert roles
    for name, role in roles.items():
        managed = set(role["Properties"].get("ManagedPolicyArns", []))
        assert managed <= BASIC_MANAGED, f"{name} is given {managed - BASIC_MANAGED}"
        for statement in _statements(role):
            actions = _listed(statement["Action"])
            assert "ssm:DescribeParameters" not in actions, name
            if statement["Resource"] == "*":
                assert actions == ["cloudwatch:GetMetricData"], f"{name}: {actions} on *"


def test_sam_grants_each_schedule_s_role_its_dead_letter_queue(transformed: dict[str, Any]) -> None:
    resources = transformed["Resources"]
    schedules = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedules
    for schedule in schedules:
        target = schedule["Properties"]["Target"]
        queue = target["DeadLetterConfig"]["Arn"]
        role = resources[target["RoleArn"]["Fn::GetAtt"][0]]
        sends = [
            s
            for s in _statements(role)
            if "sqs:SendMessage" in _listed(s["Action"]) and s["Resource"] == queue
        ]
        assert sends, f"the schedule's role may not send to its dead-letter queue {queue}"


# --- the calls the code really makes -----------------------------------------------------------


sim = simulator_fixture(invoices=12, seed=8)
stack = stack_fixture(max_receive_count=10)


#: botocore's batch operations need the single operation's permission.
BATCHES = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}


class Calls:
    """Every AWS call made while a function runs, as (IAM action, resource)."""

    def __init__(self, stack: Stack, topic_arn: str) -> None:
        self.stack = stack
        self.topic_arn = topic_arn
        self.function: str | None = None
        self.seen: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        calls = self

        def recorded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if calls.function is not None:
                service = client.meta.service_model.service_name
                calls.seen[calls.function].add(calls.grant(service, operation, params))
            return original(client, operation, params)

        monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    def grant(self, service: str, operation: str, params: dict[str, Any]) -> tuple[str, str]:
        action = f"{service}:{BATCHES.get(operation, operation)}"
        stack = self.stack
        names = {
            stack.ledger_table: LEDGER,
            stack.budget_table: "BudgetTable",
            stack.idempotency_table: "IdempotencyTable",
            stack.queue_url: "DocumentsQueue",
            stack.dlq_url: "DeadLetterQueue",
            stack.secret_name: API_KEY,
            "/cleemy-booker/rules": RULES,
            self.topic_arn: "DigestTopic",
        }
        if service == "cloudwatch":
            return action, "*"
        named = params.get("TableName") or params.get("QueueUrl") or params.get("SecretId")
        named = named or params.get("Name") or params.get("TopicArn")
        resource = names.get(str(named), f"unknown: {named}")
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return action, resource

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def handler(self, function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            with self.running(function):
                return handler(event, context)

        return invoke


def test_the_functions_make_only_the_calls_listed_for_them(
    monkeypatch: pytest.MonkeyPatch, sim: Any, stack: Stack
) -> None:
    """A poll, a queue of documents (one of them a poison message, dead-lettered), a second
    poll, the morning digest; rules in SSM. Each call is in ``CALLS``, so ``CALLS`` (which the
    roles must grant exactly) is not missing one the code makes."""
    rules = (ROOT / "config" / "rules.label-and-due-date.json").read_text()
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/cleemy-booker/rules", Type="String", Value=rules
    )
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="digest")["TopicArn"]
    calls = Calls(stack, topic)
    calls.install(monkeypatch)
    rules_source = "ssm:/cleemy-booker/rules"
    with handlers_env(monkeypatch, stack, sim, RULES_SOURCE=rules_source) as (poller, processor):
        poll = calls.handler("InboxPollerFunction", poller.lambda_handler)
        poll({"source": "schedule"}, FakeLambdaContext(300))
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="{not json")
        parameters.clear_caches()  # each function has its own process, and cache, in Lambda
        drive_queue(stack, calls.handler("DocumentProcessorFunction", processor.lambda_handler))
        poll({"source": "schedule"}, FakeLambdaContext(300))
        monkeypatch.setenv("DIGEST_TOPIC_ARN", topic)
        monkeypatch.setenv("STACK_NAME", "cleemy-booker-test")
        digest = load_handler("morning_digest")
        calls.handler("MorningDigestFunction", digest.lambda_handler)({}, FakeLambdaContext(60))
    for function, seen in calls.seen.items():
        assert seen - CALLS[function] == set(), f"{function} makes calls not listed for it"
    # The run went where the grants matter.
    assert ("ssm:GetParameter", RULES) in calls.seen["InboxPollerFunction"]
    assert ("ssm:GetParameter", RULES) in calls.seen["DocumentProcessorFunction"]
    assert ("sqs:SendMessage", "DeadLetterQueue") in calls.seen["DocumentProcessorFunction"]
    assert ("sns:Publish", "DigestTopic") in calls.seen["MorningDigestFunction"]
    assert ("cloudwatch:GetMetricData", "*") in calls.seen["MorningDigestFunction"]
