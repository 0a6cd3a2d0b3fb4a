"""The pinned versions of a requirements or constraints file, by normalised name."""

from __future__ import annotations

import re
from pathlib import Path


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not pinned to one version"
        pins[normalised(re.sub(r"\[.*\]", "", name))] = version.strip()
    return pins
