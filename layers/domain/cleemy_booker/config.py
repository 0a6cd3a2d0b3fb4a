"""Configuration: the environment, read and validated once per cold start, with a clear error."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, Self
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .endpoints import MAX_PAGE_SIZE, validate_base_url
from .hours import WorkingHours
from .ledger.table import RETENTION_DAYS
from .validation import error_lines

#: ``MaxAutoBookingAmount``: above zero, at most two decimals (the template's AllowedPattern).
AMOUNT = re.compile(r"0*[1-9][0-9]*(\.[0-9]{1,2})?|0*\.[0-9]?[1-9]|0*\.[1-9][0-9]?")
#: ``RulesSource`` in the template: empty or an SSM parameter (the IAM policy is built from it).
RULES_SOURCE_IN_TEMPLATE = re.compile(r"(ssm:/[A-Za-z0-9_.\-/]+)?")

#: ``Monitoring`` in the template: which alarms and dashboard the stack has, hence which metrics
#: something reads. The code emits no custom metric nobody reads (each costs $0.30 a month for
#: every hour it has data). Outside Lambda (tests, tools) everything is emitted.
Monitoring = Literal["alarms", "alarms-and-dashboard", "none"]

#: Query parameters the pipeline sets itself; a filter may not override them.
RESERVED_QUERY_PARAMETERS = frozenset({"limit", "page", "fields.root", "fields", "orderBy"})


class ConfigError(ValueError):
    """The environment does not describe a usable configuration; names each bad variable."""


def parse_filters(text: str) -> dict[str, str]:
    """``InboxFilters`` as a query string (``document.type=Invoice&document.ocrStatus=Processed``).

    The same filters go on every listing request, so the count matches the pages.
    """
    text = text.strip().lstrip("?")
    if not text:
        return {}
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    filters: dict[str, str] = {}
    for name, value in pairs:
        if not name or not value:
            raise ValueError(f"filter {name!r} needs a name and a value")
        if name in RESERVED_QUERY_PARAMETERS:
            raise ValueError(f"filter {name!r} is set by the pipeline itself")
        if name in filters:
            raise ValueError(f"filter {name!r} is given twice; use a comma-separated list")
        filters[name] = value
    return filters


class _Settings(BaseModel):
    """Settings validated from a mapping of environment variables, once, at cold start.

    Not pydantic-settings: it would read the same variables, but it decodes every complex
    field (``INBOX_FILTERS``, a dict) as JSON where ours is a query string, and it brings two
    more packages to every cold start. Reading a mapping is one ``model_validate``, and it
    takes the simulation's and the tests' environments as they are.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Validate the environment; a ``ConfigError`` lists every problem by variable name."""
        env = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(env))
        except ValidationError as exc:
            # Every problem at once, so one deployment fixes them all. Verbatim: these messages
            # have always carried pydantic's own wording, and tests match on it.
            problems = "; ".join(error_lines(exc, verbatim=True))
            raise ConfigError(f"invalid configuration: {problems}") from None


class LuccaSettings(_Settings):
    """What every function needs to talk to Lucca within the tenant budget."""

    lucca_base_url: str = Field(alias="LUCCA_BASE_URL")
    api_key_secret: str = Field(alias="LUCCA_API_KEY_SECRET", min_length=1)
    budget_table: str = Field(alias="BUDGET_TABLE", min_length=1)
    #: Our share of the tenant's 50 requests per window, leaving room for other integrations.
    budget_limit: int = Field(alias="BUDGET_LIMIT", default=40, ge=1, le=50)
    budget_window_seconds: float = Field(alias="BUDGET_WINDOW_SECONDS", default=60.0, gt=0)
    #: The longest one request may wait for its slot inside a function before deferring.
    budget_max_wait_seconds: float = Field(alias="BUDGET_MAX_WAIT_SECONDS", default=20.0, ge=0)
    #: Lucca's key is cached this long; a rotated key is picked up within this time.
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)
    #: Decide and record in the ledger, but never update or book.
    dry_run: bool = Field(alias="DRY_RUN", default=False)

    @field_validator("lucca_base_url")
    @classmethod
    def _https_except_loopback(cls, value: str) -> str:
        return validate_base_url(value)


class PipelineSettings(LuccaSettings):
    """What both functions need to agree on: the queue, the ledger, freshness, the decision."""

    queue_url: str = Field(alias="DOCUMENTS_QUEUE_URL", min_length=1)
    ledger_table: str = Field(alias="LEDGER_TABLE", min_length=1)
    #: The listed item in a message is trusted this long; older ones are fetched again.
    listing_fresh_seconds: int = Field(alias="LISTING_FRESH_SECONDS", default=900, ge=0)
    #: Where the update rules come from: empty (bundled default), a file, or ``ssm:/name``.
    rules_source: str = Field(alias="RULES_SOURCE", default="")
    #: Documents above this amount (including taxes) are held for a person; empty = no ceiling.
    max_auto_amount: Decimal | None = Field(alias="MAX_AUTO_AMOUNT", default=None, gt=0)
    #: A held document is looked at again after this long even if nothing changed in Lucca:
    #: a hold's cause may lie outside the document (a date, another document, a ceiling).
    held_recheck_seconds: int = Field(alias="HELD_RECHECK_SECONDS", default=21600, ge=300)
    #: Ledger entries are kept this long (accounting records: years, not days), whichever
    #: function writes them: the processor its decisions, the poller its confirmations.
    ledger_retention_days: int = Field(alias="LEDGER_RETENTION_DAYS", default=RETENTION_DAYS, ge=1)
    #: Which alarms and dashboard read the metrics (see ``Monitoring``).
    monitoring: Monitoring = Field(alias="MONITORING", default="alarms-and-dashboard")

    @field_validator("max_auto_amount", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None
            if not AMOUNT.fullmatch(value.strip()):
                raise ValueError("an amount above zero, digits with at most two decimals")
        return value


class PollerSettings(PipelineSettings):
    inbox_filters: dict[str, str] = Field(alias="INBOX_FILTERS", default_factory=dict)
    page_size: int = Field(alias="PAGE_SIZE", default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    #: A queued document is not queued again for this long (it is waiting or in progress).
    claim_ttl_seconds: int = Field(alias="CLAIM_TTL_SECONDS", default=3600, ge=60)
    #: Stop listing when less than this is left of the invocation, to flush and report.
    stop_margin_seconds: float = Field(alias="STOP_MARGIN_SECONDS", default=10.0, ge=0)
    #: When people work: the inbox is listed on every run then, less often outside.
    working_hours: str = Field(alias="WORKING_HOURS", default="Mon-Fri 07:00-20:00")
    time_zone: str = Field(alias="TIME_ZONE", default="Europe/Paris", min_length=1)
    #: Outside working hours, list at most this often (unless a backlog is being worked off).
    off_hours_listing_seconds: int = Field(alias="OFF_HOURS_LISTING_SECONDS", default=1800, ge=0)
    #: Held documents are counted (the ``DocumentsAwaitingReview`` gauge) at most this often:
    #: often enough for an hourly alarm, rarely enough that the count's reads stay negligible.
    held_count_seconds: int = Field(alias="HELD_COUNT_SECONDS", default=900, ge=60)

    @field_validator("working_hours")
    @classmethod
    def _parse_hours(cls, value: str) -> str:
        WorkingHours.parse(value, "UTC")
        return value

    def hours(self) -> WorkingHours:
        return WorkingHours.parse(self.working_hours, self.time_zone)

    @field_validator("inbox_filters", mode="before")
    @classmethod
    def _parse_filters(cls, value: Any) -> Any:
        return parse_filters(value) if isinstance(value, str) else value

    def queue_target(self, share: float) -> int:
        """The most documents worth queueing: ``share`` of what the budget books while the
        listing in their messages is fresh (at least one page, so a run always makes progress)."""
        per_second = self.budget_limit / self.budget_window_seconds
        return max(1, int(per_second * self.listing_fresh_seconds * share))


class ProcessorSettings(PipelineSettings):
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    #: The documents queue's redrive limit: on the last delivery a still-failing document is
    #: dead-lettered by us, with its reason, rather than silently by SQS.
    max_receive_count: int = Field(alias="MAX_RECEIVE_COUNT", default=10, ge=1)
    #: Stop starting new documents when less than this is left of the invocation.
    stop_margin_seconds: float = Field(alias="STOP_MARGIN_SECONDS", default=10.0, ge=0)


class DigestSettings(_Settings):
    """The morning digest: the ledger to read, where to publish, and the figures' sources.
    It never calls Lucca, so it needs neither the key nor the budget's table."""

    ledger_table: str = Field(alias="LEDGER_TABLE", min_length=1)
    #: What the digest writes to the ledger (its mark) is kept as long as the rest.
    ledger_retention_days: int = Field(alias="LEDGER_RETENTION_DAYS", default=RETENTION_DAYS, ge=1)
    topic_arn: str = Field(alias="DIGEST_TOPIC_ARN", min_length=1)
    #: A short "all clear" message on days with nothing to say (else no message).
    all_clear: bool = Field(alias="DIGEST_ALL_CLEAR", default=False)
    #: Named in the replay command the digest shows (no AWS resource id is).
    stack_name: str = Field(alias="STACK_NAME", min_length=1)
    time_zone: str = Field(alias="TIME_ZONE", default="Europe/Paris", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    #: Where the functions' own metrics are: Powertools' namespace and service dimension, read
    #: from the variables the functions publish under (the template sets the service to the
    #: stack's name, so the digest reads its own stack's metrics and no other's).
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE", default="CleemyBooker")
    service_name: str = Field(alias="POWERTOOLS_SERVICE_NAME", default="cleemy-booker")
    budget_limit: int = Field(alias="BUDGET_LIMIT", default=40, ge=1, le=50)
    budget_window_seconds: float = Field(alias="BUDGET_WINDOW_SECONDS", default=60.0, gt=0)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value
