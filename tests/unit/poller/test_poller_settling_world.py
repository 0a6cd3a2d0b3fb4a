"""An uncertain booking on an inbox of several pages, end to end in process (the simulator,
moto, a fake clock: ``tests.harness.World``): the processor's lost answer holds the document
``book_uncertain``; the poller's listing spans pages, so no absence proves anything, and Lucca's
booked documents settle it; on a one-page inbox the listing's free proof still does, with no
request to the booked documents; a warm poller's runs sweep only once the interval is over."""

from __future__ import annotations

import httpx
import pytest

from cleemy_booker.config import PollerSettings
from cleemy_booker.ledger import DocumentSummary, Status
from cleemy_booker.processor import BOOK_UNCERTAIN
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.shared import Seams
from tests.clocks import NOW
from tests.factories import COMPLETE
from tests.harness import LOOPBACK_URL, Killed, World, reason_codes
from tests.unit.poller.test_poller import poller
from tests.unit.processor.test_processor_exactly_once import die_after

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


def held_uncertain(world: World, document_id: int) -> None:
    """Lucca books the document, the answer dies with its instance, the next attempt finds it
    gone: held ``book_uncertain``."""
    message = world.listed(document_id)
    dying = world.transport()
    dying.after.append(die_after("book"))
    with pytest.raises(Killed):
        world.processor(dying).process(message)
    result = world.processor().process(message)
    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert world.state(document_id).status is Status.HELD


def booked_requests(world: World) -> int:
    return sum(entry["endpoint"] == "booked" for entry in world.app.requests())


def test_an_uncertain_booking_on_an_inbox_of_several_pages_is_settled_from_booked_documents(
    world: World,
) -> None:
    doc = world.add(601, **COMPLETE)
    for n in range(12):  # a standing inbox nobody books
        world.add(700 + n)
    held_uncertain(world, doc)
    world.clock.now += 60

    report = poller(world, page_size=5).run()

    assert (report.count, report.pages) == (12, 3)
    assert report.confirmed == [doc]
    assert report.settled == {"booked-documents: id": 1}
    assert report.settle_requests == booked_requests(world) == 2  # the count, one page
    assert world.state(doc).status is Status.BOOKED
    (booked,) = [e for e in world.ledger().queries.history(doc) if e.kind == "booked"]
    assert booked.detail["confirmedBy"].startswith(
        f"booked in Lucca: booked document {doc} matched on id"
    )
    assert booked.detail["wasReasons"][0].startswith(f"{BOOK_UNCERTAIN}:")
    assert world.bookings(doc) == (1, 1)  # booked once, never tried again


def test_without_an_uncertain_booking_the_several_pages_cost_no_settling_request(
    world: World,
) -> None:
    for n in range(12):
        world.add(700 + n)

    report = poller(world, page_size=5).run()

    assert report.settle_requests == booked_requests(world) == 0


def test_a_one_page_inbox_still_settles_by_absence_at_no_request(world: World) -> None:
    doc = world.add(601, **COMPLETE)
    world.add(701)
    held_uncertain(world, doc)
    world.clock.now += 60

    report = poller(world).run()

    assert report.confirmed == [doc]
    assert report.settled == {}
    assert booked_requests(world) == 0
    assert world.state(doc).status is Status.BOOKED


def test_a_warm_poller_sweeps_again_only_once_its_interval_is_over(world: World) -> None:
    """The sweep's memory lives with the warm instance, not the run: runs every few minutes
    ask Lucca's booked documents again only every half hour while a booking stays unsettled."""
    for n in range(12):
        world.add(700 + n)
    never_booked = DocumentSummary(document_number="F-999", created_at="2027-01-14T09:00:00+01:00")
    reason = f"{BOOK_UNCERTAIN}: the book of 999 may have gone through"
    world.ledger().states.record(999, Status.HELD, "held", reasons=[reason], summary=never_booked)
    settings = PollerSettings.from_env(world.stack.env(LOOPBACK_URL, PAGE_SIZE="5"))
    aws = AwsClients(world.stack.dynamodb, world.stack.sqs)
    seams = Seams(clock=world.clock, http=httpx.Client(transport=world.transport()))
    runtime = PollerRuntime(settings, aws, world.app.config.api_key, seams)
    spent = []
    for minutes in (0, 20, 40):  # each run past the listing's freshness, so each one lists
        world.clock.now = NOW + minutes * 60
        report = runtime.poll(lambda: 60.0)
        assert report.pages == 3
        spent.append(report.settle_requests)

    assert spent == [1, 0, 1]  # a count of nothing booked since; none before 30 min
    assert world.state(999).status is Status.HELD
