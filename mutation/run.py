"""Mutation testing of one domain module with mutmut 3: ``make mutate MODULE=ledger``.

mutmut 3 expects the code it mutates under ``./``, ``src/`` or ``source/`` and derives each
mutant's module name from its path, while the domain package lives in ``layers/domain/`` (the
Lambda layer's folder). So this script stages a copy of the project in
``mutation/work/<module>/``: the package as ``src/cleemy_booker``, the rest of what the tests read
(tests, simulator, handlers, config) linked in, and a ``pyproject.toml`` made of the project's
``[tool.mutmut]`` and pytest settings plus the module's own: the file to mutate
(``only_mutate``) and the fast tests relevant to it (``TESTS`` below). mutmut then copies the
stage into ``mutants/``, mutates the one module and, for each mutant, runs only the selected tests
that call the mutated function (its per-function test selection). Nothing in the working tree is
modified; the stage is rebuilt on every run (``--keep`` reuses it, and mutmut's cache with it).

Left out of every module's tests: ``tests/e2e`` (needs the emulator), ``tests/chaos`` (minutes
long), the simulation's and the simulator's tests (``tests/unit/sim``, ``tests/unit/simulator``:
weeks of virtual time, servers and subprocesses), the template and layer tests, and
``template/test_security.py`` and ``test_import_graph.py``, which read ``layers/domain`` itself
(a subprocess would not see the mutant). At the end the score is printed, the survivors' names
are written to ``mutation/work/<module>.survivors`` (``--survivors`` tests only those again, e.g.
after adding tests) and their diffs to ``mutation/work/<module>.survivors.txt``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = "layers/domain"
PACKAGE = ROOT / LAYER / "cleemy_booker"
WORK = ROOT / "mutation" / "work"
#: What the tests read besides themselves and the package (linked into the stage).
LINKED = (
    "tests",
    "local",
    "sim",
    "bench",
    "tools",
    "functions",
    "config",
    "events",
    "template.yaml",
)

#: The one fast end-to-end test of exactly-once (a few seconds): the rest of the pipeline tests
#: are simulations of a minute or more each, as are ``functions/test_bad_input.py`` (80 documents
#: driven through the handlers, ~100 s), ``tools/test_replay.py`` and ``test_export.py``: a mutant
#: no test kills runs every selected test that calls it, so they would make a module take hours.
DUPLICATES = (
    "tests/integration/test_pipeline.py::test_duplicate_and_replayed_messages_book_nothing_again"
)
#: The processor's 429s counted per record, among the wiring's tests (the rest of them are the
#: wiring's own, selected for ``wiring.processor``).
PROCESSOR_THROTTLED = (
    "tests/unit/wiring/test_wiring_processor.py::"
    "test_the_processor_emits_the_429s_of_each_record_and_nothing_when_there_were_none"
)
#: Tests that read ``layers/domain`` by path (the stage has the package under ``src/``).
READS_THE_LAYER_FOLDER = (
    "tests/unit/rules/test_rules.py::test_packaged_default_is_valid_json_inside_the_package",
)
#: Per module, the fast tests that exercise it: its own behaviour modules (``tests/unit`` is laid
#: out as the package) and the other fast tests that call it.
TESTS: dict[str, tuple[str, ...]] = {
    "budget": (
        "tests/unit/test_budget.py",
        "tests/unit/processor/test_processor_edits.py",
    ),
    "listing": (
        "tests/unit/test_listing.py",
        "tests/unit/poller/test_poller_reconciliation.py",
    ),
    "ledger": (
        # Its own tests: the processor's, the runtime's and the digest's also call it, but each
        # survivor would run them all (a minute or more apiece on a shared machine).
        "tests/unit/ledger/test_ledger.py",
        "tests/unit/test_novelty.py",
        "tests/unit/poller/test_poller_reconciliation.py",
        "tests/unit/processor/test_processor_document_summary.py",
        DUPLICATES,
    ),
    "poller": (
        "tests/unit/poller/test_poller.py",
        "tests/unit/poller/test_poller_parts.py",
        "tests/unit/poller/test_poller_reconciliation.py",
        "tests/unit/wiring/test_wiring_poller.py",
        "tests/unit/test_listing.py",
        DUPLICATES,
    ),
    "processor": (
        "tests/unit/processor/test_processor_exactly_once.py",
        "tests/unit/processor/test_processor_parts.py",
        "tests/unit/processor/test_processor_edits.py",
        "tests/unit/processor/test_processor_document_summary.py",
        PROCESSOR_THROTTLED,
        "tests/unit/poller/test_poller_reconciliation.py",
        DUPLICATES,
    ),
    # The functions' wiring (``cleemy_booker/wiring/<name>.py``): a dotted module name.
    "wiring.poller": (
        "tests/unit/wiring/test_wiring_poller.py",
        "tests/unit/poller/test_poller_reconciliation.py",
    ),
    "wiring.processor": (
        "tests/unit/wiring/test_wiring_processor.py",
        "tests/unit/processor/test_processor_document_summary.py",
        # The handler's record-level decisions (defer, dead-letter, retries exhausted) driven
        # through the runtime on the in-process simulator: seconds each.
        "tests/unit/processor/test_processor_exactly_once.py",
        "tests/unit/processor/test_processor_edits.py",
        DUPLICATES,
    ),
    "models": (
        "tests/unit/test_models.py",
        "tests/unit/test_client.py",
        "tests/unit/test_gate.py",
        "tests/unit/rules/test_rules.py",
        "tests/unit/processor/test_processor_edits.py",
    ),
}


#: ``--core``: per module, the functions of the exactly-once machinery (mutmut's names, globs):
#: claims, leases, number claims, forward-only marks, the state written with each decision.
CORE: dict[str, tuple[str, ...]] = {
    # The ledger is a package: each name is ``<submodule>.<mutmut's function name>``. mutmut
    # leaves decorated functions alone, so properties (``ClaimResult.new``) have no mutants.
    "ledger": tuple(
        f"cleemy_booker.ledger.{name}__mutmut_*"
        for name in (
            "states.xǁDocumentStatesǁclaim_for_queue",
            "states.xǁDocumentStatesǁrelease_claim",
            "states.xǁDocumentStatesǁextend_claim",
            "states.xǁDocumentStatesǁrecord",
            "states.xǁDocumentStatesǁstate",
            "states.xǁDocumentStatesǁconfirm_booked",
            "numbers.xǁInvoiceNumbersǁclaim_number",
            "numbers.xǁInvoiceNumbersǁfind_duplicate",
            "numbers.xǁInvoiceNumbersǁrelease_number",
            "leases.xǁLeasesǁacquire_lease",
            "leases.xǁLeasesǁrelease_lease",
            "markers.xǁMarkersǁ_advance",
            "markers.xǁMarkersǁmark_listing_complete",
            "markers.xǁMarkersǁlast_complete_listing",
            "markers.xǁMarkersǁrecord_discrepancy",
            "table.xǁLedgerTableǁupdate_if",
            "queries.xǁLedgerQueriesǁuncertain_bookings",
            "items.x__claimable_after",
            "items.x__state_update",
            "items.x__state_from_item",
            "items.x__old_item",
            "items.x__status_of",
            "items.x__number_key",
        )
    ),
    "processor": tuple(
        f"cleemy_booker.processor.{name}__mutmut_*"
        for name in (
            "core.xǁDocumentProcessorǁprocess",
            "core.xǁ_AttemptPartsǁ_update_and_book",
            "core.xǁ_AttemptPartsǁprocess",
            "numbers.xǁNumberGuardǁclaim",
            "numbers.xǁNumberGuardǁrelease",
            "booking.xǁBookingǁbook",
            "booking.xǁBookingǁ_booking_not_sent",
            "booking.xǁBookingǁ_refused_after_a_possible_booking",
            "deciding.xǁVerdictsǁunconfirmed",
            "booking.xǁBookingǁnot_in_inbox",
            "numbers.x_was_booking",
        )
    ),
    "poller": tuple(
        f"cleemy_booker.poller.{name}__mutmut_*"
        for name in (
            "core.xǁInboxPollerǁrun",
            "claims.xǁClaimsǁclaim",
            "claims.xǁClaimsǁrelease",
            "reconciliation.xǁReconciliationǁcheck_refused",
            "confirmation.xǁConfirmationǁone_snapshot",
            "confirmation.xǁConfirmationǁconfirm_bookings",
            "confirmation.x_saw_whole_inbox",
            "confirmation.x__before",
            "enqueue.xǁQueueSenderǁflush",
            "enqueue.xǁQueueSenderǁ_send_batch",
            "enqueue.x__batch_size",
            "refused.xǁRefusedClaimsǁstill_refused",
            "refused.xǁRefusedClaimsǁremember",
            "refused.xǁRefusedClaimsǁforget_all_unless",
        )
    ),
}


def selected_tests(module: str) -> list[str]:
    """The module's tests that exist (files move; a missing one is skipped, not fatal)."""
    return [test for test in TESTS[module] if (ROOT / test.split("::")[0]).exists()]


def toml_value(value: Any) -> str:
    """A TOML value for the strings, numbers, booleans and lists this config holds (JSON's
    spelling of them is TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def toml_table(name: str, table: dict[str, Any]) -> str:
    lines = [f"[{name}]"] + [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def source_path(module: str) -> str:
    """``wiring.poller`` -> ``wiring/poller.py``; a sub-package (``ledger``) -> ``ledger/*``,
    every module in it (mutmut's ``only_mutate`` takes globs), inside the package."""
    relative = module.replace(".", "/")
    return f"{relative}/*" if (PACKAGE / relative).is_dir() else f"{relative}.py"


def stage(module: str, stage_dir: Path, tests: list[str]) -> None:
    """The project as mutmut expects it, with the package under ``src/``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True)
    shutil.copytree(
        PACKAGE, stage_dir / "src" / "cleemy_booker", ignore=shutil.ignore_patterns("__pycache__")
    )
    linked = [name for name in LINKED if (ROOT / name).exists()]
    for name in linked:
        (stage_dir / name).symlink_to(ROOT / name)
    mutmut = dict(project["tool"].get("mutmut", {}))
    mutmut |= {
        "source_paths": ["src/cleemy_booker"],
        "only_mutate": [f"src/cleemy_booker/{source_path(module)}"],
        "also_copy": [name for name in linked if name != "tests"],
        "pytest_add_cli_args_test_selection": tests
        + [f"--deselect={test}" for test in READS_THE_LAYER_FOLDER],
    }
    pytest_ini = dict(project["tool"]["pytest"]["ini_options"])
    # The tests import the package from mutants/src (mutmut puts it first on sys.path), never
    # from layers/domain; the rest (``tests``, ``local``, ``sim``, ``tools``) as they do.
    pytest_ini["pythonpath"] = [p for p in pytest_ini.get("pythonpath", []) if p != LAYER]
    (stage_dir / "pyproject.toml").write_text(
        "# Generated by mutation/run.py; rebuilt on every run.\n"
        + toml_table("tool.mutmut", mutmut)
        + "\n"
        + toml_table("tool.pytest.ini_options", pytest_ini)
    )


def mutmut(stage_dir: Path, *args: str, capture: bool = False) -> str:
    command = [sys.executable, "-m", "mutmut", *args]
    env = os.environ | {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    if capture:
        done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            command, cwd=stage_dir, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout
    subprocess.run(command, cwd=stage_dir, env=env, check=True)  # noqa: S603 - as above
    return ""


def mutmut_show(stage_dir: Path, names: list[str]) -> str:
    """``mutmut show`` of every name, in one process (one each would take a second apiece)."""
    script = (
        "import sys\n"
        "from mutmut.__main__ import show\n"
        "for name in sys.argv[1:]:\n"
        "    show.callback(name)\n"
        "    print()\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", script, *names],
        cwd=stage_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def statuses(stage_dir: Path, patterns: list[str]) -> dict[str, str]:
    """Every mutant's status (``mutmut results``), only those ``patterns`` name if any."""
    found: dict[str, str] = {}
    for line in mutmut(stage_dir, "results", "--all", "true", capture=True).splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)):
            found[name] = status
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("module", choices=sorted(TESTS))
    parser.add_argument("--max-children", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--keep", action="store_true", help="reuse the stage and mutmut's cache")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="only the mutants the module's last run left alive (after adding tests)",
    )
    parser.add_argument(
        "--core", action="store_true", help="only the module's exactly-once functions (CORE)"
    )
    parser.add_argument("mutants", nargs="*", help="only these mutants (mutmut's names or globs)")
    args = parser.parse_args()
    stage_dir = WORK / args.module
    survivors_list = WORK / f"{args.module}.survivors"
    patterns = list(args.mutants)
    if args.survivors:  # already within the last run's scope (``--core`` or not)
        patterns += survivors_list.read_text().split()
    elif args.core:
        patterns += CORE.get(args.module, ())
    tests = selected_tests(args.module)
    if not (args.keep and stage_dir.exists()):
        stage(args.module, stage_dir, tests)
    print(f"mutating cleemy_booker/{source_path(args.module)}; tests: {' '.join(tests)}")
    started = time.monotonic()
    mutmut(stage_dir, "run", "--max-children", str(args.max_children), *patterns)
    elapsed = time.monotonic() - started
    found = statuses(stage_dir, patterns)
    counts = Counter(found.values())
    survivors = sorted(name for name, status in found.items() if status == "survived")
    survivors_list.write_text("".join(f"{name}\n" for name in survivors))
    (WORK / f"{args.module}.survivors.txt").write_text(
        mutmut_show(stage_dir, survivors) if survivors else "no survivors\n"
    )
    # A timeout is a mutant the tests caught (it hung): counted with the killed ones.
    killed = counts["killed"] + counts["timeout"]
    total = len(found)
    score = 100 * killed / total if total else 0.0
    print(
        f"\n{args.module}: killed {killed} / {total} ({score:.1f} %) in {elapsed / 60:.1f} min; "
        + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    )
    print(
        f"survivors and their diffs: {(WORK / (args.module + '.survivors.txt')).relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
