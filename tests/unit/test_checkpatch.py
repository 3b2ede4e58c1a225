# SPDX-License-Identifier: GPL-2.0
"""Kernel style: the 6.12 tree's own scripts/checkpatch.pl passes every patch of the 6.12 series and every mutant."""

import subprocess

import pytest

from harness.campaigns.mutants import available, mutant_path
from harness.kernel.patches import load_series
from harness.kernel.request import DEFAULT_PATCHES_DIR

SERIES_612 = DEFAULT_PATCHES_DIR / "6.12"  # plain_source is that line's tree
SERIES = [p.path for p in load_series(SERIES_612).patches]
PATCHES = SERIES + [mutant_path(SERIES_612, n) for n in available(SERIES_612)]


@pytest.fixture(scope="module")
def checkpatch(plain_source):
    script = plain_source / "scripts" / "checkpatch.pl"
    assert script.is_file(), f"the default source tree has no {script}"
    return script


@pytest.mark.parametrize("patch", PATCHES, ids=[p.name for p in PATCHES])
def test_checkpatch_is_clean(checkpatch, patch):
    # The series is meant for the list and carries sign-offs; mutants are deliberate bugs, never submitted.
    signoff = [] if patch in SERIES else ["--no-signoff"]
    out = subprocess.run(["perl", str(checkpatch), "--no-tree", *signoff, "--show-types", str(patch)],
                         capture_output=True, text=True)
    total = next((line for line in out.stdout.splitlines() if line.startswith("total:")), "")
    assert total.startswith("total: 0 errors, 0 warnings"), f"{patch.name}: {total}\n{out.stdout[-3000:]}"
