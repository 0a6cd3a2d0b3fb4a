"""``cleemy-booker doctor``: the AWS side against a stack built in moto, the tenant side against
the simulator under each of its unknown settings, the verdict (exit code, table, JSON), and
never the key in what it prints.

moto cannot deploy the SAM template (its CloudFormation needs packages the project does not
install, and SAM's transform), so the stack's resources are made one by one in moto from the
template's own definitions (``sim.template``: its environment, outputs and parameters), and
CloudFormation's two answers the doctor reads are played by ``FakeCloudFormation`` in the shape
AWS gives them: the doctor reads the stack through the same code as on AWS.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cleemy_booker_tools import cli, doctor
from cleemy_booker_tools.doctor import DoctorClients, examine
from cleemy_booker_tools.doctor_lucca import MAX_REQUESTS
from cleemy_booker_tools.doctor_report import TABLE_WIDTH, Report
from cleemy_booker_tools.doctor_stack import read_stack
from local.lucca_simulator import Simulator, SimulatorConfig
from sim.template import Template
from tests.aws import (
    REGION,
    create_idempotency_table,
    create_ledger_table,
    create_pk_sk_table,
)
from tests.factories import raw_item

#: The tenant's key: it must appear in nothing the doctor prints, whatever happens.
API_KEY = "sk-doctor-7f3a9c1e5b2d4a60"
WRONG_KEY = "sk-wrong-0b1c2d3e4f5a6b7c"
STACK = "cleemy-booker-test"
ACCOUNT = "123456789012"
ALARM_ADDRESS = "ops@example.com"
DIGEST_ADDRESS = "finance@example.com"
#: What AWS names the schedules SAM makes of the functions' ScheduleV2 events.
POLLER_SCHEDULE, DIGEST_SCHEDULE = "InboxPollerFunctionSchedule", "MorningDigestFunctionMorning"
#: A small inbox with every category (the seed of tests/integration/test_unknowns.py).
INBOX = {"invoices": 12, "seed": 20}


@contextmanager
def paced_simulator(**config: Any) -> Iterator[Simulator]:
    """The simulator at Lucca's tenant limit with time compressed 60x (50 requests a second)."""
    with Simulator(SimulatorConfig(rate_limit=50, window_seconds=1.0, **config)) as simulator:
        yield simulator


# --- CloudFormation, played -------------------------------------------------------------------


class FakeCloudFormation:
    """``describe_stacks`` and ``describe_stack_resources`` as AWS answers them, for stacks
    whose resources were made in moto."""

    def __init__(self) -> None:
        self.stacks: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    def add(
        self,
        name: str,
        parameters: dict[str, str],
        outputs: dict[str, str],
        resources: list[tuple[str, str, str]],
        status: str = "CREATE_COMPLETE",
    ) -> None:
        description = {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/5f1e9a70",
            "StackStatus": status,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }
        listed = [
            {
                "StackName": name,
                "LogicalResourceId": logical,
                "ResourceType": kind,
                "PhysicalResourceId": physical,
                "ResourceStatus": "CREATE_COMPLETE",
            }
            for logical, kind, physical in resources
        ]
        self.stacks[name] = (description, listed)

    def _stack(self, name: str, operation: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if name not in self.stacks:
            error = {"Code": "ValidationError", "Message": f"Stack with id {name} does not exist"}
            raise ClientError({"Error": error}, operation)
        return self.stacks[name]

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [self._stack(StackName, "DescribeStacks")[0]]}

    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:
        return {"StackResources": self._stack(StackName, "DescribeStackResources")[1]}


class UnconfirmedSns:
    """moto confirms every subscription at once; AWS lists one nobody confirmed with
    ``PendingConfirmation`` instead of its ARN. This SNS does that for ``pending`` endpoints."""

    def __init__(self, sns: Any, pending: set[str]) -> None:
        self._sns, self._pending = sns, pending

    def list_subscriptions_by_topic(self, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._sns.list_subscriptions_by_topic(**kwargs)
        for subscription in answer["Subscriptions"]:
            if subscription["Endpoint"] in self._pending:
                subscription["SubscriptionArn"] = "PendingConfirmation"
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sns, name)


# --- the stack, built in moto -----------------------------------------------------------------


@dataclass
class Deployed:
    """The template's resources the doctor reads, in moto, and the stack that names them."""

    clients: DoctorClients
    template: Template
    cloudformation: FakeCloudFormation
    names: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def run(self, *args: str, http: httpx.Client | None = None) -> tuple[int, str]:
        """``cleemy-booker doctor --stack STACK ARGS``: its exit code and what it printed."""
        out = io.StringIO()
        code = doctor.main(
            ["--stack", STACK, *args], clients=lambda _: self.clients, out=out, http=http
        )
        return code, out.getvalue()

    def examine(self, http: httpx.Client | None = None) -> Report:
        return examine(STACK, self.clients, http=http)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _make_state(template: Template, names: dict[str, str]) -> None:
    """Tables, queues and topics, named as CloudFormation names them."""
    ddb, sqs, sns = (boto3.client(s, region_name=REGION) for s in ("dynamodb", "sqs", "sns"))
    names["LedgerTable"] = create_ledger_table(ddb, f"{STACK}-LedgerTable-1A2B")
    names["BudgetTable"] = create_pk_sk_table(ddb, f"{STACK}-BudgetTable-3C4D")
    names["IdempotencyTable"] = create_idempotency_table(ddb, f"{STACK}-IdempotencyTable-5E6F")
    for logical in ("DeadLetterQueue", "SchedulerDeadLetterQueue", "DocumentsQueue"):
        names[logical] = sqs.create_queue(QueueName=f"{STACK}-{logical}-7G8H")["QueueUrl"]
    for logical in ("AlarmTopic", "DigestTopic"):
        names[logical] = sns.create_topic(Name=f"{STACK}-{logical}-9I0J")["TopicArn"]
    sns.subscribe(TopicArn=names["AlarmTopic"], Protocol="email", Endpoint=ALARM_ADDRESS)
    sns.subscribe(TopicArn=names["DigestTopic"], Protocol="email", Endpoint=DIGEST_ADDRESS)


def _make_functions(
    template: Template, names: dict[str, str], architecture: str, layer_architecture: str
) -> None:
    """The layer and the three functions, with the template's environment for each."""
    lam, iam = boto3.client("lambda", region_name=REGION), boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    layer = lam.publish_layer_version(
        LayerName=f"{STACK}-DomainLayer",
        Content={"ZipFile": _zip()},
        CompatibleRuntimes=["python3.12"],
        CompatibleArchitectures=[layer_architecture],
    )["LayerVersionArn"]
    for logical in ("InboxPollerFunction", "DocumentProcessorFunction", "MorningDigestFunction"):
        names[logical] = f"{STACK}-{logical}-K1L2"
    for logical in ("InboxPollerFunction", "DocumentProcessorFunction", "MorningDigestFunction"):
        lam.create_function(
            FunctionName=names[logical],
            Runtime="python3.12",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": _zip()},
            Architectures=[architecture],
            Layers=[layer],
            Environment={"Variables": template.function(logical).environment},
        )


def _make_schedules(template: Template, names: dict[str, str], *, logged_ago: float | None) -> None:
    """The two schedules, and the poller's log group with a run ``logged_ago`` seconds ago."""
    scheduler, logs = (boto3.client(s, region_name=REGION) for s in ("scheduler", "logs"))
    target = {
        "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x",
        "RoleArn": "arn:aws:iam::1:role/s",
    }
    for logical, function in (
        (POLLER_SCHEDULE, "InboxPollerFunction"),
        (DIGEST_SCHEDULE, "MorningDigestFunction"),
    ):
        names[logical] = f"{STACK}-{logical}-M3N4"
        scheduler.create_schedule(
            Name=names[logical],
            ScheduleExpression=template.schedule(function).expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
            State="ENABLED",
        )
    group = template.resolve(
        template.resources["InboxPollerLogGroup"]["Properties"]["LogGroupName"]
    )
    names["InboxPollerLogGroup"] = group
    logs.create_log_group(logGroupName=group)
    if logged_ago is not None:
        logs.create_log_stream(logGroupName=group, logStreamName="run")
        stamp = int((time.time() - logged_ago) * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName="run",
            logEvents=[{"timestamp": stamp, "message": "START"}],
        )


#: The CloudFormation type of each resource the fake stack lists (SAM's types as deployed).
RESOURCE_TYPES = {
    "InboxPollerFunction": "AWS::Lambda::Function",
    "DocumentProcessorFunction": "AWS::Lambda::Function",
    "MorningDigestFunction": "AWS::Lambda::Function",
    POLLER_SCHEDULE: "AWS::Scheduler::Schedule",
    DIGEST_SCHEDULE: "AWS::Scheduler::Schedule",
}


def deploy(
    sim_url: str,
    *,
    architecture: str = "arm64",
    layer_architecture: str = "arm64",
    logged_ago: float | None = 30.0,
    api_key: str = API_KEY,
    **parameters: str,
) -> Deployed:
    """The stack in moto (call inside ``mock_aws``), its parameters the template's defaults but
    for the Lucca simulator, a compressed budget window and ``parameters``."""
    template = Template({"LuccaBaseUrl": sim_url, "BudgetWindowSeconds": "1", **parameters})
    # Template.names maps a logical id to its physical name: what !Ref resolves to.
    names = template.names
    _make_state(template, names)
    _make_functions(template, names, architecture, layer_architecture)
    _make_schedules(template, names, logged_ago=logged_ago)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=template.parameters["LuccaApiKeySecretName"], SecretString=api_key)
    outputs = {
        key: str(template.resolve(spec["Value"]))
        for key, spec in template.raw["Outputs"].items()
        if "Condition" not in spec or template.condition(spec["Condition"])
    }
    resources = [
        (logical, RESOURCE_TYPES.get(logical) or template.resources[logical]["Type"], physical)
        for logical, physical in names.items()
    ]
    cloudformation = FakeCloudFormation()
    cloudformation.add(STACK, dict(template.parameters), outputs, resources)
    clients = DoctorClients.using(lambda service: boto3.client(service, region_name=REGION))
    clients = dataclasses.replace(clients, cloudformation=cloudformation)
    return Deployed(clients, template, cloudformation, names)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with paced_simulator(api_key=API_KEY, **INBOX) as simulator:
        yield simulator


@pytest.fixture
def stack(sim: Simulator) -> Iterator[Deployed]:
    with mock_aws():
        yield deploy(sim.url)


def row(report: Report, name: str) -> tuple[str, str, str]:
    """(status, found, fix) of the check ``name``."""
    [check] = [c for c in report.checks if c.name == name]
    return check.status, check.found, check.fix


def statuses(report: Report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


# --- a go ---------------------------------------------------------------------------------------


def test_a_healthy_stack_and_tenant_is_a_go_in_three_requests(
    stack: Deployed, sim: Simulator
) -> None:
    report = stack.examine()

    assert report.go, report.render_table()
    assert statuses(report) == {
        "stack": "ok",
        "dry run": "ok",
        "functions": "ok",
        "layer architecture": "ok",
        "configuration": "ok",
        "rules": "ok",
        "API key secret": "ok",
        "tables": "ok",
        "queues": "ok",
        "dead letters": "ok",
        "scheduler dead letters": "ok",
        "schedule": "ok",
        "last poll": "ok",
        "alarm subscriptions": "ok",
        "digest subscriptions": "ok",
        "Lucca API key": "ok",
        "inbox count": "ok",
        "page shape": "ok",
        # The simulator sends fields this version does not know, as Lucca may: listed, not fatal.
        "unknown fields/values": "warning",
        "inbox size": "ok",
        "inferred read": "ok",
        "published read": "ok",
    }
    # Exactly the requests it promises, and the simulator saw exactly those.
    assert report.lucca.total == len(sim.requests()) == 3
    assert MAX_REQUESTS == 4
    assert report.lucca.sent == {"list": 1, "get": 1, "read": 1}
    assert "12 document(s) in the inbox" in row(report, "inbox size")[1]
    assert "1 request(s) at page size 1000" in row(report, "inbox size")[1]
    assert "arm64" in row(report, "functions")[1]
    assert "ENABLED rate(5 minutes)" in row(report, "schedule")[1]
    assert ALARM_ADDRESS in row(report, "alarm subscriptions")[1]


def test_its_requests_take_slots_of_the_stacks_budget(stack: Deployed) -> None:
    ddb = stack.client("dynamodb")
    table = stack.names["BudgetTable"]
    key = {"pk": {"S": "budget#lucca"}, "sk": {"S": "tat"}}
    assert "Item" not in ddb.get_item(TableName=table, Key=key)

    report = stack.examine()

    tat = float(ddb.get_item(TableName=table, Key=key)["Item"]["tat"]["N"])
    assert tat > time.time() - 60  # the functions' budget item, moved by the doctor's requests
    assert f"table {table}" in report.lucca.describe()


def test_the_table_exits_zero_and_says_go(stack: Deployed) -> None:
    code, printed = stack.run()

    assert code == 0
    assert printed.splitlines()[-1].startswith("Verdict: GO")
    assert (
        "Lucca requests: 3 (listing 1, inferred read 1, published read 1) of at most 4" in printed
    )
    assert all(len(line) <= TABLE_WIDTH for line in printed.splitlines())


def test_json_for_scripts(stack: Deployed) -> None:
    code, printed = stack.run("--json")

    answer = json.loads(printed)
    assert code == 0
    assert answer["go"] is True
    assert answer["luccaRequests"]["sent"] == 3
    assert answer["luccaRequests"]["atMost"] == 4
    assert {c["check"] for c in answer["checks"]} >= {"API key secret", "Lucca API key"}
    assert all(set(c) == {"check", "status", "found", "fix"} for c in answer["checks"])


def test_the_command_line_knows_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["doctor", "--help"])
    assert done.value.code == 0
    assert "usage: cleemy-booker doctor" in capsys.readouterr().out


# --- no-gos -------------------------------------------------------------------------------------


def test_a_wrong_key_is_a_no_go_naming_the_secret(stack: Deployed, sim: Simulator) -> None:
    secret = stack.template.parameters["LuccaApiKeySecretName"]
    stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=WRONG_KEY)

    code, printed = stack.run()
    report = stack.examine()

    assert code == 1
    status, found, fix = row(report, "Lucca API key")
    assert status == "blocking"
    assert f"the key in secret {secret} is refused (401)" in found
    assert secret in fix
    assert not report.go
    assert report.lucca.sent == {"list": 1}  # nothing more is asked of a refused key
    assert "NO-GO" in printed
    assert WRONG_KEY not in printed


def test_a_key_without_the_rights_is_a_no_go(stack: Deployed) -> None:
    refusing = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(
                403, json={"type": "about:blank", "title": "Forbidden", "status": 403}
            )
        )
    )
    report = stack.examine(http=refusing)

    status, found, _ = row(report, "Lucca API key")
    assert status == "blocking"
    assert "may not list the inbox (403)" in found
    assert not report.go


def test_a_budget_table_it_cannot_use_is_a_no_go_and_lucca_is_not_asked(
    stack: Deployed, sim: Simulator
) -> None:
    stack.client("dynamodb").delete_table(TableName=stack.names["BudgetTable"])

    report = stack.examine()

    assert row(report, "tables")[0] == "blocking"
    status, found, _ = row(report, "Lucca tenant")
    assert status == "blocking"
    assert "request budget" in found
    assert sim.requests() == []  # no request without its slot


def test_a_missing_secret_is_a_no_go_and_lucca_is_not_asked(
    stack: Deployed, sim: Simulator
) -> None:
    secret = stack.template.parameters["LuccaApiKeySecretName"]
    stack.client("secretsmanager").delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)

    code, _ = stack.run()
    report = stack.examine()

    assert code == 1
    status, found, fix = row(report, "API key secret")
    assert status == "blocking"
    assert f"no secret {secret} in {REGION}" in found
    assert f"create-secret --name {secret}" in fix
    assert row(report, "Lucca tenant")[0] == "warning"  # not checked, and says why
    assert sim.requests() == []


def test_an_unconfirmed_subscription_is_a_no_go(stack: Deployed) -> None:
    sns = stack.client("sns")
    sns.subscribe(TopicArn=stack.names["AlarmTopic"], Protocol="email", Endpoint="boss@example.com")
    unconfirmed = UnconfirmedSns(sns, {"boss@example.com"})
    stack.clients = dataclasses.replace(stack.clients, sns=unconfirmed)

    code, printed = stack.run()
    report = stack.examine()

    assert code == 1
    status, found, fix = row(report, "alarm subscriptions")
    assert status == "blocking"
    assert "1 of 2 PendingConfirmation (email boss@example.com)" in found
    assert "nobody will be told" in found
    assert "Subscription Confirmation" in fix
    assert row(report, "digest subscriptions")[0] == "ok"
    assert "NO-GO: 1 blocking (alarm subscriptions)" in printed


def test_a_topic_nobody_subscribes_to_is_a_warning(stack: Deployed) -> None:
    sns = stack.client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=stack.names["DigestTopic"])[
        "Subscriptions"
    ]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])

    report = stack.examine()

    status, found, fix = row(report, "digest subscriptions")
    assert (status, report.go) == ("warning", True)
    assert "nobody subscribes" in found
    assert "DigestEmail=ADDRESS" in fix


def test_a_stack_without_an_alarm_topic_is_told_so(stack: Deployed) -> None:
    description, resources = stack.cloudformation.stacks[STACK]
    description["Outputs"] = [
        o for o in description["Outputs"] if o["OutputKey"] != "AlarmTopicArn"
    ]
    resources[:] = [r for r in resources if r["LogicalResourceId"] != "AlarmTopic"]

    status, found, fix = row(stack.examine(), "alarm subscriptions")

    assert status == "warning"
    assert "the stack has no topic for the alarms" in found
    assert "AlarmEmail=ADDRESS" in fix


def test_a_layer_built_for_another_architecture_is_a_no_go(sim: Simulator) -> None:
    with mock_aws():
        stack = deploy(sim.url, architecture="x86_64", layer_architecture="arm64")
        report = stack.examine()

    status, found, fix = row(report, "layer architecture")
    assert status == "blocking"
    assert "is built for arm64, not for inbox poller (x86_64), document processor" in found
    assert "every cold start fails" in found
    assert "for one architecture" in fix


def test_a_missing_stack_is_a_no_go(stack: Deployed) -> None:
    code = doctor.main(
        ["--stack", "no-such-stack"], clients=lambda _: stack.clients, out=io.StringIO()
    )
    report = examine("no-such-stack", stack.clients)

    assert code == 1
    assert [c.name for c in report.checks] == ["stack"]
    assert "does not exist" in row(report, "stack")[1]
    assert report.lucca.total == 0


def test_a_disabled_schedule_is_a_no_go(stack: Deployed) -> None:
    scheduler = stack.client("scheduler")
    name = stack.names[POLLER_SCHEDULE]
    current = scheduler.get_schedule(Name=name)
    scheduler.update_schedule(
        Name=name,
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target=current["Target"],
        State="DISABLED",
    )

    status, found, _ = row(stack.examine(), "schedule")

    assert status == "blocking"
    assert "poller DISABLED" in found


def test_rules_that_do_not_parse_are_a_no_go_and_good_ones_are_named(sim: Simulator) -> None:
    source = "ssm:/cleemy-booker/rules"
    with mock_aws():
        stack = deploy(sim.url, RulesSource=source)
        missing = stack.examine()
        ssm = stack.client("ssm")
        ssm.put_parameter(
            Name="/cleemy-booker/rules", Type="String", Value='{"rules": [{"name": 1}]}'
        )
        broken = stack.examine()
        good = {
            "rules": [
                {"name": "owner", "when": {"document.owner": None}, "set": {"document.ownerId": 42}}
            ]
        }
        ssm.put_parameter(
            Name="/cleemy-booker/rules", Type="String", Value=json.dumps(good), Overwrite=True
        )
        parsed = stack.examine()

    assert row(missing, "rules")[0] == "blocking"
    assert "no such SSM parameter" in row(missing, "rules")[1]
    assert row(broken, "rules")[0] == "blocking"
    assert "rule #1" in row(broken, "rules")[1]
    assert row(parsed, "rules") == ("ok", f"{source}: 1 rule(s) parse: owner", "")


# --- warnings -----------------------------------------------------------------------------------


def test_dead_letters_dry_run_and_no_recent_poll_are_warnings(sim: Simulator) -> None:
    with mock_aws():
        stack = deploy(sim.url, logged_ago=None, DryRun="true")
        sqs = stack.client("sqs")
        for n in range(2):
            sqs.send_message(
                QueueUrl=stack.names["DeadLetterQueue"], MessageBody=f'{{"documentId": {n + 1}}}'
            )
        report = stack.examine()

    assert report.go
    assert row(report, "dead letters")[:2] == (
        "warning",
        "2 document(s) failed for good and wait in the DLQ",
    )
    assert "cleemy-booker replay --stack" in row(report, "dead letters")[2]
    assert row(report, "dry run")[0] == "warning"
    status, found, _ = row(report, "last poll")
    assert status == "warning"
    assert "no run of the poller seen in the last 12 min" in found


def test_a_run_is_found_by_cloudwatch_where_lambda_counts_invocations(sim: Simulator) -> None:
    with mock_aws():
        stack = deploy(sim.url, logged_ago=None)
        stack.client("cloudwatch").put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "FunctionName", "Value": stack.names["InboxPollerFunction"]}
                    ],
                    "Value": 1.0,
                }
            ],
        )
        status, found, _ = row(stack.examine(), "last poll")

    assert status == "ok"
    assert "(CloudWatch Invocations)" in found


def test_an_emulator_that_lists_no_resources_degrades_to_could_not_tell(stack: Deployed) -> None:
    def unavailable(StackName: str) -> dict[str, Any]:
        error = {"Code": "InvalidAction", "Message": "DescribeStackResources is not offered"}
        raise ClientError({"Error": error}, "DescribeStackResources")

    stack.cloudformation.describe_stack_resources = unavailable  # type: ignore[method-assign]

    report = stack.examine()

    assert report.go, report.render_table()
    status, found, _ = row(report, "schedule")
    assert (status, found.startswith("could not tell")) == ("warning", True)


def test_a_poll_long_ago_is_not_a_recent_run(sim: Simulator) -> None:
    with mock_aws():
        report = deploy(sim.url, logged_ago=3600).examine()

    assert row(report, "last poll")[0] == "warning"


def test_unknown_fields_and_values_on_page_one_are_listed(stack: Deployed, sim: Simulator) -> None:
    strange = raw_item(90_001, ocrStatus="Archived", documentDate="2024-10-02")
    strange["document"]["paymentDetails"]["paymentMethod"] = "Cheque"
    strange["document"]["amountIncludingTaxes"]["taxes"][0]["regime"] = "reverse-charge"
    strange["approvalCircuit"] = {"step": 2}
    sim.add_documents([strange])

    status, found, fix = row(stack.examine(), "unknown fields/values")

    assert status == "warning"
    assert "document.ocrStatus=Archived (1)" in found
    assert "document.paymentDetails.paymentMethod=Cheque (1)" in found
    assert "document.amountIncludingTaxes.taxes[].regime (1)" in found
    assert "approvalCircuit (1)" in found
    assert "document.supplierReference (13)" in found  # every item the simulator sends has it
    assert "unknown_value" in fix


def test_an_empty_inbox_says_so() -> None:
    with paced_simulator(api_key=API_KEY, invoices=0) as empty, mock_aws():
        report = deploy(empty.url).examine()

    assert report.go
    assert "0 document(s) in the inbox" in row(report, "inbox size")[1]
    for name in ("inferred read", "published read"):
        status, found, _ = row(report, name)
        assert status == "warning"
        assert "the inbox is empty" in found
    assert report.lucca.sent == {"list": 1}


def test_a_page_without_its_count_or_items_blocks() -> None:
    def lucca(body: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))

    with mock_aws():
        stack = deploy("https://acme.ilucca.net")
        no_count = stack.examine(http=lucca({"items": [raw_item(5)]}))
        bare = stack.examine(http=lucca([raw_item(5)]))

    assert row(no_count, "inbox count")[0] == "blocking"
    assert "no valid 'count'" in row(no_count, "inbox count")[1]
    assert row(bare, "page shape")[0] == "blocking"
    assert "a bare array" in row(bare, "page shape")[1]
    html = httpx.Client(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, text="<html>Sign in</html>", headers={"Content-Type": "text/html"}
            )
        )
    )
    with mock_aws():
        login_page = deploy("https://acme.ilucca.net").examine(http=html)
    assert row(login_page, "page shape")[0] == "blocking"
    assert "but not JSON" in row(login_page, "page shape")[1]


# --- the tenant under each unknown --------------------------------------------------------------

#: Each unknown the simulator plays (tests/integration/test_unknowns.py, and the published read's
#: switches): (simulator settings, stack parameters, inferred read, published read, what the
#: published read's row says). The doctor must be a go under every one, in three requests, or
#: four where the published read answers 404 by ``document.id`` and the item's id differs
#: (``FOUR_REQUESTS``).
UNKNOWNS: dict[str, tuple[dict[str, Any], dict[str, str], str, str, str]] = {
    "defaults": ({}, {}, "ok", "ok", "answers the document part, by document.id"),
    "same ids": ({"document_id_offset": 0}, {}, "ok", "ok", "answers the document part"),
    "second book 400": ({"second_book": 400}, {}, "ok", "ok", "answers"),
    "no inferred GET, 405": ({"get_route": "absent"}, {}, "warning", "ok", "answers"),
    "no inferred GET, 404": (
        {"get_route": "absent", "absent_get_status": 404},
        {},
        "warning",
        "ok",
        "answers",
    ),
    "reverse, new first": (
        {"listing_order": "reverse", "new_documents": "first"},
        {},
        "ok",
        "ok",
        "answers",
    ),
    "shuffled pages of 5": (
        {"listing_order": "shuffled"},
        {"PageSize": "5"},
        "ok",
        "ok",
        "answers",
    ),
    "no published read, 404": (
        {"published_route": "absent"},
        {},
        "ok",
        "ok",
        "not needed while the inferred read answers",
    ),
    "no published read, 405": (
        {"published_route": "absent", "absent_published_status": 405},
        {},
        "ok",
        "ok",
        "answered 405",
    ),
    "published read by the item's id": (
        {"published_key": "item"},
        {},
        "ok",
        "ok",
        "answers the document part, by the item's id",
    ),
    "published read by the item's id, same ids": (
        {"published_key": "item", "document_id_offset": 0},
        {},
        "ok",
        "ok",
        "answers the document part",
    ),
    "published read by the item's id, no inferred GET": (
        {"published_key": "item", "get_route": "absent"},
        {},
        "warning",
        "ok",
        "answers the document part, by the item's id",
    ),
    "neither read": (
        {"published_route": "absent", "get_route": "absent"},
        {},
        "warning",
        "warning",
        "neither read answers",
    ),
}


#: The published read answers 404 by ``document.id``: tried once more by the item's id.
FOUR_REQUESTS = frozenset(
    {
        "no published read, 404",
        "published read by the item's id",
        "published read by the item's id, no inferred GET",
        "neither read",
    }
)


@pytest.mark.parametrize("unknown", list(UNKNOWNS))
def test_the_tenant_under_each_unknown(unknown: str) -> None:
    settings, parameters, inferred, published, says = UNKNOWNS[unknown]
    with paced_simulator(api_key=API_KEY, **INBOX, **settings) as simulator, mock_aws():
        report = deploy(simulator.url, **parameters).examine()
        seen = simulator.requests()

    assert report.go, report.render_table()
    assert report.lucca.total == len(seen) == (4 if unknown in FOUR_REQUESTS else 3)
    assert row(report, "inferred read")[0] == inferred
    status, found, _ = row(report, "published read")
    assert status == published
    assert says in found
    assert row(report, "inbox count")[0] == "ok"
    assert row(report, "page shape")[0] == "ok"


def table_rows(printed: str) -> dict[str, str]:
    """Each check's row of the table, its wrapped lines (found, then fix) joined."""
    rows: dict[str, str] = {}
    lines = printed.splitlines()
    body = lines[lines.index(next(line for line in lines if line.startswith("---"))) + 1 :]
    name = ""
    for line in body:
        if line.startswith("---"):
            break
        if line[:24].strip():
            name = line[:24].strip()
            rows[name] = line[26:].strip()
        else:
            rows[name] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in rows.items()}


def test_only_the_published_read_answers_is_a_go_saying_what_it_found() -> None:
    with paced_simulator(api_key=API_KEY, get_route="absent", **INBOX) as simulator, mock_aws():
        code, printed = deploy(simulator.url).run()

    assert code == 0
    rows = table_rows(printed)
    assert rows["inferred read"].startswith("warning GET /cleemy-procurement/services/")
    assert "answered 405: the route does not exist" in rows["inferred read"]
    assert rows["published read"].startswith("OK GET /cleemy-procurement/api/documents/")
    assert "answers the document part, by document.id" in rows["published read"]
    assert printed.splitlines()[-1].startswith("Verdict: GO")


def test_a_small_page_size_costs_more_and_says_so() -> None:
    with paced_simulator(api_key=API_KEY, **INBOX) as simulator, mock_aws():
        report = deploy(simulator.url, PageSize="5").examine()

    status, found, fix = row(report, "inbox size")
    assert status == "warning"
    assert "a complete listing costs 3 request(s) at page size 5" in found
    assert "set PageSize to 1000" in fix
    assert "the same listing would cost 1" in fix


# --- the key, never shown -----------------------------------------------------------------------


def test_the_key_is_in_nothing_it_prints_or_logs(
    stack: Deployed, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secret = stack.template.parameters["LuccaApiKeySecretName"]
    printed: list[str] = []
    for key in (API_KEY, WRONG_KEY):  # a key Lucca takes, then one it refuses
        stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=key)
        # Everything logged while the doctor runs, botocore's and httpx's DEBUG lines included.
        with caplog.at_level(logging.DEBUG):
            printed += [stack.run()[1], stack.run("--json")[1]]
            report = stack.examine()
        printed += [repr(report), report.render_json()]
    captured = capsys.readouterr()

    assert "Verdict: GO" in printed[0]
    assert "NO-GO" in printed[4]
    for text in [*printed, captured.out, captured.err, caplog.text]:
        assert API_KEY not in text
        assert WRONG_KEY not in text


# --- make demo's last word ----------------------------------------------------------------------


def test_the_demo_ends_with_the_doctors_verdict_on_its_stack(stack: Deployed) -> None:
    from local.demo.pipeline import LocalPipeline, PipelineOptions

    pipeline = LocalPipeline(PipelineOptions(stack_name=STACK))
    # The pipeline's clients are the emulator's; here moto's, with the stack played.
    pipeline._clients = {
        service: stack.client(service)
        for service in (
            "lambda",
            "secretsmanager",
            "ssm",
            "dynamodb",
            "sqs",
            "scheduler",
            "cloudwatch",
            "logs",
            "sns",
        )
    }
    pipeline._clients["cloudformation"] = stack.cloudformation

    report = pipeline.doctor()

    assert report.go, report.render_table()
    assert report.stack == STACK


def test_read_stack_keeps_parameters_outputs_and_resources(stack: Deployed) -> None:
    view = read_stack(stack.cloudformation, STACK)

    assert view.region == REGION
    assert view.parameters["DryRun"] == "false"
    assert view.physical("BudgetTableName", "BudgetTable") == stack.names["BudgetTable"]
    assert view.physical(None, "InboxPollerLogGroup") == stack.names["InboxPollerLogGroup"]
    assert [r.logical_id for r in view.of_type("AWS::Scheduler::Schedule", "InboxPoller")] == [
        POLLER_SCHEDULE
    ]
