"""First contact with a real AWS account: what the template must get right there, read from the
template, samconfig.toml and the README themselves. One metric identity per stack; a layer
that matches its functions' architecture whatever the deploy is told; environments that deploy
as the README says, with a secret it creates and alarms that reach a person; the ledger's
retention in every function that writes it; metric lines Lambda's log level cannot drop; a
``Select`` that cannot fall out of range; and the fixed cost of a production stack."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from moto import mock_aws

from cleemy_booker.config import DigestSettings, PollerSettings, ProcessorSettings
from cleemy_booker.digest import DigestData
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.digest import DigestClients, DigestRuntime
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.processor import ProcessorRuntime, load_processor_rules
from local.emulator import LOCAL_PARAMETERS
from sim.figures import _fixed_resources
from sim.template import ACCOUNT, REGION, Template, load_template
from tests.aws import REGION as MOTO_REGION
from tests.aws import Stack, stack_fixture
from tests.harness import FakeLambdaContext, drive_queue, handlers_env, simulator_fixture

ROOT = Path(__file__).resolve().parents[3]
RAW = load_template()
RESOURCES: dict[str, Any] = RAW["Resources"]
PARAMETERS: dict[str, Any] = RAW["Parameters"]
GLOBALS: dict[str, Any] = RAW["Globals"]["Function"]
FUNCTIONS = sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
README = (ROOT / "README.md").read_text()
PRICES = json.loads((ROOT / "sim" / "prices.json").read_text())
#: What a Lambda function's application log level lets through, least to most severe.
LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def _known(overrides: dict[str, str]) -> dict[str, str]:
    """Overrides of the parameters the template has (the same test runs on older templates)."""
    return {k: v for k, v in overrides.items() if k in PARAMETERS}


class StackTemplate(Template):
    """The template resolved as the stack ``stack`` (sim.template names every stack alike)."""

    def __init__(self, stack: str, overrides: dict[str, str] | None = None) -> None:
        super().__init__(_known(overrides or {}))
        self.stack = stack

    def _ref(self, name: str) -> Any:
        return self.stack if name == "AWS::StackName" else super()._ref(name)


# --- 1. one metric identity per stack ---------------------------------------------------------


def _identity(template: Template, function: str) -> tuple[str, str]:
    """(namespace, service dimension) the function's metrics go out under, as Powertools' EMF
    provider builds them from the function's environment."""
    env = template.function(function).environment
    provider = AmazonCloudWatchEMFProvider(
        service=env.get("POWERTOOLS_SERVICE_NAME"),
        namespace=env.get("POWERTOOLS_METRICS_NAMESPACE"),
    )
    provider.add_metric(name="Probe", unit="Count", value=1)
    line = provider.serialize_metric_set()
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    return str(directive["Namespace"]), str(line["service"])


def _alarm_reads(template: Template) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric an alarm of the stack reads."""
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm" or not template.exists(name):
            continue
        props = template.resolve(resource["Properties"])
        metrics = [props] if "MetricName" in props else []
        queries = props.get("Metrics", [])
        metrics += [q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q]
        for metric in metrics:
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dimensions


def _dashboard_reads(template: Template) -> Iterator[tuple[str, str, dict[str, str]]]:
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::CloudWatch::Dashboard" or not template.exists(name):
            continue
        body = json.loads(template.resolve(resource["Properties"]["DashboardBody"]))
        for widget in body["widgets"]:
            for row in widget["properties"]["metrics"]:
                if isinstance(row[0], str):
                    values = [v for v in row[2:] if isinstance(v, str)]
                    yield row[0], row[1], dict(zip(values[::2], values[1::2], strict=True))


class MetricQueries:
    """A CloudWatch client that records the digest's GetMetricData queries."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.metrics += [q["MetricStat"]["Metric"] for q in request["MetricDataQueries"]]
        return {"MetricDataResults": []}


def _digest_reads(template: Template) -> list[tuple[str, str, dict[str, str]]]:
    """What the digest function, configured by its template environment, asks CloudWatch."""
    settings = DigestSettings.from_env(template.function("MorningDigestFunction").environment)
    cloudwatch = MetricQueries()
    clients = DigestClients(dynamodb=None, sns=None, cloudwatch=cloudwatch, sqs=None)
    runtime = DigestRuntime(settings, clients)
    runtime.health(DigestData(at="", since="2027-01-14T08:00:00Z", until="2027-01-15T08:00:00Z"))
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m["Dimensions"]})
        for m in cloudwatch.metrics
    ]


def test_each_stack_publishes_and_reads_its_metrics_under_an_identity_of_its_own() -> None:
    """A test stack's metrics must not trip prod's alarms, nor show on its dashboard or in
    its digest: every reader of a stack's custom metrics filters on that stack's identity."""
    identities = {}
    for stack in ("cleemy-booker-test", "cleemy-booker"):
        template = StackTemplate(stack, {"Monitoring": "alarms-and-dashboard"})
        (identity,) = {_identity(template, f) for f in FUNCTIONS}  # one per stack
        identities[stack] = identity
        namespace, service = identity
        reads = [
            (source, metric, dimensions)
            for source, found in (
                ("alarms", _alarm_reads(template)),
                ("dashboard", _dashboard_reads(template)),
                ("digest", _digest_reads(template)),
            )
            for ns, metric, dimensions in found
            if ns == namespace
        ]
        assert {source for source, _, _ in reads} == {"alarms", "dashboard", "digest"}
        for source, metric, dimensions in reads:
            assert dimensions == {"service": service}, (
                f"{stack}: the {source} reads {metric} of {dimensions}, not this stack's"
            )
    assert identities["cleemy-booker-test"] != identities["cleemy-booker"], (
        "two stacks publish under one identity: the test stack's metrics reach prod's alarms"
    )


# --- 2. build and deploy agree on the architecture ----------------------------------------------


def _layers() -> dict[str, Any]:
    return {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::LayerVersion"}


def test_what_sam_build_builds_depends_on_no_deploy_parameter() -> None:
    """``sam build`` resolves a layer's BuildArchitecture from its own --parameter-overrides,
    and ``sam deploy --guided`` asks Architecture again: a parameter there lets the two differ.
    Every layer is built for a constant, and one is built for each architecture allowed."""
    built = set()
    for name, layer in _layers().items():
        architecture = layer["Metadata"]["BuildArchitecture"]
        assert isinstance(architecture, str), f"{name} is built for {architecture}"
        assert layer["Properties"]["CompatibleArchitectures"] == [architecture], name
        built.add(architecture)
    assert built == set(PARAMETERS["Architecture"]["AllowedValues"])


@pytest.mark.parametrize("architecture", PARAMETERS["Architecture"]["AllowedValues"])
def test_every_function_takes_the_layer_built_for_its_own_architecture(architecture: str) -> None:
    template = Template({"Architecture": architecture})
    for function in FUNCTIONS:
        props = RESOURCES[function]["Properties"]
        runs = template.resolve(props.get("Architectures", GLOBALS.get("Architectures")))
        assert runs == [architecture], function
        layers = template.resolve(props.get("Layers", GLOBALS.get("Layers", [])))
        assert layers, f"{function} has no layer"
        for layer in layers:
            assert template.exists(layer), f"{function} takes {layer}, not deployed"
            assert RESOURCES[layer]["Metadata"]["BuildArchitecture"] == architecture, (
                f"{function} runs {architecture} on {layer}, built for "
                f"{RESOURCES[layer]['Metadata']['BuildArchitecture']}: every cold start would "
                "fail importing pydantic_core"
            )
    deployed = [name for name in _layers() if template.exists(name)]
    assert len(deployed) == 1, f"one layer deployed, not {deployed}"


# --- 3. the environments deploy as the README says ----------------------------------------------


def _overrides(env: str) -> dict[str, str]:
    listed = SAMCONFIG[env]["deploy"]["parameters"].get("parameter_overrides", [])
    items = listed if isinstance(listed, list) else str(listed).split()
    return dict(item.split("=", 1) for item in items)


def _deploy_environments() -> list[str]:
    return [
        env for env, config in SAMCONFIG.items() if isinstance(config, dict) and "deploy" in config
    ]


def _deployed_parameters(env: str) -> dict[str, str]:
    defaults = {name: str(spec.get("Default", "")) for name, spec in PARAMETERS.items()}
    return {**defaults, **_overrides(env)}


def _readme_section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def test_every_environment_has_the_secret_the_readme_s_steps_create() -> None:
    steps = _readme_section("Deploying to AWS").replace("\\\n", " ")  # continued lines
    created = set(re.findall(r"create-secret\b[^\n]*?--name\s+(\S+)", steps))
    assert _deploy_environments()
    for env in _deploy_environments():
        secret = _deployed_parameters(env)["LuccaApiKeySecretName"]
        assert secret in created, (
            f"samconfig's {env} reads the secret {secret}: the README never creates it "
            f"(it creates {sorted(created)})"
        )


def _rule_holds(expression: Any, parameters: dict[str, str]) -> Any:
    """A rule function of CloudFormation's Rules section (the ones the template uses)."""
    if isinstance(expression, str):
        return expression
    ((tag, arg),) = expression.items()
    tag = tag.lstrip("!").removeprefix("Fn::")
    if tag == "Ref":
        return parameters[arg]
    if tag == "Equals":
        left, right = (_rule_holds(a, parameters) for a in arg)
        return left == right
    if tag == "Not":
        return not _rule_holds(arg[0], parameters)
    if tag == "And":
        return all(_rule_holds(a, parameters) for a in arg)
    if tag == "Or":
        return any(_rule_holds(a, parameters) for a in arg)
    raise AssertionError(f"the test does not know the rule function {tag}")


def _refused_by_rules(parameters: dict[str, str]) -> list[str]:
    """The AssertDescription of every rule assertion these parameters fail: the deploy is
    refused before anything is created."""
    refused = []
    for rule in RAW.get("Rules", {}).values():
        if "RuleCondition" in rule and not _rule_holds(rule["RuleCondition"], parameters):
            continue
        refused += [
            str(a.get("AssertDescription", a["Assert"]))
            for a in rule["Assertions"]
            if not _rule_holds(a["Assert"], parameters)
        ]
    return refused


def _alarms_go_out(parameters: dict[str, str]) -> bool:
    template = Template(_known(parameters))
    return any(
        r["Type"] == "AWS::CloudWatch::Alarm" and template.exists(n) for n, r in RESOURCES.items()
    )


@pytest.mark.parametrize("env", _deploy_environments())
def test_an_environment_with_alarms_cannot_deploy_without_someone_to_tell(env: str) -> None:
    parameters = _deployed_parameters(env)
    assert _alarms_go_out(parameters), f"{env} deploys no alarm"
    assert _refused_by_rules({**parameters, "AlarmEmail": ""}), (
        f"samconfig's {env} deploys alarms that reach nobody (AlarmEmail empty)"
    )
    assert not _refused_by_rules({**parameters, "AlarmEmail": "finance-ops@example.com"})


def test_the_readme_s_steps_ask_for_the_alarm_address_and_say_who_may_go_without() -> None:
    steps = _readme_section("Deploying to AWS")
    assert "AlarmEmail" in steps
    for env in _deploy_environments():
        guided = "sam deploy --guided" + ("" if env == "default" else f" --config-env {env}")
        assert guided in steps, f"the README's first deploy of {env} must ask the parameters"
    assert re.search(r"\bMonitoring=none\b", steps)
    # A stack nobody watches, and the local emulators (no mail leaves them), need no address.
    defaults = _deployed_parameters("default")
    assert not _refused_by_rules({**defaults, "Monitoring": "none", "AlarmEmail": ""})
    assert not _refused_by_rules({**defaults, **LOCAL_PARAMETERS, "AlarmEmail": ""})


@pytest.mark.parametrize(
    ("address", "accepted"),
    [("", True), ("finance-ops@example.com", True), ("finance-ops", False), ("a@b", False)],
)
def test_the_alarm_address_is_refused_when_it_cannot_be_one(address: str, accepted: bool) -> None:
    pattern = PARAMETERS["AlarmEmail"]["AllowedPattern"]
    assert (re.fullmatch(pattern, address) is not None) == accepted


# --- 4. the ledger's retention, in every function that writes it ---------------------------------


def _runtime_of(function: str, env: dict[str, str], session: boto3.Session) -> Any:
    """The function's runtime as its handler builds it, from the template's environment."""
    env = {**env, "LUCCA_BASE_URL": "https://acme.ilucca.net"}
    if function == "InboxPollerFunction":
        settings = PollerSettings.from_env(env)
        return PollerRuntime(settings, AwsClients.create(session), "key")
    if function == "DocumentProcessorFunction":
        processor = ProcessorSettings.from_env(env)
        rules = load_processor_rules(processor)
        return ProcessorRuntime(processor, AwsClients.create(session), "key", rules)
    if function == "MorningDigestFunction":
        return DigestRuntime(DigestSettings.from_env(env), DigestClients.create(session))
    raise AssertionError(f"{function}: which runtime does its handler build?")


def test_every_function_keeps_what_it_writes_to_the_ledger_as_long_as_the_parameter_says() -> None:
    """The poller writes the trail too (the bookings it confirms): before, only the processor
    was given LedgerRetentionDays, and the poller wrote its events with a 3650-day default."""
    template = Template({"LedgerRetentionDays": "400"})
    with mock_aws():
        session = boto3.Session(region_name=MOTO_REGION)
        for function in FUNCTIONS:
            runtime = _runtime_of(function, template.function(function).environment, session)
            assert runtime.ledger.db.retention_seconds == 400 * 86400, function


# --- 5. metric lines that survive the log level ---------------------------------------------------


def _publishes_metrics(function: str) -> bool:
    code = ROOT / str(RESOURCES[function]["Properties"]["CodeUri"]) / "app.py"
    return "@metrics.log_metrics" in code.read_text()


def _logging(function: str) -> dict[str, Any]:
    own = RESOURCES[function]["Properties"].get("LoggingConfig", {})
    return {**GLOBALS.get("LoggingConfig", {}), **own}


def test_powertools_metric_lines_carry_no_level_so_lambda_files_them_as_info() -> None:
    """What makes the level matter: Lambda gives a JSON line without ``level`` the level
    INFO, and drops it under a higher ApplicationLogLevel."""
    provider = AmazonCloudWatchEMFProvider(service="s", namespace="N")
    provider.add_metric(name="LuccaRequests", unit="Count", value=1)
    line = provider.serialize_metric_set()
    assert "level" not in {key.lower() for key in line}


def test_every_function_that_publishes_metrics_lets_info_lines_through() -> None:
    publishing = [f for f in FUNCTIONS if _publishes_metrics(f)]
    assert {"InboxPollerFunction", "DocumentProcessorFunction"} <= set(publishing)
    for function in publishing:
        logging = _logging(function)
        assert logging["LogFormat"] == "JSON", function
        level = str(logging.get("ApplicationLogLevel", "INFO")).upper()
        assert LOG_LEVELS.index(level) <= LOG_LEVELS.index("INFO"), (
            f"{function} logs at {level}: Lambda would drop every metric line, and the alarms "
            "built on them would never fire"
        )


def test_the_application_log_level_is_set_once_with_the_reason() -> None:
    assert "ApplicationLogLevel" in GLOBALS.get("LoggingConfig", {})
    for function in FUNCTIONS:
        own = RESOURCES[function]["Properties"].get("LoggingConfig", {})
        assert "ApplicationLogLevel" not in own, f"{function} sets its own level"
    text = (ROOT / "template.yaml").read_text()
    globals_text = text[text.index("\nGlobals:") : text.index("\nResources:")]
    reason = globals_text[: globals_text.index("ApplicationLogLevel:")]
    assert "EMF" in reason, "the level's reason must sit beside it"
    assert "INFO" in reason


# --- 6. a Select that cannot fall out of range --------------------------------------------------


def _eager(value: Any, parameters: dict[str, str]) -> Any:
    """Resolve as CloudFormation may: every function, both branches of every If, so a
    Select out of range fails wherever it stands."""
    if isinstance(value, list):
        return [_eager(v, parameters) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: _eager(v, parameters) for k, v in value.items()}
    ((tag, arg),) = value.items()
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    if tag in ("!Ref", "Ref"):
        return {**pseudo, **parameters}.get(arg, arg)
    if tag in ("!Sub", "Fn::Sub"):
        text, names = (arg[0], _eager(arg[1], parameters)) if isinstance(arg, list) else (arg, {})
        known = {**pseudo, **parameters, **names}
        return re.sub(r"\$\{([^}!.]+)\}", lambda m: str(known.get(m.group(1), m.group(0))), text)
    if tag in ("!Split", "Fn::Split"):
        return str(_eager(arg[1], parameters)).split(arg[0])
    if tag in ("!Select", "Fn::Select"):
        index, items = int(_eager(arg[0], parameters)), _eager(arg[1], parameters)
        if not 0 <= index < len(items):
            raise IndexError(f"Fn::Select cannot select nonexistent value at index {index}")
        return items[index]
    if tag in ("!If", "Fn::If"):
        return [_eager(branch, parameters) for branch in arg[1:]]
    return {tag: _eager(arg, parameters)}


def _selects(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        if set(value) & {"!Select", "Fn::Select"}:
            yield value
        for item in value.values():
            yield from _selects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _selects(item)


@pytest.mark.parametrize("source", ["", "ssm:/rules", "ssm:/cleemy-booker/rules", "ssm:/a_b.c-d/e"])
def test_no_select_falls_out_of_range_whatever_rules_source_the_template_accepts(
    source: str,
) -> None:
    assert re.fullmatch(PARAMETERS["RulesSource"]["AllowedPattern"], source)
    parameters = {**_deployed_parameters("prod"), "RulesSource": source}
    selects = list(_selects(RESOURCES))
    assert selects
    for select in selects:
        _eager(select, parameters)  # raises when out of range: the deploy would fail


def _rules_statements(function: str) -> list[dict[str, Any]]:
    found = []
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and set(policy) & {"!If", "Fn::If"}:
            policy = next(iter(policy.values()))[1]
        if isinstance(policy, dict) and "Statement" in policy:
            found += [s for s in policy["Statement"] if str(s["Action"]).startswith("ssm:")]
    return found


@pytest.mark.parametrize("function", ["InboxPollerFunction", "DocumentProcessorFunction"])
def test_the_rules_parameter_is_the_one_the_code_reads(function: str) -> None:
    """RulesSource ``ssm:/cleemy-booker/rules``: the code reads the parameter
    ``/cleemy-booker/rules``, whose ARN ends ``parameter/cleemy-booker/rules``."""
    parameters = {**_deployed_parameters("prod"), "RulesSource": "ssm:/cleemy-booker/rules"}
    (statement,) = _rules_statements(function)
    assert _eager(statement["Resource"], parameters) == (
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/cleemy-booker/rules"
    )


# --- 8. the fixed cost of a production stack -----------------------------------------------------


def _metrics_read(template: Template) -> set[str]:
    """Every custom metric something of the stack reads: its alarms, its dashboard, the
    digest (its health line)."""
    namespace, _ = _identity(template, "InboxPollerFunction")
    reads = [*_alarm_reads(template), *_dashboard_reads(template), *_digest_reads(template)]
    return {metric for ns, metric, _ in reads if ns == namespace}


def test_a_production_stack_costs_at_most_3_dollars_a_month_whatever_its_traffic() -> None:
    """At list prices with no free tier (sim/prices.json): the alarms, dashboards and keys
    the production stack deploys, its secret, and every custom metric something reads with
    data in every hour of the month (the code emits no other: see the next test)."""
    template = Template(_known(_overrides("prod")))
    fixed = _fixed_resources(SimpleNamespace(template=template), PRICES)  # type: ignore[arg-type]
    metrics = _metrics_read(template)
    costs = {
        **fixed,
        "secret": PRICES["secretsManager"]["secretMonth"],
        "customMetrics": len(metrics) * PRICES["cloudwatch"]["customMetricMonth"],
    }
    assert sum(costs.values()) <= 3.00, f"${sum(costs.values()):.2f} a month: {costs}"
    # Every alarm a person acts on is still there (README, "What a person sees").
    alarms = {n for n, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {n for n in alarms if template.exists(n)} == alarms
    assert all(f"`{alarm}`" in README for alarm in alarms)


sim = simulator_fixture(invoices=12, seed=8)
stack = stack_fixture(max_receive_count=10)


def _capture_metrics(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from cleemy_booker.observability import metrics

    seen: list[str] = []
    monkeypatch.setattr(metrics, "add_metric", lambda name, *_, **__: seen.append(name))
    return seen


@pytest.mark.parametrize("monitoring", ["alarms", "alarms-and-dashboard", "none"])
def test_the_functions_emit_no_metric_that_nothing_reads(
    monkeypatch: pytest.MonkeyPatch, sim: Any, stack: Stack, monitoring: str
) -> None:
    """Each custom metric costs $0.30 a month for every hour it has data: the per-outcome
    counts only the dashboard shows go out only with the dashboard, the held count only with
    the alarm on it."""
    template = Template(_known({"Monitoring": monitoring}))
    emitted = _capture_metrics(monkeypatch)
    with handlers_env(monkeypatch, stack, sim, MONITORING=monitoring) as (poller, processor):
        poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="{not json")
        drive_queue(stack, processor.lambda_handler)
    assert "LuccaRequests" in emitted  # the run did emit
    unread = set(emitted) - _metrics_read(template)
    assert not unread, f"with Monitoring={monitoring}, nothing reads {sorted(unread)}"
    if monitoring == "alarms-and-dashboard":
        assert {"DocumentsBooked", "DocumentsDeadLettered"} <= set(emitted)


def test_the_week_is_priced_as_the_template_deploys() -> None:
    """sim/figures prices the template's own resources under its defaults: no dashboard and
    no key by default, a dashboard when asked for."""
    default = _fixed_resources(SimpleNamespace(template=Template()), PRICES)  # type: ignore[arg-type]
    assert default["dashboard"] == 0
    assert default["kmsKeys"] == 0
    assert default["alarms"] > 0
    chosen = Template(_known({"Monitoring": "alarms-and-dashboard"}))
    with_dashboard = _fixed_resources(SimpleNamespace(template=chosen), PRICES)  # type: ignore[arg-type]
    assert with_dashboard["dashboard"] == PRICES["cloudwatch"]["dashboardMonth"]
