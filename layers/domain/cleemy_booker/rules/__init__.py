"""Declarative update rules: each company's accounting habits, declared rather than coded.

Booking is hard to undo, so what the pipeline changes on an invoice before booking it is written
down as data (JSON in Lambda, JSON or YAML on a workstation), validated when loaded, and applied
the same way by the processor and by the dry run (``plan``)::

    rules:
      - name: label from number
        when: {document.accountingLabel: null, document.documentNumber: {not_null: true}}
        set: {document.accountingLabel: "Invoice {document.documentNumber}"}

Paths in ``when`` and in templates read the *view*: the inbox item's JSON (read shape) with the
sets of earlier rules applied. Paths in ``set`` name the *write* shape (``document.ownerId``, not
``document.owner``). Within one rule every value is computed from the view as it was before the
rule, then all of them are applied together, or none when one cannot be computed.

The package reads bottom-up: each module imports only the ones before it in this list,
``exceptions``, ``paths`` (field paths and their checks), ``scalars`` (text, numbers, dates),
``conditions`` (``when``), ``values`` (``set``: literals, templates, date arithmetic),
``engine`` (a rule, and rules applied → ``RulesOutcome``), ``loading`` (``RuleSet``, its
sources and the errors its author reads). What the rest of the domain uses is named here.
"""

from .engine import FieldChange, Rule, RulesOutcome, diff_json
from .exceptions import RulesConfigError
from .loading import RuleSet, load_default_rules, load_rules
from .paths import WRITABLE_DOCUMENT, check_read_path, check_write_path, get_path, lookup

__all__ = [
    "WRITABLE_DOCUMENT",
    "FieldChange",
    "Rule",
    "RuleSet",
    "RulesConfigError",
    "RulesOutcome",
    "check_read_path",
    "check_write_path",
    "diff_json",
    "get_path",
    "load_default_rules",
    "load_rules",
    "lookup",
]
