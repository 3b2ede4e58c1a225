# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness doctor`: can a run work here? Every tool with its version and package, KVM, the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.debian import DEFAULT_KEYRING
from harness.settings import CacheLayout, cache_root, harness_version
from harness.tools import version_line

GUEST_PYTHON = "/usr/bin/python3"  # harness.machine.ssh.GUEST_PYTHON: the guest agent's interpreter
LIBBPF_SO = ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "/usr/lib64/libbpf.so.1", "/usr/lib/libbpf.so.1")
MIN_FREE_BYTES = 2 << 30  # below this a kernel build cannot finish (its tree and objects take more)
LOW_FREE_BYTES = 10 << 30  # below this: a warning


@dataclass(frozen=True)
class Need:
    """One thing a run uses: a command on PATH (or a file), the Debian package that provides it, how to ask its
    version, and what it is for. Optional ones only serve some commands."""

    name: str
    package: str
    version: tuple[str, ...] = ()  # arguments after the command that print its version; () = the package's
    for_: str = ""
    paths: tuple[str, ...] = ()  # where to look instead of PATH (the first that exists): files, guest commands
    required: bool = True


NEEDS = (
    # the kernel build (harness.kernel.build: BUILD_TOOLS), then the patch series and the source
    Need("make", "make", ("--version",), "kernel build"),
    Need("gcc", "gcc", ("--version",), "kernel build"),
    Need("flex", "flex", ("--version",), "kernel build"),
    Need("bison", "bison", ("--version",), "kernel build"),
    Need("bc", "bc", ("--version",), "kernel build"),
    Need("pahole", "dwarves", ("--version",), "kernel build: BTF"),
    Need("zstd", "zstd", ("--version",), "kernel build"),
    Need("tar", "tar", ("--version",), "unpacking the source"),
    Need("xz", "xz-utils", ("--version",), "unpacking the source"),
    Need("cpio", "cpio", ("--version",), "kernel build: in-kernel headers"),
    Need("libelf.h", "libelf-dev", for_="kernel build: objtool", paths=("/usr/include/libelf.h",)),
    Need("openssl/ssl.h", "libssl-dev", for_="kernel build: certificates", paths=("/usr/include/openssl/ssl.h",)),
    Need("patch", "patch", ("--version",), "applying patches/<line>/series"),
    # the Debian source lines (kernel-config/sources.toml): fetched with the harness's own apt configuration
    Need("apt-get", "apt", ("--version",), "fetching the Debian source lines"),
    Need("dpkg-deb", "dpkg", ("--version",), "unpacking the fetched source package"),
    Need("debian-archive-keyring", "debian-archive-keyring", for_="checking the archive's signatures",
         paths=(DEFAULT_KEYRING,)),
    Need("ccache", "ccache", ("--version",), "faster rebuilds", required=False),
    Need("git", "git", ("--version",), "--kernel-src git trees, bisect", required=False),
    # the cases: compiled on the host, loaded in the guest
    Need("clang-19", "clang-19", ("--version",), "compiling the cases (any clang >= 16 will do: --clang)",
         required=False),
    Need("bpf/bpf_helpers.h", "libbpf-dev", for_="compiling the cases", paths=("/usr/include/bpf/bpf_helpers.h",)),
    Need("bpftool", "bpftool", ("--version",), "vmlinux.h, BTF checks; in the guest"),
    Need("libbpf.so.1", "libbpf1", for_="the guest agent loads programs with it", paths=LIBBPF_SO),
    Need("python3 (guest)", "python3", ("--version",), "the guest agent", paths=(GUEST_PYTHON,)),
    Need("auditctl", "auditd", ("-v",), "the guest's audit rule", paths=("/usr/sbin/auditctl", "/sbin/auditctl")),
    # the VM
    Need("qemu-system-x86_64", "qemu-system-x86", ("--version",), "the VM"),
    Need("vng", "", ("--version",), "the VM (virtme-ng, a pip package of the project)"),
    Need("busybox", "busybox-static", for_="virtme-ng's guest init", paths=("/bin/busybox", "/usr/bin/busybox")),
    Need("ip", "iproute2", ("-V",), "the guest's network", paths=("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")),
    Need("sshd", "openssh-server", for_="the guest's sshd", paths=("/usr/sbin/sshd",)),
    Need("ssh-keygen", "openssh-client", for_="the run's SSH keys"),
    Need("ssh", "openssh-client", ("-V",), "`bpf-audit-harness ssh`, `boot` shells", required=False),
    Need("gdb", "gdb", ("--version",), "--gdb: attaching to a guest's kernel", required=False),
)


@dataclass(frozen=True)
class Found:
    need: Need
    where: str  # the path, or "" when missing
    version: str  # the tool's own version line, or the package's version

    @property
    def ok(self) -> bool:
        return bool(self.where)


def _vng() -> str:
    from harness.machine.vm import _find_vng

    path = _find_vng()
    return path if os.access(path, os.X_OK) else ""


def locate(need: Need) -> str:
    """Where `need` is on this machine ('' when missing)."""
    if need.name == "vng":
        return _vng()
    if need.paths:
        return next((p for p in need.paths if os.path.exists(p)), "")
    return shutil.which(need.name) or ""  # the host's commands: on PATH, as the harness runs them


def package_versions(packages: list[str]) -> dict[str, str]:
    """Installed version of each Debian package (absent: not installed), in one dpkg-query."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Status}\\n", *packages],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    versions = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "installed":
            versions[parts[0]] = parts[1]
    return versions


def survey() -> list[Found]:
    """Every need, located and versioned (the version commands run in parallel: a second, not twenty)."""
    packages = package_versions(sorted({n.package for n in NEEDS if n.package}))

    def one(need: Need) -> Found:
        where = locate(need)
        if not where:
            return Found(need, "", "")
        version = ""
        if need.version:
            line = version_line(where, *need.version).replace(where, Path(where).name)  # bpftool says its argv[0]
            version = _short(line.strip("* "))
        if not version and need.package:
            version = f"{need.package} {packages.get(need.package, '(not from a package)')}"
        return Found(need, where, version)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, NEEDS))


def _short(line: str, width: int = 52) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."


def type_tags() -> tuple[bool | None, str]:
    """The BPF compiler a run would use (--clang, $CLANG or found on PATH) and whether it passed the checks (at
    least clang 16, keeps btf_type_tag): (True, what it is) or (None, why none)."""
    from harness.cases import clang
    from harness.errors import HarnessError

    try:
        return True, clang.select().describe()
    except HarnessError as e:
        return None, str(e)


def source_lines(layout: CacheLayout) -> list[dict]:
    """Each Debian source line of sources.toml and what the cache holds of it (newest first), without asking any
    archive: the versions fetched, when, and how old the line's package lists are."""
    from harness.errors import HarnessError
    from harness.kernel import debian

    try:
        lines = debian.load_lines()
    except HarnessError as e:
        return [{"name": "?", "error": str(e)}]
    out = []
    for line in lines:
        have = debian.cached(line, layout)
        stamp = debian.apt_root(layout, line) / "lists.updated"
        age = time.time() - stamp.stat().st_mtime if stamp.is_file() else None
        out.append({"name": line.name, "package": line.package, "suite": line.suite, "archive": line.archive,
                    "cached": [{"version": f.version, "tarball": str(f.tarball),
                                "fetched_at": time.strftime("%Y-%m-%d %H:%M", time.localtime(f.fetched_at))}
                               for f in have],
                    "lists_age_hours": round(age / 3600, 1) if age is not None else None})
    return out


def describe_line(entry: dict) -> str:
    if "error" in entry:
        return f"{entry['name']}: {entry['error']}"
    head = f"{entry['name']:12} {entry['package']} ({entry['suite']}): "
    if not entry["cached"]:
        return head + "not fetched yet (the first build of it fetches the newest version)"
    newest = entry["cached"][0]
    more = f"; also {', '.join(c['version'] for c in entry['cached'][1:])}" if len(entry["cached"]) > 1 else ""
    age = entry["lists_age_hours"]
    lists = f"; package lists {age:g} h old" if age is not None else ""
    return head + f"{newest['version']} cached, fetched {newest['fetched_at']}{more}{lists}"


def default_kernel(layout: CacheLayout) -> tuple[Path | None, str]:
    """The cached default kernel's bzImage (the key computed as `build --print-key` does, from what the cache holds:
    no archive is asked, nothing is unpacked or built) and a description; None and why not."""
    from harness.errors import HarnessError
    from harness.kernel import cache, debian
    from harness.kernel.artifact import KernelArtifact
    from harness.kernel.request import KernelOptions, effective, make_request

    try:
        opts = effective(KernelOptions(cache_dir=layout.root))
        line = debian.find_line(opts.kernel_src or "")
        if line is not None and not debian.cached(line, layout):
            return None, (f"no kernel built yet (run `make build`): its source, {line.package} ({line.name}, "
                          f"{line.suite}), is not fetched yet")
        key = make_request(opts, unpack=False, offline=True).key_inputs().key()
    except HarnessError as e:
        return None, f"the default kernel's cache key cannot be computed: {e}"
    entry = cache.published(layout, key, KernelArtifact.problem)
    if entry is None:
        return None, f"no kernel built yet (run `make build`): nothing cached under the default key {key}"
    art = KernelArtifact.load(entry)
    return art.bzimage, f"{art.release}, cache key {key}: {art.bzimage}"


def accelerator(layout: CacheLayout, kernel: Path | None, why_none: str) -> str:
    """The accelerator a run would use and why: the cached probe verdict, or a probe boot of the cached kernel
    (up to 12 s; never a build)."""
    from harness.machine import accel

    if kernel is None:
        kvm = "exists" if os.path.exists("/dev/kvm") else "does not exist"
        return (f"not probed: {why_none.split(':')[0]} (/dev/kvm {kvm}; a run probes KVM by booting its kernel, "
                "and uses TCG if that fails)")
    choice = accel.choose("auto", layout.state, kernel, warn=lambda msg: None)
    age = time.time() - choice.probed_at
    when = "probed just now" if age < 5 else f"probe result from {age / 60:.0f} min ago, kept 15 min"
    return f"{choice.accel.upper()}: {choice.reason} ({when})"


def disk(layout: CacheLayout) -> tuple[str, int]:
    """'<root>: <size>; free: <bytes>' and the free bytes on the cache's file system."""
    from harness.kernel.gc import human

    root = layout.root
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    size = "not created yet"
    if root.is_dir():
        try:
            out = subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True, timeout=120, check=False)
            size = human(int(out.stdout.split()[0])) if out.returncode == 0 and out.stdout else "?"
        except (OSError, subprocess.TimeoutExpired, ValueError):
            size = "? (du took too long)"
    return f"{root}: {size}; free on its file system: {human(free)}", free


def python_packages() -> list[str]:
    from importlib import metadata

    out = []
    for dist in ("pytest", "pytest-xdist", "paramiko", "virtme-ng", "matplotlib"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} not installed (only `report` needs it: the [plots] extra)" if dist == "matplotlib"
                       else f"{dist} MISSING (run `make venv`)")
    return out


def run(cache_dir: Path | None = None, say: Callable[[str], None] = print, json_path: Path | None = None) -> int:
    """Print the report (and write it as JSON to `json_path`); 0 when a run can work here, 3 when something it
    needs is missing."""
    layout = CacheLayout(cache_dir or cache_root())
    report: dict = {"version": harness_version()}
    say(f"bpf-audit-harness {report['version']}")
    found = survey()
    width = max((len(f.need.name) for f in found), default=0)
    say("tools (status, name, version or path, Debian package, what for):")
    report["tools"] = []
    for f in found:
        status = "ok" if f.ok else ("MISSING" if f.need.required else "missing")
        package = f.need.package or "pip: `make venv`"
        detail = f.version or f.where or "-"
        say(f"  {status:8} {f.need.name:{width}}  {detail:52}  {package:18} {f.need.for_}"
            + ("" if f.need.required else " (optional)"))
        report["tools"].append({"name": f.need.name, "status": status.lower(), "version": f.version,
                                "path": f.where, "package": f.need.package, "for": f.need.for_,
                                "required": f.need.required})
    problems = [f for f in found if not f.ok and f.need.required]
    tags, compiler = type_tags()
    report["btf_type_tags"] = {"compiler": compiler, "kept": tags}
    if tags:
        say(f"BPF compiler: {compiler}; keeps btf_type_tag")
    else:
        say(f"BPF compiler: NONE USABLE: {compiler}")
    report["source_lines"] = source_lines(layout)
    say("Debian source lines (kernel-config/sources.toml; the cache, no archive asked):")
    for entry in report["source_lines"]:
        say(f"  {describe_line(entry)}")
    kernel, why = default_kernel(layout)
    report["default_kernel"] = {"bzimage": str(kernel) if kernel else None, "description": why}
    say(f"default kernel: {why}")
    report["accelerator"] = accelerator(layout, kernel, why)
    say(f"accelerator: {report['accelerator']}")
    where, free = disk(layout)
    report["cache"] = {"root": str(layout.root), "description": where, "free_bytes": free}
    say(f"cache: {where}")
    report["python"] = python_packages()
    say("python: " + ", ".join(report["python"]))
    if free < MIN_FREE_BYTES:
        say(f"NOT ENOUGH DISK: a kernel build needs several GiB in {layout.root}")
    elif free < LOW_FREE_BYTES:
        say("low disk: a kernel build takes a few GiB; `bpf-audit-harness cache --prune` frees old kernels")
    pkgs = sorted({f.need.package for f in problems if f.need.package} | (set() if tags else {"clang-19"}))
    report["apt_install"] = pkgs
    if pkgs:
        say(f"missing: apt-get install {' '.join(pkgs)}")
    if any(f.need.name == "vng" for f in problems):
        say("missing: virtme-ng in the venv: make venv")
    ok = not problems and free >= MIN_FREE_BYTES and bool(tags)
    report["verdict"] = "a run can work here" if ok else "a run cannot work here yet"
    say("verdict: a run can work here" if ok else "verdict: a run cannot work here yet (see MISSING above)")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 3
