"""``cleemy-booker``: one command for the operator's tools, none of them in the Lambda layer."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from cleemy_booker_tools import audit, cli

ROOT = Path(__file__).resolve().parents[3]
LAYER_PACKAGE = ROOT / "layers" / "domain" / "cleemy_booker"


@pytest.fixture
def audit_argv(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[str]]:
    seen: list[Sequence[str]] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        seen.append(list(argv or []))
        return 0

    monkeypatch.setattr(audit, "main", fake_main)
    return seen


def test_export_takes_the_ledgers_whereabouts_anywhere_on_the_line(
    audit_argv: list[Sequence[str]],
) -> None:
    argv = ["export", "--since", "2026-11-01", "--stack", "prod", "--format", "json"]

    assert cli.main(argv) == 0

    assert audit_argv == [
        ["--stack", "prod", "export", "--since", "2026-11-01", "--format", "json"]
    ]


def test_audit_passes_its_arguments_through(audit_argv: list[Sequence[str]]) -> None:
    assert cli.main(["audit", "--table", "T", "held"]) == 0
    assert audit_argv == [["--table", "T", "held"]]


def test_an_unknown_command_is_refused_with_the_list_of_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["book-everything"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'book-everything'" in err
    assert all(name in err for name in ("plan", "audit", "export", "replay"))


def test_each_command_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["replay", "--help"])
    assert done.value.code == 0
    assert "usage: cleemy-booker replay" in capsys.readouterr().out


def test_the_command_is_a_console_script_of_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cleemy-booker"] == "cleemy_booker_tools.cli:main"


def test_the_layer_ships_none_of_the_operators_tools() -> None:
    shipped = {path.stem for path in LAYER_PACKAGE.rglob("*.py")}
    assert not shipped & {"plan", "audit", "replay", "cli"}
