# SPDX-License-Identifier: GPL-2.0
"""test_progs' cache entry: its key (what a build reads), what a published entry holds, publishing and reading it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.kernel import cache
from harness.selftests.discover import SELFTESTS
from harness.settings import CacheLayout
from harness.tools import version_line

# Bump when the way test_progs is built changes in a way its inputs do not show.
BUILD_VERSION = 3  # 2: <x.skel.h> includes and __btf_path objects are built; 3: the tree's bpftool's vmlinux.h
BINARY = "test_progs"
SHIM = "test_progs-shim.so"
# What the key covers besides the selftests directory: every directory the build reads headers, sources or make
# scripts from (libbpf and bpftool have their own keys as well).
KEY_TREES = (Path("tools/lib"), Path("tools/include"), Path("tools/arch/x86/include"), Path("tools/build"),
             Path("tools/scripts"), Path("tools/bpf/bpftool"))
KEY_FILES = (Path("tools/testing/selftests/lib.mk"), Path("tools/testing/selftests/kselftest.h"),
             Path("scripts/bpf_doc.py"))
# In the selftests directory: sources, headers and make files; not what an in-tree build leaves there.
_KEY_SUFFIXES = {".c", ".h", ".map", ".mk", ".sh", ""}
_BUILD_OUTPUT_DIRS = {"tools", "no_alu32", "cpuv4", "bpf_gcc", "feature", ".git"}


@dataclass(frozen=True)
class BuiltTestProgs:
    """A published test_progs: its directory in the cache (the binary, the BPF objects it opens by name, the shim
    the harness preloads, build.log and meta.json) and what went into it."""

    entry: Path
    key: str
    cached: bool
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def binary(self) -> Path:
        return self.entry / BINARY

    @property
    def files(self) -> list[Path]:
        """What a run needs in its directory: the binary, the BPF objects, the shim."""
        names = [BINARY, *(f"{o}.bpf.o" for o in self.meta.get("objects", ())), SHIM]
        return [self.entry / n for n in names if (self.entry / n).is_file()]

    @property
    def tests(self) -> list[str]:
        return list(self.meta.get("tests", ()))


@dataclass(frozen=True)
class Toolchain:
    cc: str = "gcc"
    clang: str = "clang-19"
    use_ccache: bool = True

    def versions(self) -> list[str]:
        return [version_line(self.cc, "--version"), version_line(self.clang, "--version"),
                version_line("make", "--version"), version_line("ld", "--version")]


def tree_digest(tree: Path) -> str:
    """sha256 over the content (by path) of what a test_progs build can read from `tree`: the whole selftests/bpf
    directory's sources, headers and make files (a superset of what the named tests read; an in-tree build's
    outputs left out), and the tools directories of KEY_TREES and KEY_FILES."""
    tree = Path(tree)
    base = tree / SELFTESTS
    paths: list[Path] = []
    for dirpath, dirs, files in os.walk(base):
        rel = Path(dirpath).relative_to(base)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in _BUILD_OUTPUT_DIRS]
        for name in files:
            p = Path(dirpath) / name
            if p.suffix in _KEY_SUFFIXES and not name.endswith((".skel.h", ".lskel.h", ".subskel.h")) \
                    and (rel, name) != (Path("prog_tests"), "tests.h") and (p.suffix or name.startswith("Makefile")):
                paths.append(p)
    for sub in KEY_TREES:
        paths += [p for p in (tree / sub).rglob("*") if p.is_file()]
    paths += [tree / f for f in KEY_FILES if (tree / f).is_file()]
    h = hashlib.sha256()
    cache.update_with_files(h, tree, sorted(set(paths)))
    return h.hexdigest()


def build_key(tree_hash: str, files: Sequence[str], vmlinux_h_digest: str, toolchain: Sequence[str],
              shim_digest: str) -> str:
    """The cache key of a test_progs build: the tree's content, the prog_tests files it is trimmed to, the kernel's
    vmlinux.h, the toolchain and the harness's own shim (and BUILD_VERSION)."""
    h = hashlib.sha256(b"test_progs-build:%d\0" % BUILD_VERSION)
    for part in (tree_hash, "\0".join(sorted(set(files))), vmlinux_h_digest, "\0".join(toolchain), shim_digest):
        h.update(hashlib.sha256(part.encode()).digest())
    return h.hexdigest()[:24]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published(entry: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not (entry / BINARY).is_file() or meta.get("key") != entry.name:
        return None
    try:
        (entry / cache.LAST_USED).touch()
    except OSError:
        pass
    return meta


def _publish(layout: CacheLayout, key: str, work: Path, meta: dict[str, Any]) -> None:
    staging = Path(tempfile.mkdtemp(dir=layout.test_progs, prefix=f".staging-{key}-"))
    try:
        for name in (BINARY, SHIM, "build.log", *(f"{o}.bpf.o" for o in meta["objects"])):
            if (work / name).is_file():
                shutil.copy2(work / name, staging / name)
        (staging / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        dest = layout.test_progs / key
        if dest.exists():
            doomed = dest.with_name(f".evicting-{key}-{os.getpid()}")
            os.rename(dest, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe(built: BuiltTestProgs) -> list[str]:
    """Lines saying what the build is (for the log and the report header)."""
    m = built.meta
    how = "cache hit" if built.cached else f"built in {m.get('seconds', built.seconds):.0f}s"
    lines = [f"test_progs: {', '.join(m.get('files', []))} ({how}, key {built.key}): "
             f"{len(m.get('tests', []))} test(s), {len(m.get('objects', []))} BPF object(s), "
             f"{len(m.get('skeletons', []))} skeleton(s), helpers linked: "
             f"{', '.join(m.get('helpers_linked', [])) or '-'}"]
    lines += [f"  note: {n}" for n in m.get("notes", [])]
    return lines
