# SPDX-License-Identifier: GPL-2.0
"""Build stage: source + series + fragments -> configured, built (incrementally, out of tree), cached artifact."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from harness.errors import BuildError, ConfigError
from harness.kernel import cache, kconfig, trees
from harness.kernel.artifact import BuildRequest, BuildResult, KernelArtifact
from harness.kernel.toolchain import llvm_tool, require_llvm, toolchain_identity
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.tools import BUILD_TOOLS, child_kwargs, hand_down, quoted, require, stream


def build(req: BuildRequest, run_dir: Path, *, progress: bool = True) -> BuildResult:
    """Return the cached artifact for these inputs, building it first if nobody has.

    The build is make's own incremental build: out of tree (make O=<slot>) from the tree harness.kernel.trees
    prepares (the source itself, or its patched mirror), in a slot kept per (tree, merged config, toolchain)."""
    t0 = time.monotonic()
    cache.ensure_writable(req.layout)
    key = req.key_inputs().key()
    hit = cache.published(req.layout, key, KernelArtifact.problem)
    if hit:
        return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None, req.source.notes,
                               req.source.describe())
    require(*BUILD_TOOLS)
    if req.llvm:
        require_llvm(req.llvm)
    say = _sayer(progress)
    log = run_dir / f"build-{key}.log"
    with cache.key_lock(req.layout, key, holder=f"building kernel {key} (log: {log})", waiting=say):
        hit = cache.published(req.layout, key, KernelArtifact.problem)  # somebody else built it while we waited
        if hit:
            return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None, req.source.notes,
                               req.source.describe())
        refuse_if_forbidden("build", f"building kernel {key} ({req.source.spec.describe()})")
        cache.sweep_stale(req.layout)
        with cache.key_lock(req.layout, trees.lock_name(req.source), waiting=say,
                            holder=f"building kernel {key} from {req.source.path} (log: {log})") as tree_lock, \
                hand_down(tree_lock):  # git and make keep the tree locked for as long as they (or theirs) run
            try:
                artifact = _build_and_publish(req, key, log, say)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                raise disk_full(req.layout, f"{e.strerror}: {e.filename}", log) from e
    return BuildResult(artifact, False, time.monotonic() - t0, log, req.source.notes, req.source.describe())


def disk_full(layout: CacheLayout, what: str, log: Path | None) -> BuildError:
    """The one error for a build that ran out of disk: where, how much is left, what to do."""
    try:
        free = shutil.disk_usage(layout.root).free
    except OSError:
        free = 0
    return BuildError(f"the file system of the harness cache {layout.root} is full ({what}; {free >> 20} MiB free). "
                      "Nothing was published. Free space (`bpf-audit-harness cache --prune --max-size 20G` evicts "
                      "old kernels), or point BPF_AUDIT_HARNESS_CACHE at a disk with room (a 6.12 build needs about "
                      "3 GiB: 1.4 for its build directory, 1.7 for an unpacked source).", log_path=log)


def slot_dir(layout: CacheLayout, tree: Path, merged: kconfig.MergedConfig, llvm: str = "", *,
             patched: bool = False) -> Path:
    """The build directory of one (tree, merged config, toolchain): make's incremental state lives there. A
    harness-kept patched tree holds its slots (trees.SLOTS), so the path from slot to tree is the same for every
    tree and ccache reuses objects across trees (make_in_slot); a tree read in place (the developer's, a source
    without a series) is never written to: its slots live in the cache's slots/."""
    blob = json.dumps({"tree": str(tree), "config": merged.render(), "toolchain": list(toolchain_identity(llvm)),
                       "recipe": cache.RECIPE_VERSION}, sort_keys=True)
    name = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return tree / trees.SLOTS / name if patched else layout.slots / name


def ccache_base(tree: Path, slot: Path) -> str:
    """CCACHE_BASEDIR: ccache hashes paths under it relative to make's directory (the slot). With the slot inside
    the tree that is the tree itself (every path becomes ../../<file>, whatever the tree's own path); otherwise
    the directory the two share."""
    return str(tree) if slot.is_relative_to(tree) else os.path.commonpath([str(tree), str(slot)])


def _build_and_publish(req: BuildRequest, key: str, log: Path, say) -> KernelArtifact:
    t0 = time.monotonic()
    phases: dict[str, float] = {}  # seconds per step, in the entry's meta: where a rebuild's time went
    lap = [t0]

    def done(phase: str) -> None:
        now = time.monotonic()
        phases[phase] = round(now - lap[0], 2)
        lap[0] = now

    tree = trees.prepare(req.source, req.series, req.layout, log)
    if tree.patched:
        say(f"[build] patched tree {tree.path}: {tree.linked} files mirrored from the source, {tree.written} "
            "written by the series")
    slot = slot_dir(req.layout, tree.path, req.merged, req.llvm, patched=tree.patched)
    slot.mkdir(parents=True, exist_ok=True)
    info = slot / f"{SLOT_INFO}.{os.getpid()}.tmp"  # replaced whole: `cache --prune` reads it without our lock
    info.write_text(json.dumps({"tree": str(tree.path), "source": req.source.spec.describe(), "last_key": key,
                                "last_build": time.time()}, indent=1) + "\n")
    os.replace(info, slot / SLOT_INFO)
    recovered = recover_interrupted(slot)
    if recovered is not None:  # said even when the kill came before make wrote anything
        say(f"[build] {slot} was left by an interrupted build: removed the {recovered} files it wrote")
    fresh = not (slot / ".config").is_file()
    done("tree")
    configured = configure_if_needed(tree.path, slot, req.merged, log, req.source.kernelversion, req.llvm)
    done("configure")
    objects = _make_marked(req, tree.path, slot, log, say, fresh=fresh)
    final_config = (slot / ".config").read_text()
    try:
        kconfig.verify(req.merged, final_config, str(slot / ".config"), req.source.kernelversion)
    except ConfigError:
        if configured:
            raise
        # The slot kept its .config from before, and a Kconfig change (a new series, an edit) moved an option:
        # configure it anew, and make again (incremental: only what the changed options touch).
        say("[build] a requested option moved under the slot's old .config: configuring it anew")
        (slot / CONFIGURED).unlink(missing_ok=True)
        configure_if_needed(tree.path, slot, req.merged, log, req.source.kernelversion, req.llvm)
        objects += _make_marked(req, tree.path, slot, log, say, fresh=False)
        final_config = (slot / ".config").read_text()
    done("make")
    _check_source_unchanged(req, log)
    with cache.staging(req.layout, key) as staged:
        _collect(tree.path, slot, staged, log)
        release = (slot / "include/config/kernel.release").read_text().strip()
        done("collect")
        meta = {
            "key": key,
            "release": release,
            "source": req.source.identity,
            "source_path": str(req.source.spec.describe()),
            "kernelversion": req.source.kernelversion,
            "packages": req.source.packages(),
            "source_description": req.source.describe(),
            **({"debian_source": req.source.fetched.record()} if req.source.fetched else {}),
            "patches": [p.name for p in req.series.patches],
            "patches_applied": list(tree.applied.applied),
            "patches_already_present": list(tree.applied.already_applied),
            "tree": str(tree.path),
            "slot": str(slot),
            "objects_compiled": objects,
            "toolchain": list(req.toolchain),
            **({"llvm": req.llvm} if req.llvm else {}),
            "build_seconds": round(time.monotonic() - t0, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config_options": len(kconfig.parse_dotconfig(final_config)),
            "phases": phases,
        }
        entry = cache.publish(req.layout, key, staged, meta)
    return KernelArtifact.load(entry)


def _check_source_unchanged(req: BuildRequest, log: Path) -> None:
    """What make read must be what the key names: a source edited while it was built (a hard-linked patched tree
    follows the edit at once) gives a kernel the key does not describe. Nothing is published then."""
    from harness.kernel.source import current_identity

    now = current_identity(req.source, req.layout)
    if now is not None and now != req.source.identity:
        raise BuildError(
            f"the kernel source {req.source.spec.describe()} changed while it was being built (its identity was "
            f"{req.source.identity} when the build started and is {now} now): the kernel make produced matches "
            "neither, so nothing was published. Run again to build the tree as it is now.", log_path=log)


def _make_marked(req: BuildRequest, tree: Path, slot: Path, log: Path, say, *, fresh: bool) -> int:
    """make in the slot, with the slot marked while it runs (a killed build leaves the mark)."""
    marker = slot / BUILDING
    marker.write_text(f"{os.getpid()}\n")
    objects = _make(req, tree, slot, log, say, fresh=fresh)
    marker.unlink()
    return objects


CONFIGURED = ".harness-configured"  # the sha256 of the merged fragments the slot's .config was made from


def configure_if_needed(tree: Path, slot: Path, merged: kconfig.MergedConfig, log: Path, kernel: str = "",
                        llvm: str = "") -> bool:
    """Configure the slot unless its .config was made from these very fragments (kbuild's own syncconfig
    follows Kconfig changes during make, and every requested option is verified after make). Returns whether
    it configured."""
    stamp = hashlib.sha256(merged.render().encode()).hexdigest()
    marker = slot / CONFIGURED
    if (slot / ".config").is_file() and marker.is_file() and marker.read_text().strip() == stamp:
        return False
    marker.unlink(missing_ok=True)
    configure(tree, slot, merged, log, kernel, llvm)
    marker.write_text(stamp + "\n")
    return True


SLOT_INFO = ".harness-slot.json"
BUILDING = ".harness-building"  # present while make runs in a slot: left behind only by a killed build


def recover_interrupted(slot: Path) -> int | None:
    """A slot whose last build was killed mid-way may hold half-written objects that look up to date to make:
    remove every file written since that build started. Everything older is from a finished build and stays, so
    the next build is still incremental. Returns how many files went, None when no build was interrupted."""
    marker = slot / BUILDING
    try:
        since = marker.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    removed = 0
    for root, _dirs, files in os.walk(slot):
        for name in files:
            path = os.path.join(root, name)
            if name in (".config", SLOT_INFO, BUILDING) and root == str(slot):
                continue
            try:
                if os.lstat(path).st_mtime_ns >= since:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
    marker.unlink()
    return removed


def configure(tree: Path, slot: Path, merged: kconfig.MergedConfig, log: Path, kernel: str = "",
              llvm: str = "") -> str:
    """allnoconfig with the merged fragments forced in, into a scratch config; verify every option stuck; the
    slot's .config is replaced only when it differs (an unchanged .config keeps make's incremental state)."""
    slot.mkdir(parents=True, exist_ok=True)
    frag = slot / ".harness-requested.config"
    frag.write_text(merged.render())
    scratch = slot / ".harness-new.config"
    if merged.base:
        # The developer's .config, the fragments after it (kconfig takes a symbol's last assignment), completed by
        # olddefconfig: their choices stay wherever the fragments do not ask otherwise.
        scratch.write_text(merged.base.rstrip("\n") + "\n" + merged.render())
        _run(["make", "-C", str(tree), f"O={slot}", *([f"LLVM={llvm}"] if llvm else []), f"KCONFIG_CONFIG={scratch}",
              "olddefconfig"], log, "olddefconfig onto the given .config")
    else:
        # Kconfig asks the compiler what it is (CC_IS_CLANG, CC_VERSION_TEXT): the same LLVM= as the build.
        _run(["make", "-C", str(tree), f"O={slot}", *([f"LLVM={llvm}"] if llvm else []), f"KCONFIG_CONFIG={scratch}",
              f"KCONFIG_ALLCONFIG={frag}", "allnoconfig"], log, "allnoconfig")
    final = scratch.read_text()
    kconfig.verify(merged, final, str(slot / ".config"), kernel)
    current = slot / ".config"
    if current.is_file() and current.read_text() == final:
        scratch.unlink()
    else:
        os.replace(scratch, current)
    return final


def make_in_slot(layout: CacheLayout, tree: Path, slot: Path, targets: Sequence[str], *, llvm: str = "",
                 jobs: int | None = None, use_ccache: bool = True) -> tuple[list[str], dict[str, str]]:
    """The make command (argv, environment) for `targets` in a build slot: gcc through ccache, or with LLVM= its
    clang through ccache (make's LLVM= picks LLVM's linker and binutils itself). Every make in a slot must use
    this one: another CC, LLVM= or KBUILD_BUILD_* changes each object's command line and kbuild recompiles the
    whole tree (bpf_testmod's `make modules` once did, 15 minutes, and the next kernel build again)."""
    compiler = llvm_tool(llvm, "clang") if llvm else "gcc"
    ccache = use_ccache and shutil.which("ccache") is not None
    cc = f"ccache {compiler}" if ccache else compiler
    argv = ["make", "-C", str(tree), f"O={slot}", f"-j{jobs or os.cpu_count() or 1}",
            *([f"LLVM={llvm}"] if llvm else []), f"CC={cc}", *targets]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    if ccache:
        layout.ccache.mkdir(parents=True, exist_ok=True)
        env.update(
            CCACHE_DIR=str(layout.ccache),
            CCACHE_BASEDIR=ccache_base(tree, slot),
            CCACHE_NOHASHDIR="true",
            CCACHE_MAXSIZE=env.get("CCACHE_MAXSIZE", "20G"),
        )
    # Reproducible-ish builds: a fixed build user/host/timestamp keeps objects cacheable.
    env.update(KBUILD_BUILD_USER="bpf-audit-harness", KBUILD_BUILD_HOST="harness", KBUILD_BUILD_TIMESTAMP="@0")
    return argv, env


def make_command(req: BuildRequest, tree: Path, slot: Path) -> tuple[list[str], dict[str, str]]:
    """The build's make: bzImage and vmlinux in the slot."""
    return make_in_slot(req.layout, tree, slot, ("bzImage", "vmlinux"), llvm=req.llvm, jobs=req.jobs,
                        use_ccache=req.use_ccache)


def _make(req: BuildRequest, tree: Path, slot: Path, log: Path, say, *, fresh: bool) -> int:
    """make bzImage vmlinux in the slot; returns how many objects it compiled."""
    argv, env = make_command(req, tree, slot)
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
    progress = say is not _quiet
    say(f"[build] {'a first build in a new slot' if fresh else 'incremental'}: {quoted(argv)}  (full output: {log})")
    t0 = time.monotonic()
    tail: deque[str] = deque(maxlen=60)
    errors: list[str] = []  # with -j, other jobs' lines bury the error in the tail: keep the first ones
    no_space: list[str] = []  # the first line saying the disk is full
    objects = 0
    last_print = 0.0
    is_tty = sys.stderr.isatty()

    def on_line(line: str) -> None:
        nonlocal objects, last_print
        tail.append(line)
        if len(errors) < 20 and _ERROR_LINE.search(line):
            errors.append(line)
        if not no_space and "No space left on device" in line:  # anywhere in -j output, any tool's wording
            no_space.append(line.strip())
        if line.startswith("  CC ") or line.startswith("  AS "):
            objects += 1
        now = time.monotonic()
        if progress and now - last_print >= (1.0 if is_tty else 30.0):
            last_print = now
            msg = f"[build] {objects} objects compiled, {now - t0:.0f}s elapsed"
            print("\r" + msg if is_tty else msg, end="" if is_tty else "\n", file=sys.stderr, flush=True)

    rc = stream(argv, log, on_line, env=env)
    if progress and is_tty:
        print(file=sys.stderr)
    if rc != 0:
        (slot / BUILDING).unlink(missing_ok=True)  # make itself deleted what it could not finish
        if no_space:
            raise disk_full(req.layout, f"make: {no_space[0]}", log)
        if _nearly_full(slot):  # a tool that hit the limit in other words (a bus error on an mmap'd output file)
            raise disk_full(req.layout, f"make failed (exit {rc}) with the disk nearly full", log)
        first = f"First errors:\n{''.join(errors)[:3000]}" if errors else ""
        raise BuildError(
            f"make failed (exit {rc}) after {time.monotonic() - t0:.0f}s. {first}"
            f"Last lines:\n{''.join(tail)[-3000:]}",
            log_path=log,
            output="".join(tail),
        )
    say(f"[build] done: {objects} objects in {time.monotonic() - t0:.0f}s")
    return objects


NEARLY_FULL_BYTES = 64 << 20  # less than this left after a failed make: the disk is why


def _nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path).free < NEARLY_FULL_BYTES
    except OSError:
        return False


# gcc/ld/make error lines ("file.c:3:2: error: ...", "make[2]: *** [...] Error 1")
_ERROR_LINE = re.compile(r"(?:: (?:fatal )?error: |\*\*\* .*Error \d+|undefined reference to )")


def _collect(tree: Path, slot: Path, staged: Path, log: Path) -> None:
    shutil.copy2(slot / "arch/x86/boot/bzImage", staged / "bzImage")
    shutil.copy2(slot / "vmlinux", staged / "vmlinux")
    shutil.copy2(slot / "System.map", staged / "System.map")
    shutil.copy2(slot / ".config", staged / "config")
    shutil.copy2(tree / "include/uapi/linux/audit.h", staged / "audit.h")
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(slot / "vmlinux"), "format", "c"], capture_output=True, text=True
    )
    if out.returncode != 0 or "struct task_struct {" not in out.stdout:
        raise BuildError(f"bpftool could not dump BTF from vmlinux: {out.stderr.strip()[-800:]}", log_path=log)
    (staged / "vmlinux.h").write_text(out.stdout)


def _run(argv: list[str], log: Path, what: str) -> None:
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
        f.flush()
        res = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, check=False, **child_kwargs())
    if res.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        err = ConfigError if "config" in what else BuildError
        raise err(f"{what} failed (exit {res.returncode}): {quoted(argv)}\n{tail}", log_path=log)


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    pass


def _sayer(progress: bool):
    return _print if progress else _quiet

