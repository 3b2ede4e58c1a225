# SPDX-License-Identifier: GPL-2.0
"""Debian archive versions: ordering (checked against dpkg itself), and a pin the archive dropped."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import SourceError
from harness.kernel import apt
from harness.settings import REPO_ROOT

# `apt-cache madison` on 2026-11-29: the day linux-image-amd64 6.1.192-2 and linux-libc-dev 6.1.192-3 disagreed.
LIBC_DEV = apt.parse_madison((DATA / "apt-madison-linux-libc-dev-2026-11-29.txt").read_text(), "linux-libc-dev")
IMAGE = apt.parse_madison((DATA / "apt-madison-linux-image-amd64-2026-11-29.txt").read_text(), "linux-image-amd64")


def test_madison_output_is_read_newest_first():
    assert LIBC_DEV == ["6.1.192-3", "6.1.176-1"]
    assert IMAGE == ["6.1.192-2", "6.1.176-1"]
    assert apt.parse_madison("other | 1.0 | x\n\ngarbage\n", "linux-libc-dev") == []


def test_a_pin_the_archive_has_is_used_as_is():
    res = apt.choose_version("linux-image-amd64", "6.1.192-2", IMAGE)
    assert (res.version, res.note) == ("6.1.192-2", "")


def test_a_pin_the_archive_dropped_falls_back_to_the_newest_of_its_line_and_says_so():
    res = apt.choose_version("linux-libc-dev", "6.1.192-2", LIBC_DEV)
    assert res.version == "6.1.192-3" and res.pinned == "6.1.192-2"
    assert "6.1.192-2 (pinned) is no longer in the archive; using 6.1.192-3" in res.note
    with pytest.raises(SourceError, match=r"nothing like it is \(6\.12; apt knows.*apt-cache madison linux-libc-dev"):
        apt.choose_version("linux-libc-dev", "6.12.1-1", LIBC_DEV)


def test_headers_follow_the_upstream_version_not_the_debian_revision():
    res = apt.choose_same_upstream("linux-libc-dev", "6.1.192-2", LIBC_DEV)
    assert res.version == "6.1.192-3" and "same upstream kernel 6.1.192" in res.note
    assert apt.choose_same_upstream("linux-libc-dev", "6.1.176-1", LIBC_DEV).note == ""
    with pytest.raises(SourceError, match=r"6.1.150-1 is not in the archive and nothing like it is \(6\.1\.150"):
        apt.choose_same_upstream("linux-libc-dev", "6.1.150-1", LIBC_DEV)


@pytest.mark.parametrize("version, upstream, line", [
    ("6.1.192-2", "6.1.192", "6.1"), ("6.12.117-1~deb12u1", "6.12.117", "6.12"), ("1:6.1.5-1", "6.1.5", "6.1"),
    ("6.1.192", "6.1.192", "6.1"),
])
def test_upstream_version_and_kernel_line(version, upstream, line):
    assert apt.upstream_version(version) == upstream and apt.kernel_line(version) == line


_VERSION = st.builds(
    lambda epoch, up, rev: (f"{epoch}:" if epoch else "") + up + (f"-{rev}" if rev else ""),
    st.sampled_from([0, 0, 1]),
    st.from_regex(r"[0-9][0-9a-z.~+]{0,6}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[0-9a-z~+.]{1,5}", fullmatch=True)),
)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed (the oracle for version ordering)")
@settings(max_examples=150, deadline=None)
@given(_VERSION, _VERSION)
def test_ordering_agrees_with_dpkg(a, b):
    def dpkg(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0

    want = -1 if dpkg("lt") else (1 if dpkg("gt") else 0)
    assert apt.compare_versions(a, b) == want


def test_print_key_of_a_pin_the_archive_lacks_names_the_version_it_uses(tmp_path):
    """A matrix whose pin no apt has ever had: the key is that of the newest 6.1 the real archive serves, and the
    fallback is said on stderr (whatever today's archive holds)."""
    matrix = tmp_path / "matrix.toml"
    matrix.write_text('[[target]]\nname = "old-61"\nkind = "prebuilt-deb"\ndescription = "a dropped pin"\n'
                      'package = "linux-image-amd64"\nversion = "6.1.0-0"\ndefault = true\n')
    have = apt.available_versions("linux-image-amd64")
    if not any(apt.kernel_line(v) == "6.1" for v in have):
        pytest.skip("apt knows no linux-image-amd64 6.1 (not a bookworm archive, or `apt-get update` never ran)")
    res = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--matrix", str(matrix), "--kernel-target",
                          "old-61", "--print-key"], capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert res.returncode == 0, res.stderr
    newest = [v for v in have if apt.kernel_line(v) == "6.1"][0]
    from harness.kernel.prebuilt import PrebuiltRequest

    assert res.stdout.strip() == PrebuiltRequest("linux-image-amd64", newest).key()
    assert f"linux-image-amd64 6.1.0-0 (pinned) is no longer in the archive; using {newest}" in res.stderr
