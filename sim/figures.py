"""What a run shows, computed from ground truth: Lucca's own records and request log, the
ledger, the queues, and the usage counters of the in-memory AWS and of Lambda."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local.lucca_simulator.clock import ticks_from_datetime
from sim.lambdas import ESM_POLLERS, LONG_POLL_SECONDS
from sim.lucca import VersionLog
from sim.world import LogSink, World

PRICES = Path(__file__).with_name("prices.json")
#: The template's alarms (each one standard-resolution alarm metric a month).
BOOKABLE = frozenset({"ready", "ready_needs_label", "credit_note"})
SECONDS_PER_MONTH = 365.25 / 12 * 86400


@dataclass
class Truth:
    """What the scenario knows about a document and the pipeline cannot see."""

    arrived: float
    bookable_at: float | None
    category: str
    fixed_at: float | None = None
    edits: list[float] = field(default_factory=list)
    #: The comment a person last typed: still there at the end unless someone reverted it.
    edited_comment: str | None = None
    #: A person's move in Lucca outside the pipeline: "delete", or "book" by hand.
    person_move: str | None = None
    #: A move the person came to make once the document had left the inbox (booked by us).
    person_move_too_late: str | None = None


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p95": rank(0.95), "max": ordered[-1], "n": len(ordered)}


def _applied_bookings(log: list[dict[str, Any]]) -> dict[int, float]:
    """When each document's first applied book happened (answered or not)."""
    booked: dict[int, float] = {}
    for entry in log:
        if entry["endpoint"] != "book" or entry["documentId"] is None:
            continue
        status = entry["status"]
        applied = (status is not None and 200 <= status < 300) or entry["faultAfterOperation"]
        if applied and entry["documentId"] not in booked:
            booked[entry["documentId"]] = entry["t"]
    return booked


def _ledger_states(world: World) -> tuple[dict[int, dict[str, Any]], int]:
    """Each document's state item, and how many holds were decisions taken again (a held
    document looked at anew: after its recheck time, a change, or a new configuration)."""
    states = {}
    holds: Counter[int] = Counter()
    for item in world.dynamodb.items("LedgerTable"):
        if not item["pk"]["S"].startswith("doc#"):
            continue
        if item["sk"]["S"] == "state":
            states[int(item["documentId"]["N"])] = item
        elif item.get("kind", {}).get("S") == "held":
            holds[int(item["documentId"]["N"])] += 1
    return states, sum(n - 1 for n in holds.values())


def _uncertain_proofs(world: World) -> dict[str, Any]:
    """Bookings a lost answer left uncertain: how many were confirmed, by which proof (the
    ledger's ``confirmedBy``), how many are still held for a person, and the requests spent on
    Lucca's booked documents to settle them."""
    by_proof: Counter[str] = Counter()
    held = 0
    for item in world.dynamodb.items("LedgerTable"):
        if not item["pk"]["S"].startswith("doc#"):
            continue
        if item["sk"]["S"] == "state":
            uncertain = '"book_uncertain:' in item.get("reasons", {}).get("S", "")
            held += item["status"]["S"] == "HELD" and uncertain
        elif item.get("kind", {}).get("S") == "booked":
            proof = json.loads(item["detail"]["S"]).get("confirmedBy")
            if proof:
                by_proof["booked documents" if proof.startswith("booked in") else "listing"] += 1
    requests = sum(1 for e in world.lucca._log if e["endpoint"] == "booked")
    return {"confirmedBy": dict(sorted(by_proof.items())), "stillHeld": held, "requests": requests}


def _dead_letters(world: World) -> list[dict[str, Any]]:
    return list(world.sqs.messages(world.dlq_url))


def compute(
    world: World,
    truth: dict[int, Truth],
    sink: LogSink,
    *,
    wall_seconds: float,
    listing_minimum: int,
    working_hours: tuple[int, int] | None = None,
    backlog: bool = True,
) -> dict[str, Any]:
    sim = world.sim
    log = list(world.lucca._log)
    records = world.lucca.inbox.records
    by_endpoint = Counter(e["endpoint"] for e in log)
    throttled = sum(1 for e in log if e["status"] == 429)
    applied = _applied_bookings(log)
    booked_ids = [i for i, r in records.items() if r.bookings > 0]
    # A person's booking by hand and ours of the same document would be two as well.
    double = [i for i in booked_ids if records[i].bookings + records[i].person_bookings > 1]
    updated = [i for i in booked_ids if records[i].puts > 0]
    booked = len(booked_ids)
    requests = len(log)
    minimum = booked + len(updated) + listing_minimum
    budget = world.template.parameters
    interval = float(budget["BudgetWindowSeconds"]) / float(budget["BudgetRequestsPerWindow"])
    first_request = log[0]["t"] if log else sim.start
    last_booking = max(applied.values(), default=first_request)
    drain = last_booking - first_request
    drain_minimum = max(0, minimum - 1) * interval  # n requests span n - 1 intervals

    fresh_bookable, fresh_arrival = [], []
    for doc_id, at in applied.items():
        known = truth.get(doc_id)
        if known is None:
            continue
        fresh_arrival.append(at - known.arrived)
        if known.bookable_at is not None and _in_hours(known.bookable_at, working_hours):
            fresh_bookable.append(max(0.0, at - known.bookable_at))

    states, holds_again = _ledger_states(world)
    dead = _dead_letters(world)
    dead_ids = {_document_id(m) for m in dead}
    queued_ids = {_document_id(m) for m in world.sqs.messages(world.queue_url)}
    reasons = Counter(
        m.get("MessageAttributes", {}).get("errorType", {}).get("StringValue")
        or "no reason (moved by SQS's redrive)"
        for m in dead
    )
    # Booked in the ledger, and by nobody in Lucca; a person's deletion is no invoice lost
    # (the ``people`` figures count those the ledger calls booked).
    lost = [
        i
        for i, s in states.items()
        if s["status"]["S"] == "BOOKED"
        and records.get(i) is not None
        and records[i].bookings + records[i].person_bookings == 0
        and not records[i].deleted_by_person
    ]
    stuck = []
    for doc_id, record in records.items():
        if not record.in_inbox or doc_id in dead_ids or doc_id in queued_ids:
            continue
        state = states.get(doc_id)
        status = state["status"]["S"] if state else None
        if status == "HELD":
            continue
        known = truth.get(doc_id)
        if known is not None and sim.now - known.arrived < 3600:
            continue
        last = _epoch(state["updatedAt"]["S"]) if state and "updatedAt" in state else None
        if last is None or sim.now - last > 3600:
            stuck.append(doc_id)
    held = sum(1 for i, s in states.items() if s["status"]["S"] == "HELD" and records[i].in_inbox)

    simulated = sim.now - sim.start
    usage = _usage(world, sink, simulated)
    cost = _cost(world, usage, simulated, booked)
    return {
        "documents": len(records),
        "booked": booked,
        "updated": len(updated),
        "held": held,
        "deadLettered": len(dead),
        "deadLetteredByReason": dict(sorted(reasons.items())),
        "lost": len(lost),
        "doubleBooked": len(double),
        "stuck": len(stuck),
        "stuckIds": sorted(stuck)[:20],
        "queuedWhileOnItsWay": world.queued_twice,
        "holdsLookedAtAgain": holds_again,
        "inInbox": sum(1 for r in records.values() if r.in_inbox),
        "queuedAtEnd": len(queued_ids),
        "crashes": dict(sorted(world.crashes.items())),
        "faultsInjected": dict(sorted(world.lucca.faults.injected.items())),
        "uncertainSettledBy": _uncertain_proofs(world),
        "lucca": {
            "requests": requests,
            "byEndpoint": {k: by_endpoint.get(k, 0) for k in ("list", "get", "put", "book")},
            "throttled429": throttled,
            "perBooked": _ratio(requests, booked),
            "perBookedExcludingListing": _ratio(requests - by_endpoint.get("list", 0), booked),
            "physicalMinimum": minimum,
            "perBookedMinimum": _ratio(minimum, booked),
        },
        # Drain time means something for a backlog; arrivals spread over days are not drained.
        "drainSeconds": round(drain, 1) if backlog else None,
        "drainMinimumSeconds": round(drain_minimum, 1) if backlog else None,
        "drainRatio": _ratio(drain, drain_minimum) if backlog else None,
        "freshnessBookableToBooked": _rounded(percentiles(fresh_bookable)),
        "freshnessArrivalToBooked": _rounded(percentiles(fresh_arrival)),
        "personEdits": _person_edits(world, truth, states),
        "people": _people(world, truth, states, dead_ids),
        "polls": _polls(world),
        "listingRequestsPerDay": _ratio(by_endpoint.get("list", 0), simulated / 86400),
        "tenantBudget": _tenant_budget(world, log, simulated),
        "pollerDynamodb": _poller_dynamodb(world),
        "uncertainBookings": _uncertain_bookings(world, states),
        "usage": usage,
        "cost": cost,
        "simulatedSeconds": round(simulated, 1),
        # Wall time differs from run to run: kept apart so the rest is identical for a seed.
        "wall": {
            "seconds": round(wall_seconds, 1),
            "simulatedPerWallSecond": round(simulated / wall_seconds, 1) if wall_seconds else None,
        },
    }


def _person_edits(
    world: World, truth: dict[int, Truth], states: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """What a person's edits met: none reverted by a PUT built from an older read; and how
    long before each book the version it was decided on was read, and which books went
    through on a version the gate never saw (an edit landed in that window)."""
    records = world.lucca.inbox.records
    edited = [i for i, known in truth.items() if known.edits]
    reverted = [i for i in edited if records[i].document.get("comment") != truth[i].edited_comment]
    versions = world.transport.versions
    # Lucca honours no precondition on PUT: an edit landing after our last read and before
    # our PUT is overwritten whatever a client does. Any other revert is the pipeline's fault.
    unavoidable = [i for i in reverted if _between_read_and_put(versions, i, truth[i].edits)]
    windows, unseen = [], []
    for doc_id, books in versions.books.items():
        booked_at, booked_version = books[0]
        decided = _decided_version(states.get(doc_id))
        if decided is None:
            continue
        reads = [at for at, version in versions.reads.get(doc_id, []) if version // 10 == decided]
        before = [at for at in reads if at <= booked_at]
        if before:
            windows.append(booked_at - max(before))
        if decided != booked_version // 10:
            unseen.append(doc_id)
    return {
        "documentsEdited": len(edited),
        "edits": sum(len(truth[i].edits) for i in edited),
        "reverted": len(reverted),
        "revertedIds": sorted(reverted)[:20],
        "revertedBetweenOurReadAndOurPut": len(unavoidable),
        "revertedOutsideThatWindow": len(reverted) - len(unavoidable),
        "readToBookSeconds": _rounded(percentiles(windows)),
        "bookedOnAVersionTheGateDidNotSee": len(unseen),
        "bookedOnAVersionTheGateDidNotSeeIds": sorted(unseen)[:20],
    }


def _people(
    world: World,
    truth: dict[int, Truth],
    states: dict[int, dict[str, Any]],
    dead_ids: set[int | None],
) -> dict[str, Any]:
    """A person's deletions and bookings by hand, and what the ledger recorded of them: gone
    (Lucca answered 404 before any booking call of ours), or anything else (held as possibly
    booked after a call of ours, booked on a listing's word, never looked at)."""
    records = world.lucca.inbox.records
    moved = {i: t.person_move for i, t in truth.items() if t.person_move is not None}
    status = {i: (states.get(i) or {}).get("status", {}).get("S", "(none)") for i in moved}
    gone = [i for i, s in states.items() if s["status"]["S"] == "GONE"]
    gone_unmoved = [i for i in gone if i not in moved]
    return {
        "movesTooLate": sum(1 for t in truth.values() if t.person_move_too_late is not None),
        "deletedByPerson": sum(1 for m in moved.values() if m == "delete"),
        "bookedByPerson": sum(1 for m in moved.values() if m == "book"),
        "recordedGone": len(gone),
        "goneIds": sorted(gone)[:20],
        # Gone in the ledger while Lucca still lists it, or with no person's move: the 404
        # came from something else.
        "goneButInTheInbox": sum(1 for i in gone if records[i].in_inbox),
        "goneWithoutAPersonsMove": len(gone_unmoved),
        "movedDeadLettered": sum(1 for i in moved if i in dead_ids),
        "movedBookedByUsToo": sum(1 for i in moved if records[i].bookings),
        "ledgerStatusOfMoved": dict(sorted(Counter(status.values()).items())),
    }


def _between_read_and_put(versions: VersionLog, doc_id: int, edits: list[float]) -> bool:
    """Some edit landed after a GET of ours and before the PUT that followed it."""
    gets = versions.gets.get(doc_id, [])
    for put in versions.puts.get(doc_id, []):
        read = max((at for at in gets if at <= put), default=None)
        if read is not None and any(read < edit < put for edit in edits):
            return True
    return False


def _decided_version(state: dict[str, Any] | None) -> int | None:
    """The version a booking was decided on, in microseconds of ticks (the ledger keeps
    ``modifiedAt`` to the microsecond; Lucca stamps in 100 ns ticks)."""
    stamp = (state or {}).get("modifiedAt", {}).get("S")
    if not stamp or state is None or state["status"]["S"] != "BOOKED":
        return None
    return ticks_from_datetime(datetime.fromisoformat(stamp)) // 10


def _polls(world: World) -> dict[str, Any]:
    runs = [p for p in world.polls if not p.get("failed")]
    per_poll = [int(p.get("requests", 0)) for p in runs]
    return {
        "mostRequestsInOnePoll": max(per_poll, default=0),
        "pollsThatListed": sum(1 for n in per_poll if n > 0),
        "scheduled": world.schedule.fired,
        "ran": len(world.polls),
        "failed": world.poll_failures,
        "listingRequests": sum(int(p.get("requests", 0)) for p in runs),
        "enqueued": sum(int(p.get("enqueued", 0)) for p in runs),
        "stoppedBecause": dict(
            sorted(Counter(_reason(str(p.get("stoppedBecause", ""))) for p in runs).items())
        ),
        "asyncDropped": world.poller_async.dropped,
        "asyncRetried": world.poller_async.retried,
    }


def _tenant_budget(world: World, log: list[dict[str, Any]], simulated: float) -> dict[str, Any]:
    """Our requests against what Lucca lets the whole tenant send (its rate limit over the
    run), and the busiest minute's share (minutes counted from the start)."""
    limit, window = world.lucca.config.rate_limit, world.lucca.config.window_seconds
    allowed = limit * simulated / window
    per_minute = Counter(int((e["t"] - world.sim.start) // 60) for e in log)
    peak_minute, peak = max(per_minute.items(), key=lambda kv: (kv[1], -kv[0]), default=(0, 0))
    return {
        "share": _ratio(len(log), allowed),
        "peakMinuteShare": _ratio(peak * window / 60, limit),
        "peakMinuteRequests": peak,
        "peakMinuteAt": _iso(world.sim.start + 60 * peak_minute) if peak else None,
    }


def _poller_dynamodb(world: World) -> dict[str, Any]:
    """The DynamoDB units each poller run was charged, cold starts apart: what a standing
    document costs a poll (each run's calls are told apart by its request id)."""
    units = world.dynamodb_by_invocation
    runs = world.poller.invocations
    cold = [units.write_units[rid] for rid, started_cold in runs if started_cold]
    warm = [units.write_units[rid] for rid, started_cold in runs if not started_cold]
    reads = sum(units.read_units[rid] for rid, _ in runs)
    return {
        "polls": len(runs),
        "coldStarts": len(cold),
        "writeUnits": round(sum(cold) + sum(warm), 1),
        "writeUnitsPerPoll": _ratio(sum(cold) + sum(warm), len(runs)),
        "writeUnitsPerColdStart": _ratio(sum(cold), len(cold)),
        "writeUnitsPerWarmPoll": _ratio(sum(warm), len(warm)),
        "writeUnitsMostInOnePoll": round(max(cold + warm, default=0.0), 1),
        "writeUnitsOfEachColdStart": [round(units, 1) for units in cold[:20]],
        "readUnitsPerPoll": _ratio(reads, len(runs)),
    }


def _uncertain_bookings(world: World, states: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Bookings a lost answer left uncertain, from the ledger's trail: documents held
    ``book_uncertain``, and ``BOOKING`` marks a listing or Lucca's booked documents confirmed
    (``confirmedBy``) with no hold in between. Settled once recorded BOOKED, with the wait from
    the first such hold (or from the mark); the rest still waiting at the end, with their ages."""
    trail: dict[int, list[tuple[float, str, str, bool]]] = {}
    for item in world.dynamodb.items("LedgerTable"):
        if not item["pk"]["S"].startswith("doc#") or not item["sk"]["S"].startswith("event#"):
            continue
        detail = json.loads(item["detail"]["S"])
        reasons = json.dumps(detail.get("reasons", []))
        trail.setdefault(int(item["documentId"]["N"]), []).append(
            (_epoch(item["at"]["S"]), str(detail.get("status")), reasons, "confirmedBy" in detail)
        )
    waits, ages = [], []
    for doc_id, events in trail.items():
        events.sort()
        state = states.get(doc_id)
        since = _uncertain_since(events, state)
        if since is None:
            continue
        booked = next(
            (at for at, status, _, _ in events if status == "BOOKED" and at >= since), None
        )
        if booked is None and state is not None and state["status"]["S"] == "BOOKED":
            booked = _epoch(state["updatedAt"]["S"])  # the state moved; its event came later
        if booked is None:
            ages.append(world.sim.now - since)
        else:
            waits.append(booked - since)
    return {
        "held": len(waits) + len(ages),
        "settled": len(waits),
        "waitSeconds": _rounded(percentiles(waits)),
        "unsettled": len(ages),
        "unsettledAgesSeconds": [round(a, 1) for a in sorted(ages, reverse=True)[:20]],
    }


def _uncertain_since(
    events: list[tuple[float, str, str, bool]], state: dict[str, Any] | None
) -> float | None:
    """When the document's booking became uncertain: its first ``book_uncertain`` hold, the
    ``BOOKING`` mark a confirmation (not the processor's own 2xx) settled, or the mark a
    document still sits in at the end (nothing settled it)."""
    for index, (at, status, why, confirmed) in enumerate(events):
        if status == "HELD" and "book_uncertain" in why:
            return at
        if status == "BOOKED" and confirmed:
            marks = [when for when, was, _, _ in events[:index] if was == "BOOKING"]
            return marks[-1] if marks else at
    if state is not None and state["status"]["S"] == "BOOKING":
        marks = [when for when, was, _, _ in events if was == "BOOKING"]
        return marks[-1] if marks else None
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _usage(world: World, sink: LogSink, simulated: float) -> dict[str, Any]:
    functions = {}
    for fn in (world.poller, world.processor):
        u = fn.usage
        functions[fn.name] = {
            "invocations": u.invocations,
            "coldStarts": u.cold_starts,
            "errors": u.errors,
            "timeouts": u.timeouts,
            "throttles": u.throttles,
            "mostAtOnce": u.max_concurrent,
            "billedSeconds": round(u.billed_seconds, 1),
            "gbSeconds": round(u.gb_seconds(fn.memory_mb), 1),
            "memoryMb": fn.memory_mb,
        }
    ddb = world.dynamodb.usage
    sqs = world.sqs.usage
    # Lambda's SQS pollers long-poll all the time; each empty 20 s poll is a billed request.
    idle_receives = int(ESM_POLLERS * simulated / LONG_POLL_SECONDS)
    return {
        "lambda": functions,
        "sqsRequests": sum(sqs.billed.values()),
        "sqsRequestsByAction": dict(sorted(sqs.calls.items())),
        "sqsIdleReceivesEstimated": idle_receives,
        "dynamodbReadUnits": round(sum(ddb.read_units.values()), 1),
        "dynamodbWriteUnits": round(sum(ddb.write_units.values()), 1),
        "dynamodbCallsByOperation": dict(sorted(ddb.calls.items())),
        "secretsManagerCalls": sum(world.secrets.calls.values()),
        "customMetrics": len(sink.metrics),
        "customMetricHours": len(sink.metric_hours),
        "customMetricNames": sorted({name for _, name, _ in sink.metrics}),
        "logBytes": sink.bytes,
        "xrayTraces": sum(fn.usage.invocations for fn in (world.poller, world.processor)),
        "schedulerInvocations": world.schedule.fired,
    }


def _cost(world: World, usage: dict[str, Any], simulated: float, booked: int) -> dict[str, Any]:
    prices = json.loads(PRICES.read_text())
    scale = SECONDS_PER_MONTH / simulated if simulated else 0.0
    gb_s = sum(f["gbSeconds"] for f in usage["lambda"].values())
    invocations = sum(f["invocations"] for f in usage["lambda"].values())
    architecture = world.template.parameters["Architecture"]
    gb_second = prices["lambda"]["arm64GbSecond" if architecture == "arm64" else "x86GbSecond"]
    variable = {
        "lambdaCompute": gb_s * gb_second,
        "lambdaRequests": invocations / 1e6 * prices["lambda"]["requestsPerMillion"],
        "sqs": (usage["sqsRequests"] + usage["sqsIdleReceivesEstimated"])
        / 1e6
        * prices["sqs"]["standardRequestsPerMillion"],
        "dynamodb": usage["dynamodbWriteUnits"]
        / 1e6
        * prices["dynamodb"]["writeRequestUnitsPerMillion"]
        + usage["dynamodbReadUnits"] / 1e6 * prices["dynamodb"]["readRequestUnitsPerMillion"],
        "secretsManagerCalls": usage["secretsManagerCalls"]
        / 1e4
        * prices["secretsManager"]["apiCallsPer10000"],
        "cloudwatchLogs": usage["logBytes"] / 1e9 * prices["cloudwatch"]["logsIngestedPerGb"],
        "xray": usage["xrayTraces"] / 1e6 * prices["xray"]["tracesRecordedPerMillion"],
        "scheduler": usage["schedulerInvocations"]
        / 1e6
        * prices["scheduler"]["invocationsPerMillion"],
    }
    hours_in_month = SECONDS_PER_MONTH / 3600
    # Custom metrics are billed per metric-month, prorated by the hours that had data.
    variable["customMetrics"] = (
        usage["customMetricHours"] / hours_in_month * prices["cloudwatch"]["customMetricMonth"]
    )
    monthly_fixed = {
        "secret": prices["secretsManager"]["secretMonth"],
        **_fixed_resources(world, prices),
    }
    per_month = {k: round(v * scale, 4) for k, v in variable.items()}
    per_month.update({k: round(v, 4) for k, v in monthly_fixed.items()})
    run_variable = sum(variable.values())
    return {
        "pricesDate": prices["date"],
        "region": prices["region"],
        "perMonthIfThisRunRepeated": per_month,
        "perMonthTotal": round(sum(per_month.values()), 2),
        "thisRunVariable": round(run_variable, 4),
        "per1000BookedVariable": round(run_variable / booked * 1000, 4) if booked else None,
    }


def _fixed_resources(world: World, prices: dict[str, Any]) -> dict[str, float]:
    """What the stack's alarms, dashboards and keys cost a month, whatever the traffic."""
    resources = [r for name, r in world.template.resources.items() if world.template.exists(name)]

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [r for r in resources if r["Type"] == kind]

    # An alarm is billed per metric it reads: a metric-math alarm for each metric in it.
    alarm_metrics = sum(
        max(1, sum(1 for q in a["Properties"].get("Metrics", []) if "MetricStat" in q))
        for a in of_type("AWS::CloudWatch::Alarm")
    )
    return {
        "alarms": alarm_metrics * prices["cloudwatch"]["standardAlarmMetricMonth"],
        "dashboard": len(of_type("AWS::CloudWatch::Dashboard"))
        * prices["cloudwatch"]["dashboardMonth"],
        "kmsKeys": len(of_type("AWS::KMS::Key")) * prices["kms"]["keyMonth"],
    }


def _reason(text: str) -> str:
    """A poll's ending without its particulars (request ids, statuses), so they add up."""
    return text.split(":", 1)[0].strip() or "(none)"


def _document_id(message: dict[str, Any]) -> int | None:
    try:
        return int(json.loads(message["Body"]).get("documentId"))
    except (ValueError, TypeError, AttributeError):
        return None


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _in_hours(at: float, hours: tuple[int, int] | None) -> bool:
    if hours is None:
        return True
    local = datetime.fromtimestamp(at, UTC) + timedelta(hours=1)  # Paris in winter (UTC+1)
    return local.weekday() < 5 and hours[0] <= local.hour < hours[1]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def _rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in values.items()}
