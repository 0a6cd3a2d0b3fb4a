"""Start, deploy, watch and tear down the whole pipeline locally (shared by the demo and e2e)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError

from cleemy_booker.digest import compose, gather
from cleemy_booker.ledger import DocumentState, Ledger, Status
from cleemy_booker_tools.doctor import DoctorClients, examine
from cleemy_booker_tools.doctor_report import Report
from local.demo.report import (
    BOOKABLE,
    CATEGORIES,
    FAILING,
    HELD,
    DeadLetter,
    Progress,
    Verdict,
    verify,
)
from local.emulator import (
    LOCAL_PARAMETERS,
    Emulator,
    EmulatorError,
    delete_stack,
    find_python,
    log_messages,
    sam_build,
    sam_deploy,
)
from local.lifecycle import Startable
from local.lucca_simulator import Simulator, SimulatorConfig

ROOT = Path(__file__).resolve().parents[2]
#: The secret the template reads the Lucca key from (its ``LuccaApiKeySecretName`` default).
SECRET_NAME = "cleemy-booker/lucca-api-key"  # noqa: S105 - a name, not a secret
#: What ``make setup`` creates; the message every missing piece ends with.
SETUP_HINT = "run `make setup` (it creates .venv, .venvs/sam and .venvs/ministack)"

__all__ = [
    "BOOKABLE",
    "CATEGORIES",
    "FAILING",
    "HELD",
    "ROOT",
    "SECRET_NAME",
    "DeadLetter",
    "LocalPipeline",
    "PipelineOptions",
    "Progress",
    "SetupError",
    "preflight",
]


class SetupError(RuntimeError):
    """The machine lacks something the local deploy needs (a venv, python3.12)."""


def preflight(project_dir: Path = ROOT) -> None:
    """Fail early, saying what is missing and how to get it, before anything is started."""
    problems: list[str] = []
    sam = project_dir / ".venvs/sam/bin/sam"
    if not sam.exists():
        problems.append(f"no sam CLI at {sam}")
    try:
        Emulator(project_dir / ".venvs/ministack").check_venv()
    except EmulatorError as exc:
        problems.append(str(exc))
    try:
        find_python("3.12")
    except EmulatorError as exc:
        problems.append(f"{exc} (sam build needs it for the python3.12 runtime)")
    if problems:
        raise SetupError(
            "the local AWS stack cannot run here:\n  - "
            + "\n  - ".join(problems)
            + f"\n{SETUP_HINT}"
        )


@dataclass(frozen=True)
class PipelineOptions:
    documents: int = 300
    #: Lucca's 60 s rate-limit window, compressed: simulator and budget both use it.
    window_seconds: float = 6.0
    fault_rate: float = 0.03
    seed: int = 7
    #: Injected "slow" faults wait this long (under Lucca's 5 s limit: merely slow).
    slow_seconds: float = 1.0
    stack_name: str = "cleemy-booker-local"
    #: Scheduler has no seconds rate; ``rate(1 minute)`` first fires a minute after the deploy.
    schedule: str = "rate(1 minute)"
    # The template's documents queue waits 360 s before a failed message comes back and
    # dead-letters it after 10 receives: an hour for a document that keeps failing. Locally
    # the retry timing is shortened after the deploy (queue attributes, not the template).
    visibility_timeout: int = 30
    max_receive_count: int = 4
    project_dir: Path = ROOT
    #: ministack's log and temp files, sam's logs. Default: ``<project>/.local-run/<stack>``.
    workdir: Path | None = None
    region: str = "eu-west-1"
    #: More ``--parameter-overrides`` (they win over the defaults below).
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.documents < 0:
            raise ValueError("documents must be >= 0")
        if self.window_seconds < 1 or self.window_seconds != int(self.window_seconds):
            # BudgetWindowSeconds is a CloudFormation Number with MinValue 1.
            raise ValueError("the window must be a whole number of seconds, at least 1")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError("fault rate must be within 0..1")
        if self.max_receive_count < 3:
            raise ValueError("max_receive_count must be at least 3")


class LocalPipeline(Startable):
    """Simulator + ministack + the deployed stack. A context manager: ``stop()`` on exit."""

    def __init__(
        self, options: PipelineOptions | None = None, *, say: Callable[[str], None] = print
    ) -> None:
        self.options = options or PipelineOptions()
        self.say = say
        project = self.options.project_dir
        self.workdir = self.options.workdir or project / ".local-run" / self.options.stack_name
        self.sam_bin = project / ".venvs/sam/bin/sam"
        self.build_dir = project / ".aws-sam/build"
        self.sim: Simulator | None = None
        self.emu: Emulator | None = None
        self.outputs: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.poll_reports: list[dict[str, Any]] = []
        self.started_at = time.monotonic()
        self.deployed_at = 0.0
        self._clients: dict[str, Any] = {}
        self._stack = ExitStack()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Simulator, ministack, secret, build, deploy, queue timing. Undone on failure."""
        preflight(self.options.project_dir)
        self.started_at = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        opts = self.options
        with self._timed("simulator"):
            self.sim = Simulator(self.simulator_config()).start()
            self._stack.callback(self._stop_simulator)
        self.say(
            f"simulator    {self.sim.url}  ({opts.documents} documents, "
            f"{self.sim.config.rate_limit} requests per {opts.window_seconds:g} s, "
            f"faults {opts.fault_rate:.0%}, seed {opts.seed})"
        )
        with self._timed("ministack"):
            (self.workdir / "ministack" / "ministack.log").unlink(missing_ok=True)  # this run's
            self.emu = Emulator(
                opts.project_dir / ".venvs/ministack",
                region=opts.region,
                workdir=self.workdir / "ministack",
                # Make exports it for `make demo`; set it here too for direct runs: the X-Ray
                # SDK runs but nothing collects its segments locally.
                extra_env={"POWERTOOLS_TRACE_DISABLED": "true"},
            )
            self.emu.start()
            self._stack.callback(self._stop_emulator)
        self.say(f"ministack    {self.emu.endpoint}  (log {self.emu.log_path})")
        self.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=self.sim.api_key)
        with self._timed("build"):
            built = sam_build(
                opts.project_dir,
                self.sam_bin,
                self.build_dir,
                parameter_overrides=LOCAL_PARAMETERS,
                expect=["DomainLayer/python/cleemy_booker", "DomainLayer/python/pydantic_core"],
                log_path=self.workdir / "sam-build.log",
            )
        self.say(f"sam build    {built.seconds:.1f}s")
        with self._timed("deploy"):
            self._stack.callback(self._delete_stack)
            self.outputs = sam_deploy(
                opts.project_dir,
                self.sam_bin,
                opts.stack_name,
                self.emu.endpoint,
                self.parameter_overrides(),
                template_file=built.template,
                region=opts.region,
                log_path=self.workdir / "sam-deploy.log",
            )
            self.deployed_at = time.monotonic()
            self.tune_queue()
        self.say(
            f"sam deploy   {self.timings['deploy']:.1f}s  (stack {opts.stack_name}; "
            f"queue retry every {opts.visibility_timeout}s, DLQ after "
            f"{opts.max_receive_count} receives)"
        )

    def stop(self) -> None:
        """Delete the stack, stop ministack, stop the simulator. Idempotent."""
        started = time.monotonic()
        self._stack.close()
        self.timings["teardown"] = time.monotonic() - started

    def _delete_stack(self) -> None:
        emu = self.emu
        if emu is not None and emu.running():  # no-op when the stack is absent
            try:
                delete_stack(self.options.stack_name, emu.endpoint, self.options.region)
            except (EmulatorError, BotoCoreError, ClientError) as exc:
                self.say(f"warning: stack delete failed: {exc}")

    def _stop_emulator(self) -> None:
        if self.emu is not None:
            self.emu.stop()

    def _stop_simulator(self) -> None:
        if self.sim is not None:
            self.sim.stop()

    def _timed(self, name: str) -> _Timer:
        return _Timer(self.timings, name)

    # --- configuration -----------------------------------------------------------------------

    def simulator_config(self) -> SimulatorConfig:
        opts = self.options
        return SimulatorConfig(
            invoices=opts.documents,
            seed=opts.seed,
            rate_limit=50,  # Lucca's tenant limit, per the compressed window
            window_seconds=float(opts.window_seconds),
            fault_rate=opts.fault_rate,
            slow_seconds=opts.slow_seconds,
        )

    def parameter_overrides(self) -> dict[str, str]:
        """The real template's parameters for the local differences only."""
        if self.sim is None:
            raise RuntimeError("the simulator is not started")
        return {
            **LOCAL_PARAMETERS,  # x86_64: what ministack runs
            "LuccaBaseUrl": self.sim.url,  # http on loopback: the template allows it there
            "BudgetWindowSeconds": str(int(self.options.window_seconds)),
            "ScheduleExpression": self.options.schedule,
            # The processor dead-letters on the last delivery itself, with the reason: it must
            # know the same limit the queue is given below.
            "MaxReceiveCount": str(self.options.max_receive_count),
            # Time is compressed here: every scheduled run lists, whatever the hour.
            "OffHoursListingSeconds": "0",
            **self.options.parameters,
        }

    def tune_queue(self) -> None:
        """Shorten the documents queue's retry timing (see ``PipelineOptions``).

        The template's VisibilityTimeout 360 s x maxReceiveCount 10 means a document that keeps
        failing takes an hour to reach the DLQ; locally 30 s x 4 (never under 3 receives) keeps
        the demo within minutes. Same redrive target, only the numbers change. (The
        maxReceiveCount goes in as the ``MaxReceiveCount`` parameter too, so the processor knows
        it; setting it again here keeps the queue right even with other overrides.)
        """
        sqs = self.client("sqs")
        queue = self.outputs["DocumentsQueueUrl"]
        current = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])
        redrive = json.loads(current["Attributes"]["RedrivePolicy"])
        redrive["maxReceiveCount"] = self.options.max_receive_count
        sqs.set_queue_attributes(
            QueueUrl=queue,
            Attributes={
                "VisibilityTimeout": str(self.options.visibility_timeout),
                "RedrivePolicy": json.dumps(redrive),
            },
        )

    # --- acting on the stack -----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self.emu is None:
            raise RuntimeError("ministack is not started")
        return self.emu.endpoint

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self.emu is None:
                raise RuntimeError("ministack is not started")
            self._clients[service] = self.emu.client(service)
        return self._clients[service]

    @property
    def simulator(self) -> Simulator:
        if self.sim is None:
            raise RuntimeError("the simulator is not started")
        return self.sim

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.client("dynamodb"), self.outputs["LedgerTableName"])

    def invoke(self, output_key: str, event: Any) -> dict[str, Any]:
        """Invoke a deployed function synchronously; its decoded answer. Raises on a function
        error, with the error payload."""
        response = self.client("lambda").invoke(
            FunctionName=self.outputs[output_key], Payload=json.dumps(event).encode()
        )
        payload = response["Payload"].read()
        answer = json.loads(payload) if payload else None
        if response.get("FunctionError"):
            raise RuntimeError(f"{self.outputs[output_key]} failed: {answer}")
        return answer if isinstance(answer, dict) else {"answer": answer}

    def invoke_poller(self, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        started = time.monotonic()
        report = self.invoke("InboxPollerFunctionName", dict(event or {"source": "demo"}))
        self.timings.setdefault("first poll", time.monotonic() - started)
        self.poll_reports.append(report)
        return report

    def settle(self, timeout: float = 120.0) -> list[int]:
        """What the next scheduled poll does for exactly-once: a booking whose answer was lost
        (held as possibly booked) is recorded booked once a complete listing no longer shows it.
        When the ledger has such documents, one more poll now, then the queue drained again;
        the ids it confirmed."""
        if not self.ledger.queries.uncertain_bookings():
            return []
        report = self.invoke_poller({"source": "demo-settle"})
        self.wait_until_drained(timeout=timeout)
        return [int(doc_id) for doc_id in report.get("confirmed", [])]

    def doctor(self) -> Report:
        """What ``cleemy-booker doctor --stack STACK --endpoint-url ENDPOINT`` says of the
        deployed stack, through this pipeline's clients (the emulator's, its dummy account)."""
        return examine(self.options.stack_name, DoctorClients.using(self.client))

    def invoke_processor(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return self.invoke("DocumentProcessorFunctionName", dict(event))

    def morning_digest(self) -> tuple[str, dict[str, Any]]:
        """The digest this run would send (composed here from the stack's ledger, as the
        deployed function composes it), then the deployed function's own run, which
        publishes it to the digest topic and marks the period told."""
        data = gather(self.ledger, now=time.time(), settle_seconds=0)
        zone = ZoneInfo("Europe/Paris")  # the template's TimeZone, which the demo keeps
        digest = compose(data, stack=self.options.stack_name, zone=zone, all_clear=True)
        text = digest.text if digest is not None else "(nothing to say)"
        subject = digest.subject if digest is not None else ""
        return f"Subject: {subject}\n\n{text}", self.invoke(
            "MorningDigestFunctionName", {"allClear": True}
        )

    # --- observing ---------------------------------------------------------------------------

    def queue_counts(self, output_key: str = "DocumentsQueueUrl") -> tuple[int, int, int]:
        """(visible, in flight, delayed) messages of a stack queue."""
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output_key],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return (
            int(attrs.get("ApproximateNumberOfMessages", 0)),
            int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        )

    def ledger_states(self) -> dict[int, DocumentState]:
        """Every document's current ledger state, by id (through the ByStatus index)."""
        ledger = self.ledger
        states: dict[int, DocumentState] = {}
        for status in Status:
            if status in (Status.DISCREPANCY, Status.NOVELTY):  # notes, not a document's state
                continue
            for state in ledger.queries.in_status(status):
                states[state.document_id] = state
        return states

    def progress(self) -> Progress:
        state = self.simulator.state()
        totals, documents = state["totals"], state["documents"]
        ledger = self.ledger
        held = {s.document_id for s in ledger.queries.in_status(Status.HELD)}
        failed = {s.document_id for s in ledger.queries.in_status(Status.FAILED)}
        booked = {d["id"] for d in documents if d["bookings"] >= 1}
        visible, in_flight, delayed = self.queue_counts()
        runs = self.poller_runs()
        dlq_visible, dlq_hidden, _ = self.queue_counts("DeadLetterQueueUrl")
        statuses = totals.get("byStatus", {})
        return Progress(
            elapsed=time.monotonic() - self.started_at,
            documents=len(documents),
            bookable=sum(d["category"] in BOOKABLE for d in documents),
            booked=len(booked),
            double_booked=int(totals.get("doubleBooked", 0)),
            held=len(held),
            failed=len(failed),
            dead_lettered=dlq_visible + dlq_hidden,
            visible=visible,
            in_flight=in_flight,
            delayed=delayed,
            requests=int(totals.get("requests", 0)),
            in_window=int(totals.get("inWindow", 0)),
            rate_limited=int(totals.get("rateLimited", 0)),
            throttled=int(statuses.get("429", 0)),
            faults=sum(totals.get("faultsInjected", {}).values()),
            settled=len(booked | held | failed),
            polls=len(runs),
            scheduled_polls=max(0, len(runs) - len(self.poll_reports)),
        )

    def poller_runs(self) -> list[dict[str, Any]]:
        """The report of every poller run so far, from its log group (scheduled runs too)."""
        group = f"/{self.options.stack_name}/inbox-poller"
        runs = []
        for line in log_messages(self.endpoint, group, self.options.region):
            if '"inbox polled"' not in line:
                continue
            with suppress(ValueError):
                report = json.loads(line).get("report")
                if isinstance(report, dict):
                    runs.append(report)
        return runs

    def wait_for_scheduled_poll(
        self,
        *,
        timeout: float,
        interval: float = 2.0,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> dict[str, Any] | None:
        """Wait for the schedule's first run (ministack fires ``rate(1 minute)`` a minute after
        the deploy, checking every 10 s); its report, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            progress = self.progress()
            if on_progress is not None:
                on_progress(progress)
            if progress.scheduled_polls:
                return self.poller_runs()[-1]
            if time.monotonic() > deadline:
                return None
            time.sleep(interval)

    def wait_until_drained(
        self,
        *,
        timeout: float,
        interval: float = 2.0,
        quiet_rounds: int = 3,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Watch until every document is settled and the queue is empty.

        Settled: booked (simulator), held or failed for good (ledger). If the queue stays empty
        for ``quiet_rounds`` looks while some documents are not settled, stop anyway: nothing is
        left that could settle them (``verify`` then reports them as lost). ``TimeoutError``
        after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        quiet = 0
        while True:
            progress = self.progress()
            if on_progress is not None:
                on_progress(progress)
            if progress.queue_empty:
                quiet += 1
                if progress.settled >= progress.documents or quiet >= quiet_rounds:
                    self.timings.setdefault("drain", time.monotonic() - started)
                    return progress
            else:
                quiet = 0
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not drained after {timeout:.0f}s: {progress.settled}/{progress.documents} "
                    f"settled, queue {progress.visible} visible / {progress.in_flight} in flight "
                    f"/ {progress.delayed} delayed"
                )
            time.sleep(interval)

    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the dead-letter queue, read and left in place (made visible again)."""
        sqs = self.client("sqs")
        queue = self.outputs["DeadLetterQueueUrl"]
        found: dict[str, dict[str, Any]] = {}
        for _ in range(200):
            messages = sqs.receive_message(
                QueueUrl=queue,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                VisibilityTimeout=60,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = message
        for message in found.values():
            with suppress(ClientError):
                sqs.change_message_visibility(
                    QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return [DeadLetter.from_message(m) for m in found.values()]

    def verify(self) -> Verdict:
        """The final check: simulator ground truth vs the ledger vs the dead-letter queue."""
        state = self.simulator.state()
        return verify(state, self.ledger_states(), self.dead_letters(), self.simulator.requests())


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = time.monotonic() - self.started
