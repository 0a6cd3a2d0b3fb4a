"""What the template promises, read from the template itself: parameters that the code
accepts exactly when the template does, and a layer built from the versions the tests ran."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from moto import mock_aws

from cleemy_booker.config import RULES_SOURCE_IN_TEMPLATE, ConfigError, ProcessorSettings
from sim.template import Template
from tests.aws import create_stack
from tests.pins import normalised, read_pins

ROOT = Path(__file__).resolve().parents[3]
PARAMETERS = Template().raw["Parameters"]
BASE_ENV = {
    "LUCCA_BASE_URL": "https://acme.ilucca.net",
    "LUCCA_API_KEY_SECRET": "key",
    "BUDGET_TABLE": "budget",
    "LEDGER_TABLE": "ledger",
    "DOCUMENTS_QUEUE_URL": "https://sqs/q",
    "DEAD_LETTER_QUEUE_URL": "https://sqs/dlq",
    "IDEMPOTENCY_TABLE": "idempotency",
}
AMOUNTS = [
    "",
    "0",
    "000",
    "0.00",
    "0.01",
    "0.1",
    ".5",
    "0.10",
    "1",
    "10",
    "00.50",
    "100.55",
    "100.555",
    "-1",
    "1e3",
    "abc",
    "1,5",
    " ",
]


def _template_accepts(parameter: str, value: str) -> bool:
    return re.fullmatch(PARAMETERS[parameter]["AllowedPattern"], value) is not None


def _code_accepts_amount(value: str) -> bool:
    try:
        ProcessorSettings.from_env({**BASE_ENV, "MAX_AUTO_AMOUNT": value})
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("value", AMOUNTS)
def test_the_ceiling_is_refused_by_the_template_exactly_when_the_code_refuses_it(
    value: str,
) -> None:
    if value == " ":  # CloudFormation keeps the space; the code reads it as "no ceiling"
        assert not _template_accepts("MaxAutoBookingAmount", value)
        return
    assert _template_accepts("MaxAutoBookingAmount", value) == _code_accepts_amount(value)


@pytest.mark.parametrize(
    "value", ["", "ssm:/cleemy/rules", "ssm:/a_b.c-d/e", "rules.json", "ssm:rules", "s3://x"]
)
def test_rules_source_is_what_the_template_can_deploy(value: str) -> None:
    # The IAM policy is !Select [1, !Split ["ssm:/", RulesSource]]: only "" or ssm:/name deploy.
    deployable = value == "" or value.startswith("ssm:/")
    assert _template_accepts("RulesSource", value) == deployable
    assert (RULES_SOURCE_IN_TEMPLATE.fullmatch(value) is not None) == deployable


def test_the_layer_deploys_exactly_the_versions_the_tests_run_with() -> None:
    layer = read_pins(ROOT / "layers" / "domain" / "requirements.txt")
    constraints = read_pins(ROOT / "constraints.txt")
    for name, version in layer.items():
        assert constraints.get(name) == version, (
            f"{name}: layer {version}, tests {constraints.get(name)}"
        )
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}"


def test_the_layer_pins_its_whole_closure() -> None:
    """Every dependency of a pinned package is pinned too: nothing floats at `sam build`."""
    layer = read_pins(ROOT / "layers" / "domain" / "requirements.txt")
    for name in layer:
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement and "tracer" not in requirement:
                continue  # an optional extra the layer does not install
            if ";" in requirement and "extra ==" not in requirement:
                marker = requirement.split(";", 1)[1]
                if "python_version" in marker or "platform" in marker or "sys_platform" in marker:
                    continue  # environment markers: not for Lambda's python3.12 on Linux
            dependency = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
            assert normalised(dependency) in layer, f"{name} needs {dependency}"


def test_the_test_stacks_environment_names_are_the_templates() -> None:
    """Tests set functions' environment by the names the template gives them, no other."""
    template = Template()
    set_by_template = {
        name
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for name in template.function(logical_id).environment
    }
    with mock_aws():
        stack = create_stack("key")
    assert set(stack.env("https://acme.ilucca.net")) <= set_by_template


def test_the_test_tables_are_the_templates() -> None:
    with mock_aws():
        stack = create_stack("key")
        described = stack.dynamodb.describe_table(TableName=stack.ledger_table)["Table"]
    spec = Template().table("LedgerTable")
    assert described["KeySchema"] == spec.key_schema
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == [
        i["IndexName"] for i in spec.global_secondary_indexes
    ]
