"""The simulation of the whole pipeline: deterministic, at the template's constants, and as
unkind as Lambda and SQS are (timeouts kill, redelivery waits for the visibility timeout); and
figures of a run counted from ground truth (the poller's own DynamoDB units, the tenant's
budget, uncertain bookings settled from the ledger's trail)."""

from __future__ import annotations

import json

from cleemy_booker.ledger import BOOK_UNCERTAIN, Ledger, Status
from sim.figures import _ledger_states, _uncertain_bookings
from sim.lucca import LatencyModel
from sim.scenarios import Scenario, backlog, deterministic_json, run
from sim.template import Template, rate_seconds
from sim.world import World, WorldConfig


def test_the_same_seed_gives_the_same_json_bit_for_bit() -> None:
    first = deterministic_json(run(backlog(40, updates=True, seed=3)))
    second = deterministic_json(run(backlog(40, updates=True, seed=3)))
    assert first == second
    other_seed = deterministic_json(run(backlog(40, updates=True, seed=4)))
    assert other_seed != first  # the seed reaches the inbox, so it must show


def test_a_small_backlog_is_booked_once_each_at_about_one_request_per_invoice() -> None:
    result = run(backlog(60, updates=False))
    figures = result["figures"]
    assert figures["drained"] is True
    assert figures["booked"] == 60
    assert (figures["lost"], figures["doubleBooked"], figures["stuck"]) == (0, 0, 0)
    # 60 books and one listing page: every other request would be waste.
    assert figures["lucca"]["byEndpoint"] == {"list": 1, "get": 0, "put": 0, "book": 60}
    assert figures["lucca"]["throttled429"] == 0
    # Requests 1.5 s apart (40 a minute): 60 books after the listing cannot take less than
    # 59 intervals, whatever the latencies around them.
    assert figures["drainSeconds"] >= 59 * 1.5


def test_constants_come_from_the_template_and_its_parameters() -> None:
    template = Template()
    world = World(
        WorldConfig(parameters={"MaxReceiveCount": "4", "ScheduleExpression": "rate(7 minutes)"})
    )
    redrive = json.loads(
        world.sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    assert redrive["maxReceiveCount"] == 4
    assert world.schedule.every == 7 * 60
    processor = template.function("DocumentProcessorFunction")
    assert world.processor.timeout == processor.timeout
    assert (
        world.environments["processor"]["LISTING_FRESH_SECONDS"]
        == processor.environment["LISTING_FRESH_SECONDS"]
    )
    assert rate_seconds("rate(1 hour)") == 3600


def test_an_invocation_past_its_timeout_is_killed_and_its_batch_returns_after_visibility() -> None:
    # Every book takes 100 s: longer than the processor's 60 s timeout.
    scenario = backlog(1, updates=False)
    scenario.config.lucca_latency = LatencyModel(book=100.0)
    scenario.horizon = 500.0
    result = run(scenario)
    processor = result["figures"]["usage"]["lambda"]["document-processor"]
    assert processor["timeouts"] >= 1
    # Killed at 60 s and not retried before the 360 s visibility timeout: 2 attempts in 500 s.
    assert processor["invocations"] == 2
    assert result["figures"]["booked"] == 0  # the book never got its answer in time


def test_the_poller_runs_on_the_schedule() -> None:
    scenario: Scenario = backlog(5, updates=False)
    scenario.drain = False
    scenario.horizon = 3600.0
    polls = run(scenario)["figures"]["polls"]
    assert polls["scheduled"] == 3600 // 300 + 1  # at 0, 5, ..., 60 minutes
    assert polls["ran"] == polls["scheduled"] - 1  # the one at 60 min is still running


def test_the_poller_s_dynamodb_units_are_its_own_and_a_standing_inbox_figures_as_such() -> None:
    """The poller's write units come from its own calls (the processor's writes are most of the
    table's); the tenant's budget and the listing pace are counted from Lucca's request log;
    no uncertain booking without a lost answer."""
    result = run(backlog(60, updates=False))
    figures = result["figures"]
    poller = figures["pollerDynamodb"]
    assert poller["coldStarts"] == 1
    assert 0 < poller["writeUnits"] < figures["usage"]["dynamodbWriteUnits"] / 2
    assert poller["writeUnitsOfEachColdStart"][0] >= 60  # one claim per listed document
    budget = figures["tenantBudget"]
    assert budget["peakMinuteRequests"] <= 50
    assert 0 < budget["share"] < budget["peakMinuteShare"] <= 1
    assert figures["listingRequestsPerDay"] > 0
    assert figures["uncertainBookings"]["held"] == 0


def test_uncertain_bookings_are_settled_when_the_ledger_later_records_them_booked() -> None:
    world = World(WorldConfig())
    ledger = Ledger(world.dynamodb, "LedgerTable", clock=world.sim.time)  # type: ignore[arg-type]
    uncertain = [f"{BOOK_UNCERTAIN}: the answer to the book was lost"]
    for doc in (1, 2):
        ledger.states.record(doc, Status.HELD, "held", reasons=uncertain)
    ledger.states.record(3, Status.HELD, "held", reasons=["incomplete: no invoice number"])
    world.sim.now += 600
    for doc in (1, 3):
        ledger.states.record(doc, Status.BOOKED, "booked")
    world.sim.now += 3000
    states, _ = _ledger_states(world)

    figure = _uncertain_bookings(world, states)

    assert (figure["held"], figure["settled"], figure["unsettled"]) == (2, 1, 1)
    assert figure["waitSeconds"]["max"] == 600
    assert figure["unsettledAgesSeconds"] == [3600]


def test_a_booking_mark_confirmed_without_a_hold_counts_as_uncertain_from_the_mark() -> None:
    """A lost answer the next attempt never reached: the mark stays until a listing (or Lucca's
    booked documents) confirms it; the wait runs from the mark. A 2xx of our own is certain."""
    world = World(WorldConfig())
    ledger = Ledger(world.dynamodb, "LedgerTable", clock=world.sim.time)  # type: ignore[arg-type]
    for doc in (1, 2):
        ledger.states.record(doc, Status.BOOKING, "booking")
    world.sim.now += 900
    ledger.states.record(2, Status.BOOKED, "booked")  # the processor's own answer
    marked = ledger.states.state(1)
    assert marked is not None
    assert ledger.states.confirm_booked(marked, detail={"confirmedBy": "absent from a listing"})
    states, _ = _ledger_states(world)

    figure = _uncertain_bookings(world, states)

    assert (figure["held"], figure["settled"], figure["unsettled"]) == (1, 1, 0)
    assert figure["waitSeconds"]["max"] == 900


def test_a_booking_mark_nothing_settled_is_an_uncertain_booking_left_waiting() -> None:
    """A mark no listing and no booked document confirmed: uncertain at the end, aged from the
    mark (it is not stuck in the inbox: Lucca booked it, the ledger does not know)."""
    world = World(WorldConfig())
    ledger = Ledger(world.dynamodb, "LedgerTable", clock=world.sim.time)  # type: ignore[arg-type]
    ledger.states.record(1, Status.BOOKING, "booking")
    world.sim.now += 7200
    states, _ = _ledger_states(world)

    figure = _uncertain_bookings(world, states)

    assert (figure["held"], figure["settled"], figure["unsettled"]) == (1, 0, 1)
    assert figure["unsettledAgesSeconds"] == [7200]
