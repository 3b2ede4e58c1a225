# SPDX-License-Identifier: GPL-2.0
"""A kernel the developer built themselves (--kernel PATH, or a tree with an in-tree build): tested as it is."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.kernel import cache, kconfig
from harness.kernel.artifact import BuildResult, KernelArtifact, kernel_has_btf
from harness.kernel.source import file_sha256
from harness.settings import CacheLayout

HOST_AUDIT_H = Path("/usr/include/linux/audit.h")
IMAGE_IN_BUILD = Path("arch/x86/boot/bzImage")


@dataclass(frozen=True)
class GivenKernel:
    """Where the files of a kernel built elsewhere are. `entry` is set when PATH is one of the harness's own cache
    entries (a campaign hands its inner pytest the artifact it built): it is used as it is."""

    bzimage: Path
    vmlinux: Path
    build_dir: Path | None = None  # holds .config, System.map, include/config/kernel.release
    source_tree: Path | None = None  # holds include/uapi/linux/audit.h
    entry: Path | None = None

    def describe(self) -> str:
        where = self.entry or self.build_dir or self.bzimage.parent
        return f"the kernel built in {where} (used as it is: nothing built)"


def locate(path: Path) -> GivenKernel:
    """The files of the kernel at `path`: a harness cache entry, a build directory (make O=DIR, or a tree built in
    place), or a bzImage with its vmlinux beside it (or in the build directory above arch/x86/boot/)."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise SourceError(f"--kernel {path} does not exist: give a bzImage (its vmlinux beside it) or a kernel build "
                          "directory.", usage=True)
    art = _cache_entry(path)
    if art is not None:  # a harness cache entry: a build, a given kernel, a prebuilt image
        return GivenKernel(art.bzimage, art.vmlinux, entry=path)
    if path.is_dir():
        image = next((p for p in (path / IMAGE_IN_BUILD, path / "bzImage") if p.is_file()), None)
        if image is None:
            raise SourceError(f"--kernel {path}: no {IMAGE_IN_BUILD} (nor bzImage) in it: build the kernel first "
                              f"(make -C TREE [O={path}] bzImage vmlinux), or give the bzImage itself.", usage=True)
        build_dir = path
    else:
        image = path
        found = next((d for d in (path.parent, *list(path.parents)[1:4]) if (d / "vmlinux").is_file()), None)
        if found is None:
            raise SourceError(f"--kernel {path}: no vmlinux beside it (nor in the build directory above it): the "
                              "harness needs the vmlinux of this very build for its BTF (vmlinux.h, features).",
                              usage=True)
        build_dir = found
    vmlinux = build_dir / "vmlinux"
    if not vmlinux.is_file():
        raise SourceError(f"--kernel {path}: {vmlinux} is missing: build vmlinux too (make vmlinux).", usage=True)
    return GivenKernel(image, vmlinux, build_dir, _source_tree(build_dir))


def _cache_entry(path: Path) -> KernelArtifact | None:
    """The artifact, if `path` is one of the harness's cache entries: a directory named by the key its meta.json
    holds (a developer's build directory with a meta.json of its own is not)."""
    from harness.kernel.prebuilt import load_entry

    try:
        art = load_entry(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return art if art.key == path.name else None


def _source_tree(build_dir: Path) -> Path | None:
    """The source tree of a build directory: itself for a build in place, `source` (kbuild's link) for O=DIR."""
    for tree in (build_dir, build_dir / "source"):
        if (tree / "include/uapi/linux/audit.h").is_file():
            return tree.resolve()
    return None


def image_release(bzimage: Path) -> str | None:
    """The kernel release a bzImage carries (the x86 boot protocol's kernel_version string), or None."""
    try:
        with bzimage.open("rb") as f:
            head = f.read(0x10000)
    except OSError:
        return None
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        return None
    (offset,) = struct.unpack_from("<H", head, 0x20E)
    start = 0x200 + offset
    text = head[start:start + 256].split(b"\0", 1)[0].decode(errors="replace")
    return text.split()[0] if text.strip() else None


def unsatisfied(fragments: list[kconfig.Fragment], config_text: str, kernelversion: str) -> list[str]:
    """The options the run's fragments ask for that the build's .config does not have, one line each."""
    merged = kconfig.merge(fragments, kernelversion)
    return [m.describe() for m in kconfig.find_mismatches(merged, kconfig.parse_dotconfig(config_text))]


def prepare(given: GivenKernel, layout: CacheLayout, *, fragments: tuple = (), say=None) -> BuildResult:
    """The artifact for a kernel built elsewhere: its files copied into the cache under a key of their content (the
    developer's next make cannot change what this run tests), vmlinux.h dumped from its BTF. A harness cache entry
    is used as it is."""
    t0 = time.monotonic()
    if given.entry is not None:
        from harness.kernel.prebuilt import load_entry

        return BuildResult(load_entry(given.entry), True, time.monotonic() - t0, None,
                           source=f"the harness's cache entry {given.entry}")
    if not kernel_has_btf(given.vmlinux):
        raise SourceError(f"{given.vmlinux} has no BTF (.BTF section): the harness compiles cases against the "
                          "kernel's BTF. Build it with CONFIG_DEBUG_INFO_BTF=y.", usage=True)
    audit_h = given.source_tree / "include/uapi/linux/audit.h" if given.source_tree else HOST_AUDIT_H
    notes = [] if given.source_tree else [
        f"no kernel source tree found for {given.build_dir or given.bzimage} (the build directory's `source` link): "
        f"record types are read from the host's {HOST_AUDIT_H}, which may lack ones the kernel has"]
    config = given.build_dir / ".config" if given.build_dir else None
    h = hashlib.sha256()
    for part in (given.bzimage, given.vmlinux, audit_h, *([config] if config and config.is_file() else [])):
        h.update(file_sha256(part, layout).encode())
    key = "given-" + h.hexdigest()[:18]
    hit = cache.published(layout, key, KernelArtifact.problem)
    release = image_release(given.bzimage) or "unknown"
    if config is not None and config.is_file() and fragments:
        missing = unsatisfied(list(fragments), config.read_text(errors="replace"), release.split("-")[0])
        if missing:
            notes.append(f"its .config lacks {len(missing)} option(s) the harness's fragments ask for (cases that "
                         f"need them fail or skip): {'; '.join(missing[:8])}" + (" ..." if len(missing) > 8 else ""))
    source = given.describe()
    if hit:
        return BuildResult(KernelArtifact.load(hit), True, time.monotonic() - t0, None, tuple(notes), source)
    with cache.key_lock(layout, key, holder=f"preparing {source}", waiting=say):
        hit = cache.published(layout, key, KernelArtifact.problem)
        if hit is None:
            with cache.staging(layout, key) as staged:
                shutil.copy2(given.bzimage, staged / "bzImage")
                shutil.copy2(given.vmlinux, staged / "vmlinux")
                shutil.copy2(audit_h, staged / "audit.h")
                # Every entry has a config and a System.map (the cache's damage check looks for them): what the
                # build has, else a line saying it had none.
                if config is not None and config.is_file():
                    shutil.copy2(config, staged / "config")
                else:
                    (staged / "config").write_text("# the given kernel's build directory has no .config\n")
                if given.build_dir and (given.build_dir / "System.map").is_file():
                    shutil.copy2(given.build_dir / "System.map", staged / "System.map")
                else:
                    (staged / "System.map").write_text("# the given kernel's build directory has no System.map\n")
                out = subprocess.run(["bpftool", "btf", "dump", "file", str(staged / "vmlinux"), "format", "c"],
                                     capture_output=True, text=True, check=False)
                if out.returncode != 0 or "struct task_struct {" not in out.stdout:
                    raise SourceError(f"bpftool could not dump the BTF of {given.vmlinux}: "
                                      f"{out.stderr.strip()[-600:]}")
                (staged / "vmlinux.h").write_text(out.stdout)
                meta = {"key": key, "release": release, "kind": "given", "given": str(given.bzimage),
                        "build_dir": str(given.build_dir or ""), "source_tree": str(given.source_tree or ""),
                        "tree": str(given.source_tree or ""),  # where its selftests (test_progs) come from
                        "source_description": source, "patches": [], "prepared_at":
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                hit = cache.publish(layout, key, staged, meta)
    return BuildResult(KernelArtifact.load(hit), False, time.monotonic() - t0, None, tuple(notes), source)
