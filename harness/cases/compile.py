# SPDX-License-Identifier: GPL-2.0
"""Compile a case file to a BPF object against a kernel's vmlinux.h, with a content-addressed object cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from harness.errors import CaseError, HarnessError
from harness.settings import CASES_INCLUDE_DIR
from harness.tools import quoted, version_line

CLANG_CANDIDATES = ("clang-19", "clang-18", "clang-17", "clang-16")  # for skip marks; the search: harness.cases.clang
CASES_DIR = CASES_INCLUDE_DIR
HARNESS_H = CASES_DIR / "harness.h"
MULTIARCH_INCLUDE = Path("/usr/include/x86_64-linux-gnu")
LIBBPF_VERSION_H = Path("/usr/include/bpf/libbpf_version.h")
COMPILE_TIMEOUT = 300
# Bump when the compile recipe (flags, layout) changes in a way the key inputs do not show.
# 2: -mcpu=v3 (what the kernel's selftests use; clang-19 alone emits v1: no 32-bit jumps, no alu32).
RECIPE_VERSION = 2
# The BPF ISA the objects target: v3 (alu32, jmp32), as the kernel's own selftests compile (test_progs flavor).
BPF_CPU = "v3"

@dataclass(frozen=True)
class CompileResult:
    """obj is the compiled object (None on failure); argv is the command, runnable by hand."""

    obj: Path | None
    ok: bool
    stderr: str
    argv: list[str] = field(default_factory=list)
    cached: bool = False

    @property
    def command(self) -> str:
        return quoted(self.argv)


def find_clang() -> str:
    """The BPF compiler's path: --clang (which sets $CLANG for the run), $CLANG, else clang-19, another clang-N or
    plain clang on PATH; a clang older than 16 or one that drops btf_type_tag is refused (harness.cases.clang)."""
    from harness.cases import clang

    return clang.select().path


EM_BPF = 247


def check_object(path: Path) -> None:
    """Raise CaseError unless `path` is a little-endian 64-bit ELF relocatable for BPF (what libbpf loads)."""
    try:
        head = path.read_bytes()[:64]
    except OSError as e:
        raise CaseError(f"BPF object {path} cannot be read ({e.strerror}).") from e
    if head[:4] != b"\x7fELF":
        raise CaseError(f"{path} is not an ELF file (it starts with {head[:16]!r}), so it is not a BPF object. "
                        "Build one with `clang -target bpf -O2 -g -c prog.bpf.c -o prog.bpf.o`, or hand the harness "
                        "the .bpf.c source and let it compile it.")
    machine = int.from_bytes(head[18:20], "little") if len(head) >= 20 else -1
    if head[4] != 2 or head[5] != 1 or machine != EM_BPF:
        raise CaseError(f"{path} is an ELF file but not a BPF object (class {head[4]}, data {head[5]}, machine "
                        f"{machine}; a BPF object is ELF64 little-endian with machine {EM_BPF}). It was compiled "
                        "for another target: use `clang -target bpf`.")


def compile_argv(clang: str, src: Path, vmlinux_h: Path, obj: Path) -> list[str]:
    return [
        clang,
        "-g",
        "-O2",
        "-target",
        "bpf",
        f"-mcpu={BPF_CPU}",
        "-D__TARGET_ARCH_x86",
        f"-I{vmlinux_h.parent}",
        f"-I{CASES_DIR}",
        f"-I{MULTIARCH_INCLUDE}",
        "-c",
        str(src),
        "-o",
        str(obj),
    ]


@lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file, memoized on (path, mtime, size): vmlinux.h is hashed once per process."""
    st = path.stat()
    return _file_digest(str(path), st.st_mtime_ns, st.st_size)


def cache_key(src_text: bytes, vmlinux_h: Path, clang: str) -> str:
    """Everything the object depends on: source, harness.h, vmlinux.h, compiler, libbpf headers, recipe."""
    h = hashlib.sha256()
    for part in (
        b"recipe:%d" % RECIPE_VERSION,
        src_text,
        HARNESS_H.read_bytes() if HARNESS_H.is_file() else b"",
        file_digest(vmlinux_h).encode(),
        version_line(clang, "--version").encode(),
        LIBBPF_VERSION_H.read_bytes() if LIBBPF_VERSION_H.is_file() else b"",
    ):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _atomic_write(path: Path, data: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    os.replace(tmp, path)


def compile_case(src: Path, vmlinux_h: Path, out_dir: Path, *, clang: str | None = None) -> CompileResult:
    """Compile one case file. out_dir doubles as the object cache: `<stem>-<key>.o` plus a `.json` sidecar
    holding the outcome (failures are cached too). Compile errors are returned (ok False, clang's stderr),
    never raised; a missing vmlinux.h or compiler raises."""
    src, vmlinux_h, out_dir = Path(src), Path(vmlinux_h), Path(out_dir)
    require_vmlinux_h(vmlinux_h)
    clang = clang or find_clang()
    stem = src.name.removesuffix(".c")
    try:
        src_text = src.read_bytes()
    except OSError as e:
        argv = compile_argv(clang, src, vmlinux_h, out_dir / f"{stem}.o")
        return CompileResult(None, False, f"cannot read case file {src}: {e.strerror}", argv)
    base = cache_key(src_text, vmlinux_h, clang)[:24]
    return compile_tracked(stem, base, lambda obj: compile_argv(clang, src, vmlinux_h, obj), out_dir,
                           compiler=clang)


# -- objects keyed by every file the compiler read -----------------------------------------------------------
#
# A case may include headers of its own (beside it, or through -I): the key of its object must change when any of
# them does. The compiler says what it read (-MD): that list is kept per base key (the case, vmlinux.h, the
# compiler) in a manifest, and the object is stored under the base key plus the digest of every file listed.
# A lookup re-hashes the listed files; a change to any of them is a miss. A file newly included can only come
# from a change to one already listed, so the manifest of the last compile is enough (ccache's direct mode).


def parse_depfile(text: str) -> list[str]:
    """The prerequisites of a make-style dependency file as the compiler writes it (`obj: a.c b.h \\` ...,
    spaces in names escaped with a backslash)."""
    body = text.replace("\\\n", " ")
    _, _, deps = body.partition(": ")
    out, cur, escaped = [], [], False
    for ch in deps:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch.isspace():
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def tracked_key(base: str, deps: list[str]) -> str | None:
    """The object key for `base` given the files it was built from: None when one of them is gone (a miss)."""
    h = hashlib.sha256(base.encode())
    for dep in sorted(set(deps)):
        try:
            digest = file_digest(Path(dep))
        except OSError:
            return None
        h.update(f"\0{dep}\0{digest}".encode())
    return h.hexdigest()[:24]


def compile_tracked(stem: str, base: str, argv_for: Callable[[Path], list[str]], out_dir: Path, *,
                    compiler: str = "clang") -> CompileResult:
    """compile_cached under a key of everything the compiler read (see above)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / f"{stem}-{base}.deps.json"
    try:
        deps = json.loads(manifest.read_text())
        key = tracked_key(base, deps) if isinstance(deps, list) else None
    except (OSError, ValueError):
        key = None
    if key is not None and (out_dir / f"{stem}-{key}.json").is_file():
        return compile_cached(stem, key, argv_for, out_dir, compiler=compiler)

    depfile = Path(tempfile.mkstemp(dir=out_dir, prefix=f".tmp-{stem}-", suffix=".d")[1])
    try:
        def with_deps(obj: Path) -> list[str]:
            return [*argv_for(obj), "-MD", "-MF", str(depfile)]

        fresh = compile_uncached(with_deps, argv_for, out_dir, stem, compiler)
        deps = parse_depfile(depfile.read_text()) if depfile.stat().st_size else []
    finally:
        depfile.unlink(missing_ok=True)
    key = tracked_key(base, deps) if deps else None
    if key is None:
        # The compiler wrote no dependency list (it fails before it does): nothing to key a verdict by, so none is
        # kept; the next run compiles again.
        return fresh.result(None)
    _atomic_write(manifest, json.dumps(deps, indent=1))
    return fresh.result(out_dir / f"{stem}-{key}")


@dataclass
class _Fresh:
    """A compile that ran: its outcome, and the temporary object to publish."""

    ok: bool
    stderr: str
    verdict: bool  # a property of the source (False: killed, timed out)
    argv: list[str]
    tmp_obj: Path
    out_dir: Path

    def result(self, base: Path | None) -> CompileResult:
        """Publish under `base` (`<base>.o` and `<base>.json`), or not at all (None); drop the temporary object."""
        try:
            if base is None:
                return CompileResult(None, False, self.stderr, self.argv) if not self.ok else \
                    CompileResult(None, False, "the compiler wrote no dependency list", self.argv)
            obj, meta = base.parent / f"{base.name}.o", base.parent / f"{base.name}.json"  # stems hold dots
            argv = [str(obj) if a == str(self.tmp_obj) else a for a in self.argv]
            stderr = self.stderr.replace(str(self.tmp_obj), str(obj))
            if self.ok:
                os.replace(self.tmp_obj, obj)
            if self.verdict:
                _atomic_write(meta, json.dumps({"ok": self.ok, "stderr": stderr, "argv": argv}, indent=1))
            else:
                meta.unlink(missing_ok=True)
            return CompileResult(obj if self.ok else None, self.ok, stderr, argv)
        finally:
            self.tmp_obj.unlink(missing_ok=True)


def compile_uncached(argv_run: Callable[[Path], list[str]], argv_shown: Callable[[Path], list[str]], out_dir: Path,
                     stem: str, compiler: str, *, cwd: Path | None = None) -> _Fresh:
    """Run the compile into a temporary object in out_dir."""
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".tmp-{stem}-", suffix=".o")
    os.close(fd)
    tmp_obj = Path(tmp_name)
    try:
        proc = subprocess.run(argv_run(tmp_obj), capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                              check=False, cwd=cwd)
        ok, stderr = proc.returncode == 0, proc.stderr
        # Killed by a signal (the OOM killer, a Ctrl-C) says nothing about the source: not cached.
        verdict = proc.returncode >= 0
        if not ok and not stderr.strip():
            stderr = f"{Path(compiler).name} exited with status {proc.returncode} and no message"
    except subprocess.TimeoutExpired:
        ok, verdict = False, False
        stderr = (f"{Path(compiler).name} did not finish within {COMPILE_TIMEOUT} s (not cached: the next run "
                  "compiles again)")
    return _Fresh(ok, stderr, verdict, argv_shown(tmp_obj), tmp_obj, out_dir)


def require_vmlinux_h(vmlinux_h: Path) -> None:
    """Raise HarnessError, with where a vmlinux.h comes from, unless `vmlinux_h` is a file."""
    if not vmlinux_h.is_file():
        raise HarnessError(
            f"vmlinux.h not found at {vmlinux_h}. It comes with the kernel artifact: build the kernel first "
            "(`bpf-audit-harness build`), or dump one: bpftool btf dump file /sys/kernel/btf/vmlinux format c"
        )


def compile_cached(stem: str, key: str, argv_for: Callable[[Path], list[str]], out_dir: Path, *,
                   compiler: str = "clang", cwd: Path | None = None) -> CompileResult:
    """The object cache every compile goes through: `<stem>-<key>.o` in out_dir plus a `.json` sidecar with the
    outcome (failures are cached too, and the sidecar's mtime is the last use harness.kernel.gc evicts by).
    `key` must cover everything the object depends on; `argv_for(obj)` is the command writing `obj`. A hit
    returns the cached outcome; a miss runs the command into a temporary file and publishes it atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{stem}-{key}.o"
    meta = out_dir / f"{stem}-{key}.json"
    argv = argv_for(obj)

    if meta.is_file():
        try:
            saved = json.loads(meta.read_text())
            if not saved["ok"] or obj.is_file():
                with contextlib.suppress(OSError):
                    os.utime(meta)  # a use: harness.kernel.gc evicts objects by the sidecar's mtime
                return CompileResult(obj if saved["ok"] else None, saved["ok"], saved["stderr"], argv, cached=True)
        except (OSError, ValueError, KeyError):
            pass  # unreadable sidecar: compile again and overwrite it

    return compile_uncached(argv_for, argv_for, out_dir, stem, compiler, cwd=cwd).result(out_dir / f"{stem}-{key}")


def compiler_emits_type_tags(clang: str) -> bool:
    """Does this compiler keep btf_type_tag on struct members? (clang 14 silently drops it, so a
    `struct task_struct __kptr *` map value loses its kptr-ness.) See harness.cases.clang.emits_type_tags."""
    from harness.cases.clang import emits_type_tags

    return emits_type_tags(clang)[0]
