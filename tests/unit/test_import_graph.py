"""The project's import graph: no circles, and the layer imports nothing of the project's own
tools. Read from the source (every import, type-only ones too), so a circle hidden behind
``TYPE_CHECKING`` or a function-level import is found before it bites."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where first-party modules live, and the import name their files start from.
SOURCE_ROOTS = {
    ROOT / "layers" / "domain": ("cleemy_booker",),
    ROOT: ("bench", "sim", "local", "tests", "functions", "mutation", "tools"),
}
LAYER = "cleemy_booker"
#: Folders of generated copies and outputs, not the project's source.
GENERATED = frozenset({"__pycache__", "results", "work", "mutants"})


def first_party_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for base, packages in SOURCE_ROOTS.items():
        for package in packages:
            folder = base / package
            if not folder.is_dir():
                continue
            for path in folder.rglob("*.py"):
                parts = path.relative_to(base).with_suffix("").parts
                if any(p.startswith(".") or p in GENERATED for p in parts):
                    continue
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                modules[name] = path
    return modules


def imported_names(path: Path, module: str) -> Iterator[str]:
    """Every module name an import in ``path`` may bind (``from a import b``: ``a.b`` and ``a``)."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                yield f"{base}.{alias.name}"
            yield base


def import_graph() -> dict[str, set[str]]:
    modules = first_party_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in imported_names(path, name):
            # The most specific module the name is (``a.b.C`` is module ``a.b``).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_finder_sees_a_circle_when_there_is_one() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_relative_and_type_only_imports() -> None:
    graph = import_graph()
    assert "cleemy_booker.models" in graph["cleemy_booker.processor.core"]  # ``..models``
    assert "local.lucca_simulator.config" in graph["local.lucca_simulator.app"]  # relative


def test_no_module_imports_itself_back_through_others() -> None:
    assert circles(import_graph()) == []


def test_the_layer_imports_nothing_but_itself_of_the_project() -> None:
    outside = {
        (name, target)
        for name, targets in import_graph().items()
        if name.split(".")[0] == LAYER
        for target in targets
        if target.split(".")[0] != LAYER
    }
    assert outside == set()


#: What a function's cold start must not import: the other functions' machinery.
NOT_IMPORTED = {
    "inbox_poller": (
        "cleemy_booker.processor",
        "cleemy_booker.rules",
        "cleemy_booker.gate",
        "cleemy_booker.wiring.processor",
        "aws_lambda_powertools.utilities.idempotency",
    ),
    "morning_digest": (
        "cleemy_booker.client",
        "cleemy_booker.budget",
        "cleemy_booker.processor",
        "cleemy_booker.rules",
        "cleemy_booker.wiring.shared",
        "httpx",
    ),
    "document_processor": ("cleemy_booker.poller", "cleemy_booker.wiring.poller"),
}


@pytest.mark.parametrize("handler", sorted(NOT_IMPORTED))
def test_each_handler_imports_only_its_own_wiring(handler: str) -> None:
    path = ROOT / "functions" / handler / "app.py"
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(path)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "domain")}
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "cleemy_booker.observability" in loaded  # the handler really was imported
    assert loaded.isdisjoint(NOT_IMPORTED[handler]), sorted(
        loaded.intersection(NOT_IMPORTED[handler])
    )
