"""One scenario's figures as a table a person reads."""

from __future__ import annotations

from typing import Any


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _fresh(p: dict[str, Any]) -> str:
    if not p.get("n"):
        return "-"
    return f"p50 {_duration(p['p50'])}, p95 {_duration(p['p95'])}, max {_duration(p['max'])}"


def table(result: dict[str, Any]) -> str:
    f = result["figures"]
    c = result["constants"]
    lucca = f["lucca"]
    usage = f["usage"]
    cost = f["cost"]
    by = lucca["byEndpoint"]
    lam = usage["lambda"]
    gbs = sum(v["gbSeconds"] for v in lam.values())
    compressed = ", ".join(c["compressed"]) or "none"
    rows = [
        (
            "documents / booked / updated",
            f"{f['documents']:,} / {f['booked']:,} / {f['updated']:,}",
        ),
        ("held (with reason) / dead-lettered", f"{f['held']:,} / {f['deadLettered']:,}"),
        ("dead-lettered by reason", _reasons(f["deadLetteredByReason"])),
        ("LOST / DOUBLE-BOOKED / STUCK", f"{f['lost']} / {f['doubleBooked']} / {f['stuck']}"),
        ("queued again while on its way", f"{f['queuedWhileOnItsWay']:,}"),
        ("holds looked at again (held anew)", f"{f['holdsLookedAtAgain']:,}"),
        (
            "Lucca requests per booked invoice",
            f"{_num(lucca['perBooked'], 4)} "
            f"(physical minimum {_num(lucca['perBookedMinimum'], 4)})",
        ),
        ("  excluding listing", _num(lucca["perBookedExcludingListing"], 4)),
        (
            "  requests: list / get / put / book",
            f"{by['list']:,} / {by['get']:,} / {by['put']:,} / {by['book']:,}",
        ),
        ("  answered 429", f"{lucca['throttled429']:,}"),
        (
            "drain, first request -> last booking",
            f"{_duration(f['drainSeconds'])} = {_num(f['drainRatio'], 3)} x the budget's minimum "
            f"({_duration(f['drainMinimumSeconds'])})"
            if f["drainSeconds"] is not None
            else "- (arrivals over days: nothing to drain)",
        ),
        ("freshness, bookable -> booked", _fresh(f["freshnessBookableToBooked"])),
        ("freshness, arrival -> booked", _fresh(f["freshnessArrivalToBooked"])),
        (
            "person's edits: edited / REVERTED",
            f"{f['personEdits']['documentsEdited']:,} / {f['personEdits']['reverted']:,} "
            f"({f['personEdits']['revertedBetweenOurReadAndOurPut']:,} of them between our "
            "read and our PUT: no precondition on PUT)",
        ),
        ("read the decision was made on -> book", _fresh(f["personEdits"]["readToBookSeconds"])),
        (
            "  booked on a version the gate did not see",
            f"{f['personEdits']['bookedOnAVersionTheGateDidNotSee']:,}",
        ),
        (
            "person's moves: deleted / booked by hand",
            f"{f['people']['deletedByPerson']:,} / {f['people']['bookedByPerson']:,}; "
            f"recorded gone {f['people']['recordedGone']:,}, dead-lettered "
            f"{f['people']['movedDeadLettered']:,} ({f['people']['movesTooLate']:,} more came "
            "after our booking)",
        ),
        ("  ledger status of the moved ones", _reasons(f["people"]["ledgerStatusOfMoved"])),
        (
            "polls: scheduled / ran / failed",
            f"{f['polls']['scheduled']:,} / {f['polls']['ran']:,} / {f['polls']['failed']:,}",
        ),
        (
            "  polls that listed / most requests in one",
            f"{f['polls']['pollsThatListed']:,} / {f['polls']['mostRequestsInOnePoll']:,}",
        ),
        ("  poll ended because", _reasons(f["polls"]["stoppedBecause"])),
        ("listing requests a day", _num(f["listingRequestsPerDay"], 1)),
        ("tenant's budget spent: run / peak minute", _budget(f["tenantBudget"])),
        ("poller DynamoDB WRU: per poll / cold / warm", _poller_writes(f["pollerDynamodb"])),
        ("uncertain bookings: held / settled", _uncertain(f["uncertainBookings"])),
        ("  wait, uncertain -> booked", _fresh(f["uncertainBookings"]["waitSeconds"])),
        ("  unsettled at the end, oldest", _ages(f["uncertainBookings"])),
        (
            "Lambda: invocations / cold / timeouts",
            " ; ".join(
                f"{name} {v['invocations']:,} / {v['coldStarts']:,} / {v['timeouts']:,}"
                for name, v in lam.items()
            ),
        ),
        ("Lambda GB-s (incl. budget waits)", f"{gbs:,.0f}"),
        (
            "SQS requests / DynamoDB RRU / WRU",
            f"{usage['sqsRequests']:,} (+{usage['sqsIdleReceivesEstimated']:,} idle polls est.)"
            f" / {usage['dynamodbReadUnits']:,.0f} / {usage['dynamodbWriteUnits']:,.0f}",
        ),
        (
            "Secrets Manager calls / custom metrics / log bytes",
            f"{usage['secretsManagerCalls']:,} / {usage['customMetrics']} / {usage['logBytes']:,}",
        ),
        (
            "AWS cost a month at this run's pace",
            f"${cost['perMonthTotal']:,.2f} ({_biggest(cost['perMonthIfThisRunRepeated'])})",
        ),
        ("AWS cost per 1,000 booked (usage only)", f"${_num(cost['per1000BookedVariable'], 4)}"),
        ("crashes injected", _reasons(f["crashes"])),
        ("Lucca faults injected", _reasons(f["faultsInjected"])),
        ("uncertain bookings settled by", _uncertain_proofs(f.get("uncertainSettledBy"))),
        (
            "simulated / wall",
            f"{_duration(f['simulatedSeconds'])} in {f['wall']['seconds']:.0f} s = "
            f"{_num(f['wall']['simulatedPerWallSecond'])} x",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    cut = f["drained"] is False
    lines = [
        f"== {result['scenario']} (seed {result['seed']})"
        + (" -- CUT at the horizon before it drained ==" if cut else " =="),
        f"   {result['description']}",
        f"   constants: Lucca {c['luccaRateLimit']}/{c['luccaWindowSeconds']:g} s, budget "
        f"{c['budget']}, schedule {c['schedule']}, timeouts {c['pollerTimeout']:g}/"
        f"{c['processorTimeout']:g} s, claim {c['claimTtlSeconds']} s, listing fresh "
        f"{c['listingFreshSeconds']} s, visibility {c['visibilityTimeout']} s, "
        f"maxReceiveCount {c['maxReceiveCount']}; compressed: {compressed}",
    ]
    lines += [f"   {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)


def _uncertain_proofs(found: dict[str, Any] | None) -> str:
    """How the bookings a lost answer left uncertain were settled, how many wait for a person,
    and the requests Lucca's booked documents cost (absent from results made before)."""
    if found is None:
        return "-"
    proofs = _reasons(found["confirmedBy"])
    requests = found["requests"]
    return f"{proofs}; still held {found['stillHeld']}; {requests} booked-documents requests"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _budget(budget: dict[str, Any]) -> str:
    return (
        f"{_share(budget['share'])} / {_share(budget['peakMinuteShare'])} "
        f"({budget['peakMinuteRequests']:,} requests in the minute from {budget['peakMinuteAt']})"
    )


def _poller_writes(ddb: dict[str, Any]) -> str:
    return (
        f"{_num(ddb['writeUnitsPerPoll'], 2)} / {_num(ddb['writeUnitsPerColdStart'], 1)} / "
        f"{_num(ddb['writeUnitsPerWarmPoll'], 2)} ({ddb['coldStarts']:,} cold starts in "
        f"{ddb['polls']:,} polls; most in one {_num(ddb['writeUnitsMostInOnePoll'])})"
    )


def _uncertain(uncertain: dict[str, Any]) -> str:
    return f"{uncertain['held']:,} / {uncertain['settled']:,}"


def _ages(uncertain: dict[str, Any]) -> str:
    if not uncertain["unsettled"]:
        return "none"
    oldest = ", ".join(_duration(a) for a in uncertain["unsettledAgesSeconds"][:5])
    return f"{uncertain['unsettled']:,} ({oldest})"


def _reasons(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{name or '(none)'} {n:,}" for name, n in counts.items())


def _biggest(parts: dict[str, float]) -> str:
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} ${value:.2f}" for name, value in top)
