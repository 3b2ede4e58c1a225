# SPDX-License-Identifier: GPL-2.0
"""bpf_testmod.ko built from the tree under test against the kernel's own build (its slot), cached by both."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import BuildError, HarnessError
from harness.kernel import cache, trees
from harness.kernel.build import make_in_slot
from harness.selftests.discover import SELFTESTS
from harness.selftests.evidence import read_config
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.tools import child_kwargs, hand_down

MODULE_DIRS = (SELFTESTS / "test_kmods", SELFTESTS / "bpf_testmod")  # 7.x, 6.x
MODULE = "bpf_testmod.ko"
BUILD_VERSION = 1
TIMEOUT = 1200


def module_dir(tree: Path) -> Path | None:
    return next((Path(tree) / d for d in MODULE_DIRS if (Path(tree) / d / "bpf_testmod.c").is_file()), None)


def has_modules(config: Path | None) -> bool:
    try:
        return config is not None and read_config(Path(config).read_text()).get("CONFIG_MODULES") == "y"
    except OSError:
        return False


def testmod_steps(layout: CacheLayout, meta: dict, work: Path, jobs: int | None) -> list[tuple[list[str], dict]]:
    """The two makes in the kernel's slot, with the kernel build's own CC, LLVM= and environment
    (kernel.build.make_in_slot): `make modules` (Module.symvers; nothing else recompiles), then the external
    modules in `work` (M=)."""
    tree, slot, llvm = Path(meta["tree"]), Path(meta["slot"]), meta.get("llvm") or ""
    return [make_in_slot(layout, tree, slot, targets, llvm=llvm, jobs=jobs)
            for targets in (("modules",), (f"M={work}", "modules"))]


def modules_for(tree: Path, kernel_dir: Path | None, config: Path | None,
                layout: CacheLayout) -> tuple[Path | None, str]:
    """The directory of `tree`'s test modules built for the kernel in `kernel_dir` (build_testmod), or (None, why
    not): the kernel has no module support, or the modules do not build. What `selftests` loads into its guests
    and test_progs finds beside it."""
    if kernel_dir is None or not has_modules(config):
        return None, "the kernel under test has no module support (matrix target *-testmod has)"
    try:
        return build_testmod(tree, kernel_dir, layout), ""
    except HarnessError as e:
        return None, f"bpf_testmod.ko could not be built: {str(e).splitlines()[0]}"


def build_testmod(tree: Path, kernel_dir: Path, layout: CacheLayout, *, jobs: int | None = None) -> Path:
    """The tree's test modules (bpf_testmod.ko and its siblings) built as kbuild external modules against the kernel
    artifact in `kernel_dir` (its meta names the tree and slot make built it in): `make modules` in the slot once
    (Module.symvers), then `make M=<a copy of the module sources> modules`. Returns the directory holding the .ko
    files, cached by the sources and the kernel's key. BuildError when the kernel has no module support or make
    fails (its log kept)."""
    import json

    src = module_dir(tree)
    if src is None:
        raise BuildError(f"{tree} has no bpf_testmod sources ({' or '.join(map(str, MODULE_DIRS))})")
    meta = json.loads((Path(kernel_dir) / "meta.json").read_text())
    if not has_modules(Path(kernel_dir) / "config"):
        raise BuildError(f"the kernel {meta.get('release')} ({meta.get('key')}) was built without CONFIG_MODULES: "
                         "bpf_testmod.ko cannot be loaded into it (matrix target *-testmod: variants/testmod.config)")
    h = hashlib.sha256(b"testmod:%d:%s\0" % (BUILD_VERSION, meta["key"].encode()))
    files = sorted(p for p in src.iterdir() if p.is_file())
    cache.update_with_files(h, src, files)
    key = h.hexdigest()[:16]
    out = layout.root / "testmod" / key
    if (out / MODULE).is_file():
        return out
    refuse_if_forbidden("build", f"building bpf_testmod.ko from {src}")
    (layout.root / "testmod").mkdir(parents=True, exist_ok=True)
    holder = f"building bpf_testmod.ko in {meta['slot']}"
    # the tree's lock, as a kernel build takes it: no other build re-syncs the tree or makes in its slots meanwhile
    with cache.key_lock(layout, meta["key"], holder=holder), \
            cache.key_lock(layout, trees.lock_name_of_built(Path(meta["tree"]), layout), holder=holder) as lock:
        if (out / MODULE).is_file():
            return out
        staging = Path(tempfile.mkdtemp(dir=layout.root / "testmod", prefix=f".staging-{key}-"))
        work = staging / "src"
        shutil.copytree(src, work)
        log = staging / "build.log"
        with log.open("w") as fh, hand_down(lock):  # make (and its sub-makes) keep the kernel's key locked
            for argv, env in testmod_steps(layout, meta, work, jobs):
                fh.write("$ " + " ".join(argv) + "\n")
                fh.flush()
                rc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=TIMEOUT, check=False, **child_kwargs()).returncode
                if rc != 0:
                    kept = layout.root / "testmod" / f"failed-{key}.log"
                    shutil.copyfile(log, kept)
                    shutil.rmtree(staging, ignore_errors=True)
                    raise BuildError(f"building bpf_testmod.ko failed ({' '.join(argv[:4])} ... exited {rc}):\n"
                                     f"{kept.read_text(errors='replace')[-2500:]}", log_path=kept)
        for ko in work.glob("*.ko"):
            os.replace(ko, staging / ko.name)
        shutil.rmtree(work)
        if not (staging / MODULE).is_file():
            raise BuildError(f"make built no {MODULE} (log {log})")
        os.replace(staging, out)
    return out
