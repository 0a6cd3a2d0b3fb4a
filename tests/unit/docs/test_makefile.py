"""The Makefile leaves the AWS region to the person: no target's command runs with a region the
Makefile chose, so ``make replay ARGS="--stack …"`` finds a stack in the profile's region."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: A target added beside the Makefile's own: what a recipe's environment holds.
SHOW_REGION = 'show-region:\n\t@echo "region=[$$AWS_DEFAULT_REGION]"\n'


def region_seen_by_a_recipe(**environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_REGION")}
    env |= environment
    make = shutil.which("make")
    assert make is not None
    done = subprocess.run(  # noqa: S603 - our own make, our own Makefile
        [make, "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", "show-region"],
        input=SHOW_REGION,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return done.stdout.strip()


def test_a_recipe_gets_no_region_the_person_did_not_set() -> None:
    assert region_seen_by_a_recipe() == "region=[]"


def test_a_region_the_person_set_reaches_the_recipe_unchanged() -> None:
    assert region_seen_by_a_recipe(AWS_DEFAULT_REGION="eu-west-3") == "region=[eu-west-3]"
