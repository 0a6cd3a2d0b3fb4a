"""The pipeline under seeded chaos, checked against the simulator's ground truth.

Size and seed from the environment: ``CHAOS_DOCUMENTS`` (150), ``CHAOS_FAULT_RATE`` (0.1),
``CHAOS_SEED`` (7); ``CHAOS_MAX_RECEIVE_COUNT`` (10, the template's redrive policy).
``make chaos`` runs 1,000 documents at 12 %.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from local.lucca_simulator import Simulator
from tests.aws import Stack, stack_fixture
from tests.chaos.chaos import (
    SLOW_SECONDS,
    Chaos,
    ChaosSettings,
    CrashPlan,
    check,
    quiet_powertools,
    run_until_settled,
    seed_snapshot,
)
from tests.harness import handlers_env, simulator_fixture

SETTINGS = ChaosSettings.from_env()
#: The template's redrive policy: a message goes to the DLQ on its 11th receive.
MAX_RECEIVE_COUNT = int(os.environ.get("CHAOS_MAX_RECEIVE_COUNT", "10"))


#: Faults start later (``sim.configure`` in the test).
sim = simulator_fixture(
    invoices=SETTINGS.documents,
    seed=SETTINGS.seed,
    slow_seconds=SLOW_SECONDS,
    fault_retry_after_seconds=1,
)
stack = stack_fixture(max_receive_count=MAX_RECEIVE_COUNT)


@pytest.mark.timeout(max(300, int(SETTINGS.documents * 1.2) + 120))
def test_under_chaos_every_document_is_booked_once_held_or_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    started = time.monotonic()
    seeded = seed_snapshot(sim)
    rng = random.Random(f"{SETTINGS.seed}:plan")
    crashes = CrashPlan.draw(list(seeded.values()), SETTINGS.crash_rate, rng)
    chaos = Chaos(monkeypatch, SETTINGS, crashes)
    # The first poll dies part-way, after some claims and sends (not on a batch boundary).
    chaos.poller_dies_after = SETTINGS.documents // 3 + 3
    sim.configure(fault_rate=SETTINGS.fault_rate)

    with (
        quiet_powertools(monkeypatch),
        handlers_env(monkeypatch, stack, sim) as (poller, processor),
    ):
        run_until_settled(chaos, stack, poller, processor)

    sim.configure(fault_rate=0.0)
    outcome = check(sim, stack, seeded)
    elapsed = time.monotonic() - started
    stats = chaos.stats
    print(
        f"\nCHAOS seed {SETTINGS.seed}, fault rate {SETTINGS.fault_rate}: {outcome.summary()}\n"
        f"  our faults: crashes {dict(crashes.fired)}, processor timeouts {stats.timeouts} "
        f"({dict(chaos.kill.fired)}), duplicate deliveries {stats.duplicates_sent}, "
        f"poller crashes {stats.poller_crashes}; {stats.rounds} poll rounds, "
        f"{stats.invocations} processor invocations, {stats.records} records, "
        f"{stats.record_failures} record failures; wall time {elapsed:.1f} s\n"
        "  clock: COMPRESSED Lucca's 60 s window and the budget's to 1 s, and the visibility "
        "timeout to 0 (failed messages come back at once); NOT compressed: listing freshness, "
        "claim TTL, SQS delays, idempotency expiry. It checks invariants, not time: "
        "`make sim SCENARIO=faults` runs production constants."
    )
    assert not outcome.violations, "\n".join(outcome.violations[:40])
    assert outcome.lost == outcome.double_booked == 0
    assert outcome.booked_once + outcome.held + outcome.dead_lettered == outcome.documents
    assert outcome.faults_total > 0
    assert stats.poller_crashes == 1
