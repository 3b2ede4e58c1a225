# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness doctor`'s parts: what it checks matches what the harness runs and `make deps` installs;
missing tools are named with their package; the default kernel's key is computed without unpacking or building."""

from __future__ import annotations

import re

import pytest

from harness import doctor
from harness.kernel.request import KernelOptions, make_request
from harness.settings import REPO_ROOT, CacheLayout
from harness.tools import BUILD_TOOLS, DEBIAN_PACKAGE


def _makefile_packages(variable: str = "APT_PACKAGES") -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    block = re.search(rf"^{variable} := (.*?)\n\S", text, re.M | re.S)
    assert block, f"{variable} not found in the Makefile"
    return set(block.group(1).replace("\\\n", " ").split())


def test_doctor_checks_every_tool_the_harness_requires():
    names = {n.name for n in doctor.NEEDS}
    assert set(BUILD_TOOLS) <= names
    assert {"clang-19", "bpftool", "qemu-system-x86_64", "vng", "sshd", "ssh-keygen", "patch", "pahole"} <= names
    for need in doctor.NEEDS:  # the same package the harness's own "missing tool" error names
        if need.name in DEBIAN_PACKAGE and need.package:
            assert DEBIAN_PACKAGE[need.name] == need.package, need


def test_make_deps_installs_every_package_doctor_asks_for():
    # libbpf-dev depends on libbpf1; tar and dpkg are Essential and apt is in every Debian base system
    packages = {n.package for n in doctor.NEEDS if n.package and n.required} - {"libbpf1", "tar", "dpkg", "apt"}
    assert packages - _makefile_packages() == set()
    # the optional ones a user may skip: by `make deps` or the project's own `make test-deps`
    optional = {n.package for n in doctor.NEEDS if n.package and not n.required}
    assert optional - _makefile_packages() - _makefile_packages("TEST_APT_PACKAGES") == set()


def test_what_only_the_projects_tests_use_is_not_a_users_dependency():
    users = _makefile_packages()
    assert {"chromium", "python3-audit", "gdb", "clang-14"} <= _makefile_packages("TEST_APT_PACKAGES")
    assert not users & {"chromium", "nodejs", "npm", "python3-audit", "gdb", "clang-14"}, users


def test_missing_commands_are_named_files_are_still_found(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no command is on PATH
    found = {f.need.name: f for f in doctor.survey()}
    for name in ("make", "clang-19", "bpftool", "qemu-system-x86_64", "ssh-keygen"):
        assert not found[name].ok and found[name].version == ""
    for name, path in (("python3 (guest)", doctor.GUEST_PYTHON), ("sshd", "/usr/sbin/sshd")):
        if found[name].ok:
            assert found[name].where == path


def test_default_kernel_without_a_build_is_not_probed(tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    kernel, why = doctor.default_kernel(layout)
    assert kernel is None and why.startswith("no kernel built yet (run `make build`)")
    assert "is not fetched yet" in why  # the default kernel's Debian line: doctor asks no archive
    assert doctor.accelerator(layout, kernel, why).startswith("not probed: no kernel built yet (run `make build`)")
    assert not (layout.sources).exists(), "doctor fetched or unpacked the kernel source"
    assert not (layout.apt).exists(), "doctor ran apt"


def test_source_lines_say_what_is_cached_without_asking_an_archive(tmp_path):
    """A line never fetched, and one with a version in the cache (a stand-in tarball and its fetched.json)."""
    import json

    from harness.kernel import debian

    layout = CacheLayout(tmp_path / "cache")
    line = debian.find_line("debian-6.12")
    assert line is not None
    d = debian.line_dir(layout, line) / "6.12.118-1_deb12u1"
    d.mkdir(parents=True)
    (d / "linux-source-6.12.tar.xz").write_bytes(b"stand-in")
    (d / debian.FETCHED).write_text(json.dumps({"package": line.package, "version": "6.12.118-1~deb12u1",
                                                "fetched_at": 0}))
    entries = {e["name"]: e for e in doctor.source_lines(layout)}
    assert entries["debian-7.3"]["cached"] == [] and "not fetched yet" in doctor.describe_line(entries["debian-7.3"])
    text = doctor.describe_line(entries["debian-6.12"])
    assert "linux-source-6.12 (bookworm-security): 6.12.118-1~deb12u1 cached" in text, text
    assert not layout.apt.exists()


def test_the_key_without_unpacking_is_the_builds_key(plain_source, pytestconfig):
    """build --print-key and doctor hash the tarball; a build unpacks it: both must name the same cache entry."""
    from harness.plugin import harness_cache_root

    opts = KernelOptions(kernel_src="debian-6.12", cache_dir=harness_cache_root(pytestconfig))
    assert make_request(opts, unpack=False).key_inputs().key() == make_request(opts).key_inputs().key()
    offline = make_request(opts, unpack=False, offline=True)  # what doctor computes: the cache's copy, no apt
    assert offline.key_inputs().key() == make_request(opts).key_inputs().key()


@pytest.mark.parametrize("free, verdict", [(100 << 30, 0), (1 << 30, 3)])
def test_too_little_disk_fails_the_verdict(monkeypatch, tmp_path, free, verdict):
    monkeypatch.setattr(doctor, "disk", lambda layout: (f"{layout.root}: 0B; free: x", free))
    monkeypatch.setattr(doctor, "survey", lambda: [])
    monkeypatch.setattr(doctor, "type_tags", lambda: (True, "clang-19"))
    lines: list[str] = []
    assert doctor.run(tmp_path / "cache", say=lines.append) == verdict
    assert lines[-1] == ("verdict: a run can work here" if verdict == 0 else
                         "verdict: a run cannot work here yet (see MISSING above)")
