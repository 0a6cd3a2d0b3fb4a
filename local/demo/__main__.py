"""``python -m local.demo``: the whole pipeline on one machine, with live progress and a check.

    python -m local.demo --documents 300 --window 6 --fault-rate 0.03 [--keep]

Starts the Lucca simulator and ministack, deploys the real ``template.yaml``, polls once at
once (the schedule keeps polling every minute), shows progress until the inbox is drained,
prints the per-category summary checked against the simulator's ground truth, the ledger and
the dead-letter queue (exit 1 when they disagree), the morning digest, and ``cleemy-booker
doctor``'s verdict on the deployed stack (exit 1 when something blocks; warnings do not), then
tears everything down - also on Ctrl-C or SIGTERM. ``--keep`` leaves it all running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

from cleemy_booker.ledger import Status
from local.demo.pipeline import LocalPipeline, PipelineOptions, Progress, SetupError, preflight
from local.demo.report import Verdict, format_progress, format_summary
from local.emulator import EmulatorError

#: Simulator rate limit (Lucca's) shown against the requests; the budget takes 40 of it.
RATE_LIMIT = 50
#: After the deploy, how long the first scheduled poll may take to show up (see NOTES.md).
SCHEDULE_GRACE = 85.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo", description=__doc__.split("\n")[0]
    )
    add = parser.add_argument
    add("--documents", type=int, default=300, help="documents in the simulated inbox")
    add("--window", type=int, default=6, help="Lucca's 60 s rate-limit window, compressed (s)")
    add("--fault-rate", type=float, default=0.03, help="share of Lucca requests faulted (0..1)")
    add("--seed", type=int, default=7, help="simulator seed (inbox and faults)")
    add("--keep", action="store_true", help="leave everything running until Ctrl-C")
    add("--timeout", type=float, default=600, help="give up draining after this many seconds")
    add("--stack-name", default="cleemy-booker-local")
    add("--interval", type=float, default=2.0, help="progress refresh (s)")
    add(
        "--no-wait-schedule",
        dest="wait_schedule",
        action="store_false",
        help="do not wait for the schedule's first poll once the inbox is drained",
    )
    return parser


class LiveProgress:
    """A redrawn block on a terminal; plain lines (when something changed, or every 10 s)
    otherwise, so logs and CI output stay readable."""

    def __init__(self, stream: TextIO, *, window: float) -> None:
        self.stream = stream
        self.window = window
        self.tty = stream.isatty()
        self._drawn = 0
        self._last_line = ""
        self._last_at = 0.0

    def update(self, p: Progress) -> None:
        if self.tty:
            self._redraw(self._block(p))
            return
        line = format_progress(p, rate_limit=RATE_LIMIT, window=self.window)
        key = line[6:]  # without the clock
        if key != self._last_line or time.monotonic() - self._last_at >= 10:
            print(line, file=self.stream, flush=True)
            self._last_line, self._last_at = key, time.monotonic()

    def finish(self) -> None:
        self._drawn = 0

    def _block(self, p: Progress) -> list[str]:
        minutes, seconds = divmod(int(p.elapsed), 60)
        return [
            f"{minutes:2d}:{seconds:02d}  booked {p.booked}/{p.bookable}   held {p.held}   "
            f"dead-lettered {p.dead_lettered}   settled {p.settled}/{p.documents}   "
            f"polls {p.polls} ({p.scheduled_polls} scheduled)",
            f"       queue: {p.visible} waiting, {p.in_flight} in flight, "
            f"{p.delayed} deferred (retrying later)",
            f"       Lucca: {p.requests} requests ({p.in_window} in the last {self.window:g} s, "
            f"limit {RATE_LIMIT} per {self.window:g} s), 429s {p.throttled} "
            f"({p.rate_limited} from the limit), faults injected {p.faults}",
        ]

    def _redraw(self, lines: list[str]) -> None:
        width = shutil.get_terminal_size((120, 20)).columns - 1
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\x1b[2K{line[:width]}\n" for line in lines)
        self.stream.write(out)
        self.stream.flush()
        self._drawn = len(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: everything is torn down


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Teardown runs to the end: a second Ctrl-C must not leave a stack half deleted."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(text: str) -> None:
    print(text, flush=True)


def _keep_instructions(pipeline: LocalPipeline) -> str:
    opts, sim = pipeline.options, pipeline.simulator
    endpoint = pipeline.endpoint
    env = (
        f"AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        f"AWS_DEFAULT_REGION={opts.region}"
    )
    outputs = "\n".join(f"    {k:<30} {v}" for k, v in sorted(pipeline.outputs.items()))
    return (
        f"\nStill running (--keep); Ctrl-C tears it all down.\n"
        f"  ministack (AWS)  {endpoint}   log {pipeline.emu.log_path if pipeline.emu else ''}\n"
        f"  Lucca simulator  {sim.url}   API key {sim.api_key}\n"
        f"                   ground truth: curl {sim.url}/_sim/state\n"
        f"  stack {opts.stack_name} outputs:\n{outputs}\n"
        f"  Try:\n"
        f"    export {env}\n"
        f"    .venvs/sam/bin/sam remote invoke --stack-name {opts.stack_name} "
        f"InboxPollerFunction --event '{{}}' --region {opts.region}\n"
        f'    .venv/bin/python -c "from local.emulator import log_messages; '
        f"print(*log_messages('{endpoint}', '/{opts.stack_name}/document-processor')[-20:], "
        f'sep=chr(10))"\n'
        f"    .venv/bin/python -c \"import boto3; print(boto3.client('sqs').receive_message("
        f"QueueUrl='{pipeline.outputs.get('DeadLetterQueueUrl', '')}', "
        f"MaxNumberOfMessages=10, MessageAttributeNames=['All'], VisibilityTimeout=0))\""
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        options = PipelineOptions(
            documents=args.documents,
            window_seconds=args.window,
            fault_rate=args.fault_rate,
            seed=args.seed,
            stack_name=args.stack_name,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        preflight(options.project_dir)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    pipeline = LocalPipeline(options, say=_say)
    live = LiveProgress(sys.stdout, window=options.window_seconds)
    verdict: Verdict | None = None
    rc = 1
    try:
        pipeline.start()
        report = pipeline.invoke_poller()
        _say(
            f"first poll   listed {report.get('listed')}, queued {report.get('enqueued')} "
            f"with {report.get('requests')} Lucca request(s) "
            f"in {pipeline.timings['first poll']:.1f}s; the schedule ({options.schedule}) "
            f"polls again from a minute after the deploy"
        )
        _say("")
        try:
            pipeline.wait_until_drained(
                timeout=args.timeout, interval=args.interval, on_progress=live.update
            )
        except TimeoutError as exc:
            _say(f"\nerror: {exc}")
        else:
            if args.wait_schedule:
                _await_schedule(pipeline, live, args)
            if confirmed := pipeline.settle(timeout=args.timeout):
                _say(
                    f"\nsettling poll: {len(confirmed)} booking(s) whose answer was lost, "
                    "recorded booked once the listing no longer showed them: "
                    + ", ".join(map(str, confirmed))
                )
        live.finish()
        verdict = pipeline.verify()
        _say("")
        _say(format_summary(verdict, elapsed=time.monotonic() - started))
        _say(_phases(pipeline))
        disagree = pipeline.ledger.queries.in_status(Status.DISCREPANCY)
        _say(
            "Reconciliation (the poller's listings against the ledger): "
            + (
                "the ledger and Lucca agree"
                if not disagree
                else f"{len(disagree)} disagreement(s): "
                + "; ".join(f"{s.document_id} {', '.join(s.reasons)}" for s in disagree)
            )
        )
        text, sent = pipeline.morning_digest()
        _say("\nThe morning digest this run would send (the deployed function sent it to the")
        _say(f"digest topic: {sent.get('bytes', 0):,} bytes):\n")
        _say("\n".join(f"  | {line}" for line in text.splitlines()))
        _say("")
        doctor = pipeline.doctor()
        _say(doctor.render_table())
        # Warnings are expected here (no alarm address, the dead letters the faults made);
        # only what blocks fails the demo, as it would stop a go-live.
        rc = 0 if verdict.ok and doctor.go else 1
        if args.keep:
            _say(_keep_instructions(pipeline))
            while pipeline.emu is not None and pipeline.emu.running():
                time.sleep(1)
            _say(f"ministack exited:\n{pipeline.emu.log_tail() if pipeline.emu else ''}")
    except KeyboardInterrupt:
        _say("\ninterrupted")
        rc = 130 if verdict is None else rc
    except EmulatorError as exc:  # a tool failed: its output tail says why
        print(f"error: {exc}", file=sys.stderr)
        rc = 1
    except Exception:  # anything else: say so, then still tear down
        traceback.print_exc()
        rc = 1
    finally:
        with _uninterrupted():
            _say("tearing down (stack, ministack, simulator) ...")
            pipeline.stop()
            _say(
                f"torn down in {pipeline.timings.get('teardown', 0):.1f}s; "
                f"{time.monotonic() - started:.1f}s in all"
            )
    return rc


def _await_schedule(pipeline: LocalPipeline, live: LiveProgress, args: argparse.Namespace) -> None:
    """Let the schedule fire once (if it has not yet) and show that it queues nothing again."""
    if not pipeline.progress().scheduled_polls:
        # ministack fires rate(1 minute) a minute after the deploy, checking every 10 s.
        due = pipeline.deployed_at + SCHEDULE_GRACE - time.monotonic()
        _say(f"waiting up to {max(due, 0):.0f}s for the schedule's first poll ...")
        pipeline.wait_for_scheduled_poll(
            timeout=max(due, 0), interval=args.interval, on_progress=live.update
        )
    runs = pipeline.poller_runs()
    scheduled = runs[len(pipeline.poll_reports) :]
    if not scheduled:
        _say(f"warning: the schedule ({pipeline.options.schedule}) has not fired yet")
        return
    last = scheduled[-1]
    _say(
        f"scheduled polls: {len(scheduled)}; the last listed {last.get('listed')} documents "
        f"still in the inbox and queued {last.get('enqueued')} (skipped: {last.get('skipped')})"
    )
    pipeline.wait_until_drained(timeout=args.timeout, interval=args.interval)


def _phases(pipeline: LocalPipeline) -> str:
    names = ("simulator", "ministack", "build", "deploy", "first poll", "drain")
    parts = [f"{n} {pipeline.timings[n]:.1f}s" for n in names if n in pipeline.timings]
    return "Phases: " + ", ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
