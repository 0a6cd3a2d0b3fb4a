"""The scenarios: what arrives in the inbox, what people and Lucca do, and for how long.

Every scenario runs the template's production constants (the 60 s window, 40 of its 50
requests for us, 15-minute listing freshness, the 1-hour claim, 60 s / 300 s timeouts, the
5-minute schedule, 360 s visibility, maxReceiveCount 10, one-day idempotency records) unless
its ``parameters`` say otherwise, and says so in its output.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from local.lucca_simulator.clock import format_ticks, now_ticks
from sim.digest import digest_text
from sim.figures import BOOKABLE, Truth, compute
from sim.world import World, WorldConfig

DAY = 86400.0
HOUR = 3600.0
#: Paris is UTC+1 in November; the scenarios' working day is 08:00-18:00 Paris.
PARIS = timedelta(hours=1)
WORKING_HOURS = (8, 18)
#: The example rules that update documents (a label from the number, a due date): the packaged
#: default books documents as they are, so a scenario that needs updates names these.
EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "config" / "rules.label-and-due-date.json"
HELD_CATEGORIES = ("incomplete", "amounts_mismatch")
WEEK_WEIGHTS = {
    "ready": 0.70,
    "credit_note": 0.05,
    "ready_needs_label": 0.10,
    "incomplete": 0.075,
    "amounts_mismatch": 0.075,
}


@dataclass
class Scenario:
    name: str
    config: WorldConfig
    setup: Callable[[World, dict[int, Truth]], None]
    horizon: float
    drain: bool = False
    listing_minimum: Callable[[World], int] = lambda world: 0
    working_hours: tuple[int, int] | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)
    #: Text told after the figures, made from the world at the end of the run (e.g. its digest).
    report: Callable[[World], str] | None = None


# --- running ---------------------------------------------------------------------------------


def run(scenario: Scenario, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    world = World(scenario.config)
    truth: dict[int, Truth] = {}
    scenario.setup(world, truth)
    pending = {i for i, t in truth.items() if t.category in BOOKABLE}
    drained = False
    started = time.perf_counter()

    checks = 0

    def check() -> None:
        """Every minute: drained yet? (cheap tests first: the pending scan is the costly one)."""
        nonlocal drained, checks
        checks += 1
        records = world.lucca.inbox.records
        visible, in_flight, delayed = world.sqs.counts(world.queue_url)
        idle = world.processor.running == 0 and world.poller.running == 0
        if scenario.drain and idle and visible + in_flight + delayed == 0:
            pending.difference_update([i for i in pending if not records[i].in_inbox])
            if not pending:
                drained = True
                return
        if progress is not None and checks % 15 == 0:
            hours = (world.sim.now - world.sim.start) / HOUR
            booked = sum(1 for r in records.values() if r.bookings)
            progress(
                f"  {scenario.name}: {hours:6.1f} h simulated, {booked:,} booked, "
                f"queue {visible}/{in_flight}/{delayed} (visible/in flight/delayed), "
                f"{time.perf_counter() - started:5.0f} s wall"
            )
        world.sim.call_later(60, check)

    world.start()
    with world.running() as sink:
        world.sim.call_later(60, check)
        world.sim.run(world.sim.start + scenario.horizon, stop=lambda: drained, every=1)
        wall = time.perf_counter() - started
        figures = compute(
            world,
            truth,
            sink,
            wall_seconds=wall,
            listing_minimum=scenario.listing_minimum(world),
            working_hours=scenario.working_hours,
            backlog=scenario.drain,
        )
    figures["drained"] = drained if scenario.drain else None
    result = {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": scenario.config.seed,
        "constants": constants(world),
        "notes": scenario.notes,
        "figures": figures,
    }
    if scenario.report is not None:
        result["report"] = scenario.report(world)
    return result


def deterministic_json(result: dict[str, Any]) -> str:
    """The result as JSON without its wall-clock figures: the same seed gives the same text."""
    figures = {k: v for k, v in result["figures"].items() if k != "wall"}
    return json.dumps({**result, "figures": figures}, indent=2, sort_keys=True) + "\n"


def constants(world: World) -> dict[str, Any]:
    """The time constants this run used (all from the template unless overridden)."""
    env_p, env_q = world.environments["poller"], world.environments["processor"]
    queue = world.template.queue("DocumentsQueue")
    return {
        "luccaWindowSeconds": world.lucca.config.window_seconds,
        "luccaRateLimit": world.lucca.config.rate_limit,
        "budget": f"{env_p['BUDGET_LIMIT']} per {env_p['BUDGET_WINDOW_SECONDS']} s",
        "schedule": world.template.schedule("InboxPollerFunction").expression,
        "pollerTimeout": world.poller.timeout,
        "processorTimeout": world.processor.timeout,
        "claimTtlSeconds": int(env_p["CLAIM_TTL_SECONDS"]),
        "listingFreshSeconds": int(env_q["LISTING_FRESH_SECONDS"]),
        "visibilityTimeout": queue.visibility_timeout,
        "maxReceiveCount": queue.max_receive_count,
        "batch": world.template.sqs_source("DocumentProcessorFunction").__dict__,
        "idempotencyExpirySeconds": 86400,
        "overrides": world.config.parameters,
        "compressed": [] if not world.config.parameters else sorted(world.config.parameters),
    }


# --- helpers shared by scenarios -------------------------------------------------------------


def _preloaded(world: World, truth: dict[int, Truth]) -> None:
    """Documents generated with the simulator at start: all bookable from the first instant,
    issued in the last two months (the generator keeps a calendar of its own)."""
    now = world.sim.now
    rng = random.Random(f"{world.config.seed}:dates")
    for doc_id, record in world.lucca.inbox.records.items():
        _dated_today(record.document, now, rng, within_days=60)
        _stamped(world, doc_id, age_seconds=rng.uniform(3600, 30 * 86400))
        truth[doc_id] = Truth(arrived=now, bookable_at=now, category=record.category)


def add_documents(world: World, truth: dict[int, Truth], count: int) -> list[int]:
    """``count`` generated documents, issued in the last days, bookable from now on."""
    rng = random.Random(f"{world.config.seed}:added:{len(truth)}")
    added = world.lucca.add_generated(count)
    for doc_id in added:
        record = world.lucca.inbox.records[doc_id]
        _dated_today(record.document, world.sim.now, rng)
        _stamped(world, doc_id, age_seconds=600)
        truth[doc_id] = Truth(world.sim.now, world.sim.now, record.category)
    return added


def _listing_pass(world: World) -> int:
    """One pass over the initial inbox: the physical minimum of listing requests."""
    page = int(world.template.parameters["PageSize"])
    return max(1, math.ceil(len(world.lucca.inbox.records) / page))


def _paris(world: World, day: int, hour: float) -> float:
    """Epoch seconds of ``hour`` (Paris) on day ``day`` (0 = the start's Monday)."""
    return world.sim.start + day * DAY + hour * HOUR


def _arrive(world: World, truth: dict[int, Truth], rng: random.Random, edit_share: float) -> None:
    """One document arrives with its OCR pending; the OCR finishes 1-5 minutes later."""
    (doc_id,) = world.lucca.add_generated(1)
    record = world.lucca.inbox.records[doc_id]
    final_status = record.document.get("ocrStatus")
    _stamped(world, doc_id, age_seconds=0)
    _dated_today(record.document, world.sim.now, rng)
    world.lucca.touch(doc_id, {"ocrStatus": "Pending"}, None)
    now = world.sim.now
    truth[doc_id] = Truth(arrived=now, bookable_at=None, category=record.category)

    def ocr_done() -> None:
        world.lucca.touch(doc_id, {"ocrStatus": final_status}, None)
        if record.category in BOOKABLE:
            truth[doc_id].bookable_at = world.sim.now

    world.sim.call_later(rng.uniform(60, 300), ocr_done)
    if rng.random() < edit_share:
        world.sim.call_later(rng.uniform(120, 1200), partial(_person_edits, world, truth, doc_id))


def _person_edits(world: World, truth: dict[int, Truth], doc_id: int) -> None:
    """A person types a comment of their own into the document, if it is still in the inbox:
    a PUT built from an older read would put the old comment back."""
    if world.lucca.inbox.records[doc_id].in_inbox:
        comment = f"checked by accounts payable at {utc(world.sim.now)}"
        world.lucca.touch(doc_id, {"comment": comment}, None)
        truth[doc_id].edits.append(world.sim.now)
        truth[doc_id].edited_comment = comment


def _edits_right_after_listing(
    world: World, truth: dict[int, Truth], rng: random.Random, share: float
) -> None:
    """A person edits ``share`` of the documents within 10 s of the first listing that carries
    them ready (OCR finished): while the pipeline holds that listing's copy (queued, deciding,
    updating, booking)."""

    def maybe_edit(doc_id: int) -> None:
        if rng.random() < share:
            world.sim.call_later(rng.uniform(0, 10), partial(_person_edits, world, truth, doc_id))

    _on_first_ready_listing(world, truth, maybe_edit)


def _on_first_ready_listing(
    world: World, truth: dict[int, Truth], react: Callable[[int], None]
) -> None:
    """Calls ``react`` with each of the scenario's documents, once: the first time a listing
    shows it ready (OCR finished)."""
    seen: set[int] = set()

    def listed(doc_id: int) -> None:
        record = world.lucca.inbox.records[doc_id]
        ready = record.document.get("ocrStatus") in ("Processed", "NotApplicable")
        if doc_id in seen or doc_id not in truth or not ready:
            return
        seen.add(doc_id)
        react(doc_id)

    _listen(world, listed)


def _listen(world: World, listener: Callable[[int], None]) -> None:
    """Adds ``listener`` to what the transport calls with each listed document id, after any
    listener already there (the transport has one callback: several people may react)."""
    before = world.transport.on_listed
    if before is None:
        world.transport.on_listed = listener
        return

    def both(doc_id: int) -> None:
        before(doc_id)
        listener(doc_id)

    world.transport.on_listed = both


def _people_move_after_listing(
    world: World, truth: dict[int, Truth], rng: random.Random, delete: float, book: float
) -> None:
    """A person deletes ``delete`` and books by hand ``book`` of the documents, 0-5 s after
    the first listing that shows them ready (OCR finished): while the pipeline holds that
    listing's copy, between our listing and our booking (a book follows its listing by 5 s at
    the median: a move later than that mostly finds the document booked already)."""

    def maybe_move(doc_id: int) -> None:
        draw = rng.random()
        move = "delete" if draw < delete else "book" if draw < delete + book else None
        if move is not None:
            world.sim.call_later(
                rng.uniform(0, 5), partial(_person_moves, world, truth, doc_id, move)
            )

    _on_first_ready_listing(world, truth, maybe_move)


def _person_moves(world: World, truth: dict[int, Truth], doc_id: int, move: str) -> None:
    """The move, if the document is still in the inbox (we may have booked it already)."""
    if world.lucca.person_moves(doc_id, move):
        truth[doc_id].person_move = move
    else:
        truth[doc_id].person_move_too_late = move


def _stamped(world: World, doc_id: int, age_seconds: float) -> None:
    """Lucca's timestamps of a document that arrived ``age_seconds`` ago. The generator keeps a
    calendar of its own (spread over months, or years ahead for a few documents at a time);
    left so, a later edit would move ``modifiedAt`` by one 100 ns tick only."""
    record = world.lucca.inbox.records[doc_id]
    ticks = now_ticks(world.sim) - int(age_seconds * 10_000_000)
    stamp = format_ticks(ticks)
    for target in (record.item, record.document):
        target["createdAt"] = target["modifiedAt"] = stamp
    record.modified_ticks = ticks


def _dated_today(
    document: dict[str, Any], now: float, rng: random.Random, within_days: int = 12
) -> None:
    """The generator dates documents on its own calendar; an invoice arriving today was issued
    a few days ago, and keeps its payment term (due date - invoice date)."""
    issued_text, due_text = document.get("documentDate"), document.get("dueDate")
    if not issued_text:
        return
    issued = (datetime.fromtimestamp(now, UTC) + PARIS).date() - timedelta(
        days=rng.randint(0, within_days)
    )
    document["documentDate"] = issued.isoformat()
    if due_text:
        term = date.fromisoformat(due_text) - date.fromisoformat(issued_text)
        document["dueDate"] = (issued + term).isoformat()


def completed(document: dict[str, Any]) -> dict[str, Any]:
    """What a person types to make a held document complete and consistent."""
    patch: dict[str, Any] = {}
    if not document.get("documentNumber"):
        patch["documentNumber"] = f"FIXED-{document['id']}"
    if not document.get("documentDate"):
        patch["documentDate"] = "2026-10-28"
    amounts = document.get("amountIncludingTaxes") or {}
    excluding = (amounts.get("excludingTaxes") or {}).get("value")
    currency = (amounts.get("excludingTaxes") or {}).get("currency") or "EUR"
    if excluding is None:
        patch["amountIncludingTaxes"] = {
            "excludingTaxes": {"value": 100.0, "currency": currency},
            "taxes": [{"rateTypeId": 1, "value": 20.0, "currency": currency}],
            "includingTaxes": {"value": 120.0, "currency": currency},
        }
    else:
        taxes = sum(Decimal(str(t["value"])) for t in amounts.get("taxes") or [])
        including = Decimal(str(excluding)) + taxes
        fixed = dict(amounts)
        fixed["includingTaxes"] = {"value": float(including), "currency": currency}
        patch["amountIncludingTaxes"] = fixed
    return patch


def _fix_held_next_morning(
    world: World, truth: dict[int, Truth], rng: random.Random, day: int
) -> None:
    """09:00-10:00: a person fixes half of what arrived yesterday and could not be booked."""
    yesterday = (_paris(world, day - 1, 0), _paris(world, day, 0))
    candidates = sorted(
        doc_id
        for doc_id, known in truth.items()
        if known.category in HELD_CATEGORIES
        and yesterday[0] <= known.arrived < yesterday[1]
        and world.lucca.inbox.records[doc_id].in_inbox
    )
    for doc_id in candidates[::2]:

        def fix(doc_id: int = doc_id) -> None:
            record = world.lucca.inbox.records[doc_id]
            if not record.in_inbox:
                return
            world.lucca.touch(doc_id, completed(record.document), "ready")
            truth[doc_id].category = "ready"
            truth[doc_id].bookable_at = truth[doc_id].fixed_at = world.sim.now

        world.sim.call_at(_paris(world, day, 9) + rng.uniform(0, HOUR), fix)


def _business_week(
    world: World,
    truth: dict[int, Truth],
    per_day: int,
    seed: int,
    edit_share: float,
    edit_after_listing_share: float = 0.0,
) -> None:
    rng = random.Random(f"{seed}:week")
    if edit_after_listing_share:
        _edits_right_after_listing(
            world, truth, random.Random(f"{seed}:edits"), edit_after_listing_share
        )
    for day in range(5):
        start, end = _paris(world, day, WORKING_HOURS[0]), _paris(world, day, WORKING_HOURS[1])
        for at in sorted(rng.uniform(start, end) for _ in range(per_day)):
            world.sim.call_at(at, partial(_arrive, world, truth, rng, edit_share))
        if day >= 1:
            world.sim.call_at(
                _paris(world, day, 8.99), partial(_fix_held_next_morning, world, truth, rng, day)
            )


# --- the scenarios ---------------------------------------------------------------------------


def backlog(size: int, *, updates: bool, seed: int = 7) -> Scenario:
    category = "ready_needs_label" if updates else "ready"
    return Scenario(
        name=f"backlog-{size}-{'updates' if updates else 'no-updates'}",
        description=(
            f"{size:,} documents already in the inbox, every one "
            + (
                f"needing an update by the rules of config/{EXAMPLE_RULES.name}"
                if updates
                else "ready to book as is"
            )
        ),
        config=WorldConfig(
            seed=seed,
            lucca={"invoices": size, "category_weights": {category: 1.0}},
            environment={"RULES_SOURCE": str(EXAMPLE_RULES)} if updates else {},
        ),
        setup=_preloaded,
        horizon=max(6 * HOUR, size * (2 if updates else 1) * 1.5 * 3 + 2 * HOUR),
        drain=True,
        listing_minimum=_listing_pass,
    )


def week(
    per_day: int = 500,
    *,
    seed: int = 7,
    lucca: dict[str, Any] | None = None,
    rules: Path | None = None,
    edit_share: float = 0.1,
    edit_after_listing_share: float = 0.0,
) -> Scenario:
    """The default configuration books documents as they are; ``rules`` (a rules file) makes
    the 10 % that lack a label or a due date updated, so PUTs meet the person's edits."""
    config = WorldConfig(
        seed=seed,
        lucca={"category_weights": WEEK_WEIGHTS, **(lucca or {})},
        environment={"RULES_SOURCE": str(rules)} if rules else {},
    )
    updates = f"10 % updated by the rules of {rules.name}" if rules else "no rules (the default)"
    return Scenario(
        name="week" if rules is None else f"week-{rules.stem}",
        description=(
            f"five working days, {per_day} invoices a day between 08:00 and 18:00 (Paris), "
            f"OCR 1-5 min after arrival, {updates}, 15 % held; the next morning a "
            f"person fixes half of yesterday's held ones; {edit_share:.0%} edited by a person "
            "2-20 min after arrival; Monday 00:00 to Monday 00:00"
        ),
        config=config,
        setup=lambda world, truth: _business_week(
            world, truth, per_day, seed, edit_share, edit_after_listing_share
        ),
        horizon=7 * DAY,
        working_hours=WORKING_HOURS,
    )


def neighbour(size: int = 2000, *, seed: int = 7) -> Scenario:
    def setup(world: World, truth: dict[int, Truth]) -> None:
        _preloaded(world, truth)
        world.lucca.configure({"external_requests_per_window": 20})
        world.sim.call_at(
            world.sim.start + HOUR,
            lambda: world.lucca.configure({"external_requests_per_window": 0}),
        )

    return Scenario(
        name="neighbour",
        description=(
            f"{size:,} ready documents; another integration spends 20 of the tenant's 50 "
            "requests a minute (40 %) for the first hour"
        ),
        config=WorldConfig(seed=seed, lucca={"invoices": size, "category_weights": {"ready": 1}}),
        setup=setup,
        horizon=12 * HOUR,
        drain=True,
        listing_minimum=_listing_pass,
    )


def outage(per_day: int = 500, *, seed: int = 7) -> Scenario:
    scenario = week(per_day, seed=seed)

    def setup(world: World, truth: dict[int, Truth]) -> None:
        _business_week(world, truth, per_day, seed, 0.1)
        down, up = _paris(world, 1, 10), _paris(world, 1, 10.5)
        world.sim.call_at(
            down,
            lambda: world.lucca.configure({"fault_rate": 1.0, "fault_kinds": {"503": 1.0}}),
        )
        world.sim.call_at(up, lambda: world.lucca.configure({"fault_rate": 0.0}))

        def rotate() -> None:
            # The new key is live in Lucca and in Secrets Manager at the same instant.
            world.lucca.configure({"api_key": "sim-api-key-rotated"})
            world.secrets.put_secret_value(world.secret_name, "sim-api-key-rotated")

        world.sim.call_at(_paris(world, 2, 14), rotate)

    scenario.name = "outage"
    scenario.description = (
        scenario.description + "; Lucca answers 503 on Tuesday 10:00-10:30; "
        "the API key is rotated on Wednesday at 14:00"
    )
    scenario.setup = setup
    return scenario


def faults(per_day: int = 500, *, seed: int = 7, crash_rate: float = 0.01) -> Scenario:
    scenario = week(per_day, seed=seed, lucca={"fault_rate": 0.05})
    scenario.name = "faults"
    scenario.config.crash_rate = crash_rate
    scenario.description = (
        scenario.description + "; 5 % of Lucca requests fail (408, 429, 500, 503, dropped or "
        "slow answers, half of the lost PUT/book answers after the change was applied); "
        f"the processor crashes at {crash_rate:.0%} of its steps (before and after each PUT and "
        "book, before each ledger write)"
    )
    return scenario


def people(
    per_day: int = 500, *, seed: int = 7, delete: float = 0.02, book: float = 0.02
) -> Scenario:
    """The business week, and a person who deletes or books by hand some documents right
    after we listed them: Lucca then answers 404 (or what it answers for a booked document)."""
    scenario = week(per_day, seed=seed)

    def setup(world: World, truth: dict[int, Truth]) -> None:
        _business_week(world, truth, per_day, seed, 0.1)
        rng = random.Random(f"{seed}:people")
        _people_move_after_listing(world, truth, rng, delete, book)

    scenario.name = "people"
    scenario.description = (
        scenario.description + f"; a person deletes {delete:.0%} and books by hand {book:.0%} "
        "of the documents 0-5 s after the first listing that shows them ready"
    )
    scenario.setup = setup
    scenario.report = digest_text
    return scenario


#: Why a standing document stays in the inbox: each a third of them.
STANDING_CAUSES = ("ocr_failed", "number_missing", "amounts_mismatch")


def _standing(world: World, truth: dict[int, Truth], count: int) -> None:
    """``count`` documents in the inbox from the start, weeks old, that nobody will book or fix:
    the OCR failed, the invoice number is missing, or the amounts do not add up (a third each).
    Each is first made complete and consistent, then given its one fault."""
    rng = random.Random(f"{world.config.seed}:standing")
    now = world.sim.now
    for n, doc_id in enumerate(world.lucca.add_generated(count)):
        record = world.lucca.inbox.records[doc_id]
        document = record.document
        document.update(completed(document))
        cause = STANDING_CAUSES[n % len(STANDING_CAUSES)]
        if cause == "ocr_failed":
            document["ocrStatus"] = "Failed"
            record.category = "ocr_failed"
        elif cause == "number_missing":
            document["documentNumber"] = None
            record.category = "incomplete"
        else:
            including = document["amountIncludingTaxes"]["includingTaxes"]
            including["value"] = float(Decimal(str(including["value"])) + Decimal("12.34"))
            record.category = "amounts_mismatch"
        _dated_today(document, now, rng, within_days=60)
        age = rng.uniform(86400, 60 * 86400)
        _stamped(world, doc_id, age_seconds=age)
        # Arrived before the week: no morning's fixing reaches them.
        truth[doc_id] = Truth(arrived=now - age, bookable_at=None, category=record.category)


def standing(per_day: int = 500, *, seed: int = 7, count: int = 3000) -> Scenario:
    """The business week behind ``count`` documents nobody books, with Lucca's faults: what a
    standing inbox costs every poll, and how uncertain bookings get settled."""
    scenario = week(per_day, seed=seed, lucca={"fault_rate": 0.05})
    week_setup = scenario.setup

    def setup(world: World, truth: dict[int, Truth]) -> None:
        _standing(world, truth, count)
        week_setup(world, truth)
        # Lambda replaces execution environments now and then, warm or not (AWS does not say
        # when): once a day, the poller's next run starts cold.
        for day in range(7):
            world.sim.call_at(_paris(world, day, 13), world.poller.retire_instances)

    scenario.name = "standing"
    scenario.setup = setup
    scenario.description = (
        f"{count:,} documents standing in the inbox from the start, never booked (a third each: "
        "OCR failed, invoice number missing, amounts that do not add up), in front of "
        + scenario.description
        + "; 5 % of Lucca requests fail (408, 429, 500, 503, dropped or slow answers, half of "
        "the lost PUT/book answers after the change was applied); no processor crashes; the "
        "poller's warm instance is replaced every day at 13:00"
    )
    return scenario


SCENARIOS: dict[str, Callable[..., Scenario | list[Scenario]]] = {
    "backlog": lambda sizes=(1000, 10000, 100000), seed=7: [
        backlog(size, updates=updates, seed=seed) for size in sizes for updates in (False, True)
    ],
    "week": lambda seed=7, per_day=500, rules=None: [week(per_day, seed=seed, rules=rules)],
    "neighbour": lambda seed=7: [neighbour(seed=seed)],
    "outage": lambda seed=7, per_day=500: [outage(per_day, seed=seed)],
    "faults": lambda seed=7, per_day=500: [faults(per_day, seed=seed)],
    "people": lambda seed=7, per_day=500: [people(per_day, seed=seed)],
    "standing": lambda seed=7, per_day=500: [standing(per_day, seed=seed)],
}


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
