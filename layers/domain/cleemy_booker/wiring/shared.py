"""What every function's wiring shares: AWS clients with botocore's retries, the Lucca client
behind the tenant's request budget, the API key from Secrets Manager, the 429 metric."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters

from ..budget import DynamoSlotStore, RequestBudget
from ..client import LuccaClient
from ..clock import SYSTEM_CLOCK, Clock
from ..config import LuccaSettings, PipelineSettings
from ..fingerprint import config_version, rules_text
from ..observability import metrics
from .aws import AwsClients

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider


class _NoSecretValues(logging.Filter):
    """botocore logs every response body at DEBUG, GetSecretValue's too: turning the log level
    up to debug an incident would write the Lucca key to the logs. Those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "SecretString" not in message and "SecretBinary" not in message


logging.getLogger("botocore.parsers").addFilter(_NoSecretValues())


def read_api_key(settings: LuccaSettings, secrets: SecretsProvider | None = None) -> str:
    """The Lucca key from Secrets Manager, cached by Powertools for ``secret_max_age``.

    ``secrets``: a provider of one's own (the simulation gives each Lambda instance its own,
    as each instance has its own cache); by default Powertools' shared one."""
    name, max_age = settings.api_key_secret, settings.secret_max_age_seconds
    value = (
        secrets.get(name, max_age=max_age)
        if secrets is not None
        else parameters.get_secret(name, max_age=max_age)
    )
    key = value.decode() if isinstance(value, bytes) else str(value)
    if not key.strip():
        raise ValueError(f"secret {settings.api_key_secret!r} holds an empty API key")
    return key.strip()


#: The key itself (tests) or a function returning it, asked on every request (Lambda).
ApiKey = str | Callable[[], str]


def api_key_source(
    settings: LuccaSettings, secrets: SecretsProvider | None = None
) -> Callable[[], str]:
    """Read the key once now (a missing or empty secret fails the cold start, clearly), then on
    each request through Powertools' cache: a rotated key is in use within ``secret_max_age``."""
    read_api_key(settings, secrets)
    return lambda: read_api_key(settings, secrets)


def build_client(
    settings: LuccaSettings,
    aws: AwsClients,
    api_key: ApiKey,
    clock: Clock = SYSTEM_CLOCK,
    http: httpx.Client | None = None,
    rng: random.Random | None = None,
) -> tuple[LuccaClient, RequestBudget]:
    """The Lucca client behind the tenant budget; ``http`` and ``rng`` are the simulation's
    seams (an in-process transport, seeded jitter), left to their defaults in Lambda."""
    budget = RequestBudget(
        DynamoSlotStore(aws.dynamodb, settings.budget_table),
        limit=settings.budget_limit,
        window_seconds=settings.budget_window_seconds,
        max_wait_seconds=settings.budget_max_wait_seconds,
        clock=clock.time,
        sleep=clock.sleep,
    )
    client = LuccaClient(
        settings.lucca_base_url,
        api_key,
        hooks=[budget],
        http=http,
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall_clock=clock.time,
        rng=rng,
    )
    budget.time_left = client.time_left  # a budget wait never outlasts the invocation
    return client, budget


def deadline_from(time_left: Callable[[], float], margin: float, clock: Clock) -> float:
    """A monotonic instant ``margin`` seconds before the invocation ends."""
    return clock.monotonic() + max(0.0, time_left() - margin)


@dataclass
class ThrottleMetric:
    """``LuccaThrottled``: the 429s Lucca answered since the last ``emit``.

    The budget counts them for the life of the instance; a metric wants each invocation's own.
    Emitted only when there were some: each custom metric costs $0.30 a month for every hour it
    has data, and most hours have no 429 at all."""

    budget: RequestBudget
    reported: int = 0

    def emit(self) -> None:
        throttled = self.budget.stats.throttled
        new, self.reported = throttled - self.reported, throttled
        if new > 0:
            metrics.add_metric("LuccaThrottled", MetricUnit.Count, new)


@dataclass(frozen=True)
class Seams:
    """What the simulation replaces; Lambda uses the defaults."""

    clock: Clock = SYSTEM_CLOCK
    http: httpx.Client | None = None
    rng: random.Random | None = None


def fetch_parameter(name: str) -> str:
    return str(parameters.get_parameter(name, max_age=300))


def decision_config(settings: PipelineSettings) -> str:
    """The fingerprint of what decides a hold, the same in the poller and the processor."""
    return config_version(
        rules_text(settings.rules_source, fetch_parameter), settings.max_auto_amount
    )


class LuccaRuntime:
    """What the poller's and the processor's wiring both hold: the AWS clients, the clock, and
    the Lucca client behind the tenant budget, with the budget's 429 metric."""

    def __init__(
        self, settings: LuccaSettings, aws: AwsClients, api_key: ApiKey, seams: Seams | None
    ) -> None:
        seams = seams or Seams()
        self.aws = aws
        self.clock = seams.clock
        self.client, self.budget = build_client(
            settings, aws, api_key, seams.clock, seams.http, seams.rng
        )
        self.throttles = ThrottleMetric(self.budget)
