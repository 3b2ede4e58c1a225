# SPDX-License-Identifier: GPL-2.0
"""Build stage: source + series + fragments -> configured, built, cached kernel artifact."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from harness import cache, kconfig
from harness.errors import BuildError, ConfigError
from harness.patches import Series, apply_series
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.source import SourceTree
from harness.tools import BUILD_TOOLS, quoted, require, stream, version_line

ARTIFACT_FILES = ("bzImage", "vmlinux", "System.map", "config", "audit.h", "vmlinux.h")


@dataclass(frozen=True)
class BuildRequest:
    source: SourceTree
    series: Series
    fragments: tuple[kconfig.Fragment, ...]
    layout: CacheLayout
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    use_ccache: bool = True

    @property
    def merged(self) -> kconfig.MergedConfig:
        return kconfig.merge(list(self.fragments))

    def key_inputs(self) -> cache.KeyInputs:
        return cache.KeyInputs(
            source_identity=self.source.identity,
            patches=tuple(self.series.key_material()),
            merged_config=self.merged.render(),
            toolchain=toolchain_identity(),
        )


@dataclass(frozen=True)
class KernelArtifact:
    """A published build. Every path is inside the cache entry `dir`."""

    key: str
    dir: Path
    release: str
    meta: dict

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def config(self) -> Path:
        return self.dir / "config"

    @property
    def audit_h(self) -> Path:
        return self.dir / "audit.h"

    @property
    def vmlinux_h(self) -> Path:
        return self.dir / "vmlinux.h"

    @classmethod
    def load(cls, entry: Path) -> KernelArtifact:
        meta = json.loads((entry / "meta.json").read_text())
        return cls(meta["key"], entry, meta["release"], meta)


@dataclass(frozen=True)
class BuildResult:
    artifact: KernelArtifact
    cache_hit: bool
    seconds: float
    log: Path | None
    notes: tuple[str, ...] = ()  # what the user should hear once (e.g. a pinned package version apt no longer has)


def toolchain_identity() -> tuple[str, ...]:
    return (version_line("gcc", "--version"), version_line("ld", "--version"), version_line("pahole", "--version"))


def build(req: BuildRequest, run_dir: Path, *, progress: bool = True) -> BuildResult:
    """Return the cached artifact for these inputs, building it first if nobody has."""
    t0 = time.monotonic()
    cache.ensure_writable(req.layout)
    key = req.key_inputs().key()
    hit = cache.published(req.layout, key)
    if hit:
        return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None)
    require(*BUILD_TOOLS)
    with cache.key_lock(req.layout, key):
        hit = cache.published(req.layout, key)  # somebody else built it while we waited
        if hit:
            return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None)
        refuse_if_forbidden("build", f"building kernel {key} ({req.source.spec.describe()})")
        cache.sweep_stale(req.layout)
        log = run_dir / f"build-{key}.log"
        artifact = _build_and_publish(req, key, log, progress)
    return BuildResult(artifact, False, time.monotonic() - t0, log)


def _build_and_publish(req: BuildRequest, key: str, log: Path, progress: bool) -> KernelArtifact:
    req.layout.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=req.layout.work))
    (work / ".owner-pid").write_text(str(os.getpid()))
    t0 = time.monotonic()
    try:
        tree = work / "linux"
        _say(progress, f"[build] copying {req.source.path} -> {tree}")
        _run(["cp", "-a", "--reflink=auto", str(req.source.path), str(tree)], log, "copy source")
        applied = apply_series(req.series, tree, log, pristine=req.source.path)
        final_config = configure(tree, req.merged, work, log)
        _make(req, tree, log, progress)
        with cache.staging(req.layout, key) as staged:
            (staged / ".owner-pid").write_text(str(os.getpid()))
            _collect(tree, staged, log)
            release = (tree / "include/config/kernel.release").read_text().strip()
            (staged / ".owner-pid").unlink()
            meta = {
                "key": key,
                "release": release,
                "source": req.source.identity,
                "source_path": str(req.source.spec.describe()),
                "kernelversion": req.source.kernelversion,
                "packages": req.source.packages(),
                "patches": [p.name for p in req.series.patches],
                "patches_applied": list(applied.applied),
                "patches_already_present": list(applied.already_applied),
                "toolchain": list(toolchain_identity()),
                "build_seconds": round(time.monotonic() - t0, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "config_options": len(kconfig.parse_dotconfig(final_config)),
            }
            entry = cache.publish(req.layout, key, staged, meta)
        return KernelArtifact.load(entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def configure(tree: Path, merged: kconfig.MergedConfig, work: Path, log: Path) -> str:
    """allnoconfig with the merged fragments forced in, then olddefconfig; verify every option stuck."""
    frag = work / "requested.config"
    frag.write_text(merged.render())
    _run(["make", "-C", str(tree), f"KCONFIG_ALLCONFIG={frag}", "allnoconfig"], log, "allnoconfig")
    _run(["make", "-C", str(tree), "olddefconfig"], log, "olddefconfig")
    final = (tree / ".config").read_text()
    kconfig.verify(merged, final, str(tree / ".config"))
    return final


def _make_env(req: BuildRequest, tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    if req.use_ccache and shutil.which("ccache"):
        req.layout.ccache.mkdir(parents=True, exist_ok=True)
        env.update(
            CCACHE_DIR=str(req.layout.ccache),
            CCACHE_BASEDIR=str(tree.parent),
            CCACHE_NOHASHDIR="true",
            CCACHE_MAXSIZE=env.get("CCACHE_MAXSIZE", "20G"),
        )
    # Reproducible-ish builds: a fixed build user/host/timestamp keeps objects cacheable.
    env.update(KBUILD_BUILD_USER="bpf-audit-harness", KBUILD_BUILD_HOST="harness", KBUILD_BUILD_TIMESTAMP="@0")
    return env


def _make(req: BuildRequest, tree: Path, log: Path, progress: bool) -> None:
    cc = "ccache gcc" if req.use_ccache and shutil.which("ccache") else "gcc"
    argv = ["make", "-C", str(tree), f"-j{req.jobs}", f"CC={cc}", "bzImage", "vmlinux"]
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
    _say(progress, f"[build] {quoted(argv)}  (full output: {log})")
    t0 = time.monotonic()
    tail: deque[str] = deque(maxlen=60)
    errors: list[str] = []  # with -j, other jobs' lines bury the error in the tail: keep the first ones
    objects = 0
    last_print = 0.0
    is_tty = sys.stderr.isatty()

    def on_line(line: str) -> None:
        nonlocal objects, last_print
        tail.append(line)
        if len(errors) < 20 and _ERROR_LINE.search(line):
            errors.append(line)
        if line.startswith("  CC ") or line.startswith("  AS "):
            objects += 1
        now = time.monotonic()
        if progress and now - last_print >= (1.0 if is_tty else 30.0):
            last_print = now
            msg = f"[build] {objects} objects compiled, {now - t0:.0f}s elapsed"
            print("\r" + msg if is_tty else msg, end="" if is_tty else "\n", file=sys.stderr, flush=True)

    rc = stream(argv, log, on_line, env=_make_env(req, tree))
    if progress and is_tty:
        print(file=sys.stderr)
    if rc != 0:
        first = f"First errors:\n{''.join(errors)[:3000]}" if errors else ""
        raise BuildError(
            f"make failed (exit {rc}) after {time.monotonic() - t0:.0f}s. {first}"
            f"Last lines:\n{''.join(tail)[-3000:]}",
            log_path=log,
            output="".join(tail),
        )
    _say(progress, f"[build] done: {objects} objects in {time.monotonic() - t0:.0f}s")


# gcc/ld/make error lines ("file.c:3:2: error: ...", "make[2]: *** [...] Error 1")
_ERROR_LINE = re.compile(r"(?:: (?:fatal )?error: |\*\*\* .*Error \d+|undefined reference to )")


def _collect(tree: Path, staged: Path, log: Path) -> None:
    shutil.copy2(tree / "arch/x86/boot/bzImage", staged / "bzImage")
    shutil.copy2(tree / "vmlinux", staged / "vmlinux")
    shutil.copy2(tree / "System.map", staged / "System.map")
    shutil.copy2(tree / ".config", staged / "config")
    shutil.copy2(tree / "include/uapi/linux/audit.h", staged / "audit.h")
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(tree / "vmlinux"), "format", "c"], capture_output=True, text=True
    )
    if out.returncode != 0 or "struct task_struct {" not in out.stdout:
        raise BuildError(f"bpftool could not dump BTF from vmlinux: {out.stderr.strip()[-800:]}", log_path=log)
    (staged / "vmlinux.h").write_text(out.stdout)


def _run(argv: list[str], log: Path, what: str) -> None:
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
        f.flush()
        res = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        err = ConfigError if "config" in what else BuildError
        raise err(f"{what} failed (exit {res.returncode}): {quoted(argv)}\n{tail}", log_path=log)


def _say(enabled: bool, msg: str) -> None:
    if enabled:
        print(msg, file=sys.stderr, flush=True)


def kernel_has_btf(vmlinux: Path) -> bool:
    out = subprocess.run(["readelf", "-S", "-W", str(vmlinux)], capture_output=True, text=True, check=False)
    return re.search(r"\s\.BTF\s", out.stdout) is not None
