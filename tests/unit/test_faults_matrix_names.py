# SPDX-License-Identifier: GPL-2.0
"""A matrix target cannot name a directory outside --out (issue 21 item 7): `..` and `.` are refused at start,
exit 2, and nothing beside --out is touched. Through the real CLI."""

from __future__ import annotations

import subprocess

import pytest
from helpers import CLI


@pytest.mark.parametrize("name", ["..", ".", ".logs"])
def test_a_dot_target_is_refused_and_nothing_outside_out_is_touched(tmp_path, name):
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(f"[[target]]\nname = '{name}'\nkind = 'build'\nsource = 'debian-6.12'\nseries = true\n"
                      "default = true\n")
    (tmp_path / "known-failures.toml").write_text("")
    out = tmp_path / "results" / "out"
    out.mkdir(parents=True)
    beside = tmp_path / "results" / "logs"
    beside.mkdir()
    (beside / "keep-me").write_text("not the matrix's to remove\n")
    (tmp_path / "results" / "junit.xml").write_text("<testsuites/>\n")
    res = subprocess.run([CLI, "matrix", "--matrix", str(matrix), "--out", str(out), "--cache-dir",
                          str(tmp_path / "cache")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "name must start with a letter or digit" in res.stderr, res.stderr[-2000:]
    assert (beside / "keep-me").is_file() and (tmp_path / "results" / "junit.xml").is_file()
