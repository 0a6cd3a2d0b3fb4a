"""One entry point for the operator's commands: ``cleemy-booker COMMAND [ARGS]``.

Each command keeps its own parser (and ``--help``); this only picks the command. ``export`` is
``audit export`` with the ledger's whereabouts (``--stack``/``--table``/``--endpoint-url``)
accepted anywhere on the line, the way an accountant would type it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cleemy_booker_tools import audit, doctor, plan, replay

USAGE = """usage: cleemy-booker COMMAND [ARGS]

commands:
  plan     what the pipeline would do with each inbox document (reads Lucca, changes nothing)
  audit    what happened to a document, which are held and why (the ledger)
  export   one row per document booked in a period, for the books (csv or json)
  replay   move dead-lettered documents back to the queue once their cause is fixed
  doctor   is a deployed stack, and its Lucca tenant, ready? (reads only; exit 0 when nothing
           blocks)

'cleemy-booker COMMAND --help' tells each command's arguments."""


def _export(argv: Sequence[str]) -> int:
    where = argparse.ArgumentParser(add_help=False)
    for option in ("--stack", "--table", "--endpoint-url"):
        where.add_argument(option)
    found, rest = where.parse_known_args(argv)
    located = [
        arg
        for option, value in (
            ("--stack", found.stack),
            ("--table", found.table),
            ("--endpoint-url", found.endpoint_url),
        )
        if value is not None
        for arg in (option, value)
    ]
    return audit.main([*located, "export", *rest])


#: Each command's ``main``, looked up when it runs (so a test may stand in for one).
COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "plan": lambda argv: plan.main(argv),
    "audit": lambda argv: audit.main(argv),
    "export": _export,
    "replay": lambda argv: replay.main(argv),
    "doctor": lambda argv: doctor.main(argv),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"cleemy-booker: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return COMMANDS[command](rest)
