# SPDX-License-Identifier: GPL-2.0
"""Kernel style: each line's own scripts/checkpatch.pl passes every patch of its series and every mutant."""

import subprocess

import pytest

from harness.campaigns.mutants import available, mutant_path
from harness.kernel.patches import load_series
from harness.settings import REPO_ROOT

LINES = {"6.12": "plain_source", "7.3": "source_7_3"}  # patches/<line>/ -> the fixture giving that line's tree


def _patches(line: str) -> list[tuple[str, object, bool]]:
    """(line, patch, is a mutant) for the series and the mutants of patches/<line>/."""
    d = REPO_ROOT / "patches" / line
    series = [(line, p.path, False) for p in load_series(d).patches]
    return series + [(line, mutant_path(d, n), True) for n in available(d)]


PATCHES = [item for line in LINES for item in _patches(line)]


@pytest.mark.parametrize(("line", "patch", "mutant"), PATCHES, ids=[f"{ln}/{p.name}" for ln, p, _ in PATCHES])
def test_checkpatch_is_clean(request, line, patch, mutant):
    tree = request.getfixturevalue(LINES[line])
    script = tree / "scripts" / "checkpatch.pl"
    assert script.is_file(), f"the {line} tree has no {script}"
    # The series is meant for the list and carries sign-offs; mutants are deliberate bugs, never submitted.
    signoff = ["--no-signoff"] if mutant else []
    out = subprocess.run(["perl", str(script), "--no-tree", *signoff, "--show-types", str(patch)],
                         capture_output=True, text=True)
    total = next((line for line in out.stdout.splitlines() if line.startswith("total:")), "")
    assert total.startswith("total: 0 errors, 0 warnings"), f"{patch.name}: {total}\n{out.stdout[-3000:]}"


def test_the_mutants_are_ported_to_the_newest_line():
    assert len(available(REPO_ROOT / "patches" / "7.3")) >= 7
