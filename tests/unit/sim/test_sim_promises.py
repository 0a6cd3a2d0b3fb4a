"""The pipeline's promises at production time constants, each shown on the simulation's
virtual clock (small inboxes: seconds of wall time, hours or days of production time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sim.figures import Truth
from sim.scenarios import DAY, EXAMPLE_RULES, HOUR, Scenario, add_documents, backlog, run, week
from sim.world import World, WorldConfig


def _figures(scenario: Scenario) -> dict[str, Any]:
    return run(scenario)["figures"]


def test_a_backlog_longer_than_the_listing_is_fresh_costs_no_get() -> None:
    # 1,500 documents take 37 min at 40 a minute: well past the listing's 15-minute freshness.
    figures = _figures(backlog(1500, updates=False))
    assert figures["booked"] == 1500
    assert figures["lucca"]["byEndpoint"]["get"] == 0
    assert figures["lucca"]["perBooked"] <= 1.01
    assert figures["drainRatio"] <= 1.05
    assert figures["lucca"]["throttled429"] == 0  # nobody else spends the budget here


def test_no_document_is_queued_again_while_its_message_is_on_its_way() -> None:
    # 3,000 documents take 75 min: longer than the poller's one-hour claim.
    figures = _figures(backlog(3000, updates=False))
    assert figures["queuedWhileOnItsWay"] == 0
    assert figures["booked"] == 3000
    assert (figures["lost"], figures["doubleBooked"], figures["stuck"]) == (0, 0, 0)


def test_the_poller_lists_one_page_a_run_however_large_the_inbox() -> None:
    figures = _figures(backlog(5000, updates=False))
    assert figures["polls"]["mostRequestsInOnePoll"] == 1
    assert figures["usage"]["lambda"]["inbox-poller"]["timeouts"] == 0


def test_a_run_of_429s_defers_the_document_instead_of_burning_its_deliveries() -> None:
    scenario = backlog(3, updates=False)
    # Every book is answered 429 (another integration has the whole tenant) for four hours:
    # ten deliveries at the 360 s visibility timeout would dead-letter it within the hour.
    scenario.config.lucca = {
        **scenario.config.lucca,
        "fault_rate": 1.0,
        "fault_kinds": {"429": 1.0},
        "fault_endpoints": ["book"],
    }
    scenario.drain = False
    scenario.horizon = 4 * HOUR
    figures = _figures(scenario)
    assert figures["deadLettered"] == 0
    assert figures["queuedAtEnd"] == 3  # still waiting its turn, not failed


def _future_dated(world: World, truth: dict[int, Truth]) -> None:
    """One invoice dated ten days ahead: held (a misread date?) until that day comes near."""
    (doc_id,) = add_documents(world, truth, 1)
    record = world.lucca.inbox.records[doc_id]
    ahead = datetime.fromtimestamp(world.sim.now, UTC).date() + timedelta(days=10)
    record.document["documentDate"] = ahead.isoformat()
    record.document["dueDate"] = (ahead + timedelta(days=30)).isoformat()


def test_a_hold_whose_cause_lies_outside_the_document_is_looked_at_again() -> None:
    scenario = Scenario(
        name="future-date",
        config=WorldConfig(lucca={"category_weights": {"ready": 1.0}}),
        setup=_future_dated,
        horizon=5 * 24 * HOUR,
    )
    figures = _figures(scenario)
    # Nothing changes in Lucca, but the date comes within the gate's 7 days after 3 days.
    assert figures["booked"] == 1
    assert figures["held"] == 0


def _over_the_ceiling(world: World, truth: dict[int, Truth]) -> None:
    add_documents(world, truth, 1)
    # After an hour the ceiling is lifted: a stack update with a new parameter.
    world.sim.call_at(world.sim.start + HOUR, lambda: world.redeploy({"MaxAutoBookingAmount": ""}))


def test_a_hold_is_looked_at_again_at_once_when_the_configuration_changes() -> None:
    scenario = Scenario(
        name="ceiling-lifted",
        config=WorldConfig(
            lucca={"category_weights": {"ready": 1.0}},
            parameters={"MaxAutoBookingAmount": "1"},
        ),
        setup=_over_the_ceiling,
        horizon=HOUR + 15 * 60,  # well within the 6-hour recheck: only the change explains it
    )
    figures = _figures(scenario)
    assert figures["booked"] == 1


def _huge_items(world: World, truth: dict[int, Truth]) -> None:
    """Twelve documents whose listed items make ~150 KB messages (a long comment each)."""
    for doc_id in add_documents(world, truth, 12):
        world.lucca.inbox.records[doc_id].document["comment"] = "x" * 150_000


def test_a_send_batch_never_exceeds_what_sqs_accepts() -> None:
    scenario = Scenario(
        name="huge-items",
        config=WorldConfig(lucca={"category_weights": {"ready": 1.0}}),
        setup=_huge_items,
        horizon=HOUR,
    )
    figures = _figures(scenario)
    assert figures["polls"]["failed"] == 0
    assert figures["booked"] == 12


def _quiet(world: World, truth: dict[int, Truth]) -> None:
    """Nothing arrives."""


def test_outside_working_hours_the_inbox_is_listed_every_half_hour() -> None:
    # Monday 00:00 to 06:00 in Paris: the poller runs every 5 minutes, lists every 30.
    scenario = Scenario(name="night", config=WorldConfig(), setup=_quiet, horizon=6 * HOUR)
    polls = _figures(scenario)["polls"]
    assert polls["scheduled"] == 6 * 12 + 1  # at 00:00, 00:05, ... 06:00
    assert polls["listingRequests"] == 6 * 2  # at 00:00, 00:30, ... 05:30 (06:00 still runs)


def test_the_default_configuration_books_documents_as_they_are() -> None:
    # A Monday: documents lacking a label or a due date are booked without a PUT of invented
    # data (the packaged rules are empty).
    scenario = week(60, seed=5)
    scenario.horizon = DAY
    figures = _figures(scenario)
    assert figures["booked"] >= 40
    assert figures["lucca"]["byEndpoint"]["put"] == 0
    assert figures["updated"] == 0


def test_a_persons_edits_survive_the_pipelines_updates() -> None:
    # Every document is edited by a person: within 10 s of the listing that carried it ready
    # (while the pipeline holds that listing's copy: queued, deciding, updating), and again
    # 2-20 minutes after arrival. No PUT may put an older value back.
    scenario = week(80, seed=3, rules=EXAMPLE_RULES, edit_share=1.0, edit_after_listing_share=1.0)
    scenario.horizon = DAY
    figures = _figures(scenario)
    edits = figures["personEdits"]
    assert figures["lucca"]["byEndpoint"]["put"] > 0
    assert edits["documentsEdited"] >= 20  # the others were booked before their edit
    # Lucca honours no precondition on PUT: an edit landing in the quarter second between our
    # read and our PUT is lost whatever a client does. Outside that window, none.
    assert edits["revertedOutsideThatWindow"] == 0, edits["revertedIds"]
    assert edits["reverted"] <= 2
    assert edits["readToBookSeconds"]["n"] == figures["booked"]
