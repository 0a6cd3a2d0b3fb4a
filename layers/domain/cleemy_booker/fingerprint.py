"""Which configuration a decision was taken under: the rules' text and the gate's settings.

A document held under one configuration is looked at again once it changes (new rules, a new
ceiling). The poller and the processor compute the same fingerprint from the same inputs; the
poller needs only the rules' *text*, so it never parses (or imports) the rules themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from importlib import resources

DEFAULT_RULES_RESOURCE = "default_rules.json"
SSM_PREFIX = "ssm:"


def bundled_rules_text() -> str:
    """The default rules shipped with the package."""
    bundled = resources.files(__package__ or "cleemy_booker").joinpath(DEFAULT_RULES_RESOURCE)
    return bundled.read_text(encoding="utf-8")


def rules_text(source: str, fetch_parameter: Callable[[str], str]) -> str:
    """The rules as configured: the bundled default, ``ssm:/name`` or a file."""
    source = source.strip()
    if not source:
        return bundled_rules_text()
    if source.startswith(SSM_PREFIX):
        return fetch_parameter(source.removeprefix(SSM_PREFIX))
    with open(source, encoding="utf-8") as file:
        return file.read()


def config_version(rules: str, max_auto_amount: Decimal | None) -> str:
    """A short, stable digest of everything that decides whether a document is held."""
    canonical = json.dumps(
        {
            "rules": rules,
            "maxAutoAmount": None if max_auto_amount is None else str(max_auto_amount),
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
