"""The inbox poller (``InboxPoller``): which listing may record a booking of ours as done
(only one of the whole inbox, in one answer, by a real run); what a refused claim is remembered
for by a warm poller, and by the next instance (kept in the ledger), and when a held, planned
or in-progress document is queued again; a document pushed onto the next page listed and
queued once; every claimed document sent as its own message within SQS's limits, or its claim
given back when the send fails; the queue target, a busy budget and a failed listing ending a
run. The simulator's request handling in this
process, moto, a fake clock (``tests.harness.World``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from cleemy_booker.budget import MemorySlotStore, RequestBudget
from cleemy_booker.clock import utc_iso
from cleemy_booker.errors import PermanentError
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.listing import ListingStats, iter_inbox
from cleemy_booker.observability import logger as poller_logger
from cleemy_booker.poller import (
    STOP_BUDGET,
    STOP_QUEUE_FULL,
    InboxPoller,
    PollReport,
    RefusedClaims,
)
from cleemy_booker.processor import BOOK_UNCERTAIN
from local.lucca_simulator.app import Route
from tests.clocks import NOW
from tests.factories import COMPLETE
from tests.harness import AfterHook, InProcessLucca, World, stamp

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


def poller(
    world: World,
    sqs: Any = None,
    ledger: Ledger | None = None,
    transport: InProcessLucca | None = None,
    **options: Any,
) -> InboxPoller:
    return InboxPoller(
        client=options.pop("client", None) or world.client(transport),
        ledger=ledger or world.ledger(),
        sqs=sqs or world.stack.sqs,
        queue_url=world.stack.queue_url,
        filters=options.pop("filters", {}),
        clock=world.clock.time,
        **options,
    )


def booking_mark(world: World, document_id: int, *, held: bool = False) -> None:
    """A book call of ours may have booked it: ``BOOKING``, or held ``book_uncertain``."""
    if held:
        reason = f"{BOOK_UNCERTAIN}: the book of {document_id} may have gone through"
        world.ledger().states.record(document_id, Status.HELD, "held", reasons=[reason])
    else:
        world.ledger().states.record(document_id, Status.BOOKING, "booking")


def held_as_listed(world: World, document_id: int, reason: str, **record: Any) -> None:
    """The ledger holds the document, for ``reason``, at the version the listing shows now."""
    world.ledger().states.record(
        document_id,
        Status.HELD,
        "held",
        modified_at=stamp(world.listed(document_id)),
        reasons=[reason],
        **record,
    )


def status(world: World, document_id: int) -> Status:
    return world.state(document_id).status


def err(code: str = "ServiceUnavailable") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Op")  # type: ignore[arg-type]


def warnings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The poller's warnings from now on: (message, exc_info)."""
    seen: list[tuple[str, Any]] = []

    def warning(message: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        seen.append((message, exc_info))

    monkeypatch.setattr(poller_logger, "warning", warning)
    return seen


def rewrite_list(change: Any) -> Any:
    """Lucca answers a listing with ``change(page)`` instead."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != "list":
            return None
        page = change(response.json())
        return httpx.Response(200, json=page, request=response.request)

    return after


# --- confirmation: only a listing of the whole inbox at once records a booking ----------------


def test_a_possible_booking_gone_from_a_whole_inbox_listing_is_recorded_booked(
    world: World,
) -> None:
    world.add(701)  # still in the inbox: its mark stays (in flight, or for a person)
    world.add(704)
    booking_mark(world, 701)
    booking_mark(world, 702)
    booking_mark(world, 703, held=True)
    world.clock.now += 60
    started = world.clock.now

    report = poller(world).run()

    assert (report.count, report.pages, report.invalid_items) == (2, 1, 0)
    assert sorted(report.confirmed) == [702, 703]
    assert status(world, 701) is Status.BOOKING
    assert (status(world, 702), status(world, 703)) == (Status.BOOKED, Status.BOOKED)
    (booked,) = [e for e in world.ledger().queries.history(703) if e.kind == "booked"]
    assert booked.detail["confirmedBy"] == (
        "left the inbox after our booking call: absent from a listing of the whole inbox "
        f"started at {utc_iso(started)}"
    )
    assert booked.detail["was"] == "HELD"
    assert booked.detail["wasReasons"] == [
        f"{BOOK_UNCERTAIN}: the book of 703 may have gone through"
    ]
    (booked,) = [e for e in world.ledger().queries.history(702) if e.kind == "booked"]
    assert (booked.detail["was"], booked.detail["wasReasons"]) == ("BOOKING", [])


def test_a_booking_mark_written_as_the_listing_starts_is_not_confirmed(world: World) -> None:
    """The listing may have been answered before the book: its absence proves nothing."""
    booking_mark(world, 702)  # at NOW, and the poll starts at NOW

    assert poller(world).run().confirmed == []
    assert status(world, 702) is Status.BOOKING
    world.clock.now += 1
    assert poller(world).run().confirmed == [702]


@pytest.mark.parametrize(
    "why",
    [
        "dry run",
        "filtered",
        "two pages",
        "fewer listed than counted",
        "an unusable item",
        "time ran out",
    ],
)
def test_only_a_real_whole_inbox_listing_in_one_answer_confirms(world: World, why: str) -> None:
    world.add(701)
    world.add(704)
    booking_mark(world, 702)
    world.clock.now += 60
    options: dict[str, Any] = {}
    lucca = world.transport()
    if why == "dry run":
        options["dry_run"] = True
    elif why == "filtered":
        options["filters"] = {"document.type": "Invoice"}
    elif why == "two pages":
        options["page_size"] = 1
    elif why == "fewer listed than counted":
        lucca.after.append(rewrite_list(lambda page: page | {"count": page["count"] + 1}))
    elif why == "time ran out":
        options["time_left"] = lambda: 0.0  # stops after its first item, the last one listed
    else:
        unusable = {"id": "not a number"}
        lucca.after.append(
            rewrite_list(lambda page: page | {"items": [*page["items"], unusable], "count": 3})
        )

    report = poller(world, transport=lucca, **options).run()

    assert report.confirmed == []
    assert status(world, 702) is Status.BOOKING


def test_a_failed_read_of_the_possible_bookings_costs_the_confirmation_not_the_poll(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.add(701)
    booking_mark(world, 702)
    world.clock.now += 60
    ledger = world.ledger()

    def fail() -> list[Any]:
        raise err()

    monkeypatch.setattr(ledger.queries, "uncertain_bookings", fail)
    warned = warnings(monkeypatch)
    report = poller(world, ledger=ledger).run()

    assert (report.enqueued, report.confirmed) == (1, [])
    assert status(world, 702) is Status.BOOKING
    assert ledger.markers.last_complete_listing(poller(world).listing_name) == utc_iso(
        world.clock.now
    )
    assert warned == [("uncertain bookings not read", True)]  # with the traceback


def test_a_failed_confirmation_of_one_document_goes_on_with_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking_mark(world, 702)
    booking_mark(world, 703)
    world.clock.now += 60
    ledger = world.ledger()
    confirm = ledger.states.confirm_booked

    def first_fails(seen: Any, *, detail: dict[str, Any]) -> bool:
        if seen.document_id == 702:
            raise err()
        return confirm(seen, detail=detail)

    monkeypatch.setattr(ledger.states, "confirm_booked", first_fails)
    warned = warnings(monkeypatch)
    report = poller(world, ledger=ledger).run()

    assert report.confirmed == [703]
    assert (status(world, 702), status(world, 703)) == (Status.BOOKING, Status.BOOKED)
    assert warned == [("booking not confirmed", True)]


def test_a_decision_taken_meanwhile_is_not_reported_confirmed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking_mark(world, 702)
    world.clock.now += 60
    ledger = world.ledger()
    monkeypatch.setattr(ledger.states, "confirm_booked", lambda seen, *, detail: False)

    assert poller(world, ledger=ledger).run().confirmed == []


def test_each_confirmed_booking_is_logged_with_what_it_was(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking_mark(world, 702)
    world.clock.now += 60
    logged: list[tuple[str, Any]] = []

    def info(message: str, *args: Any, extra: Any = None, **kwargs: Any) -> None:
        logged.append((message, extra))

    monkeypatch.setattr(poller_logger, "info", info)
    report = poller(world).run()

    assert report.as_dict()["confirmed"] == [702]
    assert ("booking confirmed by the listing", {"documentId": 702, "was": "BOOKING"}) in logged


# --- refused claims: remembered by a warm poller, and for how long ----------------------------


def test_a_new_configuration_forgets_the_refusals_remembered_under_the_old_one(
    world: World,
) -> None:
    doc = world.add(746)
    reason = "over_ceiling: above the ceiling"
    held_as_listed(world, doc, reason, config="rules-v1")
    warm = poller(world, config="rules-v1")
    assert dict(warm.run().skipped) == {"held": 1}
    assert warm.run().known == 1
    warm.config = "rules-v2"  # the rules changed: holds taken under v1 may now go through

    assert warm.run().enqueued == 1


def test_a_warm_poller_does_not_ask_again_about_a_claim_refused_until_it_can_be_taken(
    world: World,
) -> None:
    world.add(711)
    world.add(715)
    warm = poller(world)
    assert warm.run().enqueued == 2
    world.clock.now += 60
    second = warm.run()  # the claims are still running: refused, and remembered
    assert (second.enqueued, dict(second.skipped), second.known) == (0, {"queued": 2}, 0)
    world.clock.now += 60

    third = warm.run()

    assert (third.enqueued, dict(third.skipped), third.known) == (0, {}, 2)
    assert third.requests == 1  # this run's one listing page, not the instance's total
    world.app.touch(711, {"comment": "edited"}, None)  # another version: asked again at once
    fourth = warm.run()
    assert (fourth.known, dict(fourth.skipped)) == (1, {"queued": 1})
    world.clock.now = NOW + 3600  # the last second of the claim: asked, and refused
    fifth = warm.run()
    assert (fifth.known, dict(fifth.skipped)) == (0, {"queued": 2})
    world.clock.now = NOW + 3601  # the claim expired: queued again, not remembered forever
    assert warm.run().enqueued == 2


def claims_made(ledger: Ledger) -> list[int]:
    """The documents ``ledger`` is asked to claim (each a conditional write), in order."""
    made: list[int] = []
    claim = ledger.states.claim_for_queue

    def recorded(document_id: int, *args: Any, **kwargs: Any) -> Any:
        made.append(document_id)
        return claim(document_id, *args, **kwargs)

    ledger.states.claim_for_queue = recorded  # type: ignore[method-assign]
    return made


def test_a_cold_start_claims_a_standing_document_again_only_once_it_changed(
    world: World,
) -> None:
    """The refusals a poller remembers are kept in the ledger: a new instance reads them and
    makes no conditional write for a held document that did not change, and claims the one
    that did."""
    standing, edited = world.add(721), world.add(722)
    for doc in (standing, edited):
        held_as_listed(world, doc, "needs_review: a person looks at it")
    first = world.ledger()
    assert dict(
        poller(world, ledger=first, refused=RefusedClaims(store=first.snapshots)).run().skipped
    ) == {"held": 2}
    world.clock.now += 300
    world.app.touch(edited, {"comment": "fixed by a person"}, None)
    cold = world.ledger()
    made = claims_made(cold)

    report = poller(world, ledger=cold, refused=RefusedClaims(store=cold.snapshots)).run()

    assert (report.known, report.enqueued) == (1, 1)
    assert made == [edited]


def test_a_cold_start_under_another_configuration_claims_every_held_document_again(
    world: World,
) -> None:
    doc = world.add(723)
    held_as_listed(world, doc, "over_ceiling: above the ceiling", config="rules-v1")
    first = world.ledger()
    poller(
        world, ledger=first, config="rules-v1", refused=RefusedClaims(store=first.snapshots)
    ).run()
    cold = world.ledger()
    made = claims_made(cold)

    report = poller(
        world, ledger=cold, config="rules-v2", refused=RefusedClaims(store=cold.snapshots)
    ).run()

    assert (report.known, report.enqueued, made) == (0, 1, [doc])


def test_a_held_document_is_queued_again_when_it_changes_in_lucca_and_only_then(
    world: World,
) -> None:
    doc = world.add(716)
    reason = "needs_review: a person looks at it"
    held_as_listed(world, doc, reason)

    unchanged = poller(world).run()

    assert (unchanged.enqueued, dict(unchanged.skipped)) == (0, {"held": 1})
    world.clock.now += 60
    world.app.touch(doc, {"comment": "fixed by a person"}, None)
    assert poller(world).run().enqueued == 1


def test_a_listed_item_that_does_not_parse_is_queued_by_its_id(world: World) -> None:
    """The processor fetches it and dead-letters it by name; the poller does not stop."""
    world.add(717)
    lucca = world.transport()
    bad = {"id": 718, "document": "not an object"}
    lucca.after.append(
        rewrite_list(lambda page: page | {"items": [*page["items"], bad], "count": 2})
    )
    sqs = FakeSqs()

    report = poller(world, sqs=sqs, transport=lucca).run()

    assert (report.listed, report.enqueued) == (2, 2)
    bodies = {int(e["Id"]): json.loads(e["MessageBody"]) for e in sqs.batches[0]}
    assert bodies[718]["documentId"] == 718
    assert bodies[718].get("item") is None
    assert bodies[717]["item"]["id"] == 717


def test_a_queued_document_refused_long_after_its_claim_is_no_booked_discrepancy(
    world: World,
) -> None:
    world.add(712)
    assert poller(world).run().enqueued == 1
    world.clock.now += 1000  # past the booking grace, within the claim

    report = poller(world).run()

    assert (dict(report.skipped), report.discrepancies) == ({"queued": 1}, [])
    assert world.ledger().queries.in_status(Status.DISCREPANCY) == []


def test_a_booked_document_still_listed_is_a_discrepancy_once_the_grace_is_exactly_over(
    world: World,
) -> None:
    world.add(713)
    world.ledger().states.record(713, Status.BOOKED, "booked")
    world.clock.now += 900

    assert poller(world).run().discrepancies == [713]


def test_a_booking_within_the_grace_is_remembered_until_the_grace_is_over(world: World) -> None:
    world.add(714)
    world.ledger().states.record(714, Status.BOOKED, "booked")
    world.clock.now += 600
    warm = poller(world)
    assert warm.run().discrepancies == []
    world.clock.now += 100  # still within the grace: not asked again

    assert (warm.run().known, warm.run().discrepancies) == (1, [])
    world.clock.now = NOW + 900  # the grace is over: asked again, and now it is one
    assert warm.run().discrepancies == [714]


# --- a document in progress: queued again only once its claim time is over --------------------


@pytest.mark.parametrize("status", [Status.UPDATED, Status.BOOKING])
def test_a_document_in_progress_is_queued_again_only_once_its_claim_time_is_over(
    world: World, status: Status
) -> None:
    ledger = world.ledger()
    assert ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed
    ledger.states.record(1, status, status.lower(), modified_at="m1")  # an instance is on it, now

    world.clock.now = NOW + 300  # the next poll lists it again
    during = ledger.states.claim_for_queue(1, "m1", now=world.clock.now, ttl_seconds=3600)
    assert (during.claimed, during.previous) == (False, status)  # one instance at a time
    assert during.retry_after == NOW + 3600

    world.clock.now = NOW + 3601  # that instance died: the claim time is over
    stuck = ledger.states.claim_for_queue(1, "m1", now=world.clock.now, ttl_seconds=3600)
    assert (stuck.claimed, stuck.previous) == (True, status)  # not stranded


def test_a_poll_while_a_document_is_being_booked_queues_it_no_second_time(world: World) -> None:
    doc = world.add(607, **COMPLETE)
    warm = poller(world)
    assert warm.run().enqueued == 1
    world.clock.now += 60
    world.ledger().states.record(doc, Status.BOOKING, "booking")  # the processor took it
    world.clock.now += 300

    again = warm.run()

    assert (again.enqueued, dict(again.skipped)) == (0, {"booking": 1})


# --- ids de-duplicated across pages -----------------------------------------------------------


def _a_document_arriving_in_front_after_page_one(world: World) -> AfterHook:
    """After page 1 is answered, a document with a lower id arrives: Lucca sorts by id, so
    every later document moves one place on, and page 2 starts with page 1's last one."""
    pages = 0

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        nonlocal pages
        if route.endpoint == "list":
            pages += 1
            if pages == 1:
                world.add(5)
        return None

    return after


def test_a_document_pushed_onto_the_next_page_is_listed_once(world: World) -> None:
    for doc in (10, 11, 12, 13):
        world.add(doc)
    lucca = world.transport()
    lucca.after.append(_a_document_arriving_in_front_after_page_one(world))
    stats = ListingStats()

    ids = [
        listed.document_id for listed in iter_inbox(world.client(lucca), page_size=2, stats=stats)
    ]

    assert ids == [10, 11, 12, 13]  # 11 came back on page 2: not yielded again
    assert stats.duplicates_skipped == 1
    assert stats.stopped_because == "count reached"


def test_a_document_pushed_onto_the_next_page_is_queued_once(world: World) -> None:
    for doc in (10, 11, 12, 13):
        world.add(doc)
    lucca = world.transport()
    lucca.after.append(_a_document_arriving_in_front_after_page_one(world))
    report = poller(world, transport=lucca, page_size=2).run()

    assert (report.listed, report.enqueued, dict(report.skipped)) == (4, 4, {})
    messages = world.stack.sqs.receive_message(
        QueueUrl=world.stack.queue_url, MaxNumberOfMessages=10
    )["Messages"]
    assert sorted(json.loads(m["Body"])["documentId"] for m in messages) == [10, 11, 12, 13]


# --- sending: every claimed document queued, or its claim given back --------------------------


class FakeSqs:
    """SQS that accepts every entry (or refuses ``refuse`` every time, or answers without a
    ``Successful`` list when all failed) and records each batch call."""

    def __init__(self, *, refuse: frozenset[str] = frozenset(), omit_empty: bool = False) -> None:
        self.refuse = refuse
        self.omit_empty = omit_empty
        self.batches: list[list[dict[str, str]]] = []

    queued = 0  # what the queue holds already

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.queued)}}

    down = False  # every batch call raises, as SQS does past botocore's retries

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        self.batches.append(entries)
        if self.down:
            raise err()
        ok = [{"Id": e["Id"], "MessageId": e["Id"]} for e in entries if e["Id"] not in self.refuse]
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for e in entries
            if e["Id"] in self.refuse
        ]
        answer: dict[str, Any] = {"Successful": ok, "Failed": failed}
        if self.omit_empty:
            answer = {key: value for key, value in answer.items() if value}
        return answer

    def sent_ids(self) -> list[int]:
        sent = {int(e["Id"]) for batch in self.batches for e in batch} - set(map(int, self.refuse))
        return sorted(sent)


def test_every_claimed_document_is_sent_as_its_own_message(world: World) -> None:
    docs = [world.add(doc) for doc in (721, 722, 723)]
    sqs = FakeSqs()

    report = poller(world, sqs=sqs).run()

    assert (report.enqueued, report.send_failed) == (3, 0)
    (batch,) = sqs.batches
    assert sorted(int(entry["Id"]) for entry in batch) == docs
    bodies = [json.loads(entry["MessageBody"]) for entry in batch]
    assert sorted(body["documentId"] for body in bodies) == docs
    # Listed now: the processor books on the listed item while it is fresh, not after a GET.
    assert {datetime.fromisoformat(body["listedAt"]) for body in bodies} == {
        datetime.fromtimestamp(NOW, UTC)
    }


@pytest.mark.parametrize("omit_empty", [False, True], ids=["empty list", "no list"])
def test_a_message_sqs_keeps_refusing_gives_back_its_claim_only(
    world: World, omit_empty: bool
) -> None:
    for doc in (724, 725, 726):
        world.add(doc)
    refuse = frozenset({"725"} if not omit_empty else {"724", "725", "726"})
    sqs = FakeSqs(refuse=refuse, omit_empty=omit_empty)

    report = poller(world, sqs=sqs).run()  # no exception: the poll goes on

    assert (report.send_failed, report.enqueued) == (len(refuse), 3 - len(refuse))
    assert len(sqs.batches) == 3  # sent again twice, then given up
    for doc in (724, 725, 726):
        state = world.ledger().states.state(doc)
        if str(doc) in refuse:
            assert state is None  # the claim given back: the next poll queues it at once
        else:
            assert state is not None
            assert state.status is Status.QUEUED


def pending(*sizes: int) -> list[tuple[int, str]]:
    return [(730 + n, "x" * size) for n, size in enumerate(sizes)]


@pytest.mark.parametrize(
    ("sizes", "batches"),
    [
        ((131_072, 131_072), [2]),  # exactly 256 KiB: one call
        ((131_072, 131_073), [1, 1]),  # a byte more: two
        ((150_000, 150_000, 150_000), [1, 1, 1]),
        ((100_000, 100_000, 100_000), [2, 1]),
        ((10,) * 12, [10, 2]),
    ],
)
def test_each_batch_call_holds_at_most_ten_messages_and_256_kib(
    world: World, sizes: tuple[int, ...], batches: list[int]
) -> None:
    sqs = FakeSqs()
    report = PollReport()

    poller(world, sqs=sqs)._compose().queue.flush(pending(*sizes), report)

    assert [len(batch) for batch in sqs.batches] == batches
    assert report.enqueued == len(sizes)


def test_a_refused_document_takes_no_room_in_the_queue(world: World) -> None:
    world.add(741)
    warm = poller(world, sqs=FakeSqs())
    assert warm.run().enqueued == 1
    world.clock.now += 60
    world.add(742)
    warm.queue_target = 1  # room for one more: the new one, not the one refused

    second = warm.run()

    assert (dict(second.skipped), second.enqueued) == ({"queued": 1}, 1)
    world.clock.now += 60
    world.add(743)
    third = warm.run()  # one refused remembered, one refused again: still no room taken
    assert (third.known, dict(third.skipped), third.enqueued) == (1, {"queued": 1}, 1)
    assert [world.state(doc).status for doc in (742, 743)] == [Status.QUEUED] * 2
    world.clock.now += 60
    world.add(744)
    world.add(745)
    warm.queue_target = 2  # each document queued takes one place, no more
    assert warm.run().enqueued == 2


def test_a_dry_run_does_not_queue_again_a_document_it_planned_unchanged(world: World) -> None:
    doc = world.add(745)
    world.ledger().states.record(
        doc, Status.PLANNED, "planned", modified_at=stamp(world.listed(doc))
    )

    report = poller(world, dry_run=True).run()

    assert (report.enqueued, dict(report.skipped)) == (0, {"planned": 1})
    assert poller(world).run().enqueued == 1  # the real run books what the dry run planned


def test_a_document_held_under_another_configuration_is_queued_again(world: World) -> None:
    doc = world.add(744)
    held_as_listed(world, doc, "over_ceiling: above the ceiling", config="rules-v1")

    assert poller(world, config="rules-v1").run().enqueued == 0
    assert poller(world, config="rules-v2").run().enqueued == 1


@pytest.mark.parametrize(("queued", "enqueued"), [(2, 0), (1, 1), (0, 2)])
def test_the_queue_target_bounds_what_a_run_queues(
    world: World, queued: int, enqueued: int
) -> None:
    world.add(751)
    world.add(752)
    sqs = FakeSqs()
    sqs.queued = queued

    report = poller(world, sqs=sqs, queue_target=2).run()

    assert (report.queued_before, report.room, report.enqueued) == (queued, 2 - queued, enqueued)
    if queued == 2:  # full: not even listed
        assert (report.stopped_because, report.listed, report.requests) == (
            STOP_QUEUE_FULL,
            0,
            0,
        )
        assert report.left_work


def test_a_busy_budget_stops_the_run_as_work_left(world: World) -> None:
    world.add(753)
    client = world.client()
    store = MemorySlotStore()
    client.hooks.append(
        RequestBudget(
            store, limit=40, window_seconds=60, max_wait_seconds=20, clock=world.clock.time
        )
    )
    store.push_back(world.clock.now + 45, 1.0)  # someone else's 429: 45 s of pause

    report = poller(world, client=client).run()

    assert (report.stopped_because, report.listed, report.left_work) == (STOP_BUDGET, 0, True)


def test_a_listing_lucca_fails_says_so_and_a_refused_one_fails_the_run(world: World) -> None:
    world.add(754)
    world.faults("list", "503")
    report = poller(world).run()
    assert report.stopped_because.startswith("listing failed: ")
    assert "503" in report.stopped_because

    world.heal()
    lucca = world.transport()

    def refused(route: Route, response: httpx.Response) -> httpx.Response | None:
        return httpx.Response(401, request=response.request) if route.endpoint == "list" else None

    lucca.after.append(refused)  # a bad key will not mend itself: a person is called
    failing = poller(world, transport=lucca)
    with pytest.raises(PermanentError):
        failing.run()
    assert failing.last_report is not None
    assert failing.last_report.stopped_because.startswith("listing failed: ")


def test_a_poll_whose_messages_cannot_be_sent_gives_every_claim_back(world: World) -> None:
    docs = [world.add(760 + n) for n in range(12)]  # two batches: the first fails
    sqs = FakeSqs()
    sqs.down = True
    down = poller(world, sqs=sqs)

    with pytest.raises(ClientError):
        down.run()

    assert len(sqs.batches) == 1  # the walk stops at the first failed send
    assert [world.ledger().states.state(doc) for doc in docs] == [
        None
    ] * 12  # queued at once next time
    world.clock.now += 300
    assert poller(world, sqs=FakeSqs()).run().enqueued == 12


def test_a_requeued_document_whose_message_is_refused_gets_its_state_back(world: World) -> None:
    """Its claim given back restores what the claim replaced: the hold and its reasons."""
    doc = world.add(780)
    reason = "needs_review: a person looks at it"
    world.ledger().states.record(
        doc, Status.HELD, "held", modified_at="an older version", reasons=[reason]
    )

    report = poller(world, sqs=FakeSqs(refuse=frozenset({str(doc)}))).run()

    assert report.send_failed == 1
    state = world.state(doc)
    assert (state.status, state.reasons) == (Status.HELD, (reason,))


def test_the_report_of_a_run_whose_messages_cannot_be_sent_is_kept(world: World) -> None:
    world.add(790)
    sqs = FakeSqs()
    sqs.down = True
    down = poller(world, sqs=sqs)

    with pytest.raises(ClientError):
        down.run()

    assert down.last_report is not None
    assert down.last_report.send_failed == 1


class BrokenSqs:
    """SQS down (every batch call raises) or refusing one entry every time."""

    def __init__(self, sqs: Any, *, refuse: str | None = None) -> None:
        self._sqs = sqs
        self.refuse = refuse

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self.refuse is None:
            error = {"Error": {"Code": "ServiceUnavailable", "Message": "SQS is down"}}
            raise ClientError(error, "SendMessageBatch")  # type: ignore[arg-type]
        entries = [e for e in kwargs["Entries"] if e["Id"] != self.refuse]
        answer: dict[str, Any] = {"Successful": [], "Failed": []}
        if entries:
            answer = self._sqs.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=entries)
        if len(entries) < len(kwargs["Entries"]):
            failed = {"Id": self.refuse, "SenderFault": False, "Code": "InternalError"}
            answer.setdefault("Failed", []).append(failed)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def queued_ids(world: World) -> list[int]:
    messages = world.stack.sqs.receive_message(
        QueueUrl=world.stack.queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    return sorted(json.loads(m["Body"])["documentId"] for m in messages)


def test_a_poll_whose_messages_cannot_be_sent_gives_the_claims_back(world: World) -> None:
    docs = [world.add(doc) for doc in (621, 622, 623)]

    with pytest.raises(ClientError, match="SQS is down"):
        poller(world, sqs=BrokenSqs(world.stack.sqs)).run()

    assert [world.ledger().states.state(doc) for doc in docs] == [None, None, None]
    # SQS is back: the next poll queues every one of them now, not after the claim time.
    world.clock.now += 300
    report = poller(world, sqs=world.stack.sqs).run()
    assert report.enqueued == 3
    assert queued_ids(world) == docs


def test_a_message_sqs_keeps_refusing_gives_its_claim_back_and_no_other(world: World) -> None:
    docs = [world.add(doc) for doc in (624, 625, 626)]

    report = poller(world, sqs=BrokenSqs(world.stack.sqs, refuse="625")).run()

    assert (report.enqueued, report.send_failed) == (2, 1)
    assert world.ledger().states.state(625) is None  # the next poll queues it at once
    assert [world.state(doc).status for doc in (624, 626)] == [Status.QUEUED, Status.QUEUED]
    assert queued_ids(world) == [624, 626]
    world.clock.now += 300
    again = poller(world, sqs=world.stack.sqs).run()
    assert (again.enqueued, dict(again.skipped)) == (1, {"queued": 2})
    assert queued_ids(world) == [625]
    assert docs == [624, 625, 626]
