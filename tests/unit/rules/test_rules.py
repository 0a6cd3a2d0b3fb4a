"""Update rules: loading (and the errors a rule author sees), conditions, values, applying."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleemy_booker.models import InboxItem, WriteDocument, to_write_shape
from cleemy_booker.rules import (
    WRITABLE_DOCUMENT,
    FieldChange,
    RulesConfigError,
    RuleSet,
    load_default_rules,
    load_rules,
)
from tests.factories import EXAMPLE_RULES_FILE, example_rules, raw_item

REPO = Path(__file__).resolve().parents[3]


def item(**document_changes: Any) -> InboxItem:
    return InboxItem.model_validate(raw_item(**document_changes))


def ruleset(*rules: dict[str, Any]) -> RuleSet:
    """Rules through the JSON loader, as Lambda reads them."""
    return RuleSet.from_text(json.dumps({"rules": list(rules)}))


def load_error(*rules: dict[str, Any]) -> str:
    with pytest.raises(RulesConfigError) as caught:
        ruleset(*rules)
    return str(caught.value)


HIT = {"document.comment": "hit"}


# --- conditions -------------------------------------------------------------------------------

# (path, condition, document changes, expected): each operator both ways.
CONDITIONS = [
    ("document.type", "Invoice", {}, True),
    ("document.type", "CreditNote", {}, False),
    ("document.accountingLabel", None, {}, True),
    ("document.comment", None, {}, False),
    ("document.neverSentByLucca", None, {}, True),  # missing counts as null
    ("document.type", {"equals": "Invoice"}, {}, True),
    ("document.type", {"equals": "CreditNote"}, {}, False),
    ("document.amountIncludingTaxes.includingTaxes.value", {"equals": 120}, {}, True),
    ("document.amountIncludingTaxes.includingTaxes.value", {"equals": "120.00"}, {}, True),
    ("document.amountIncludingTaxes.includingTaxes.value", {"equals": 121}, {}, False),
    ("document.type", {"not_equals": "CreditNote"}, {}, True),
    ("document.type", {"not_equals": "Invoice"}, {}, False),
    ("document.dueDate", {"is_null": True}, {}, True),
    ("document.dueDate", {"is_null": False}, {}, False),
    ("document.documentNumber", {"not_null": True}, {}, True),
    ("document.accountingLabel", {"not_null": True}, {}, False),
    ("source.type", {"in": ["email", "upload"]}, {}, True),
    ("source.type", {"in": ["upload"]}, {}, False),
    ("document.accountingLabel", {"in": [None, ""]}, {}, True),
    ("source.type", {"not_in": ["upload"]}, {}, True),
    ("source.type", {"not_in": ["email"]}, {}, False),
    ("document.documentNumber", {"regex": r"F-\d{4}-\d+"}, {}, True),
    ("document.documentNumber", {"regex": r"F-\d{4}"}, {}, False),  # a full match, not search
    ("document.accountingLabel", {"regex": ".*"}, {}, False),  # null matches nothing
    ("document.amountIncludingTaxes.includingTaxes.value", {"regex": r"120"}, {}, True),
    (
        "document.amountIncludingTaxes.includingTaxes.value",
        {"range": {"min": 100, "max": 120}},
        {},
        True,
    ),
    ("document.amountIncludingTaxes.includingTaxes.value", {"range": {"min": 121}}, {}, False),
    ("document.amountIncludingTaxes.includingTaxes.value", {"gte": 120}, {}, True),
    ("document.amountIncludingTaxes.includingTaxes.value", {"gt": 120}, {}, False),
    ("document.amountIncludingTaxes.includingTaxes.value", {"lte": "120.0"}, {}, True),
    ("document.amountIncludingTaxes.includingTaxes.value", {"lt": 120}, {}, False),
    ("document.amountIncludingTaxes.includingTaxes.value", {"gt": 0, "lt": 500}, {}, True),
    ("document.documentDate", {"gte": "2026-10-02"}, {}, True),
    ("document.documentDate", {"lt": "2026-10-02"}, {}, False),
    ("document.documentDate", {"range": {"min": "2026-01-01", "max": "2026-12-31"}}, {}, True),
    ("document.createdAt", {"lt": "2026-10-03"}, {}, True),  # a date-time compares by its date
    ("document.documentDate", {"gte": 5}, {}, False),  # a date is not a number: no match
    ("document.intraCommunityTaxes", False, {}, True),
    ("document.intraCommunityTaxes", 0, {}, False),  # false is not 0
    ("document.supplierReference", "SUP-88", {}, True),  # an unknown field Lucca sent
    ("document.context.purchase.id", 90, {}, True),
    ("document.context.purchase.id", 91, {}, False),
    ("document.owner.name", {"regex": "Ada.*"}, {}, True),
    ("document.ownerId", 7, {}, True),  # the write-shape name reads the owner's id
    ("document.amountIncludingTaxes.taxes.0.rateTypeId", 1, {}, True),
    ("document.type", "Invoice", {"type": None}, False),
]


@pytest.mark.parametrize(("path", "condition", "changes", "expected"), CONDITIONS)
def test_condition(path: str, condition: Any, changes: dict[str, Any], expected: bool) -> None:
    rules = ruleset({"name": "probe", "when": {path: condition}, "set": HIT})
    outcome = rules.apply(item(**changes))
    assert (outcome.applied == ("probe",)) is expected


def test_all_conditions_of_a_rule_must_hold() -> None:
    rules = ruleset(
        {"name": "both", "when": {"document.type": "Invoice", "source.type": "upload"}, "set": HIT}
    )
    assert not rules.apply(item()).applied


def test_a_rule_without_when_always_applies() -> None:
    assert ruleset({"name": "always", "set": HIT}).apply(item()).applied == ("always",)


# --- values -----------------------------------------------------------------------------------


def test_literal_values_of_each_json_type() -> None:
    rules = ruleset(
        {
            "name": "literals",
            "set": {
                "document.ownerId": 42,
                "document.comment": "checked",
                "document.intraCommunityTaxes": True,
                "document.paymentDetails": None,
                "document.context": {"purchase": {"id": 12, "type": "Order"}},
            },
        }
    )
    write = rules.apply(item()).write.to_json()["document"]
    assert write["ownerId"] == 42
    assert write["comment"] == "checked"
    assert write["intraCommunityTaxes"] is True
    assert write["paymentDetails"] is None
    assert write["context"] == {"purchase": {"id": 12, "type": "Order"}}


def test_template_fills_placeholders_from_the_view_and_keeps_escaped_braces() -> None:
    rules = ruleset(
        {
            "name": "label",
            "set": {
                "document.accountingLabel": "{{{document.owner.lastName}}} "
                "{document.documentNumber} {document.amountIncludingTaxes.includingTaxes.value}"
            },
        }
    )
    outcome = rules.apply(item())
    assert outcome.write.document.accountingLabel == "{Martin} F-2026-00123 120"


def test_template_over_a_null_field_fails_the_rule_and_changes_nothing() -> None:
    rules = ruleset(
        {
            "name": "label",
            "set": {"document.comment": "x", "document.accountingLabel": "{document.dueDate}"},
        }
    )
    outcome = rules.apply(item())
    assert outcome.failed == (
        (
            "label",
            "document.dueDate is null, so the template '{document.dueDate}' cannot be filled",
        ),
    )
    assert not outcome.changed  # all of a rule or none of it: the comment stayed too
    assert outcome.applied == ()


@pytest.mark.parametrize(
    ("spec", "document_date", "expected"),
    [
        ({"days_after": "document.documentDate", "days": 30}, "2024-01-31", "2024-03-01"),
        ({"days_after": "document.documentDate", "days": 0}, "2024-01-31", "2024-01-31"),
        (
            {"days_after": "document.documentDate", "days": 30, "end_of_month": True},
            "2024-01-15",
            "2024-02-29",
        ),
        ({"end_of_month": "document.documentDate"}, "2024-02-10", "2024-02-29"),
        ({"end_of_month": "document.documentDate"}, "2023-12-31", "2023-12-31"),
        ({"months_after": "document.documentDate", "months": 1}, "2024-01-31", "2024-02-29"),
        ({"months_after": "document.documentDate", "months": 12}, "2024-03-15", "2025-03-15"),
    ],
)
def test_date_arithmetic(spec: dict[str, Any], document_date: str, expected: str) -> None:
    rules = ruleset({"name": "due", "set": {"document.dueDate": spec}})
    outcome = rules.apply(item(documentDate=document_date))
    assert outcome.write.to_json()["document"]["dueDate"] == expected
    assert outcome.changes == (FieldChange("document.dueDate", None, expected),)


def test_date_from_a_null_date_fails_the_rule() -> None:
    rules = ruleset(
        {
            "name": "due",
            "set": {"document.dueDate": {"days_after": "document.documentDate", "days": 30}},
        }
    )
    outcome = rules.apply(item(documentDate=None))
    assert outcome.failed == (
        ("due", "document.documentDate is null, so no date can be computed from it"),
    )
    assert outcome.write.document.dueDate is None


# --- hooks ------------------------------------------------------------------------------------

HOOKS = """
def owner_from_source(view):
    return {"document.ownerId": 99 if view["source"]["type"] == "email" else 98}

def nothing(view):
    return None

def explode(view):
    raise KeyError("costCenter")

def read_only(view):
    return {"document.ocrStatus": "Processed"}

def mutate(view):
    view["document"]["documentNumber"] = "HACKED"
    return {"document.comment": "seen " + view["document"]["documentNumber"]}
"""


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable module of hooks; returns its name."""
    name = f"rules_test_hooks_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(HOOKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_hook_values_are_applied(hooks: str) -> None:
    rules = ruleset({"name": "owner", "hook": f"{hooks}:owner_from_source"})
    outcome = rules.apply(item())
    assert outcome.write.document.ownerId == 99
    assert outcome.applied == ("owner",)


def test_hook_returning_none_changes_nothing(hooks: str) -> None:
    outcome = ruleset({"name": "quiet", "hook": f"{hooks}:nothing"}).apply(item())
    assert (outcome.applied, outcome.changes, outcome.failed) == ((), (), ())


def test_hook_that_raises_fails_the_rule(hooks: str) -> None:
    outcome = ruleset({"name": "boom", "hook": f"{hooks}:explode"}).apply(item())
    assert outcome.failed[0][0] == "boom"
    assert "raised KeyError" in outcome.failed[0][1]


def test_hook_cannot_set_a_read_only_field(hooks: str) -> None:
    outcome = ruleset({"name": "sneaky", "hook": f"{hooks}:read_only"}).apply(item())
    assert outcome.failed[0][0] == "sneaky"
    assert "read-only" in outcome.failed[0][1]


def test_hook_gets_a_copy_of_the_view(hooks: str) -> None:
    rules = ruleset(
        {"name": "mutate", "hook": f"{hooks}:mutate"},
        {
            "name": "after",
            "when": {"document.documentNumber": "F-2026-00123"},
            "set": {"document.accountingLabel": "ok"},
        },
    )
    outcome = rules.apply(item())
    assert outcome.write.document.documentNumber == "F-2026-00123"
    assert outcome.applied == ("mutate", "after")


def test_hook_import_error_names_the_rule(hooks: str) -> None:
    message = load_error({"name": "analytics", "hook": "no_such_module_xyz:fill"})
    assert "rule #1 'analytics'" in message
    assert "cannot import 'no_such_module_xyz'" in message
    message = load_error({"name": "analytics", "hook": f"{hooks}:no_such_function"})
    assert "has no function 'no_such_function'" in message


# --- applying ---------------------------------------------------------------------------------


def test_a_later_rule_sees_what_an_earlier_one_set() -> None:
    rules = ruleset(
        {"name": "owner", "when": {"document.owner": None}, "set": {"document.ownerId": 42}},
        {
            "name": "label",
            "when": {"document.owner.id": 42},
            "set": {"document.accountingLabel": "AP {document.ownerId}"},
        },
        {
            "name": "comment",
            "when": {"document.accountingLabel": "AP 42"},
            "set": {"document.comment": "{document.accountingLabel}"},
        },
    )
    outcome = rules.apply(item(owner=None))
    assert outcome.applied == ("owner", "label", "comment")
    assert outcome.write.document.comment == "AP 42"


def test_an_earlier_rule_can_stop_a_later_one() -> None:
    rules = ruleset(
        {"name": "label", "set": {"document.accountingLabel": "set"}},
        {
            "name": "fallback",
            "when": {"document.accountingLabel": None},
            "set": {"document.accountingLabel": "fallback"},
        },
    )
    outcome = rules.apply(item())
    assert outcome.applied == ("label",)
    assert outcome.write.document.accountingLabel == "set"


def test_unknown_fields_survive_and_can_be_set() -> None:
    rules = ruleset(
        {"name": "cc", "set": {"document.costCenterCode": "CC-9", "document.comment": "x"}}
    )
    write = rules.apply(item()).write.to_json()["document"]
    assert write["supplierReference"] == "SUP-88"  # untouched unknown field
    assert write["costCenterCode"] == "CC-9"  # set unknown writable field
    assert "ocrStatus" not in write
    assert "attachments" not in write
    assert write["amountIncludingTaxes"]["roundingMode"] == "HalfUp"


def test_setting_the_current_value_is_no_change() -> None:
    rules = ruleset(
        {"name": "same", "set": {"document.comment": "Papeterie Dupont", "document.ownerId": 7}}
    )
    outcome = rules.apply(item())
    assert outcome.changes == ()
    assert not outcome.changed
    assert outcome.applied == ()
    assert outcome.write == to_write_shape(item())  # the document as it came, nothing set


def test_changes_are_a_field_level_diff_of_the_write_body() -> None:
    rules = ruleset(
        {"name": "purchase", "set": {"document.context.purchase.id": 12, "document.ownerId": 8}}
    )
    outcome = rules.apply(item())
    assert set(outcome.changes) == {
        FieldChange("document.context.purchase.id", 90, 12),
        FieldChange("document.ownerId", 7, 8),
    }


def test_an_action_needs_its_type() -> None:
    without_type = ruleset({"name": "attach", "set": {"action.purchaseId": 5}}).apply(item())
    assert without_type.failed
    assert "action.type" in without_type.failed[0][1]
    assert without_type.write.action is None
    with_type = ruleset(
        {"name": "attach", "set": {"action.type": "AttachPurchase", "action.purchaseId": 5}}
    )
    write = with_type.apply(item()).write
    assert write.action is not None
    assert (write.action.type, write.action.purchaseId) == (
        "AttachPurchase",
        5,
    )


def test_a_failed_rule_does_not_stop_the_next() -> None:
    rules = ruleset(
        {"name": "broken", "set": {"document.comment": "{document.dueDate}"}},
        {"name": "fine", "set": {"document.accountingLabel": "ok"}},
    )
    outcome = rules.apply(item())
    assert [name for name, _ in outcome.failed] == ["broken"]
    assert outcome.applied == ("fine",)


def test_empty_ruleset_changes_nothing() -> None:
    outcome = RuleSet.empty().apply(item())
    assert not outcome.changed
    assert outcome.write.to_json()["document"]["supplierReference"] == "SUP-88"


# --- load errors ------------------------------------------------------------------------------


def test_unknown_operator_is_named_with_a_suggestion() -> None:
    message = load_error({"name": "r", "when": {"document.type": {"regexp": "I.*"}}, "set": HIT})
    assert "rule #1 'r'" in message
    assert "when.document.type" in message
    assert "unknown operator 'regexp' (did you mean 'regex'?)" in message


def test_bad_regex() -> None:
    message = load_error(
        {"name": "ok", "set": HIT},
        {"name": "num", "when": {"document.documentNumber": {"regex": "F-("}}, "set": HIT},
    )
    assert "rule #2 'num'" in message
    assert "bad regex 'F-('" in message


@pytest.mark.parametrize(
    ("target", "explanation"),
    [
        ("document.id", "read-only"),
        ("document.ocrStatus", "read-only"),
        ("document.attachments", "read-only"),
        ("document.createdAt", "read-only"),
        ("document.owner", "set 'document.ownerId'"),
        ("id", "read-only"),
        ("source.type", "read-only"),
        ("documnet.comment", "unknown top-level part 'documnet'"),
        ("document.documentNumbr", "did you mean 'documentNumber'?"),
        ("document.context.purchase.name", "no writable field 'name'"),
        ("document.dueDate.day", "is not an object"),
    ],
)
def test_set_targets_that_cannot_be_written(target: str, explanation: str) -> None:
    message = load_error({"name": "bad target", "set": {target: "x"}})
    assert "rule #1 'bad target'" in message
    assert explanation in message
    assert target.split(".")[0] in message


@pytest.mark.parametrize(
    ("template", "explanation"),
    [
        ("{document.documentNumbr}", "did you mean 'documentNumber'?"),
        ("{documnet.documentNumber}", "did you mean 'document'?"),
        ("{document.documentNumber", "bad template"),
        ("{}", "empty placeholder"),
        ("{document.documentNumber:>10}", "placeholders are plain paths"),
        ("{document owner}", "is not a dotted path"),
    ],
)
def test_bad_templates(template: str, explanation: str) -> None:
    message = load_error({"name": "label", "set": {"document.accountingLabel": template}})
    assert "rule #1 'label'" in message
    assert "document.accountingLabel" in message
    assert explanation in message


@pytest.mark.parametrize(
    ("spec", "explanation"),
    [
        ({"days_after": "document.documentDate"}, "days: Field required"),
        ({"days_after": "document.documentDate", "days": "soon"}, "days"),
        ({"days_after": "document.documentDate", "days": 30, "weeks": 1}, "weeks: unexpected key"),
        ({"days": 30}, "say from which date"),
        ({"end_of_month": True}, "end_of_month"),
        ({"days_after": "document.documentDat", "days": 1}, "did you mean 'documentDate'?"),
    ],
)
def test_bad_date_specs(spec: dict[str, Any], explanation: str) -> None:
    message = load_error({"name": "due", "set": {"document.dueDate": spec}})
    assert "rule #1 'due'" in message
    assert "bad date spec" in message
    assert explanation in message


@pytest.mark.parametrize(
    ("rule", "explanation"),
    [
        (
            {"name": "r", "set": {"document.dueDate": "soon"}},
            "'soon' does not fit document.dueDate",
        ),
        ({"name": "r", "set": {"document.type": "Bill"}}, "does not fit document.type"),
        ({"name": "r", "when": {"document.type": ["Invoice"]}, "set": HIT}, "use {in: [...]}"),
        (
            {
                "name": "r",
                "when": {"document.amountIncludingTaxes.includingTaxes.value": {"gt": "lots"}},
                "set": HIT,
            },
            "neither a number nor an ISO date",
        ),
        (
            {"name": "r", "when": {"document.type": {"range": {}}}, "set": HIT},
            "range needs min, max or both",
        ),
        ({"name": "r", "when": {"document.type": {"is_null": "yes"}}, "set": HIT}, "is_null"),
        ({"name": "r"}, "the rule does nothing"),
        ({"name": "r", "set": HIT, "sett": {}}, "unknown key 'sett'"),
        ({"name": "  ", "set": HIT}, "blank"),
    ],
)
def test_other_rule_errors(rule: dict[str, Any], explanation: str) -> None:
    message = load_error(rule)
    assert "rule #1" in message
    assert explanation in message


def test_a_rule_without_a_name_is_named_by_its_index() -> None:
    message = load_error({"name": "first", "set": HIT}, {"set": HIT})
    assert "rule #2: name: Field required" in message


def test_rule_names_must_be_unique() -> None:
    message = load_error({"name": "same", "set": HIT}, {"name": "same", "set": HIT})
    assert "rule #2 'same'" in message
    assert "rule #1 has the same name" in message


@pytest.mark.parametrize(
    ("text", "explanation"),
    [
        ('{"rules": [', "not valid JSON (line 1"),
        ("[1, 2]", "expected a mapping with a 'rules' list"),
        ('{"rulez": []}', "unknown key 'rulez'"),
        ("rules:\n  - name: [unclosed\n", "not valid YAML"),
    ],
)
def test_unreadable_files(text: str, explanation: str) -> None:
    with pytest.raises(RulesConfigError, match=r"^my-rules: ") as caught:
        RuleSet.from_text(text, source="my-rules")
    assert explanation in str(caught.value)


# --- JSON, YAML, files, sources ---------------------------------------------------------------

YAML_RULES = textwrap.dedent(
    """
    rules:
      - name: label
        when: {document.accountingLabel: null, document.documentNumber: {not_null: true}}
        set: {document.accountingLabel: "Invoice {document.documentNumber}"}
      - name: recent only
        when: {document.documentDate: {gte: 2026-01-01}}   # YAML reads this as a date
        set: {document.dueDate: 2026-12-31}
    """
)


def test_yaml_and_json_load_the_same_rules() -> None:
    from_yaml = RuleSet.from_text(YAML_RULES)
    import yaml

    from_json = RuleSet.from_text(json.dumps(yaml.safe_load(YAML_RULES), default=str))
    assert from_yaml.apply(item()) == from_json.apply(item())
    outcome = from_yaml.apply(item())
    assert outcome.applied == ("label", "recent only")
    assert outcome.write.to_json()["document"]["dueDate"] == "2026-12-31"


def test_yaml_without_pyyaml_is_a_clear_error_and_json_still_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as in Lambda: import yaml fails
    with pytest.raises(RulesConfigError, match="YAML needs PyYAML, which is not installed"):
        RuleSet.from_text(YAML_RULES)
    assert len(ruleset({"name": "r", "set": HIT}).rules) == 1


def test_from_file_reads_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(YAML_RULES)
    (tmp_path / "r.json").write_text(json.dumps({"rules": [{"name": "j", "set": HIT}]}))
    assert [r.name for r in RuleSet.from_file(tmp_path / "r.yaml").rules] == [
        "label",
        "recent only",
    ]
    assert [r.name for r in load_rules(str(tmp_path / "r.json")).rules] == ["j"]
    with pytest.raises(RulesConfigError, match="cannot read the rules file"):
        RuleSet.from_file(tmp_path / "missing.json")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"rules": [{"name": "x", "set": {"document.id": 1}}]}))
    with pytest.raises(RulesConfigError, match=r"bad\.json: rule #1 'x'"):
        load_rules(str(path))


def test_rules_from_ssm_go_through_the_callers_fetcher() -> None:
    asked: list[str] = []

    def fetch(name: str) -> str:
        asked.append(name)
        return json.dumps({"rules": [{"name": "from ssm", "set": HIT}]})

    rules = load_rules("ssm:/cleemy/rules", fetch_parameter=fetch)
    assert asked == ["/cleemy/rules"]
    assert rules.rules[0].name == "from ssm"
    with pytest.raises(RulesConfigError, match="need a parameter fetcher"):
        load_rules("ssm:/cleemy/rules")


# --- the packaged default and the examples ----------------------------------------------------


def test_packaged_default_is_what_load_rules_gives_without_a_source() -> None:
    assert load_rules(None) == load_default_rules() == load_rules("")
    assert load_default_rules().rules == []


def test_packaged_default_books_documents_as_they_are() -> None:
    """A due date is a term of the supplier's invoice, and a label the accountant's choice:
    nothing is filled in unless a deployment's rules say so."""
    outcome = load_default_rules().apply(item(accountingLabel=None, dueDate=None))
    assert (outcome.changes, outcome.applied, outcome.failed) == ((), (), ())


def test_packaged_default_is_valid_json_inside_the_package() -> None:
    path = REPO / "layers/domain/cleemy_booker/default_rules.json"
    assert json.loads(path.read_text()) == {"rules": []}


def test_the_label_and_due_date_example_fills_both_and_nothing_else() -> None:
    outcome = example_rules().apply(item(documentDate="2026-01-31"))
    assert set(outcome.changes) == {
        FieldChange("document.accountingLabel", None, "F-2026-00123"),
        FieldChange("document.dueDate", None, "2026-03-02"),
    }
    assert outcome.failed == ()


def test_the_label_and_due_date_example_leaves_existing_values_and_never_fails_on_gaps() -> None:
    filled = item(accountingLabel="Kept", dueDate="2026-11-30")
    assert not example_rules().apply(filled).changed
    empty = item(documentNumber=None, documentDate=None)
    outcome = example_rules().apply(empty)
    assert (outcome.changes, outcome.failed) == ((), ())  # the gate reports the gaps instead
    blank_label = example_rules().apply(item(accountingLabel=""))
    assert blank_label.write.document.accountingLabel == "F-2026-00123"


def test_the_json_example_for_ssm_is_the_first_two_rules_of_the_yaml_example() -> None:
    """The JSON is what goes into SSM (Lambda reads no YAML): it must not drift from the YAML."""
    yaml_rules = RuleSet.from_file(REPO / "config/rules.example.yaml").rules
    assert json.loads(EXAMPLE_RULES_FILE.read_text())["rules"]  # plain JSON, nothing to convert
    assert example_rules().rules == yaml_rules[:2]


def test_example_rules_file_loads_and_applies() -> None:
    rules = RuleSet.from_file(REPO / "config/rules.example.yaml")
    outcome = rules.apply(item(owner=None, documentDate="2026-02-10"))
    assert outcome.failed == ()
    assert outcome.write.document.ownerId == 42
    assert outcome.write.to_json()["document"]["dueDate"] == "2026-02-28"  # subscription: EOM


def test_write_schema_covers_the_write_model() -> None:
    assert set(WRITABLE_DOCUMENT) == set(WriteDocument.model_fields)
