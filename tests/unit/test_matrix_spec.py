# SPDX-License-Identifier: GPL-2.0
"""The kernel matrix file and known-failures list: the shipped files parse; bad input names file, entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.campaigns.matrix import spec as ms

GOOD = """
[[target]]
name = "a"
kind = "build"
source = "debian-7.3"
series = true
default = true

[[target]]
name = "b"
kind = "prebuilt-deb"
package = "linux-image-amd64"
version = "6.1.192-2"
append = ["lsm=bpf"]
"""


def test_shipped_matrix_has_the_kernels_with_73_series_the_default():
    m = ms.load()
    assert m.names() == ("7.3-series", "7.3-plain", "7.3-series-stack-none", "7.3-series-testmod",
                       "6.12-series", "6.12-series-testmod", "6.1-debian")
    assert m.default.name == "7.3-series"
    series, plain, stack_none, testmod, s612, testmod612, deb = m.targets
    assert [f.name for f in testmod.fragments] == ["testmod.config"] and testmod.series
    assert (series.kind, series.series, series.kernel_src, series.fragments) == ("build", True, "debian-7.3", ())
    assert (plain.kind, plain.series, plain.source) == ("build", False, "debian-7.3")
    assert (stack_none.series, stack_none.source) == (True, "debian-7.3")
    assert [f.relative_to(ms.DEFAULT_MATRIX.parent).as_posix() for f in stack_none.fragments] == [
        "variants/init-stack-none.config"]
    assert all(f.is_file() for f in stack_none.fragments)
    assert (s612.series, s612.source) == (True, "debian-6.12")
    assert (testmod612.series, testmod612.source, testmod612.fragments) == (True, "debian-6.12", testmod.fragments)
    assert (deb.kind, deb.package, deb.version) == ("prebuilt-deb", "linux-image-amd64", "6.1.192-2")


def test_every_build_target_names_a_debian_line_of_sources_toml():
    from harness.kernel.debian import find_line

    for t in ms.load().targets:
        if t.kind == "build":
            assert find_line(t.source) is not None, t


def test_the_default_kernel_is_read_from_the_matrix_files_default_target(tmp_path):
    from harness.kernel.request import KernelOptions, effective
    from harness.kernel.targets import default_target

    assert default_target().name == "7.3-series"
    opts = effective(KernelOptions())
    assert (opts.kernel_src, opts.no_patches, opts.extra_fragments) == ("debian-7.3", False, ())
    assert effective(KernelOptions(no_patches=True)).kernel_src == "debian-7.3"
    mine = KernelOptions(kernel_src="/src/linux")
    assert effective(mine) is mine  # a named source: nothing filled in


def test_shipped_known_failures_parse_against_the_matrix():
    m = ms.load()
    for kf in ms.parse_known_failures(ms.DEFAULT_KNOWN_FAILURES, matrix=m):
        assert kf.kernel in m.names()


def test_shipped_matrix_documents_why_61_plus_series_is_absent():
    from harness.settings import REPO_ROOT

    assert "docs/porting-6.1.md" in ms.DEFAULT_MATRIX.read_text()
    text = (REPO_ROOT / "docs" / "porting-6.1.md").read_text()
    for needle in ("linux-source-6.1", "btf_check_kfunc_arg_match", "BTF_KFUNCS_START", "btf_kfunc_id_set.filter"):
        assert needle in text


def test_parse_good_file():
    m = ms.parse_matrix(Path("m.toml"), GOOD)
    assert m.select(["b", "a"])[0].append == ("lsm=bpf",)
    assert m.get("b").series is False
    assert m.select(None) == m.targets


@pytest.mark.parametrize("text, message", [
    ("", "no [[target]] entries"),
    ("[[target]]\nname = 'a'\nkind = 'tarball'\ndefault = true\n", "kind must be one of build, prebuilt-deb"),
    ("[[target]]\nname = 'a'\nkind = 'build'\nsereis = true\ndefault = true\n", "unknown field(s) ['sereis']"),
    ("[[target]]\nname = 'a'\nkind = 'build'\nsource = 's'\n", "exactly one target must have default = true"),
    ("[[target]]\nname = 'a'\nkind = 'build'\nsource = 's'\ndefault = true\n[[target]]\nname = 'a'\n"
     "kind = 'build'\nsource = 's'\n", "duplicate target name 'a'"),
    ("[[target]]\nname = 'a/b'\nkind = 'build'\ndefault = true\n", "name must start with a letter or digit"),
    ("[[target]]\nname = '..'\nkind = 'build'\ndefault = true\n", "it names a directory of the results): '..'"),
    ("[[target]]\nname = '.'\nkind = 'build'\ndefault = true\n", "name must start with a letter or digit"),
    ("[[target]]\nname = '.hidden'\nkind = 'build'\ndefault = true\n", "name must start with a letter or digit"),
    ("[[target]]\nname = 'a'\nkind = 'build'\nsource = 's'\nseries = 'yes'\ndefault = true\n",
     "series must be a bool"),
    ("[[target]]\nname = 'a'\nkind = 'build'\ndefault = true\n", "a build target needs source"),
    ("[[target]]\nname = 'a'\nkind = 'prebuilt-deb'\npackage = 'linux-image-amd64'\ndefault = true\n",
     "needs package and version"),
    ("[[target]]\nname = 'a'\nkind = 'prebuilt-deb'\npackage = 'p'\nversion = '1'\nseries = true\ndefault = true\n",
     "series is for kind = \"build\""),
    ("[[target]]\nname = 'a'\nkind = 'build'\npackage = 'p'\ndefault = true\n", "package is for kind"),
    ("[[target]\n", "not valid TOML"),
    ("[[kernel]]\nname = 'a'\n", "unknown top-level key(s) ['kernel']"),
])
def test_bad_matrix_is_a_clear_error(text, message):
    with pytest.raises(ms.MatrixError) as e:
        ms.parse_matrix(Path("/x/matrix.toml"), text)
    assert message in str(e.value)
    assert "/x/matrix.toml" in str(e.value)


def test_unknown_target_lists_the_known_ones():
    m = ms.parse_matrix(Path("m.toml"), GOOD)
    with pytest.raises(ms.MatrixError, match=r"no kernel target 'c' in m.toml; known: a, b"):
        m.get("c")


def test_known_failures_parse_and_match_patterns():
    m = ms.parse_matrix(Path("m.toml"), GOOD)
    kfs = ms.parse_known_failures(Path("k.toml"), """
[[known_failure]]
case = "cases/verifier/kptr_*.bpf.c::*"
kernel = "b"
reason = "no bpf_task_acquire before 6.2"
link = "https://example.invalid/issue/1"
""", matrix=m)
    (kf,) = kfs
    assert kf.matches("cases/verifier/kptr_store_task.bpf.c::kptr_store_task", "b")
    assert not kf.matches("cases/verifier/kptr_store_task.bpf.c::kptr_store_task", "a")
    assert not kf.matches("cases/audit/deny.bpf.c::deny", "b")


@pytest.mark.parametrize("entry, message", [
    ("case = 'x'\nkernel = 'b'\nreason = 'r'\n", "missing ['link']"),
    ("case = 'x'\nkernel = 'zz'\nreason = 'r'\nlink = 'l'\n", "kernel 'zz' is not a target"),
    ("case = 'x'\nkernel = 'b'\nreason = ''\nlink = 'l'\n", "reason must be a non-empty string"),
    ("case = 'x'\nkernel = 'b'\nreason = 'r'\nlink = 'l'\nwhy = 'w'\n", "unknown ['why']"),
])
def test_bad_known_failure_is_a_clear_error(entry, message):
    m = ms.parse_matrix(Path("m.toml"), GOOD)
    with pytest.raises(ms.MatrixError, match="k.toml: \\[\\[known_failure\\]\\] #1") as e:
        ms.parse_known_failures(Path("k.toml"), "[[known_failure]]\n" + entry, matrix=m)
    assert message in str(e.value)


def test_missing_known_failures_file_is_an_empty_list(tmp_path):
    assert ms.parse_known_failures(tmp_path / "absent.toml") == ()
