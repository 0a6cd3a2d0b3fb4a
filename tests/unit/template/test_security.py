"""Security: where the Lucca key lives, that it never leaks, HTTPS, and the static checks.

The key lives in Secrets Manager only, read through Powertools parameters (cached); it must never
reach a log line, a trace, a queue message, a dead letter's attributes, the ledger or an
exception. The leak test runs both handlers end to end with a distinctive key, every logger at
DEBUG, and errors on purpose, then searches everything they left behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from moto import mock_aws

from cleemy_booker.client import LuccaClient
from cleemy_booker.config import ConfigError, PollerSettings
from cleemy_booker.endpoints import validate_base_url
from cleemy_booker.errors import AuthError, LuccaError
from cleemy_booker.observability import logger as powertools_logger
from cleemy_booker.wiring.shared import read_api_key
from local.lucca_simulator import Simulator
from tests.aws import Stack, create_stack, stack_fixture
from tests.factories import EXAMPLE_RULES_FILE
from tests.harness import (
    FakeLambdaContext,
    dead_letters,
    drive_queue,
    handlers_env,
    paced_simulator,
    simulator_fixture,
)

ROOT = Path(__file__).resolve().parents[3]
#: Distinctive, so that any trace of it anywhere is found by a plain substring search.
API_KEY = "lk-7Q2f9ZpX4mVw8RtB3nHs6JcYe1KdUa5G"


sim = simulator_fixture(invoices=30, seed=8, api_key=API_KEY)
stack = stack_fixture(max_receive_count=10)


class SecretsCalls:
    """Counts the GetSecretValue calls that really reach (moto's) Secrets Manager."""

    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager", region_name="eu-west-1")
        self.count = 0
        self.client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1

    def install(self) -> None:
        """Make Powertools' ``get_secret`` use this client (and start with an empty cache)."""
        parameters.clear_caches()
        parameters.base.DEFAULT_PROVIDERS.clear()
        parameters.base.DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=self.client)


def poller_settings(stack: Stack, **overrides: str) -> PollerSettings:
    return PollerSettings.from_env(
        {**stack.env("https://acme.ilucca.net"), **overrides}  # type: ignore[arg-type]
    )


# --- where the key lives ----------------------------------------------------------------------


def test_the_key_is_read_from_secrets_manager_once_then_served_from_the_cache(
    stack: Stack,
) -> None:
    calls = SecretsCalls()
    calls.install()
    settings = poller_settings(stack)
    assert read_api_key(settings) == API_KEY
    assert read_api_key(settings) == API_KEY
    assert read_api_key(settings) == API_KEY
    assert calls.count == 1


def test_a_read_after_the_cache_age_asks_secrets_manager_again(stack: Stack) -> None:
    calls = SecretsCalls()
    calls.install()
    settings = poller_settings(stack, SECRET_MAX_AGE_SECONDS="0")
    read_api_key(settings)
    read_api_key(settings)
    assert calls.count == 2


def test_warm_invocations_of_both_handlers_read_the_secret_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    ready = [d["id"] for d in sim.state()["documents"] if d["category"] == "ready"][:4]
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        calls = SecretsCalls()
        calls.install()
        for doc_id in ready:
            stack.sqs.send_message(
                QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
            )
        drive_queue(stack, processor.lambda_handler, batch_size=1)  # four warm invocations
        poller.lambda_handler({}, FakeLambdaContext(300))  # a second cold start, same process
        poller.lambda_handler({}, FakeLambdaContext(300))

    assert calls.count == 1
    assert all(sim.document(i)["bookings"] == 1 for i in ready)  # type: ignore[index]


def test_a_rotated_key_is_picked_up_by_a_warm_container_within_the_cache_age(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    ready = [d["id"] for d in sim.state()["documents"] if d["category"] == "ready"][:2]
    with handlers_env(monkeypatch, stack, sim, SECRET_MAX_AGE_SECONDS="0") as (_, processor):
        stack.sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": ready[0]})
        )
        drive_queue(stack, processor.lambda_handler)
        rotated = API_KEY[::-1]
        stack.secrets.put_secret_value(SecretId=stack.secret_name, SecretString=rotated)
        sim.configure(api_key=rotated)  # Lucca now refuses the old key
        stack.sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": ready[1]})
        )
        drive_queue(stack, processor.lambda_handler)

    assert sim.document(ready[1])["bookings"] == 1  # type: ignore[index]


def test_no_function_is_given_the_key_itself() -> None:
    """The template hands the functions the secret's *name*; the key is read at run time."""
    template = (ROOT / "template.yaml").read_text()
    assert "LUCCA_API_KEY_SECRET" in template
    assert not re.search(r"^\s+LUCCA_API_KEY\s*:", template, re.MULTILINE)
    assert "secretsmanager:GetSecretValue" in template
    # Each function may read that one secret, not every secret of the account.
    for resource in re.findall(r"Action: secretsmanager:GetSecretValue\s+Resource: (.+)", template):
        assert "${LuccaApiKeySecretName}" in resource


# --- the key never leaks ----------------------------------------------------------------------


class Everything(logging.Handler):
    """Every log record of every logger, formatted with its exception and stack, if any."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs_at_debug() -> Iterator[Everything]:
    """Root, botocore, httpx, Powertools and our logger all at DEBUG, as when someone turns
    ApplicationLogLevel and POWERTOOLS_LOG_LEVEL up to debug an incident."""
    handler = Everything()
    root = logging.getLogger()
    before = (root.level, powertools_logger.log_level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    powertools_logger.setLevel("DEBUG")
    powertools_logger.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        powertools_logger.setLevel(before[1])
        powertools_logger.removeHandler(handler)


def everything_in(stack: Stack) -> str:
    """Every item of every table, every message left in either queue, as text."""
    parts: list[str] = []
    for table in (stack.ledger_table, stack.budget_table, stack.idempotency_table):
        for page in stack.dynamodb.get_paginator("scan").paginate(TableName=table):
            parts.append(json.dumps(page["Items"], default=str))
    parts.append(json.dumps(dead_letters(stack), default=str))
    left = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    parts.append(json.dumps(left, default=str))
    return "\n".join(parts)


def test_the_key_never_reaches_logs_messages_dead_letters_or_the_ledger(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    sim: Simulator,
    stack: Stack,
    all_logs_at_debug: Everything,
) -> None:
    bodies: list[str] = []
    # With rules that update documents, so the PUT's path runs too (and the key never shows).
    rules = str(EXAMPLE_RULES_FILE)
    with handlers_env(monkeypatch, stack, sim, RULES_SOURCE=rules) as (poller, processor):
        poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
        # Errors on purpose: unknown documents, poison messages, transient Lucca trouble.
        for body in ('{"documentId": 999999}', "{not json", '{"documentId": -1}'):
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
        sim.configure(fault_rate=0.3, fault_kinds={"503": 1.0, "500": 1.0, "drop": 1.0})

        def record(messages: list[dict[str, Any]]) -> None:
            bodies.extend(json.dumps(m, default=str) for m in messages)

        drive_queue(stack, processor.lambda_handler, before_invoke=record)
        sim.configure(fault_rate=0.0)
        runtime_repr = repr(processor.runtime().client) + repr(vars(processor.runtime().client))

    out, err = capfd.readouterr()
    logs = "\n".join(all_logs_at_debug.lines)
    assert len(all_logs_at_debug.lines) > 100  # DEBUG really was on
    assert "retryable failure" in logs  # and the error paths really ran
    assert "document dead-lettered" in logs
    assert bodies
    for where, text in {
        "stdout": out,
        "stderr": err,
        "log records": logs,
        "queue messages": "\n".join(bodies),
        "tables, queues and dead letters": everything_in(stack),
        "the client's repr and attributes": runtime_repr,
    }.items():
        assert API_KEY not in text, f"the API key leaked into {where}"


def test_the_key_is_in_no_error_from_a_refused_request(sim: Simulator) -> None:
    """A 401 (the simulator's own, with the offending header in mind) names no key."""
    wrong = "lk-WRONG-" + API_KEY
    client = LuccaClient(sim.url, wrong)
    with pytest.raises(AuthError) as raised:
        client.count()
    error = raised.value
    for text in (str(error), repr(error), repr(error.problem), repr(error.__dict__)):
        assert wrong not in text
        assert API_KEY not in text
    assert error.__cause__ is None  # no chained httpx exception carrying the request
    assert wrong not in repr(client)
    assert wrong not in repr(client._auth)


def test_a_transport_failure_chains_no_request_that_could_show_the_key() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = LuccaClient(
        "https://acme.ilucca.net",
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(refuse)),
        sleep=lambda _: None,
    )
    with pytest.raises(LuccaError) as raised:
        client.count()
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or API_KEY not in repr(raised.value.__context__)
    assert API_KEY not in str(raised.value)


def test_the_key_never_reaches_a_trace() -> None:
    """Tracing patches libraries for the life of the process, so it runs in a subprocess:
    X-Ray enabled as in Lambda, both handlers traced end to end, every segment captured."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "domain"), str(ROOT)]),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "test-function",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
        "Sampled=1",
    }
    env.pop("AWS_SAM_LOCAL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.unit.template.test_security import trace_probe; trace_probe()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    segments = json.loads(result.stdout.strip().splitlines()[-1])
    names = {segment["name"] for segment in segments}
    assert "## lambda_handler" in names  # Powertools' handler subsegment
    assert any("127.0.0.1" in name for name in names)  # httpx calls to Lucca (the simulator)
    assert {"dynamodb", "sqs", "secretsmanager"} <= {name.lower() for name in names}  # botocore
    assert API_KEY not in result.stdout
    assert API_KEY not in result.stderr


def trace_probe() -> None:
    """Run in a subprocess by ``test_the_key_never_reaches_a_trace``: prints the segments."""
    from aws_xray_sdk.core import xray_recorder

    captured: list[dict[str, Any]] = []

    class Emitter:
        def send_entity(self, entity: Any) -> None:
            captured.append(json.loads(entity.serialize()))

        def set_daemon_address(self, address: str) -> None:
            return None

    xray_recorder.configure(emitter=Emitter(), sampling=False)  # type: ignore[no-untyped-call]

    class Patch:
        def setenv(self, name: str, value: str) -> None:
            os.environ[name] = value

    with paced_simulator(invoices=8, seed=8, api_key=API_KEY) as sim, mock_aws():
        stack = create_stack(sim.api_key, max_receive_count=10)
        with handlers_env(Patch(), stack, sim) as (poller, processor):  # type: ignore[arg-type]
            poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"documentId": 9999}')
            sim.configure(fault_rate=0.3, fault_kinds={"503": 1.0})
            drive_queue(stack, processor.lambda_handler)
    flat: list[dict[str, Any]] = []

    def walk(segment: dict[str, Any]) -> None:
        flat.append(segment)
        for child in segment.get("subsegments", []):
            walk(child)

    for segment in captured:
        walk(segment)
    print(json.dumps(flat))


# --- HTTPS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.ilucca.net",
        "http://acme.ilucca.net:443",
        "http://127.0.0.1.nip.io",
        "http://localhost.attacker.example",
        "http://10.0.0.1",
        "ws://acme.ilucca.net",
        "//acme.ilucca.net",
    ],
)
def test_plain_http_is_refused_except_on_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="must"):
        validate_base_url(url)
    with pytest.raises(ValueError, match="must"):
        LuccaClient(url, API_KEY)
    with pytest.raises(ConfigError, match="LUCCA_BASE_URL"):
        PollerSettings.from_env(
            {
                "LUCCA_BASE_URL": url,
                "LUCCA_API_KEY_SECRET": "lucca/api-key",
                "BUDGET_TABLE": "b",
                "DOCUMENTS_QUEUE_URL": "q",
                "LEDGER_TABLE": "l",
            }
        )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8900", "http://localhost:8900", "http://[::1]:8900"]
)
def test_plain_http_is_allowed_on_loopback_for_the_simulator(url: str) -> None:
    assert validate_base_url(url) == url


def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else() -> None:
    seen: list[str] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(301, headers={"location": "http://evil.example/steal"})

    client = LuccaClient(
        "https://acme.ilucca.net",
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(redirect)),
    )
    with pytest.raises(LuccaError):
        client.count()
    assert all(url.startswith("https://acme.ilucca.net/") for url in seen)


# --- static checks ----------------------------------------------------------------------------


def test_ruff_security_rules_are_on_everywhere_that_ships() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"]
    assert not any(rule == "S" or rule.startswith("S") for rule in config.get("ignore", []))
    for pattern, ignored in config.get("per-file-ignores", {}).items():
        if any(rule.startswith("S") for rule in ignored):
            # Only tests, the benchmark, the simulation and local tooling relax them; never what
            # ships.
            assert pattern.split("/")[0] in {"tests", "bench", "local", "sim"}, pattern


def test_cfn_lint_and_checkov_are_part_of_make_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^test:([^\n#]*)", makefile, re.MULTILINE)
    assert match is not None
    prerequisites = match.group(1).split()
    assert {"cfn-lint", "checkov", "lint"} <= set(prerequisites)
    assert re.search(r"^checkov:.*\n\t.*checkov .*--file template\.yaml", makefile, re.MULTILINE)
    assert re.search(r"^cfn-lint:.*\n\t.*cfn-lint template\.yaml", makefile, re.MULTILINE)
