"""A year of ledger: the ledger table after 52 business weeks, and what reading it costs.

``python -m sim.year`` (``make year``) writes a year of documents into the template's ledger
table through the ledger's own stores (``Ledger``: claims, decisions, number claims, markers),
on a clock that walks through the year at the ``week`` scenario's pace and mix (``YearShape``),
then runs what people and the functions read from it, twice: in the simulation's DynamoDB
(read units from its usage counters, as on-demand DynamoDB bills them) and in moto (wall time
and requests on this machine; moto bills nothing, so the items and bytes it returned stand in).
It prints a table and writes ``sim/results/year.json``.

What is measured, each as the code that serves it runs it:

* ``audit show`` (``audit.describe_document``): a typical booked document, and the document
  with the longest trail (a hold looked at again every ``HeldRecheckSeconds`` until fixed);
* ``audit held`` (``audit.held_rows`` written as CSV): every held document;
* ``export`` of the last whole month (``audit.booked_rows`` written as CSV);
* the digest's gathering (``digest.gather``) on a Friday morning, covering Thursday;
* one poll's reconciliation reads (``uncertain_bookings``, the last complete listing) and one
  ``DocumentsAwaitingReview`` count (``count_in_status(HELD)``).

And the storage it costs: the bytes of the table and of its status index (each item's size
plus the 100 bytes of overhead DynamoDB adds per item, in the table and in the index), at the
standard table class's price (``sim/prices.json``).

Figures and ratios, never pass/fail on time: the targets (``TARGETS``) are stated next to them,
judged on the read units and on the time the command would take against DynamoDB
(``dynamodb_seconds``: the requests' round trips added to the code's own time here). moto's
wall time is shown as measured; its query is a pass over the whole table, so it says how
moto scales, not DynamoDB.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cleemy_booker.clock import utc_iso
from cleemy_booker.digest import gather
from cleemy_booker.ledger import DocumentSummary, Ledger, Status
from cleemy_booker.ledger.table import RETENTION_DAYS
from cleemy_booker.novelty import Novelty
from cleemy_booker.poller import DISCREPANCY_TTL_SECONDS
from cleemy_booker_tools import audit
from cleemy_booker_tools.tables import BOOKED_COLUMNS, HELD_COLUMNS, write_csv
from sim.aws.dynamodb import InMemoryDynamoDB
from sim.aws.expressions import item_size
from sim.template import Template

RESULTS = Path(__file__).resolve().parent / "results"
PRICES = Path(__file__).with_name("prices.json")
DAY = 86400.0
HOUR = 3600.0
#: Paris in winter; the working day is 08:00-18:00 Paris, as in the scenarios.
PARIS = timedelta(hours=1)
#: A Monday, 00:00 UTC: the year's first week starts here.
YEAR_START = datetime(2027, 1, 4, tzinfo=UTC)
#: DynamoDB stores this much per item on top of its attributes, in the table and in each index.
ITEM_OVERHEAD_BYTES = 100
GIB = 1024**3
SECONDS_PER_MONTH = 365.25 / 12 * 86400
#: Person-facing commands and the digest: what they must stay under.
TARGETS: dict[str, dict[str, float]] = {
    "person": {"readUnits": 1000, "wallSeconds": 5.0},
    "digest": {"readUnits": 5000},
}
#: One DynamoDB request from a person's machine in France to eu-west-3 and back (a Lambda
#: function in the region waits a few ms): what each request adds to a command's answer.
ROUND_TRIP_SECONDS = 0.02
#: DynamoDB answers a Query in pages of at most 1 MB.
PAGE_BYTES = 1_000_000
#: moto answers a Query by a pass over every item of the table (about 25 ms a thousand items
#: here): a command making more requests than this is not run in moto (a month's export, one
#: query a document, would take hours); its requests are the simulation's, whose query code
#: is the same calls.
MOTO_MAX_REQUESTS = 20
#: The poller's listing and lease names as the deployed poller writes them (one each).
LISTING_NAME = "inbox#all"
POLLER_LEASE = "poller"
#: Hold reasons as the gate words them (their length is what the state and events carry).
HOLD_REASONS = {
    "incomplete": (
        "missing_fields: the invoice lacks fields needed to book it: due date, supplier "
        "(fill them in Lucca; the document is looked at again once changed)"
    ),
    "amounts_mismatch": (
        "amounts_mismatch: excluding 402.55 + taxes 22.14 = 424.69, but including taxes is "
        "417.70 (off by 6.99 EUR)"
    ),
    "ocr": (
        "ocr_not_finished: reading the document (OCR) is still Pending: wait until it has finished"
    ),
}
OWNERS = ("Nicolas Lefèvre", "Camille Martin", "Léa Bernard", "Hugo Dubois", "Chloé Moreau")


@dataclass(frozen=True)
class YearShape:
    """The business week of the ``week`` scenario (``make sim SCENARIO=week``), repeated.

    From its run (seed 7, 2,500 documents): 85 % bookable as they are, 15 % held (incomplete,
    amounts that disagree), half of yesterday's held ones fixed the next morning 09:00-10:00.
    Those reasons are in the document: a hold is looked at again when it changes, not with time
    (``LIFTED_BY_TIME``); a document Lucca is still reading is left unclaimed by the poller
    (``OCR_WAIT_SECONDS``), so ``ocr_hold_share`` is 0 (0.28 before: one hold each). Its
    ledger (measured at 200 a day: 4.0 events and 0.82 number claims a document;
    states 343 bytes, events 174-325) gives the items written here. Assumed, as a week does
    not show them: the held documents not fixed the next morning are fixed within
    ``late_fix_days``; a person's edits (10 %) write nothing to the ledger (an edit before our
    first look is the version we read; one after booking is not ours to see).
    """

    weeks: int = 52
    per_day: int = 500
    held_share: float = 0.15
    fixed_next_morning: float = 0.5
    late_fix_days: tuple[float, float] = (2.0, 14.0)
    #: Listed before OCR finished: held once ``ocr_not_finished``, booked at the next look.
    ocr_hold_share: float = 0.0
    #: Booked documents whose number is claimed in a scope (an owner or a purchase).
    numbered_share: float = 0.9
    #: Documents the reconciliation finds the ledger and Lucca disagree about, a week.
    discrepancies_per_week: int = 1
    novelties: int = 6
    retention_days: int = RETENTION_DAYS
    discrepancy_ttl_seconds: int = DISCREPANCY_TTL_SECONDS
    seed: int = 7

    @property
    def documents(self) -> int:
        return self.weeks * 5 * self.per_day


class WalkingClock:
    """The year's clock: each write happens at ``now``, set by the walk."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class YearBuild:
    start: float
    #: Friday 07:00 Paris of the last week: nothing after it is written; the reads run then.
    end: float
    documents: int = 0
    writes: Counter[str] = field(default_factory=Counter)
    events_per_document: Counter[int] = field(default_factory=Counter)
    longest_trail: int = 0
    #: The document with the longest trail, and a document booked at its first look.
    longest_id: int = 0
    typical_booked: int = 0


class _Walk:
    """One document's life through the ledger's stores, on the year's clock."""

    def __init__(self, ledger: Ledger, clock: WalkingClock, shape: YearShape, build: YearBuild):
        self.ledger = ledger
        self.clock = clock
        self.shape = shape
        self.build = build
        self.rng = random.Random(shape.seed)
        self.config = "59c9191abbca9191"

    def document(self, document_id: int, arrival: float) -> int:
        """Walk the document from its arrival to booked (or to the end); its event count."""
        rng, build = self.rng, self.build
        summary = self._summary(document_id, arrival)
        version = 0
        events = 0
        at = arrival + rng.uniform(60, 600)
        if rng.random() < self.shape.ocr_hold_share:
            if not self._at(at - 300):
                return events
            self._claim(document_id, version)
            self._hold(document_id, version, HOLD_REASONS["ocr"], summary)
            events += 1
            version += 1
        held = rng.random() < self.shape.held_share
        if not self._at(at):
            return events
        if held:
            fixed = self._fix_time(arrival)
            self._claim(document_id, version)
            reason = HOLD_REASONS[rng.choice(("incomplete", "amounts_mismatch"))]
            self._hold(document_id, version, reason, summary)
            events += 1
            # Looked at again when a person fixes it (a new version), not before: nothing in
            # a missing number or amounts that disagree changes with time.
            version += 1
            if not self._at(fixed + rng.uniform(60, 300)):
                return events
            self._claim(document_id, version)
        else:
            self._claim(document_id, version)
        self._book(document_id, version, summary)
        events += 2
        if not held and not build.typical_booked:
            build.typical_booked = document_id
        return events

    def _at(self, when: float) -> bool:
        """Move the clock; False past the year's end (nothing more is written)."""
        if when > self.build.end:
            return False
        self.clock.now = when
        return True

    def _fix_time(self, arrival: float) -> float:
        day = _day_start(arrival) + DAY
        if _weekday(day) >= 5:
            day += (7 - _weekday(day)) * DAY
        if self.rng.random() < self.shape.fixed_next_morning:
            return day + (9 * HOUR - PARIS.total_seconds()) + self.rng.uniform(0, HOUR)
        late = self.rng.uniform(*self.shape.late_fix_days) * DAY
        return arrival + late

    def _modified(self, document_id: int, version: int) -> str:
        return f"{utc_iso(self.clock.now)}#{document_id}.{version}"

    def _claim(self, document_id: int, version: int) -> None:
        claim = self.ledger.states.claim_for_queue(
            document_id,
            f"v{version}",
            now=self.clock.now,
            ttl_seconds=3600,
            config=self.config,
        )
        self.build.writes["claim" if claim.claimed else "claim refused"] += 1
        self.clock.now += self.rng.uniform(5, 60)  # queued, then taken by the processor

    def _hold(self, document_id: int, version: int, reason: str, summary: DocumentSummary) -> None:
        self.ledger.states.record(
            document_id,
            Status.HELD,
            "held",
            modified_at=f"v{version}",
            reasons=[reason],
            detail={"rulesApplied": [], "diff": []},
            recheck_at=None,  # in the document: a change re-opens it, time does not
            config=self.config,
            summary=summary,
        )
        self.build.writes["held"] += 1

    def _book(self, document_id: int, version: int, summary: DocumentSummary) -> None:
        ledger = self.ledger
        ledger.states.record(
            document_id, Status.BOOKING, "booking", modified_at=f"v{version}", summary=summary
        )
        if self.rng.random() < self.shape.numbered_share:
            scope = f"owner:{summary.owner_id}"
            ledger.numbers.claim_number(scope, summary.document_number or "", document_id)
            self.build.writes["number"] += 1
        self.clock.now += self.rng.uniform(0.1, 1.0)
        ledger.states.record(
            document_id,
            Status.BOOKED,
            "booked",
            modified_at=f"v{version}",
            detail={
                "rulesApplied": [],
                "requestIds": [str(uuid.UUID(int=self.rng.getrandbits(128), version=4))],
            },
            summary=summary,
        )
        self.build.writes["booked"] += 1

    def _summary(self, document_id: int, arrival: float) -> DocumentSummary:
        rng = self.rng
        excluding = Decimal(rng.randrange(2000, 500000)) / 100
        taxes = (excluding * Decimal("0.055")).quantize(Decimal("0.01"))
        owner = rng.randrange(len(OWNERS))
        issued = datetime.fromtimestamp(arrival - rng.uniform(1, 20) * DAY, UTC).date()
        return DocumentSummary(
            document_number=f"F-{issued.year}-{document_id:06d}",
            type="Invoice" if rng.random() < 0.95 else "CreditNote",
            owner_id=440 + owner,
            owner_name=OWNERS[owner] if rng.random() < 0.5 else None,
            excluding_taxes=excluding,
            taxes=taxes,
            including_taxes=excluding + taxes,
            currency="EUR",
            document_date=issued.isoformat(),
        )


def _day_start(epoch: float) -> float:
    return math.floor(epoch / DAY) * DAY


def _weekday(epoch: float) -> int:
    return datetime.fromtimestamp(epoch, UTC).weekday()


def arrivals(shape: YearShape, rng: random.Random) -> Iterator[float]:
    """Each document's arrival: ``per_day`` a working day, 08:00-18:00 Paris, in time order."""
    start = YEAR_START.timestamp()
    opening = 8 * HOUR - PARIS.total_seconds()
    for week in range(shape.weeks):
        for weekday in range(5):
            day = start + week * 7 * DAY + weekday * DAY
            yield from sorted(
                day + opening + rng.uniform(0, 10 * HOUR) for _ in range(shape.per_day)
            )


def year_end(shape: YearShape) -> float:
    """Friday 07:00 UTC (08:00 Paris: the digest's hour) of the last week."""
    last_monday = YEAR_START.timestamp() + (shape.weeks - 1) * 7 * DAY
    return last_monday + 4 * DAY + 8 * HOUR - PARIS.total_seconds()


def build_year(ledger: Ledger, clock: WalkingClock, shape: YearShape) -> YearBuild:
    """Write the year through the ledger's stores; what was written."""
    build = YearBuild(start=YEAR_START.timestamp(), end=year_end(shape))
    walk = _Walk(ledger, clock, shape, build)
    first_id = 100_000
    for n, arrival in enumerate(arrivals(shape, random.Random(f"{shape.seed}:arrivals"))):
        if arrival > build.end:
            break
        events = walk.document(first_id + n, arrival)
        build.documents += 1
        build.events_per_document[events] += 1
        if events > build.longest_trail:
            build.longest_trail, build.longest_id = events, first_id + n
    _markers(ledger, clock, shape, build, first_id)
    return build


def _markers(
    ledger: Ledger, clock: WalkingClock, shape: YearShape, build: YearBuild, first_id: int
) -> None:
    """What else the ledger holds: discrepancies (a few a week, gone by TTL), novelties (the
    first week's), the digest's and the listing's marks, the poller's lease."""
    rng = random.Random(f"{shape.seed}:markers")
    for week in range(shape.weeks):
        for _ in range(shape.discrepancies_per_week):
            clock.now = build.start + week * 7 * DAY + rng.uniform(0, 5 * DAY)
            if clock.now > build.end:
                continue
            document = first_id + rng.randrange(build.documents)
            ledger.markers.record_discrepancy(
                document,
                f"booked_still_in_inbox: booked by the booker at {utc_iso(clock.now - DAY)}, "
                "still in the inbox in Lucca",
                ttl_seconds=shape.discrepancy_ttl_seconds,
            )
            build.writes["discrepancy"] += 1
    for n in range(shape.novelties):
        clock.now = build.start + DAY + n * HOUR
        ledger.markers.record_novelty(
            Novelty(
                kind="field",
                key=f"newField{n}",
                example='{"confidence": 0.73, "step": "toBook"}',
                document_id=first_id + n,
            )
        )
        build.writes["novelty"] += 1
    # The digest runs Monday to Friday at 08:00 Paris; the last one before the end: Thursday.
    clock.now = build.end - DAY
    ledger.markers.mark_digest_published("daily", utc_iso(clock.now - 300))
    clock.now = build.end - 300
    ledger.markers.mark_listing_complete(LISTING_NAME, clock.now)
    ledger.leases.acquire_lease(POLLER_LEASE, "instance", clock.now + 300)
    clock.now = build.end


# --- what the ledger holds -------------------------------------------------------------------


def item_kind(item: dict[str, Any]) -> str:
    """``doc#/state``, ``doc#/event``, ``number#``, ... by the item's key."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    prefix = pk.split("#", 1)[0]
    if prefix == "doc":
        return "doc#/event" if sk.startswith("event#") else "doc#/state"
    return f"{prefix}#"


def storage(items: list[dict[str, Any]], prices: dict[str, Any]) -> dict[str, Any]:
    """Item counts and bytes per kind, the table's and the status index's bytes, $/month."""
    kinds: dict[str, dict[str, int]] = {}
    table_bytes = index_bytes = 0
    statuses: Counter[str] = Counter()
    events: dict[str, dict[str, int]] = {}
    for item in items:
        size = item_size(item)
        if "kind" in item and item["sk"]["S"].startswith("event#"):
            event = events.setdefault(item["kind"]["S"], {"items": 0, "bytes": 0})
            event["items"] += 1
            event["bytes"] += size
        kind = kinds.setdefault(item_kind(item), {"items": 0, "bytes": 0, "withTtl": 0})
        kind["items"] += 1
        kind["bytes"] += size
        kind["withTtl"] += "expiresAt" in item
        table_bytes += size + ITEM_OVERHEAD_BYTES
        if "statusKey" in item and "updatedAt" in item:
            index_bytes += size + ITEM_OVERHEAD_BYTES
            statuses[item["statusKey"]["S"]] += 1
    total = table_bytes + index_bytes
    price = prices["dynamodb"]["storageGbMonth"]
    return {
        "items": len(items),
        "byKind": dict(sorted(kinds.items())),
        "byStatus": dict(sorted(statuses.items())),
        "eventsByKind": dict(sorted(events.items())),
        "tableBytes": table_bytes,
        "indexBytes": index_bytes,
        "totalBytes": total,
        "dollarsPerMonth": round(total / GIB * price, 4),
        "pricePerGbMonth": price,
    }


# --- the reads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What one command read: units (simulation only), requests, items and bytes returned,
    wall time on this machine."""

    units: float | None
    requests: int
    items: int
    bytes: int
    wall_seconds: float
    answer: str = ""


class Counted:
    """Requests made through a client, and the items and bytes they returned."""

    def __init__(self) -> None:
        self.requests = 0
        self.items = 0
        self.bytes = 0

    def note(self, response: dict[str, Any]) -> None:
        self.requests += 1
        found = response.get("Items", [])
        if "Item" in response:
            found = [response["Item"]]
        self.items += len(found)
        self.bytes += sum(item_size(item) for item in found)


class CountingClient:
    """A DynamoDB client (the simulation's) whose answers are counted."""

    def __init__(self, client: Any, counted: Counted) -> None:
        self._client = client
        self._counted = counted

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name == "get_paginator":
            return lambda operation: _CountingPaginator(target(operation), self._counted)
        if not callable(target) or name.startswith("_"):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            response = target(*args, **kwargs)
            self._counted.note(response)
            return response

        return call


class _CountingPaginator:
    def __init__(self, paginator: Any, counted: Counted) -> None:
        self._paginator = paginator
        self._counted = counted

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self._paginator.paginate(**kwargs):
            self._counted.note(page)
            yield page


#: Each measured command: name, who it answers, and the call (over a ledger) that serves it.
Command = tuple[str, str, Callable[[Ledger], str]]


def commands(build: YearBuild) -> list[Command]:
    end = build.end
    month_end = datetime.fromtimestamp(end, UTC).replace(day=1, hour=0, minute=0, second=0)
    month_start = (month_end - timedelta(days=1)).replace(day=1)
    since, until = utc_iso(month_start.timestamp()), utc_iso(month_end.timestamp())

    def export(ledger: Ledger) -> str:
        rows = audit.booked_rows(ledger, since, until)
        data = write_csv(rows, BOOKED_COLUMNS)
        return f"{len(rows)} rows, {len(data):,} bytes of CSV ({month_start:%B %Y})"

    def held(ledger: Ledger) -> str:
        rows = audit.held_rows(ledger)
        data = write_csv(rows, HELD_COLUMNS)
        return f"{len(rows)} rows, {len(data):,} bytes of CSV"

    def show(document_id: int) -> Callable[[Ledger], str]:
        def run(ledger: Ledger) -> str:
            text = audit.describe_document(ledger, document_id)
            return f"{text.count(chr(10) + '  - ')} events, {len(text):,} characters"

        return run

    def digest(ledger: Ledger) -> str:
        data = gather(ledger, now=end)
        return (
            f"{len(data.booked)} booked, {len(data.held)} held, "
            f"{len(data.discrepancies)} discrepancies"
        )

    def reconciliation(ledger: Ledger) -> str:
        uncertain = ledger.queries.uncertain_bookings()
        ledger.markers.last_complete_listing(LISTING_NAME)
        return f"{len(uncertain)} uncertain bookings"

    def count_held(ledger: Ledger) -> str:
        return f"{ledger.queries.count_in_status(Status.HELD)} held"

    return [
        ("audit show (a booked document)", "person", show(build.typical_booked)),
        ("audit show (the longest trail)", "person", show(build.longest_id)),
        ("audit held", "person", held),
        ("export (a month)", "person", export),
        ("digest gathering (a weekday)", "digest", digest),
        ("reconciliation (one poll)", "poller", reconciliation),
        ("held count (one gauge)", "poller", count_held),
    ]


def measure_simulation(
    ddb: InMemoryDynamoDB, table: str, shape: YearShape, command: Callable[[Ledger], str]
) -> Reading:
    counted = Counted()
    client = CountingClient(ddb, counted)
    ledger = Ledger(client, table, retention_days=shape.retention_days)  # type: ignore[arg-type]
    units_before = ddb.usage.read_units[table]
    started = time.perf_counter()
    answer = command(ledger)
    wall = time.perf_counter() - started
    return Reading(
        units=ddb.usage.read_units[table] - units_before,
        requests=counted.requests,
        items=counted.items,
        bytes=counted.bytes,
        wall_seconds=round(wall, 4),
        answer=answer,
    )


@contextmanager
def moto_table(items: list[dict[str, Any]], template: Template) -> Iterator[tuple[Any, str]]:
    """The template's ledger table in moto, holding ``items`` (put through moto's backend: the
    loading is not what is measured)."""
    import boto3
    from moto import mock_aws
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    region = "eu-west-3"
    with mock_aws():
        client = boto3.client("dynamodb", region_name=region)
        table = template.table("LedgerTable").create(client, "ledger")
        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]
        for item in items:
            backend.put_item(table, item)
        yield client, table


def measure_moto(client: Any, table: str, command: Callable[[Ledger], str]) -> Reading:
    counted = Counted()

    def after(parsed: dict[str, Any], **_: Any) -> None:
        counted.note(parsed)

    client.meta.events.register("after-call.dynamodb", after)
    try:
        ledger = Ledger(client, table)
        started = time.perf_counter()
        answer = command(ledger)
        wall = time.perf_counter() - started
    finally:
        client.meta.events.unregister("after-call.dynamodb", after)
    return Reading(
        units=None,
        requests=counted.requests,
        items=counted.items,
        bytes=counted.bytes,
        wall_seconds=round(wall, 4),
        answer=answer,
    )


# --- the run ---------------------------------------------------------------------------------


def run(
    shape: YearShape, *, moto: bool = True, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    template = Template()
    clock = WalkingClock(YEAR_START.timestamp())
    ddb = InMemoryDynamoDB(clock=clock)
    table = template.table("LedgerTable").create(ddb, "ledger")
    ledger = Ledger(ddb, table, retention_days=shape.retention_days, clock=clock)  # type: ignore[arg-type]
    started = time.perf_counter()
    build = build_year(ledger, clock, shape)
    built_in = time.perf_counter() - started
    clock.now = build.end
    ddb.sweep()
    if progress:
        progress(f"  year: {build.documents:,} documents written in {built_in:.0f} s")
    items = ddb.items(table)
    prices = json.loads(PRICES.read_text())
    measured: list[dict[str, Any]] = []
    runs = commands(build)
    for name, audience, command in runs:
        reading = measure_simulation(ddb, table, shape, command)
        measured.append({"command": name, "audience": audience, "simulation": asdict(reading)})
    if moto:
        with moto_table(items, template) as (client, moto_name):
            if progress:
                progress(f"  year: {len(items):,} items loaded in moto")
            for entry, (_, _, command) in zip(measured, runs, strict=True):
                if entry["simulation"]["requests"] > MOTO_MAX_REQUESTS:
                    continue  # hours in moto; its requests are the simulation's
                entry["moto"] = asdict(measure_moto(client, moto_name, command))
    return judged(
        {
            "shape": asdict(shape),
            "year": {
                "from": utc_iso(build.start),
                "to": utc_iso(build.end),
                "documents": build.documents,
                "writes": dict(sorted(build.writes.items())),
                "eventsPerDocument": _distribution(build.events_per_document),
                "longestTrail": build.longest_trail,
                "buildSeconds": round(built_in, 1),
                "writeUnits": ddb.usage.write_units[table],
            },
            "storage": storage(items, prices),
            "commands": measured,
        }
    )


def dynamodb_seconds(reading: dict[str, Any]) -> float:
    """What the command would take against DynamoDB: this machine's time in the simulation
    (the code's own work) plus a round trip for each request and for each further 1 MB page
    the simulation answered in one (DynamoDB's pages stop at 1 MB; the simulation's do not)."""
    pages = int(reading["requests"]) + int(reading["bytes"]) // PAGE_BYTES
    return float(reading["wall_seconds"]) + pages * ROUND_TRIP_SECONDS


def judged(result: dict[str, Any]) -> dict[str, Any]:
    """Each command's target, its time against DynamoDB, and whether it holds: read units
    from the simulation, time from ``dynamodb_seconds``. moto's time is shown, not judged: its
    query is a pass over the whole table."""
    for entry in result["commands"]:
        target = TARGETS.get(entry["audience"])
        seconds = dynamodb_seconds(entry["simulation"])
        entry["target"] = target
        entry["dynamodbSeconds"] = round(seconds, 3)
        entry["holds"] = None
        if target is not None:
            entry["holds"] = entry["simulation"]["units"] <= target[
                "readUnits"
            ] and seconds <= target.get("wallSeconds", math.inf)
    return result


def _distribution(counts: Counter[int]) -> dict[str, float]:
    values = sorted(counts.elements())
    if not values:
        return {"mean": 0.0, "p50": 0, "p99": 0, "max": 0}
    return {
        "mean": round(sum(values) / len(values), 3),
        "p50": values[len(values) // 2],
        "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
        "max": values[-1],
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a person reads them."""
    year, store = result["year"], result["storage"]
    lines = [
        f"== a year of ledger: {year['documents']:,} documents, {year['from'][:10]} to "
        f"{year['to'][:16]} ==",
        f"   events a document: mean {year['eventsPerDocument']['mean']}, "
        f"p99 {year['eventsPerDocument']['p99']}, longest trail {year['longestTrail']}",
        "",
        f"   {'command':<32} {'units':>8} {'requests':>9} {'items':>8} {'wall':>8} "
        f"{'DynamoDB':>9}   {'moto: requests':>14} {'items':>8} {'MB':>6} {'wall':>8}  target",
    ]
    for entry in result["commands"]:
        sim, moto = entry["simulation"], entry.get("moto")
        target = entry["target"]
        goal = (
            "-"
            if target is None
            else (
                f"< {target['readUnits']:,} units"
                + (f", < {target['wallSeconds']:.0f} s" if "wallSeconds" in target else "")
                + (": holds" if entry["holds"] else ": DOES NOT HOLD")
            )
        )
        moto_part = (
            f"{moto['requests']:>14,} {moto['items']:>8,} {moto['bytes'] / 1e6:>6.2f} "
            f"{moto['wall_seconds']:>7.2f}s"
            if moto
            else f"{'-':>14} {'-':>8} {'-':>6} {'-':>8}"
        )
        lines.append(
            f"   {entry['command']:<32} {sim['units']:>8,.1f} {sim['requests']:>9,} "
            f"{sim['items']:>8,} {sim['wall_seconds']:>7.2f}s {entry['dynamodbSeconds']:>8.2f}s   "
            f"{moto_part}  {goal}"
        )
        lines.append(f"   {'':<32} {sim['answer']}")
    lines += [
        "",
        f"   {'item kind':<14} {'items':>9} {'bytes':>13} {'bytes/item':>10} {'with TTL':>9}",
    ]
    for kind, figures in store["byKind"].items():
        lines.append(
            f"   {kind:<14} {figures['items']:>9,} {figures['bytes']:>13,} "
            f"{figures['bytes'] / figures['items']:>10,.0f} {figures['withTtl']:>9,}"
        )
    lines.append(
        "   events by kind: "
        + ", ".join(
            f"{kind} {e['items']:,} ({e['bytes'] / 1e6:,.1f} MB)"
            for kind, e in store.get("eventsByKind", {}).items()
        )
    )
    lines += [
        "   status index entries: " + ", ".join(f"{k} {v:,}" for k, v in store["byStatus"].items()),
        f"   storage: table {store['tableBytes'] / 1e6:,.1f} MB + status index "
        f"{store['indexBytes'] / 1e6:,.1f} MB = {store['totalBytes'] / 1e6:,.1f} MB "
        f"(100 bytes an item of overhead included): ${store['dollarsPerMonth']:.2f} a month at "
        f"${store['pricePerGbMonth']}/GB-month",
        f"   written in {year['buildSeconds']} s ({year['writeUnits']:,.0f} write units)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.year", description=__doc__)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-moto", action="store_true", help="the simulation's DynamoDB only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON")
    parser.add_argument(
        "--reprint", type=Path, help="judge and print a year.json again, without a run"
    )
    args = parser.parse_args(argv)
    if args.reprint:
        result = judged(json.loads(args.reprint.read_text()))
        path = args.reprint
    else:
        shape = YearShape(weeks=args.weeks, per_day=args.per_day, seed=args.seed)
        result = run(shape, moto=not args.no_moto, progress=lambda t: print(t, file=sys.stderr))
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "year.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    print(table(result))
    print(f"  JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
