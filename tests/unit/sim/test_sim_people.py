"""A person's moves between our listing and our booking, on the simulation's virtual clock:
documents a person deletes or books by hand are recorded gone, none reaches the dead-letter
queue, none is lost, booked twice or stuck, and the digest tells them apart."""

from __future__ import annotations

import random

from sim.figures import Truth
from sim.scenarios import DAY, _edits_right_after_listing, people, run
from sim.world import World


def test_a_persons_deletions_and_bookings_by_hand_are_recorded_gone_not_failed() -> None:
    scenario = people(80, seed=3, delete=0.15, book=0.15)
    scenario.horizon = DAY
    moves = scenario.setup

    def setup(world: World, truth: dict[int, Truth]) -> None:
        # A second person reacting to the same listings: both are told of each one.
        moves(world, truth)
        _edits_right_after_listing(world, truth, random.Random("edits"), 1.0)

    scenario.setup = setup

    result = run(scenario)

    figures, people_figures = result["figures"], result["figures"]["people"]
    assert people_figures["deletedByPerson"] > 0
    assert people_figures["bookedByPerson"] > 0
    assert figures["personEdits"]["documentsEdited"] > 0
    assert people_figures["recordedGone"] > 0
    assert people_figures["goneWithoutAPersonsMove"] == 0
    assert people_figures["goneButInTheInbox"] == 0
    assert people_figures["movedBookedByUsToo"] == 0
    assert figures["deadLettered"] == 0
    assert (figures["lost"], figures["doubleBooked"], figures["stuck"]) == (0, 0, 0)
    gone = people_figures["recordedGone"]
    noun = "document" if gone == 1 else "documents"
    assert f"{gone} {noun} left the inbox before the booker booked" in result["report"]
