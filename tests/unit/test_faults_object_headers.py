# SPDX-License-Identifier: GPL-2.0
"""Case objects are keyed by every file the compiler read (issue 21 item 5): a header of the case's own, edited
between two runs, gives a new object, never the stale one. Real clang, real headers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cases.compile import compile_tracked, find_clang, parse_depfile

SRC = '#include "mine.h"\nint value(void) { return MINE; }\n'


def _argv_for(clang: str, src: Path, inc: Path):
    return lambda obj: [clang, "-O2", "-target", "bpf", f"-I{inc}", "-c", str(src), "-o", str(obj)]


@pytest.fixture
def clang():
    try:
        return find_clang()
    except Exception as e:  # noqa: BLE001 - any missing compiler
        pytest.skip(f"no BPF clang (clang-16..19): {e}")


def test_an_edited_header_is_a_miss(tmp_path, clang):
    inc, out = tmp_path / "inc dir", tmp_path / "objects"
    inc.mkdir()
    src = tmp_path / "case.bpf.c"
    src.write_text(SRC)
    header = inc / "mine.h"
    header.write_text("#define MINE 1\n")
    argv_for = _argv_for(clang, src, inc)

    first = compile_tracked("case.bpf", "base0", argv_for, out, compiler=clang)
    assert first.ok and not first.cached, first.stderr
    again = compile_tracked("case.bpf", "base0", argv_for, out, compiler=clang)
    assert again.cached and again.obj == first.obj, "an unchanged input was compiled again"
    assert str(header) in json.loads((out / "case.bpf-base0.deps.json").read_text())

    header.write_text("#define MINE 2\n")  # the case file itself is unchanged
    edited = compile_tracked("case.bpf", "base0", argv_for, out, compiler=clang)
    assert not edited.cached and edited.obj != first.obj, "a stale object was reused after its header changed"
    assert edited.obj.read_bytes() != first.obj.read_bytes()

    header.write_text("#define MINE (\n")  # a broken header: a failure, and the fix is seen at once
    broken = compile_tracked("case.bpf", "base0", argv_for, out, compiler=clang)
    assert not broken.ok
    header.write_text("#define MINE 1\n")
    fixed = compile_tracked("case.bpf", "base0", argv_for, out, compiler=clang)
    assert fixed.ok, "the failure of a broken header outlived its fix"


def test_a_vanished_header_is_a_miss_not_an_error(tmp_path, clang):
    inc, out = tmp_path / "inc", tmp_path / "objects"
    inc.mkdir()
    src = tmp_path / "case.bpf.c"
    src.write_text(SRC)
    (inc / "mine.h").write_text("#define MINE 1\n")
    assert compile_tracked("case.bpf", "b", _argv_for(clang, src, inc), out, compiler=clang).ok
    other = tmp_path / "inc2"
    shutil.move(inc, other)
    res = compile_tracked("case.bpf", "b", _argv_for(clang, src, other), out, compiler=clang)
    assert res.ok and not res.cached


def test_parse_depfile_handles_continuations_and_escaped_spaces():
    text = "/o/x.o: /src/a\\ b.c /inc/c.h \\\n  /usr/include/bpf/bpf_helpers.h\n"
    assert parse_depfile(text) == ["/src/a b.c", "/inc/c.h", "/usr/include/bpf/bpf_helpers.h"]
