# SPDX-License-Identifier: GPL-2.0
"""A kernel tree's own libbpf (tools/lib/bpf) built into the cache once per content: the shared library (the guest
agent loads it) and the static archive (test_progs links it, as the selftests Makefile does)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError
from harness.kernel import cache
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.tools import version_line

LIBBPF_DIR = Path("tools/lib/bpf")
# What `make -C tools/lib/bpf` reads besides its own directory: the tools headers it compiles against, the
# build scripts it includes, and the helper-definitions generator.
INPUT_TREES = (Path("tools/include"), Path("tools/arch/x86/include"), Path("tools/build"), Path("tools/scripts"))
INPUT_FILES = (Path("scripts/bpf_doc.py"),)
BUILD_VERSION = 2  # bump when the way it is built changes in a way its inputs do not show (2: libbpf.a is kept)
BUILD_TIMEOUT = 900


@dataclass(frozen=True)
class BuiltLibbpf:
    """The shared library (libbpf.so.X.Y.Z) and what it says it is; libbpf.a beside it."""

    path: Path
    version: str  # e.g. "1.5.0" (the file name's)
    key: str
    cached: bool

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def archive(self) -> Path:
        """libbpf.a, what test_progs links statically (the Makefile's BPFOBJ)."""
        return self.path.parent / "libbpf.a"


def inputs_digest(tree: Path, cc: str = "gcc") -> str:
    """sha256 over the contents (by path) of everything the build reads, and the compiler's version: the same
    libbpf sources in any tree (a copy, a patched mirror, a git worktree) give the same key."""
    tree = Path(tree)
    h = hashlib.sha256(b"libbpf-build:%d\0" % BUILD_VERSION)
    h.update(version_line(cc, "--version").encode() + b"\0")
    paths = [p for p in sorted((tree / LIBBPF_DIR).iterdir()) if p.is_file()]
    for rel in INPUT_TREES:
        paths += sorted(p for p in (tree / rel).rglob("*") if p.is_file())
    paths += [tree / rel for rel in INPUT_FILES if (tree / rel).is_file()]
    cache.update_with_files(h, tree, paths)
    return h.hexdigest()[:16]


def find_built(out_dir: Path) -> Path | None:
    """The real file of a finished build (libbpf.so.X.Y.Z, not a symlink, with libbpf.a beside it), or None."""
    if not (out_dir / "libbpf.a").is_file():
        return None
    for path in sorted(out_dir.glob("libbpf.so.*.*.*")):
        if path.is_file() and not path.is_symlink():
            return path
    return None


def build_libbpf(tree: Path, layout: CacheLayout, *, jobs: int | None = None, cc: str = "gcc") -> BuiltLibbpf:
    """`make -C <tree>/tools/lib/bpf OUTPUT=<cache>/libbpf/<key>/` once per content (under a lock: concurrent
    callers wait, then reuse); the build happens in a staging directory that is renamed into place when done."""
    tree = Path(tree).resolve()
    if not (tree / LIBBPF_DIR / "Makefile").is_file():
        raise BuildError(f"{tree} has no {LIBBPF_DIR}/Makefile: not a kernel tree with libbpf", usage=False)
    key = inputs_digest(tree, cc)
    out_dir = layout.libbpf / key
    built = find_built(out_dir)
    if built is not None:
        return BuiltLibbpf(built, built.name.removeprefix("libbpf.so."), key, True)
    refuse_if_forbidden("build", f"building libbpf from {tree / LIBBPF_DIR}")
    layout.libbpf.mkdir(parents=True, exist_ok=True)
    with cache.key_lock(layout, f"libbpf-{key}", holder=f"building libbpf from {tree / LIBBPF_DIR}"):
        built = find_built(out_dir)
        if built is not None:
            return BuiltLibbpf(built, built.name.removeprefix("libbpf.so."), key, True)
        staging = Path(tempfile.mkdtemp(dir=layout.libbpf, prefix=f".staging-{key}-"))
        argv = ["make", "-C", str(tree / LIBBPF_DIR), f"OUTPUT={staging}/", f"-j{jobs or os.cpu_count() or 1}",
                f"CC={cc}"]
        make_in_staging(argv, staging, f"building libbpf from {tree / LIBBPF_DIR}", layout.libbpf / f"failed-{key}.log",
                        lambda: find_built(staging) is not None)
        for scratch in ("sharedobjs", "staticobjs"):  # only the libraries are used
            target = staging / scratch
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    built = find_built(out_dir)
    assert built is not None
    return BuiltLibbpf(built, built.name.removeprefix("libbpf.so."), key, False)


def make_in_staging(argv: list[str], staging: Path, what: str, kept: Path, built) -> None:
    """Run a tools/ make whose output goes to `staging` (its log: staging/build.log). A timeout, a failed make or
    `built()` false afterwards removes `staging` and raises one BuildError saying `what` failed; the log of a failed
    make is kept at `kept`."""
    log = staging / "build.log"
    try:
        with open(log, "w") as fh:
            fh.write("$ " + " ".join(argv) + "\n")
            fh.flush()
            proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT, check=False,
                                  stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError(f"{what} took over {BUILD_TIMEOUT} s") from e
    if proc.returncode != 0 or not built():
        tail = log.read_text(errors="replace")[-3000:]
        shutil.copyfile(log, kept)
        shutil.rmtree(staging, ignore_errors=True)
        raise BuildError(f"{what} failed (make exited {proc.returncode}):\n{tail}", log_path=kept)
