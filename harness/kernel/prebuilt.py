# SPDX-License-Identifier: GPL-2.0
"""A distribution's prebuilt kernel (a Debian linux-image .deb) as a cached artifact: no build, BTF from the guest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import BuildError, HarnessError, SourceError
from harness.kernel import apt, cache
from harness.kernel.artifact import ArtifactMeta, BuildResult, KernelArtifact
from harness.settings import CacheLayout, refuse_if_forbidden
from harness.tools import quoted

# Bump when the preparation recipe (what is extracted, how BTF is read) changes.
RECIPE_VERSION = 1
GUEST_BTF = "/sys/kernel/btf/vmlinux"


class PrebuiltError(HarnessError):
    stage = "prebuilt"


@dataclass(frozen=True)
class PrebuiltRequest:
    """Which package to boot. `package` may be a metapackage (linux-image-amd64): its image dependency is used.
    `version` is a pin, a preference: `resolved()` says which version the archive really serves."""

    package: str
    version: str
    append: tuple[str, ...] = ()
    accel: str = "auto"

    def key(self) -> str:
        blob = json.dumps({"kind": "prebuilt-deb", "package": self.package, "version": self.version,
                           "append": list(self.append), "recipe": RECIPE_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    @classmethod
    def for_target(cls, target, accel: str = "auto") -> PrebuiltRequest:
        """The request a prebuilt-deb matrix target makes."""
        if not (target.package and target.version):
            raise PrebuiltError(f"matrix target {target.name} has no package/version")
        return cls(target.package, target.version, target.append, accel)

    def resolved(self) -> tuple[PrebuiltRequest, apt.Resolution]:
        """This request with the version apt really has (the pin, or the newest of the same kernel line), and
        why. Its key() is the key of what is fetched: a different .deb is a different kernel."""
        res = apt.resolve(self.package, self.version)
        return replace(self, version=res.version), res


@dataclass(frozen=True)
class PrebuiltArtifact(KernelArtifact):
    """A prepared distribution kernel: the kbuild artifact's layout, but the image and System.map stay inside the
    extracted package root and `vmlinux` is raw BTF read in the guest."""

    @property
    def bzimage(self) -> Path:
        # Inside the extracted package root, so virtme-ng finds root/lib/modules/<release> next to it.
        return self.dir / "root" / "boot" / f"vmlinuz-{self.release}"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux.btf"  # /sys/kernel/btf/vmlinux read in the guest: bpftool reads it like a vmlinux

    @property
    def system_map(self) -> Path:
        return self.dir / "root" / "boot" / f"System.map-{self.release}"


def load_entry(entry: Path) -> KernelArtifact:
    """A published cache entry as the artifact its meta.json says it is: a prebuilt image keeps its files inside
    the package root, a build or a given kernel at the top."""
    meta = ArtifactMeta.from_json(json.loads((entry / "meta.json").read_text()))
    cls = PrebuiltArtifact if meta.kind == "prebuilt-deb" else KernelArtifact
    return cls(meta.key, entry, meta.release, meta)


PrebuiltResult = BuildResult  # artifact, cache_hit, seconds, log


_DEP_RE = re.compile(r"^\s*(linux-image-[^\s(|,]+)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?")


def image_dependency(depends: str) -> tuple[str, str | None] | None:
    """The linux-image-* package (and pinned version) a metapackage's Depends field names, if any."""
    for alt in depends.split(","):
        m = _DEP_RE.match(alt.split("|")[0])
        if m:
            return m.group(1), m.group(2)
    return None


def kernel_release_from_members(members: list[str]) -> str | None:
    """The release from a package's file list: ./boot/vmlinuz-<release>."""
    for name in members:
        m = re.search(r"(?:^|/)boot/vmlinuz-(\S+)$", name)
        if m:
            return m.group(1)
    return None


def prepare(req: PrebuiltRequest, layout: CacheLayout, run_dir: Path, *, progress: bool = True) -> PrebuiltResult:
    """Return the cached artifact for this package (the version apt has for the pin), fetching, extracting and
    booting it first if needed."""
    t0 = time.monotonic()
    cache.ensure_writable(layout)
    actual, why = req.resolved()
    notes = (why.note,) if why.note else ()
    key = actual.key()
    hit = cache.published(layout, key, PrebuiltArtifact.problem)
    if hit:
        return PrebuiltResult(PrebuiltArtifact.load(hit), True, time.monotonic() - t0, None, notes)
    with cache.key_lock(layout, key):
        hit = cache.published(layout, key, PrebuiltArtifact.problem)
        if hit:
            return PrebuiltResult(PrebuiltArtifact.load(hit), True, time.monotonic() - t0, None, notes)
        refuse_if_forbidden("build", f"preparing prebuilt kernel {actual.package}={actual.version}")
        log = run_dir / f"prebuilt-{key}.log"
        if why.note:
            _say(progress, f"[prebuilt] {why.note}")
        entry = _prepare_and_publish(actual, why, key, layout, run_dir, log, progress)
    return PrebuiltResult(PrebuiltArtifact.load(entry), False, time.monotonic() - t0, log, notes)


def _run(argv: list[str], log: Path, what: str, cwd: Path | None = None) -> str:
    with log.open("a") as f:
        f.write(f"$ {quoted(argv)}\n")
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace", check=False)
    with log.open("a") as f:
        f.write(res.stdout[-20000:] + res.stderr[-20000:])
    if res.returncode != 0:
        raise PrebuiltError(f"{what} failed (exit {res.returncode}): {quoted(argv)}\n{res.stderr.strip()[-1500:]}",
                            log_path=log)
    return res.stdout


def _download(package: str, version: str | None, dest: Path, log: Path) -> Path:
    """`apt-get download pkg=ver` into dest; the .deb it wrote."""
    spec = f"{package}={version}" if version else package
    before = set(dest.glob("*.deb"))
    try:
        _run(["apt-get", "download", spec], log, f"downloading {spec}", cwd=dest)
    except PrebuiltError as e:
        raise SourceError(f"{e}\nIs {spec} still in the archive? `apt-cache policy {package}` lists the versions "
                          "apt knows (run `apt-get update` first); pin another in kernel-config/matrix.toml.",
                          log_path=log) from e
    new = sorted(set(dest.glob("*.deb")) - before)
    if len(new) != 1:
        raise PrebuiltError(f"apt-get download {spec} wrote {len(new)} .deb files in {dest}, expected one",
                            log_path=log)
    return new[0]


def _image_deb(req: PrebuiltRequest, work: Path, log: Path) -> Path:
    deb = _download(req.package, req.version, work, log)
    for _ in range(3):  # metapackage -> versioned image package (at most a short chain)
        members = _run(["dpkg-deb", "-c", str(deb)], log, f"listing {deb.name}").splitlines()
        if kernel_release_from_members([line.split()[-1] for line in members if line.split()]):
            return deb
        dep = image_dependency(_run(["dpkg-deb", "-f", str(deb), "Depends"], log, f"reading {deb.name}"))
        if dep is None:
            raise PrebuiltError(f"{deb.name} has no boot/vmlinuz-* and depends on no linux-image-* package",
                                log_path=log)
        deb = _download(dep[0], dep[1], work, log)
    raise PrebuiltError(f"no kernel image found following the dependencies of {req.package}", log_path=log)


def _audit_h(image_pkg: str, image_ver: str, work: Path, log: Path) -> tuple[Path, str]:
    """The uapi audit.h of the image's upstream kernel and where it came from: linux-libc-dev of that upstream
    version (its Debian revision may differ from the image's), else the image's own linux-headers-*-common."""
    try:
        res = apt.choose_same_upstream("linux-libc-dev", image_ver, apt.available_versions("linux-libc-dev"))
        pkg, ver, rel = "linux-libc-dev", res.version, "usr/include/linux/audit.h"
    except SourceError:
        abi = image_pkg.removeprefix("linux-image-").rsplit("-", 1)[0]  # linux-image-6.1.0-56-amd64 -> 6.1.0-56
        pkg, ver = f"linux-headers-{abi}-common", image_ver
        rel = f"usr/src/{pkg}/include/uapi/linux/audit.h"
    deb = _download(pkg, ver, work, log)
    root = work / "headers"
    _run(["dpkg-deb", "-x", str(deb), str(root)], log, f"extracting {deb.name}")
    if not (root / rel).is_file():
        raise PrebuiltError(f"{deb.name} has no {rel}", log_path=log)
    return root / rel, f"{pkg} {ver}"


def _prepare_and_publish(req: PrebuiltRequest, why: apt.Resolution, key: str, layout: CacheLayout, run_dir: Path,
                         log: Path, progress: bool) -> Path:
    from harness.machine.vm import LocalVM, VMConfig

    layout.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"build-{key}-", dir=layout.work))
    (work / cache.OWNER).write_text(str(os.getpid()))
    t0 = time.monotonic()
    try:
        _say(progress, f"[prebuilt] fetching {req.package}={req.version} (log: {log})")
        deb = _image_deb(req, work, log)
        image_pkg = _run(["dpkg-deb", "-f", str(deb), "Package"], log, "reading Package").strip()
        image_ver = _run(["dpkg-deb", "-f", str(deb), "Version"], log, "reading Version").strip()
        with cache.staging(layout, key) as staged:
            root = staged / "root"
            _run(["dpkg-deb", "-x", str(deb), str(root)], log, f"extracting {deb.name}")
            boots = sorted((root / "boot").glob("vmlinuz-*"))
            if len(boots) != 1:
                raise PrebuiltError(f"{deb.name}: expected one boot/vmlinuz-*, found {[p.name for p in boots]}",
                                    log_path=log)
            release = boots[0].name.removeprefix("vmlinuz-")
            # The .deb ships no modules.dep (postinst makes it): generate it in the extracted root, not the system.
            _run(["depmod", "-b", str(root), release], log, "depmod")
            shutil.copy2(root / "boot" / f"config-{release}", staged / "config")
            header, header_from = _audit_h(image_pkg, image_ver, work, log)
            shutil.copy2(header, staged / "audit.h")
            image = root / "boot" / f"vmlinuz-{release}"
            _say(progress, f"[prebuilt] booting {image} to read {GUEST_BTF}")
            vm = LocalVM(VMConfig(kernel=image, accel=req.accel, append=req.append), run_dir, name="prebuilt-btf",
                         state_dir=layout.state)
            with vm:
                assert vm.guest is not None
                facts = {}
                for name, cmd in (("uname", "uname -r"), ("cmdline", "cat /proc/cmdline"),
                                  ("lsm", "cat /sys/kernel/security/lsm")):
                    facts[name] = vm.guest.run(cmd, timeout=60).stdout.strip()
                res = vm.guest.run(f"cat {GUEST_BTF} > /tmp/vmlinux.btf && wc -c < /tmp/vmlinux.btf", timeout=120)
                if res.rc != 0:
                    raise PrebuiltError(f"reading {GUEST_BTF} in the guest failed (rc {res.rc}): {res.stderr[-800:]}; "
                                        f"console: {vm.console_log}", log_path=log)
                vm.guest.get("/tmp/vmlinux.btf", staged / "vmlinux.btf")
            if facts["uname"] != release:
                raise PrebuiltError(f"the guest runs {facts['uname']!r}, not the package's {release!r}", log_path=log)
            out = subprocess.run(["bpftool", "btf", "dump", "file", str(staged / "vmlinux.btf"), "format", "c"],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0 or "struct task_struct {" not in out.stdout:
                raise BuildError(f"bpftool could not dump the guest's BTF: {out.stderr.strip()[-800:]}", log_path=log)
            (staged / "vmlinux.h").write_text(out.stdout)
            meta = {
                "key": key,
                "kind": "prebuilt-deb",
                "release": release,
                "package": req.package,
                "version": req.version,
                "pinned_version": why.pinned,
                "version_note": why.note,
                "image_package": image_pkg,
                "image_version": image_ver,
                "audit_h_from": header_from,
                "packages": {req.package: req.version, image_pkg: image_ver,
                             header_from.split()[0]: header_from.split()[1]},
                "append": list(req.append),
                "guest_cmdline": facts["cmdline"],
                "guest_lsm": facts["lsm"],
                "btf_bytes": (staged / "vmlinux.btf").stat().st_size,
                "prepare_seconds": round(time.monotonic() - t0, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            entry = cache.publish(layout, key, staged, meta)
        _say(progress, f"[prebuilt] {release} ready in {time.monotonic() - t0:.0f}s: {entry}")
        return entry
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _say(enabled: bool, msg: str) -> None:
    if enabled:
        print(msg, file=sys.stderr, flush=True)


# -- the source a prebuilt kernel was built from (its tools/testing/selftests) -----------------------------------

def source_package(image_version: str) -> str:
    """Debian's source-tarball package of a kernel line: 6.1.192-2 -> linux-source-6.1."""
    return f"linux-source-{apt.kernel_line(image_version)}"


def source_resolution(image_version: str, available: list[str]) -> apt.Resolution:
    """The linux-source-<line> version built from the same upstream kernel as the image (the exact version when
    the archive has it); SourceError naming what apt knows when it has none."""
    return apt.choose_same_upstream(source_package(image_version), image_version, available)


def source_tarball(image_version: str, layout: CacheLayout, log: Path) -> tuple[Path, apt.Resolution]:
    """Debian's /usr/src/linux-source-<line>.tar.xz of the image's upstream kernel: the installed one when its
    package is that version, else `apt-get download` + `dpkg-deb -x` into the cache (kept there, by version;
    the system is not touched). harness.kernel.source unpacks it like the default tarball."""
    pkg = source_package(image_version)
    res = source_resolution(image_version, apt.available_versions(pkg) or [])
    rel = Path("usr/src") / f"{pkg}.tar.xz"
    installed = Path("/") / rel
    if installed.is_file() and apt.installed_version(str(installed)) == (pkg, res.version):
        return installed, res
    dest = layout.sources / f"deb-{pkg}_{re.sub(r'[^A-Za-z0-9.+~-]', '_', res.version)}"
    if (dest / rel).is_file():
        return dest / rel, res
    layout.sources.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{pkg}-", dir=layout.sources))
    try:
        deb = _download(pkg, res.version, work, log)
        _run(["dpkg-deb", "-x", str(deb), str(work / "root")], log, f"extracting {deb.name}")
        if not (work / "root" / rel).is_file():
            raise SourceError(f"{deb.name} has no {rel}", log_path=log)
        try:
            (work / "root").rename(dest)
        except OSError:
            if not (dest / rel).is_file():  # another session put it there first: theirs is as good
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest / rel, res
