"""README's "Your first hour", run as a person would: the commands of its numbered steps, in
order, verbatim apart from the endpoint, against ministack and the Lucca simulator.

The substitution rule, whole (``person_env`` and ``mapped``):

- the environment, not the commands: ``AWS_ENDPOINT_URL`` names ministack (the aws CLI, sam and
  cleemy-booker all honour it), with the emulator's dummy credentials and no AWS profile or
  config file of this machine's; the variables step 0 has a person export, with the simulator's
  address as ``LUCCA_BASE_URL`` (so ``LuccaBaseUrl`` and ``plan --base-url`` name it) and its
  key as ``LUCCA_API_KEY``;
- each ``sam deploy``: the two parameters ministack cannot run without
  (``LOCAL_PARAMETERS``: ``Architecture=x86_64``, ``MetricMathAlarms=false``) appended to its
  ``--parameter-overrides``, which must therefore end the command.

A command the rule cannot map fails the test: another program, a ``sam deploy`` that would
wait for an answer or has no ``--parameter-overrides`` to append to, a variable the test does
not set, an endpoint written into the command. Besides, for time only: sam polls the stack
every 0.5 s instead of 5 s (``SAM_CLI_POLL_DELAY``), and python3.12 is put first on PATH for
``sam build`` (as ``local.emulator.sam_build`` does).

What ministack does differently from AWS, and what the test does about it:

- SNS e-mail subscriptions are confirmed at once (ministack asks only http/https subscribers to
  confirm; no mail is sent): step 3's clicks have nothing to do, so the test checks ministack
  lists both subscriptions as confirmed and that doctor's rows say so. Doctor's
  ``PendingConfirmation`` row (what AWS shows before the click) is tested in tests/unit/tools.
- A ``MaximumConcurrency`` given by a parameter stays a string and the queue is never consumed:
  after each ``sam deploy`` the test re-sets it as a number (``fix_event_source_mappings``, as
  every local deploy does). AWS coerces it.
- The schedule (``rate(15 minutes)``) first fires 15 minutes after the deploy: on AWS it would
  have polled once in dry run before a person reaches step 4. The test invokes the poller once
  after step 2 in its place, so the dry run's decisions (planned, never booked) are what step 6
  goes live on, as on AWS.

It deploys ``cleemy-booker-test`` (samconfig's ``default`` stack) in eu-west-3, the README's
region: on the e2e run's own ministack when the session deploys the shared stack
(``deployed``, ``cleemy-booker-e2e`` in eu-west-1: ministack keeps each region apart), on a
fresh one otherwise. It starts from an empty region (no such stack, no such secret: checked)
and leaves it so. Under the e2e lock, like every deploy (``sam build`` shares ``.aws-sam``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cleemy_booker.ledger import Ledger, Status
from local.demo import SetupError, preflight
from local.emulator import (
    LOCAL_PARAMETERS,
    Emulator,
    aws_env,
    client,
    delete_stack,
    find_python,
    fix_event_source_mappings,
    stack_outputs,
    stack_status,
)
from local.emulator._proc import clean_env
from local.lucca_simulator import Simulator, SimulatorConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Your first hour"
#: samconfig.toml's ``default`` environment: what the README's commands deploy, and where.
STACK = "cleemy-booker-test"
REGION = "eu-west-3"
SECRET = "cleemy-booker/test/lucca-api-key"  # the secret's name (the key is LUCCA_API_KEY)
#: What ``sam deploy --resolve-s3`` (samconfig) creates for its artifacts.
SAM_MANAGED_STACK = "aws-sam-cli-managed-default"
#: The programs the README may run, as it names them (run from the repository's root).
PROGRAMS = ("aws", ".venvs/sam/bin/sam", ".venv/bin/cleemy-booker")
#: A small inbox: 3 documents ready to book (unless the day makes their date doubtful) and 1
#: whose OCR is not finished (held whatever the day).
INBOX = SimulatorConfig(
    invoices=4,
    seed=2,
    category_weights={"ready": 0.75, "ocr_pending": 0.25},
    fault_rate=0.0,
    api_key="sim-" + secrets.token_hex(12),
)
ALARM_EMAIL = "ops@example.com"
DIGEST_EMAIL = "finance@example.com"

#: Per (step, block): what the README's "You should see" promises and the output must show.
SHOULD_SEE: dict[tuple[int, int], tuple[str, ...]] = {
    (1, 0): ('"ARN"', f'"Name": "{SECRET}"', '"VersionId"'),
    (2, 0): ("Build Succeeded", f"Successfully created/updated stack - {STACK} in {REGION}"),
    (3, 0): ("alarm subscriptions", "digest subscriptions", "1 confirmed: email"),
    (4, 0): ("Verdict: GO: nothing blocks", "dry run", "DryRun=true"),
    (5, 0): ("Dry run: nothing was changed in Lucca.", "ocr_not_finished: ", "0 update+book"),
    (6, 0): (
        f"Successfully created/updated stack - {STACK} in {REGION}",
        '{"listed": ',
        '"enqueued": ',
        '"skipped": ',
    ),
    (6, 1): (
        "document id,invoice number,type,owner id,owner,",
        ",booked at (UTC),rules applied,changes,Lucca request ids",
    ),
}
#: The doctor's warnings step 4 says to expect on a stack in dry run.
EXPECTED_WARNINGS = {"dry run", "last poll", "unknown fields/values"}


# --- reading the README ------------------------------------------------------------------------


@dataclass
class Block:
    step: int
    index: int  # within its step
    commands: list[str]


@dataclass
class Step:
    number: int
    text: str = ""
    blocks: list[Block] = field(default_factory=list)


_STEP = re.compile(r"^(\d+)\. ")
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def first_hour(readme: str) -> list[Step]:
    """The section's numbered steps, in order, each with its text and its ```bash blocks."""
    start = readme.index(SECTION + "\n")
    end = readme.find("\n## ", start + len(SECTION))
    steps: list[Step] = []
    fence: tuple[str, list[str]] | None = None  # (indent, lines) of an open ```bash block
    for line in readme[start : end if end != -1 else None].splitlines():
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(2) == "":
                steps[-1].blocks.append(
                    Block(steps[-1].number, len(steps[-1].blocks), commands_of(fence[1]))
                )
                fence = None
            else:
                fence[1].append(line.removeprefix(fence[0]))
            continue
        number = _STEP.match(line)
        if number:
            steps.append(Step(int(number.group(1))))
        if not steps:
            continue
        steps[-1].text += line + "\n"
        if opened and opened.group(2) == "bash":
            fence = (opened.group(1), [])
    return steps


def commands_of(lines: list[str]) -> list[str]:
    """One command per logical line: continuations joined, blank and comment lines dropped."""
    commands, current = [], ""
    for line in lines:
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        if current and not current.startswith("#"):
            commands.append(current)
        current = ""
    assert not current, f"a command ends in a continuation: {current!r}"
    return commands


# --- the substitution rule ---------------------------------------------------------------------


class Unmapped(AssertionError):
    """A README command the substitution rule cannot map: the README changed, map it here."""


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def person_env(endpoint: str, simulator: Simulator, home: Path) -> dict[str, str]:
    """The shell of a person who did step 0, whose AWS is ministack and whose tenant is the
    simulator; nothing of this machine's AWS set-up leaks in."""
    awscli = ROOT / ".venvs/awscli/bin"  # `make setup`'s aws CLI, else the one on PATH
    path = [str(awscli)] if awscli.is_dir() else []
    path += [str(find_python("3.12")), os.environ.get("PATH", "")]
    env = clean_env(
        {
            **aws_env(endpoint, REGION),  # AWS_ENDPOINT_URL and dummy credentials
            "AWS_CONFIG_FILE": str(home / "aws-config"),  # absent: no profile of this machine
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "PATH": os.pathsep.join(path),
            "SAM_CLI_TELEMETRY": "0",
            "SAM_CLI_POLL_DELAY": "0.5",
            # What step 0 asks a person to export.
            **step0_variables(simulator),
        }
    )
    env.pop("AWS_REGION")  # aws_env sets it too: only step 0's AWS_DEFAULT_REGION names it
    return env


def step0_variables(simulator: Simulator) -> dict[str, str]:
    return {
        "AWS_DEFAULT_REGION": REGION,
        "LUCCA_API_KEY": simulator.api_key,
        "LUCCA_BASE_URL": simulator.url,
        "ALARM_EMAIL": ALARM_EMAIL,
        "DIGEST_EMAIL": DIGEST_EMAIL,
    }


def mapped(command: str, variables: Iterable[str]) -> str:
    """The command as the test runs it, or ``Unmapped`` saying why it cannot be.
    ``variables``: the names step 0 has a person set, the only ones a command may use."""
    words = shlex.split(command)
    if words[0] not in PROGRAMS:
        raise Unmapped(f"{command!r}: runs {words[0]!r}, not one of {PROGRAMS}")
    unknown = sorted(set(_VARIABLE.findall(command)) - set(variables))
    if unknown:
        raise Unmapped(f"{command!r}: uses {unknown}, which step 0 does not have a person set")
    if "--endpoint-url" in words or "http://" in command or "https://" in command:
        raise Unmapped(f"{command!r}: names an endpoint; the README's commands take AWS's")
    if words[0].endswith("/sam") and words[1] == "deploy":
        return _sam_deploy(command, words)
    return command


def _sam_deploy(command: str, words: list[str]) -> str:
    if "--guided" in words or "--no-confirm-changeset" not in words:
        raise Unmapped(f"{command!r}: would wait for a person's answer")
    if "--parameter-overrides" not in words:
        raise Unmapped(f"{command!r}: no --parameter-overrides to append ministack's to")
    overrides = words[words.index("--parameter-overrides") + 1 :]
    if not overrides or not all(re.fullmatch(r"[A-Za-z0-9]+=.*", w) for w in overrides):
        raise Unmapped(f"{command!r}: --parameter-overrides must end the command")
    named = {w.split("=", 1)[0] for w in overrides}
    if named & set(LOCAL_PARAMETERS):
        raise Unmapped(f"{command!r}: already sets {sorted(named & set(LOCAL_PARAMETERS))}")
    return command + "".join(f" {key}={value}" for key, value in LOCAL_PARAMETERS.items())


# --- running ----------------------------------------------------------------------------------


@dataclass
class Ran:
    command: str
    status: int
    output: str
    seconds: float


class Person:
    """Runs a README block's commands as a person's shell would, from the repository's root."""

    def __init__(self, env: Mapping[str, str], variables: Iterable[str], secret: str) -> None:
        self.env = dict(env)
        self.variables = set(variables)
        self.secret = secret
        self.times: dict[str, float] = {}

    def run(self, block: Block) -> list[Ran]:
        ran = []
        for command in block.commands:
            started = time.monotonic()
            run = mapped(command, self.variables)
            proc = subprocess.run(  # noqa: S603 - the README's own command, through bash
                ["bash", "-u", "-c", run],  # noqa: S607
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=900,
                check=False,
            )
            seconds = time.monotonic() - started
            name = f"step {block.step}: {' '.join(shlex.split(command)[:2])}"
            self.times[name] = self.times.get(name, 0.0) + seconds
            # Checked before anything is printed: no command shows the key.
            assert self.secret not in proc.stdout, f"{command!r} printed the API key"
            added = run.removeprefix(command)
            print(
                f"\n[first hour] $ {command}{f'   + {added.strip()}' if added else ''}"
                f"   ({seconds:.1f}s, exit {proc.returncode})"
            )
            print("\n".join(f"    {line}" for line in proc.stdout.rstrip().splitlines()[-40:]))
            assert proc.returncode == 0, f"{command!r} exited {proc.returncode}"
            ran.append(Ran(command, proc.returncode, proc.stdout, seconds))
            words = shlex.split(command)
            if words[0].endswith("/sam") and words[1] == "deploy":
                fix_event_source_mappings(self.env["AWS_ENDPOINT_URL"], REGION)  # ministack
        return ran


def should_see(step: Step, block: Block, ran: list[Ran]) -> str:
    """The block's output, after checking the README promises what the test expects of it and
    the output shows it."""
    output = "\n".join(r.output for r in ran)
    text = " ".join(step.text.split())
    for fragment in SHOULD_SEE.get((block.step, block.index), ()):
        assert fragment in text, f"step {step.number}'s text no longer says {fragment!r}"
        assert fragment in output, f"step {step.number} did not print {fragment!r}"
    return output


# --- the rule itself (no ministack) ----------------------------------------------------------


def test_every_command_of_the_first_hour_maps() -> None:
    """Fails at once, before any deploy, when the README's steps change shape."""
    steps = first_hour(README.read_text(encoding="utf-8"))
    assert [s.number for s in steps] == [0, 1, 2, 3, 4, 5, 6]
    names = ("AWS_DEFAULT_REGION", "LUCCA_API_KEY", "LUCCA_BASE_URL", "ALARM_EMAIL", "DIGEST_EMAIL")
    deploys = [
        mapped(command, names)
        for step in steps
        for block in step.blocks
        for command in block.commands
        if " deploy " in command
    ]
    assert len(deploys) == 2
    assert all(d.endswith(" Architecture=x86_64 MetricMathAlarms=false") for d in deploys)


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("make doctor", "not one of"),
        ("curl -s $LUCCA_BASE_URL", "not one of"),
        (".venv/bin/cleemy-booker plan --base-url $TENANT", "does not have a person set"),
        (".venv/bin/cleemy-booker doctor --stack s --endpoint-url http://x", "names an endpoint"),
        (".venvs/sam/bin/sam deploy --guided", "would wait"),
        (".venvs/sam/bin/sam deploy --parameter-overrides DryRun=true", "would wait"),
        (".venvs/sam/bin/sam deploy --no-confirm-changeset", "no --parameter-overrides"),
        (
            ".venvs/sam/bin/sam deploy --no-confirm-changeset --parameter-overrides A=1 --tags x",
            "must end the command",
        ),
        (
            ".venvs/sam/bin/sam deploy --no-confirm-changeset --parameter-overrides "
            "Architecture=arm64",
            "already sets",
        ),
    ],
)
def test_a_command_the_rule_cannot_map_fails(command: str, why: str) -> None:
    with pytest.raises(Unmapped, match=why):
        mapped(command, ["LUCCA_BASE_URL"])


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_hour_ministack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    one_deploy_at_a_time: None,
) -> Iterator[Emulator]:
    """The e2e run's ministack when the session deploys the shared stack, else one of its own."""
    if any("deployed" in getattr(item, "fixturenames", ()) for item in request.session.items):
        shared = request.getfixturevalue("deployed").emu
        assert shared is not None
        print(f"[first hour] on the e2e run's ministack {shared.endpoint}, region {REGION}")
        yield shared
        return
    missing = None
    try:
        preflight()
    except SetupError as exc:
        missing = str(exc)
    if missing:
        pytest.fail(missing, pytrace=False)
    emulator = Emulator(
        ROOT / ".venvs/ministack",
        workdir=tmp_path_factory.mktemp("first-hour-ministack"),
        extra_env={"POWERTOOLS_TRACE_DISABLED": "true"},
    )
    with emulator:
        print(f"[first hour] on a ministack of its own {emulator.endpoint}, region {REGION}")
        yield emulator


@pytest.fixture(scope="module")
def first_hour_tenant() -> Iterator[Simulator]:
    with Simulator(INBOX) as sim:
        yield sim


@pytest.fixture
def empty_region(first_hour_ministack: Emulator) -> Iterator[str]:
    """eu-west-3 on ministack as an empty account has it, and left so afterwards."""
    endpoint = first_hour_ministack.endpoint
    assert stack_status(STACK, endpoint, REGION) is None, f"{STACK} exists: it would collide"
    with pytest.raises(ClientError, match="ResourceNotFound"):
        client("secretsmanager", endpoint, REGION).describe_secret(SecretId=SECRET)
    yield endpoint
    deployed = stack_status(STACK, endpoint, REGION) is not None
    ledger = stack_outputs(STACK, endpoint, REGION).get("LedgerTableName") if deployed else None
    for stack in (STACK, SAM_MANAGED_STACK):
        delete_stack(stack, endpoint, REGION)  # nothing to do when absent
    with contextlib.suppress(ClientError):  # retained by the stack (DeletionPolicy: Retain)
        client("dynamodb", endpoint, REGION).delete_table(TableName=ledger or "")
    with contextlib.suppress(ClientError):  # absent when step 1 did not run
        client("secretsmanager", endpoint, REGION).delete_secret(
            SecretId=SECRET, ForceDeleteWithoutRecovery=True
        )


# --- the test ----------------------------------------------------------------------------------


def test_the_first_hour_as_the_readme_tells_it(
    empty_region: str, first_hour_tenant: Simulator, tmp_path: Path
) -> None:
    started = time.monotonic()
    simulator = first_hour_tenant
    endpoint = empty_region
    steps = first_hour(README.read_text(encoding="utf-8"))
    assert [s.number for s in steps] == [0, 1, 2, 3, 4, 5, 6]
    assert not steps[0].blocks, "step 0 is what a person sets up, not commands"
    env = person_env(endpoint, simulator, tmp_path)
    for name in step0_variables(simulator):
        assert name in steps[0].text, f"step 0 no longer has a person set {name}"
    for step in steps[1:]:
        assert step.blocks, f"step {step.number} has no ```bash block"
        for block in step.blocks:
            for command in block.commands:
                mapped(command, step0_variables(simulator))  # all map, before anything runs
    person = Person(env, step0_variables(simulator), simulator.api_key)
    inbox = {d["id"]: d["category"] for d in simulator.state()["documents"]}
    unread = {doc for doc, category in inbox.items() if category == "ocr_pending"}
    assert unread, "the inbox must hold a document whatever the day"
    assert unread != set(inbox)

    def aws(service: str) -> Any:
        return client(service, endpoint, REGION)

    # 1. The API key, in Secrets Manager.
    (block,) = steps[1].blocks
    should_see(steps[1], block, person.run(block))
    value = aws("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    assert value == simulator.api_key  # compared, never printed

    # 2. Deploy, in dry run.
    (block,) = steps[2].blocks
    should_see(steps[2], block, person.run(block))
    outputs = stack_outputs(STACK, endpoint, REGION)
    assert (
        parameters(aws("cloudformation")).items()
        >= {
            "LuccaBaseUrl": simulator.url,
            "LuccaApiKeySecretName": SECRET,
            "ScheduleExpression": "rate(15 minutes)",
            "AlarmEmail": ALARM_EMAIL,
            "DigestEmail": DIGEST_EMAIL,
            "DryRun": "true",
        }.items()
    )
    # In place of the schedule's first run (see the module's docstring): decided, not booked.
    report = invoke_poller(aws("lambda"), outputs)
    assert (report["listed"], report["enqueued"]) == (len(inbox), len(inbox)), report
    ledger = Ledger(aws("dynamodb"), outputs["LedgerTableName"])
    decided = wait_for(ledger, lambda s: s["PLANNED"] | s["HELD"] == set(inbox), "dry run")
    planned = decided["PLANNED"]
    assert unread <= decided["HELD"]
    assert all(d["bookings"] == d["puts"] == 0 for d in simulator.state()["documents"])

    # 3. Confirm the subscriptions: nothing to click on ministack, which records an e-mail
    # subscription confirmed when the stack creates it: listed with its ARN (AWS lists
    # "PendingConfirmation" until the click) and no PendingConfirmation attribute at all.
    for topic in ("AlarmTopicArn", "DigestTopicArn"):
        subscriptions = aws("sns").list_subscriptions_by_topic(TopicArn=outputs[topic])
        (subscription,) = subscriptions["Subscriptions"]
        assert subscription["SubscriptionArn"].startswith(outputs[topic] + ":"), subscription
        attributes = aws("sns").get_subscription_attributes(
            SubscriptionArn=subscription["SubscriptionArn"]
        )["Attributes"]
        assert attributes.get("PendingConfirmation", "false") == "false", attributes
    (block,) = steps[3].blocks
    rows = should_see(steps[3], block, person.run(block)).splitlines()
    assert len(rows) == 2, rows
    for row, address in zip(rows, (ALARM_EMAIL, DIGEST_EMAIL), strict=True):
        assert re.search(rf"\bOK\s+1 confirmed: email {re.escape(address)}$", row), row

    # 4. Ask the doctor: a go, exit status 0 (Person.run checks every exit status).
    (block,) = steps[4].blocks
    doctor = should_see(steps[4], block, person.run(block))
    statuses = dict(re.findall(r"^(\S.*?)\s{2,}(OK|warning|BLOCKING)\s", doctor, re.MULTILINE))
    assert "BLOCKING" not in statuses.values(), doctor
    warned = {check for check, status in statuses.items() if status == "warning"}
    assert "dry run" in warned, doctor
    assert warned <= EXPECTED_WARNINGS, doctor

    # 5. See what it would do: what the dry run planned is what plan says it would book.
    (block,) = steps[5].blocks
    plan = should_see(steps[5], block, person.run(block))
    decisions = dict(re.findall(r"^\s*(\d+)\s.*\s(book|update\+book|hold)$", plan, re.MULTILINE))
    assert {int(doc) for doc in decisions} == set(inbox), plan
    assert {int(doc) for doc, d in decisions.items() if d == "book"} == planned, plan
    assert planned, "nothing in the inbox is bookable today"
    held = len(inbox) - len(planned)
    assert (
        f"Totals: {len(inbox)} documents: {len(planned)} book, 0 update+book, {held} hold" in plan
    )

    # 6. Go live, one poll, then (a minute later for a person) the first bookings.
    live, bookings = steps[6].blocks
    ran = person.run(live)
    should_see(steps[6], live, ran)
    assert parameters(aws("cloudformation"))["DryRun"] == "false"
    report = poller_report(ran[-1].output)
    # What the dry run held is not queued again until it changes in Lucca (or its recheck).
    assert (report["listed"], report["enqueued"]) == (len(inbox), len(planned)), report
    assert report["skipped"] == {"held": held}, report
    wait_for(ledger, lambda s: s["BOOKED"] == planned, "bookings")
    exported = should_see(steps[6], bookings, person.run(bookings))
    rows = list(csv.DictReader(io.StringIO(exported.removeprefix("\ufeff"))))
    assert {int(row["document id"]) for row in rows} == planned, exported
    by_id = {d["id"]: d for d in simulator.state()["documents"]}
    assert all(by_id[doc]["bookings"] == (doc in planned) for doc in inbox), by_id
    assert simulator.state()["totals"]["doubleBooked"] == 0
    print(
        f"\n[first hour] {time.monotonic() - started:.1f}s: "
        + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in person.times.items())
    )


def parameters(cloudformation: Any) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]}


def poller_report(output: str) -> dict[str, Any]:
    """The function's answer in ``sam remote invoke``'s output: the last JSON object, after the
    function's log lines (which carry the same report, as ``"report"``)."""
    answer, _ = json.JSONDecoder().raw_decode(output, output.rindex('{"listed"'))
    return dict(answer)


def invoke_poller(lambda_: Any, outputs: Mapping[str, str]) -> dict[str, Any]:
    answer = lambda_.invoke(
        FunctionName=outputs["InboxPollerFunctionName"],
        Payload=(ROOT / "events/schedule.json").read_bytes(),
    )
    payload = json.loads(answer["Payload"].read())
    assert not answer.get("FunctionError"), payload
    return dict(payload)


def wait_for(
    ledger: Ledger,
    done: Callable[[dict[str, set[int]]], bool],
    what: str,
    timeout: float = 180.0,
) -> dict[str, set[int]]:
    """The ledger's documents by status, once ``done`` says they are as awaited."""
    deadline = time.monotonic() + timeout
    while True:
        states = {
            status.name: {s.document_id for s in ledger.queries.in_status(status)}
            for status in (Status.PLANNED, Status.HELD, Status.BOOKED, Status.FAILED)
        }
        if done(states):
            return states
        assert time.monotonic() < deadline, f"{what}: not done after {timeout:.0f}s: {states}"
        time.sleep(1.0)
