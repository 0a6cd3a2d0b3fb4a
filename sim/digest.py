"""The morning digest a person would read after a run, composed from the run's own ledger (the
in-memory DynamoDB) by the package's digest functions: what the pipeline told people, beside
what the figures measured. Trails are not read (``max_trails=0``): the digest's reads stay
out of the run's DynamoDB figures as far as they can."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cleemy_booker.digest import Health, compose, gather
from cleemy_booker.ledger import Ledger
from sim.world import World

#: Lines per list in the printed digest: enough to see each section's shape.
LIST_LIMIT = 10


def digest_text(world: World) -> str:
    """The digest for the whole run (from its first instant to five minutes before its end)."""
    env = world.environments["processor"]
    ledger = Ledger(world.dynamodb, env["LEDGER_TABLE"], clock=world.sim.time)  # type: ignore[arg-type]
    now = world.sim.now
    data = gather(ledger, now=now, first_window_seconds=now - world.sim.start, max_trails=0)
    dead_letters = len(list(world.sqs.messages(world.dlq_url)))
    digest = compose(
        data,
        Health(dead_letters=dead_letters),
        stack=world.template.resolve({"!Ref": "AWS::StackName"}),
        zone=ZoneInfo("Europe/Paris"),
        all_clear=True,
        list_limit=LIST_LIMIT,
    )
    if digest is None:  # never with all_clear; said plainly rather than hidden
        return "(no digest: nothing to say)"
    return f"Subject: {digest.subject}\n\n{digest.text}"
