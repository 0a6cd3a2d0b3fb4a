"""What AWS checks and the local emulator does not, read from the template itself: alarms that
can reach a person, names that let two stacks share an account, retries and concurrency as the
design wants them, the architecture and memory chosen from measurements, a ledger carried
over from an earlier stack, and the alarms and dashboard a person needs."""

from __future__ import annotations

import fnmatch
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.memory import choose
from cleemy_booker.processor import Outcome
from local.emulator import LOCAL_PARAMETERS
from sim.template import ACCOUNT, REGION, Template, load_template

ROOT = Path(__file__).resolve().parents[3]
RAW = load_template()
RESOURCES: dict[str, Any] = RAW["Resources"]
TEMPLATE = Template()
STACK = "cleemy-booker-sim"  # what sim.template resolves ${AWS::StackName} to


def _of_type(kind: str) -> dict[str, Any]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def _ref(value: Any) -> str | None:
    """The logical id of a ``!Ref``/``!GetAtt``, else None."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, arg),) = value.items()
        if tag in ("!Ref", "Ref"):
            return str(arg)
        if tag in ("!GetAtt", "Fn::GetAtt"):
            return str(arg).split(".")[0]
    return None


# --- a minimal IAM evaluator: enough for resource policies with service principals ---------


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        for key, wanted in tests.items():
            actual = context.get(key)
            if actual is None:
                return False  # a key the request does not carry fails the condition
            patterns = [str(v) for v in _listed(wanted)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in patterns
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, p) for p in patterns)
            else:
                raise AssertionError(f"the evaluator does not know {operator}")
            if not ok:
                return False
    return True


def _allows(
    policy: dict[str, Any], service: str, action: str, resource: str, context: dict[str, str]
) -> bool:
    """Allowed by an Allow statement and denied by no Deny statement."""

    def matches(statement: dict[str, Any]) -> bool:
        principal = statement.get("Principal", {})
        services = _listed(principal.get("Service", [])) if isinstance(principal, dict) else []
        if principal != "*" and service not in services:
            return False
        actions = [str(a).lower() for a in _listed(statement["Action"])]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            return False
        resources = [str(r) for r in _listed(statement.get("Resource", "*"))]
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return False
        return _conditions_hold(statement.get("Condition", {}), context)

    statements = policy["Statement"]
    allowed = any(s["Effect"] == "Allow" and matches(s) for s in statements)
    return allowed and not any(s["Effect"] == "Deny" and matches(s) for s in statements)


def _alarm_arn(logical_id: str) -> str:
    # CloudFormation names an alarm without AlarmName "<stack>-<logical id>-<random suffix>".
    props = RESOURCES[logical_id]["Properties"]
    name = TEMPLATE.resolve(props["AlarmName"]) if "AlarmName" in props else None
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name or f'{STACK}-{logical_id}-1A2B3C'}"


def _alarm_actions() -> Iterator[tuple[str, str]]:
    for alarm, resource in _of_type("AWS::CloudWatch::Alarm").items():
        props = resource["Properties"]
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for action in props.get(key, []):
                topic = _ref(action)
                assert topic is not None, f"{alarm}: {key} {action} is not a topic of this stack"
                yield alarm, topic


def test_every_alarm_has_an_action_and_says_what_to_do() -> None:
    alarms = _of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props.get("AlarmActions"), f"{name} notifies no one"
        assert len(str(props.get("AlarmDescription", ""))) > 60, f"{name}: what should I do?"


@pytest.mark.parametrize(("alarm", "topic"), sorted(set(_alarm_actions())))
def test_cloudwatch_can_publish_every_alarm_action(alarm: str, topic: str) -> None:
    topic_resource = RESOURCES[topic]
    assert topic_resource["Type"] == "AWS::SNS::Topic"
    context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": _alarm_arn(alarm)}
    topic_arn = TEMPLATE.resolve({"!Ref": topic})
    policies = [
        TEMPLATE.resolve(p["Properties"]["PolicyDocument"])
        for p in _of_type("AWS::SNS::TopicPolicy").values()
        if topic in [_ref(t) for t in p["Properties"]["Topics"]]
    ]
    assert any(
        _allows(p, "cloudwatch.amazonaws.com", "sns:Publish", topic_arn, context) for p in policies
    ), f"no topic policy lets CloudWatch publish {alarm} to {topic}"
    key = topic_resource["Properties"].get("KmsMasterKeyId")
    if key is None:
        return
    key_id = _ref(key)
    # alias/aws/sns (or any key from outside the stack): its policy cannot be shown to let
    # CloudWatch in, and the AWS-managed key's never does.
    assert key_id is not None, f"{topic} is encrypted with {key}: CloudWatch cannot use it"
    assert RESOURCES[key_id]["Type"] == "AWS::KMS::Key", f"{topic}: {key} is not a key"
    key_policy = TEMPLATE.resolve(RESOURCES[key_id]["Properties"]["KeyPolicy"])
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert _allows(key_policy, "cloudwatch.amazonaws.com", action, "*", context), (
            f"CloudWatch may not {action} with {key_id}: {alarm} would never reach {topic}"
        )


def test_a_key_lets_no_other_account_or_alarm_in() -> None:
    # None today: the alarm topic carries no secret and has no key of its own (CloudWatch
    # cannot use the AWS-managed one); a key added later must keep to this.
    for key in _of_type("AWS::KMS::Key").values():
        policy = TEMPLATE.resolve(key["Properties"]["KeyPolicy"])
        other_stack = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:someone-else-Alarm-1"
        assert not _allows(
            policy,
            "cloudwatch.amazonaws.com",
            "kms:Decrypt",
            "*",
            {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": other_stack},
        )
        assert not _allows(
            policy,
            "cloudwatch.amazonaws.com",
            "kms:Decrypt",
            "*",
            {"aws:SourceAccount": "999999999999", "aws:SourceArn": _alarm_arn("PollerErrorsAlarm")},
        )
        assert key["Properties"]["EnableKeyRotation"] is True


def _events(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, function in _of_type("AWS::Serverless::Function").items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == kind:
                yield name, event["Properties"]


def test_every_schedule_gets_a_name_of_its_own_stack() -> None:
    schedules = list(_events("ScheduleV2"))
    assert schedules
    for function, props in schedules:
        named = "Name" in props and "AWS::StackName" in json.dumps(props["Name"])
        assert props.get("OmitName") is True or named, (
            f"{function}'s schedule takes a fixed name: a second stack in the account fails"
        )


def test_a_failed_poll_is_not_run_again_by_lambda() -> None:
    for function, _ in _events("ScheduleV2"):
        config = RESOURCES[function]["Properties"].get("EventInvokeConfig", {})
        assert config.get("MaximumRetryAttempts") == 0, (
            f"{function}: Lambda retries a failed asynchronous invocation twice by default"
        )
        assert TEMPLATE.function(function).async_retries == 0  # and the simulation agrees


def test_no_function_reserves_concurrency() -> None:
    # Lambda refuses a reservation that leaves under 100 unreserved executions: on a new
    # account (quota 10) the deploy fails. One poller at a time is the ledger's lease.
    for name, function in _of_type("AWS::Serverless::Function").items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], name
    assert "ReservedConcurrentExecutions" not in RAW["Globals"]["Function"]


def test_one_architecture_parameter_and_each_layer_built_for_a_constant() -> None:
    parameter = RAW["Parameters"]["Architecture"]
    assert parameter["Default"] == "arm64"
    assert set(parameter["AllowedValues"]) == {"arm64", "x86_64"}
    by_parameter = [{"!Ref": "Architecture"}]
    assert RAW["Globals"]["Function"]["Architectures"] == by_parameter
    for name, function in _of_type("AWS::Serverless::Function").items():
        assert "Architectures" not in function["Properties"], f"{name} overrides it"
    # sam build builds every layer for a constant (no parameter for build and deploy to
    # disagree on); the deploy takes the one built for Architecture (test_template_first_contact).
    for name, layer in _of_type("AWS::Serverless::LayerVersion").items():
        built_for = layer["Metadata"]["BuildArchitecture"]
        assert built_for in parameter["AllowedValues"], name
        assert layer["Properties"]["CompatibleArchitectures"] == [built_for], name
    assert LOCAL_PARAMETERS["Architecture"] == "x86_64"  # what ministack runs


def test_the_alarms_left_out_locally_are_all_there_on_aws() -> None:
    """Metric-math alarms sit behind a condition ministack needs; AWS gets them by default."""
    local = Template(LOCAL_PARAMETERS)
    left_out = {name for name in RESOURCES if TEMPLATE.exists(name) and not local.exists(name)}
    # And the arm64 layer: locally the functions run x86_64 and take the layer built for it.
    assert left_out == {"NewDeadLettersAlarm", "ThrottlesAlarm", "DomainLayerArm64"}


def test_memory_sizes_are_the_ones_the_measurements_call_for() -> None:
    measured = json.loads((ROOT / "sim" / "measured.json").read_text())["memory"]
    interval = float(TEMPLATE.parameters["BudgetWindowSeconds"]) / float(
        TEMPLATE.parameters["BudgetRequestsPerWindow"]
    )
    batch = TEMPLATE.sqs_source("DocumentProcessorFunction").batch_size
    slots = {
        "InboxPollerFunction": ("inbox_poller", TEMPLATE.function("InboxPollerFunction").timeout),
        "DocumentProcessorFunction": ("document_processor", batch * interval),
    }
    for function, (key, slot) in slots.items():
        chosen = choose(measured[key], slot)["chosenMb"]
        assert TEMPLATE.function(function).memory_mb == chosen, function


# --- an existing ledger table ---------------------------------------------------------------


def _references_outside_if(value: Any, target: str, guarded: bool = False) -> Iterator[Any]:
    """``!Ref``/``!GetAtt``/``${…}`` of ``target`` not in the true branch of its condition."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, arg),) = value.items()
            if tag in ("!If", "Fn::If") and arg[0] == "CreateLedgerTable":
                yield from _references_outside_if(arg[1], target, True)
                yield from _references_outside_if(arg[2], target, guarded)
                return
            if _ref(value) == target and not guarded:
                yield value
            if tag in ("!Sub", "Fn::Sub") and not guarded:
                text = arg[0] if isinstance(arg, list) else arg
                if re.search(r"\$\{" + target + r"[.}]", str(text)):
                    yield value
        for item in value.values():
            yield from _references_outside_if(item, target, guarded)
    elif isinstance(value, list):
        for item in value:
            yield from _references_outside_if(item, target, guarded)


def test_with_an_existing_ledger_nothing_refers_to_the_ledger_the_stack_would_create() -> None:
    assert RESOURCES["LedgerTable"]["Condition"] == "CreateLedgerTable"
    assert RESOURCES["LedgerTable"]["DeletionPolicy"] == "Retain"
    outside = list(_references_outside_if(RAW["Globals"], "LedgerTable"))
    for name, resource in RESOURCES.items():
        if name != "LedgerTable":
            outside += list(_references_outside_if(resource, "LedgerTable"))
    outside += list(_references_outside_if(RAW["Outputs"], "LedgerTable"))
    assert outside == []


def test_both_functions_use_the_existing_ledger_when_one_is_given() -> None:
    carried = Template({"ExistingLedgerTable": "cleemy-booker-LedgerTable-OLD"})
    for function in ("InboxPollerFunction", "DocumentProcessorFunction"):
        env = carried.function(function).environment
        assert env["LEDGER_TABLE"] == "cleemy-booker-LedgerTable-OLD"
    assert "LedgerTable" not in [t.logical_id for t in carried.tables()]
    assert "LedgerTable" in [t.logical_id for t in TEMPLATE.tables()]


# --- what a person must see -----------------------------------------------------------------


def _alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(namespace, metric, dimensions) of every metric an alarm reads."""
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"], props.get("Dimensions", []))]
    found = []
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])))
    return found


def _alarms_on(namespace: str, metric: str, dimension: str | None = None) -> list[str]:
    found = []
    for name, alarm in _of_type("AWS::CloudWatch::Alarm").items():
        for ns, name_, dims in _alarm_metrics(alarm["Properties"]):
            targets = [_ref(d["Value"]) for d in dims]
            if (ns, name_) == (namespace, metric) and (dimension is None or dimension in targets):
                found.append(name)
    return found


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension"),
    [
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "DocumentsQueue"),
        ("AWS/Lambda", "Errors", "DocumentProcessorFunction"),
        ("AWS/Lambda", "Throttles", "DocumentProcessorFunction"),
        ("AWS/Lambda", "Errors", "InboxPollerFunction"),
        ("CleemyBooker", "LuccaThrottled", None),
        ("CleemyBooker", "DocumentsAwaitingReview", None),
        ("CleemyBooker", "ReconciliationDiscrepancies", None),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
    ],
)
def test_an_alarm_watches(namespace: str, metric: str, dimension: str | None) -> None:
    assert _alarms_on(namespace, metric, dimension)


def test_each_new_dead_letter_alarms_again() -> None:
    """A level alarm stays in ALARM while any message waits and says nothing of the next one:
    one alarm must read the arrivals (sends, and the rise of the visible count)."""
    arrivals = [
        name
        for name, alarm in _of_type("AWS::CloudWatch::Alarm").items()
        if any("DIFF(" in q.get("Expression", "") for q in alarm["Properties"].get("Metrics", []))
        and name in _alarms_on("AWS/SQS", "NumberOfMessagesSent", "DeadLetterQueue")
    ]
    assert arrivals


def _emitted_metrics() -> set[str]:
    """Every custom metric the package emits: literal names, and one per processor outcome."""
    source = "\n".join(
        p.read_text() for p in (ROOT / "layers" / "domain" / "cleemy_booker").rglob("*.py")
    )
    names = set(re.findall(r'add_metric\(\s*"(\w+)"', source))
    names |= {f"Documents{o.title().replace('_', '')}" for o in typing.get_args(Outcome)}
    return names


def _dashboard() -> dict[str, Any]:
    (dashboard,) = _of_type("AWS::CloudWatch::Dashboard").values()
    body: dict[str, Any] = json.loads(TEMPLATE.resolve(dashboard["Properties"]["DashboardBody"]))
    return body


def _dashboard_metrics() -> list[tuple[str, str, str, int]]:
    """(namespace, metric, dimension value, period) of every metric row of the dashboard."""
    rows = []
    for widget in _dashboard()["widgets"]:
        props = widget["properties"]
        for row in props["metrics"]:
            if isinstance(row[0], str):
                options = row[-1] if isinstance(row[-1], dict) else {}
                rows.append((row[0], row[1], row[3], options.get("period", props["period"])))
    return rows


def test_alarms_and_dashboard_read_only_metrics_the_code_emits() -> None:
    emitted = _emitted_metrics()
    assert {"LuccaRequests", "LuccaThrottled", "DocumentsAwaitingReview"} <= emitted
    read = {m for ns, m, _, _ in _dashboard_metrics() if ns == "CleemyBooker"}
    for alarm in _of_type("AWS::CloudWatch::Alarm").values():
        read |= {m for ns, m, _ in _alarm_metrics(alarm["Properties"]) if ns == "CleemyBooker"}
    assert read - emitted == set()
    # The stack's own identity: its name (test_template_first_contact checks every reader).
    service = TEMPLATE.function("InboxPollerFunction").environment["POWERTOOLS_SERVICE_NAME"]
    assert service == STACK
    assert {d for ns, _, d, _ in _dashboard_metrics() if ns == "CleemyBooker"} == {service}


def test_the_dashboard_shows_per_hour_what_a_person_asks() -> None:
    rows = {(ns, m, d): period for ns, m, d, period in _dashboard_metrics()}
    queue = TEMPLATE.resolve({"!GetAtt": "DocumentsQueue.QueueName"})
    poller = TEMPLATE.resolve({"!Ref": "InboxPollerFunction"})
    wanted = [
        ("CleemyBooker", "DocumentsBooked", STACK),
        ("CleemyBooker", "DocumentsHeld", STACK),
        ("CleemyBooker", "DocumentsDeadLettered", STACK),
        ("CleemyBooker", "LuccaRequests", STACK),
        ("CleemyBooker", "LuccaThrottled", STACK),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue),
        ("AWS/Lambda", "Invocations", poller),
    ]
    for key in wanted:
        assert rows.get(key) == 3600, f"{key} is not on the dashboard per hour"
    expressions = [
        row[0]["expression"]
        for widget in _dashboard()["widgets"]
        for row in widget["properties"]["metrics"]
        if isinstance(row[0], dict)
    ]
    per_hour = (
        int(TEMPLATE.parameters["BudgetRequestsPerWindow"])
        * 3600
        // int(TEMPLATE.parameters["BudgetWindowSeconds"])
    )
    budgets = [re.search(r"(\d+) \* 3600 / (\d+)", e) for e in expressions]
    (budget,) = [b for b in budgets if b]
    assert int(budget.group(1)) * 3600 // int(budget.group(2)) == per_hour
