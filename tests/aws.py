"""moto-backed AWS resources shaped like the template's, for unit and integration tests.

Tables are made from the template's own definitions (``sim.template``), so a key or index
changed there is the one the tests run against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from cleemy_booker.ledger import Ledger
from sim.template import Template
from tests.clocks import NOW, FakeClock

if TYPE_CHECKING:
    from local.lucca_simulator import Simulator

REGION = "eu-west-1"


@cache
def template() -> Template:
    return Template()


def create_ledger_table(ddb: Any, name: str = "ledger") -> str:
    return template().table("LedgerTable").create(ddb, name)


@contextmanager
def moto_ledger(**options: Any) -> Iterator[Ledger]:
    """A ledger on the template's table in a fresh moto; ``options`` as for ``Ledger``."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        yield Ledger(ddb, create_ledger_table(ddb), **options)


@contextmanager
def clocked_ledger(now: float = NOW) -> Iterator[tuple[Ledger, FakeClock]]:
    """A ledger on the template's table in a fresh moto, on a fake clock the test moves."""
    clock = FakeClock(now)
    with moto_ledger(clock=clock) as ledger:
        yield ledger, clock


def create_pk_sk_table(ddb: Any, name: str) -> str:
    """A table keyed ``pk``/``sk`` with an expiry: the budget table's shape."""
    return template().table("BudgetTable").create(ddb, name)


def create_idempotency_table(ddb: Any, name: str = "idempotency") -> str:
    return template().table("IdempotencyTable").create(ddb, name)


@dataclass
class Stack:
    """The template's stateful resources, in moto."""

    dynamodb: Any
    sqs: Any
    secrets: Any
    ledger_table: str
    budget_table: str
    idempotency_table: str
    queue_url: str
    dlq_url: str
    secret_name: str
    max_receive_count: int = 3

    def env(self, base_url: str, **overrides: str) -> dict[str, str]:
        values = {
            "LUCCA_BASE_URL": base_url,
            "LUCCA_API_KEY_SECRET": self.secret_name,
            "BUDGET_TABLE": self.budget_table,
            "LEDGER_TABLE": self.ledger_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "DOCUMENTS_QUEUE_URL": self.queue_url,
            "DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
            # These tests run on the real clock at any hour: every poll lists, as in working
            # hours (the off-hours pace is shown on the virtual clock, tests/unit/sim/test_sim_*).
            "OFF_HOURS_LISTING_SECONDS": "0",
        }
        values.update(overrides)
        return values


def ledger_of(stack: Stack, clock: FakeClock) -> Ledger:
    """The stack's ledger on ``clock``."""
    return Ledger(stack.dynamodb, stack.ledger_table, clock=clock.time)


def create_stack(api_key: str, *, max_receive_count: int = 3, visibility: int = 30) -> Stack:
    """Call inside ``moto.mock_aws()``."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="documents-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="documents",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": (
                f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "{max_receive_count}"}}'
            ),
        },
    )["QueueUrl"]
    secrets.create_secret(Name="lucca/api-key", SecretString=api_key)
    return Stack(
        dynamodb=ddb,
        sqs=sqs,
        secrets=secrets,
        ledger_table=create_ledger_table(ddb),
        budget_table=create_pk_sk_table(ddb, "budget"),
        idempotency_table=create_idempotency_table(ddb),
        queue_url=queue_url,
        dlq_url=dlq_url,
        secret_name="lucca/api-key",
        max_receive_count=max_receive_count,
    )


def stack_fixture(api_key: str | None = None, **options: Any) -> Any:
    """A ``stack`` fixture (assign it to ``stack`` in the module): the template's resources in a
    fresh moto, ``options`` as for ``create_stack``. Its API key is the one of the module's
    ``sim`` fixture, or ``api_key`` where no simulator runs."""
    if api_key is None:

        @pytest.fixture
        def stack(sim: Simulator) -> Iterator[Stack]:
            with mock_aws():
                yield create_stack(sim.api_key, **options)

    else:
        key = api_key

        @pytest.fixture
        def stack() -> Iterator[Stack]:
            with mock_aws():
                yield create_stack(key, **options)

    return stack
