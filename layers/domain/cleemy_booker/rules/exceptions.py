"""The two ways rules go wrong: at load (the file is refused) or on one document (it is held)."""

from __future__ import annotations


class RulesConfigError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


class RuleNotApplicable(Exception):
    """A rule whose conditions held but which cannot produce its values for this document."""
