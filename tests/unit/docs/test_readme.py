"""The README names only what exists: every file or folder of the repository it names, and every
``make`` target it tells a person to run."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: The repository's top-level folders: a path the README names starts with one of them.
TOP_LEVEL = ("config", "tests", "layers", "functions", "tools", "local", "sim", "bench", "events")
#: What a command writes, so not in a fresh clone: named by the README as where to look.
GENERATED = ("sim/results/", "bench/results/")
#: ``sam local/remote invoke``: SAM's two commands, not a path of ours.
NOT_PATHS = ("local/remote",)
_PATH = re.compile(r"(?:(?<=file://)|(?<![\w./-]))((?:" + "|".join(TOP_LEVEL) + r")/[\w./{},*-]*)")
_MAKE = re.compile(r"\bmake ([a-z][a-z-]*)\b")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", flags=re.DOTALL)


def _expanded(path: str) -> list[str]:
    """``tests/{unit,e2e}`` is two paths; trailing punctuation is the sentence's."""
    path = path.rstrip(".,")
    match = re.search(r"\{([^}]*)\}", path)
    if match is None:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return list(
        itertools.chain.from_iterable(
            _expanded(head + each + tail) for each in match.group(1).split(",")
        )
    )


def named_paths(text: str) -> set[str]:
    found = {p for raw in _PATH.findall(text) for p in _expanded(raw)}
    return {p for p in found if not p.startswith(GENERATED + NOT_PATHS)}


def named_targets(text: str) -> set[str]:
    """``make X`` in code (a span or a block): what a person is told to run, not prose."""
    return {t for code in _CODE.findall(text) for t in _MAKE.findall(code)}


def test_every_path_the_readme_names_exists() -> None:
    missing = sorted(p for p in named_paths(README) if not (ROOT / p).exists())
    assert missing == []


def test_every_make_target_the_readme_names_is_in_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    assert sorted(named_targets(README) - targets) == []


def test_the_path_reader_finds_what_a_sentence_names() -> None:
    """The reader itself: a missing file in prose, in a URL-like argument and in braces."""
    text = "see `config/nope.json`, --value file://config/gone.json and tests/{unit,e2e}."
    assert named_paths(text) == {"config/nope.json", "config/gone.json", "tests/unit", "tests/e2e"}
    assert named_targets("to make up for it, run `make demo` then\n```\nmake sim\n```") == {
        "demo",
        "sim",
    }
