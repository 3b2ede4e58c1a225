# SPDX-License-Identifier: GPL-2.0
"""Get a kernel tree: a Debian source line (fetched into the cache), a tarball, a directory, or a git ref."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.kernel.debian import DebianLine, Fetched, fetch, find_line
from harness.settings import CacheLayout


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked for. kind: 'debian' (a line of kernel-config/sources.toml, fetched by the harness),
    'tarball', 'dir', or 'git' (dir + ref)."""

    kind: str
    path: Path
    ref: str | None = None
    line: DebianLine | None = None

    @classmethod
    def from_args(cls, kernel_src: str | None, ref: str | None) -> SourceSpec:
        """`kernel_src`: a line name of sources.toml (debian-7.3), a tarball, a directory or a git tree (with
        `ref`); None: the default kernel's source (matrix.toml's default target)."""
        if kernel_src is None:
            if ref:
                raise SourceError("--ref needs --kernel-src pointing at a git tree.", usage=True)
            from harness.kernel.targets import default_build_target

            kernel_src = default_build_target().source
        line = find_line(kernel_src)
        if line is not None:
            if ref:
                raise SourceError(f"--ref needs a git tree; {kernel_src} is a Debian source line "
                                  "(kernel-config/sources.toml).", usage=True)
            return cls("debian", Path(kernel_src), line=line)
        path = Path(kernel_src).expanduser().resolve()
        if path.suffix in {".xz", ".gz", ".bz2", ".zst"} or path.name.endswith(".tar"):
            return cls("tarball", path)
        if ref:
            return cls("git", path, ref)
        return cls("dir", path)

    def describe(self) -> str:
        return f"{self.path}@{self.ref}" if self.ref else str(self.path)


@dataclass(frozen=True)
class SourceTree:
    """A kernel tree ready to copy. `identity` changes whenever its content can have changed. `fetched`: the
    Debian package version a line's tarball came from; `notes`: what the user should hear once."""

    path: Path
    identity: str
    kernelversion: str
    spec: SourceSpec
    fetched: Fetched | None = None
    notes: tuple[str, ...] = ()

    def packages(self) -> dict[str, str]:
        """The Debian package (and exact version) the source came from: the fetched one of a line, or the installed
        package that owns a tarball."""
        if self.fetched is not None:
            return {self.fetched.line.package: self.fetched.version}
        if self.spec.kind != "tarball":
            return {}
        from harness.kernel.apt import installed_version

        owner = installed_version(str(self.spec.path))
        return {owner[0]: owner[1]} if owner else {}

    def describe(self) -> str:
        """One line for the run output: 'Debian linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)', or the
        path (and ref) with its kernel version."""
        if self.fetched is not None:
            return self.fetched.describe()
        version = f" (Linux {self.kernelversion})" if self.kernelversion else ""
        return f"{self.spec.describe()}{version}"


def resolve(spec: SourceSpec, layout: CacheLayout, *, log: Path | None = None) -> SourceTree:
    """Turn a SourceSpec into a tree on disk plus an identity for the cache key. A Debian line is fetched first
    (the newest version its archive has; `log` gets apt's output)."""
    if spec.kind == "debian":
        fetched = _fetch(spec, layout, log)
        tree = _from_tarball(SourceSpec("tarball", fetched.tarball), layout)
        return SourceTree(tree.path, tree.identity, tree.kernelversion, spec, fetched, fetched.notes)
    if not spec.path.exists():
        raise SourceError(f"kernel source {spec.path} does not exist (check the path; a Debian source line is named "
                          f"as in {_sources_file()}).", usage=True)
    if spec.kind == "tarball":
        return _from_tarball(spec, layout)
    if spec.kind == "git":
        return _from_git_ref(spec, layout)
    return _from_dir(spec)


def identify(spec: SourceSpec, layout: CacheLayout, *, offline: bool = False, log: Path | None = None) -> SourceTree:
    """resolve() without unpacking a tarball: its identity (what the cache key needs) from its hash alone, its path
    the tarball itself, its kernel version from the Debian package or the tarball's unpacked tree when there is
    one. For questions about the cache (build --print-key, doctor), never for a build. offline=True: a Debian line
    is what the cache holds (SourceError when nothing), without asking its archive."""
    if spec.kind == "debian":
        fetched = _fetch(spec, layout, log, offline=offline)
        ident = f"tarball:{file_sha256(fetched.tarball, layout)}"
        return SourceTree(fetched.tarball, ident, fetched.upstream, spec, fetched, fetched.notes)
    if spec.kind != "tarball" or not spec.path.is_file():
        return resolve(spec, layout)
    digest = file_sha256(spec.path, layout)
    unpacked = _unpacked_dir(layout, digest) / "tree"
    if not (unpacked / "Makefile").is_file():
        return resolve(spec, layout)  # its kernel version is only known from its tree
    return SourceTree(spec.path, f"tarball:{digest}", _kernelversion(unpacked), spec)


def current_identity(source: SourceTree, layout: CacheLayout) -> str | None:
    """The identity `source` has now, computed as resolve() computed it, for the check after make: None when it
    cannot change under a build (a Debian line's fetched tarball, a commit the harness checked out)."""
    spec = source.spec
    if spec.kind == "dir":
        return _from_dir(spec).identity
    if spec.kind == "tarball" and spec.path.is_file():
        return f"tarball:{file_sha256(spec.path, layout)}"
    return None


def _fetch(spec: SourceSpec, layout: CacheLayout, log: Path | None, *, offline: bool = False) -> Fetched:
    assert spec.line is not None
    if log is None:  # no run directory: apt's output goes beside its private root
        from harness.kernel.debian import apt_root

        log = apt_root(layout, spec.line) / "apt.log"
    return fetch(spec.line, layout, log, offline=offline)


def _sources_file() -> Path:
    from harness.kernel.debian import sources_path

    return sources_path()


def kernel_line_of(spec: SourceSpec, layout: CacheLayout) -> str:
    """major.minor of the kernel a source holds, known before anything is fetched, unpacked or patched: from the
    Debian line's package name, the tree's Makefile, `git show REF:Makefile`, a tarball's name
    (linux-6.12.3.tar.xz, linux-source-6.12.tar.xz) or, failing that, its unpacked tree."""
    if spec.kind == "debian":
        assert spec.line is not None
        return spec.line.kernel_line
    if spec.kind == "git":
        if not _is_git(spec.path):
            raise SourceError(f"--ref {spec.ref} given but {spec.path} is not a git tree.", usage=True)
        return _line(_kernelversion(spec.path, _git(spec.path, "show", f"{spec.ref}:Makefile")))
    if spec.kind == "tarball":
        m = re.match(r"linux(?:-source)?-(\d+\.\d+)(?:[.-]|$)", spec.path.name)
        if m:
            return m.group(1)
        return _line(resolve(spec, layout).kernelversion)
    if not spec.path.exists():
        raise SourceError(f"kernel source {spec.path} does not exist (check the path).", usage=True)
    return _line(_kernelversion(spec.path))


def _line(kernelversion: str) -> str:
    return ".".join(kernelversion.split(".")[:2])


def _kernelversion(tree: Path, makefile: str | None = None) -> str:
    try:
        text = (makefile if makefile is not None else (tree / "Makefile").read_text(errors="replace"))[:2000]
    except OSError as e:
        raise SourceError(f"{tree} is not a kernel tree (no top-level Makefile).", usage=True) from e
    parts = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(rf"^{key}[ \t]*=[ \t]*(\S*)", text, re.M)  # [ \t]: an empty value must not eat the newline
        parts[key] = m.group(1) if m else ""
    if not parts["VERSION"]:
        raise SourceError(f"{tree}/Makefile has no VERSION line: not a kernel tree.", usage=True)
    return f"{parts['VERSION']}.{parts['PATCHLEVEL']}.{parts['SUBLEVEL'] or 0}{parts['EXTRAVERSION']}"


def file_sha256(path: Path, layout: CacheLayout) -> str:
    """sha256 of a large file, memoized by (path, size, mtime) so a cache hit stays fast."""
    st = path.stat()
    memo = layout.state / "sha256-memo.json"
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    try:
        table = json.loads(memo.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    table[key] = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, memo)
    return table[key]


def _unpacked_dir(layout: CacheLayout, digest: str) -> Path:
    return layout.sources / f"tar-{digest[:16]}"


def _from_tarball(spec: SourceSpec, layout: CacheLayout) -> SourceTree:
    digest = file_sha256(spec.path, layout)
    dest = _unpacked_dir(layout, digest)
    if not (dest / "tree" / "Makefile").exists():
        from harness.kernel.cache import key_lock  # one unpacker per tarball; the others wait and reuse its tree

        with key_lock(layout, f"unpack-{digest[:16]}"):
            _unpack(spec, layout, dest)
    tree = dest / "tree"
    return SourceTree(tree, f"tarball:{digest}", _kernelversion(tree), spec)  # identify() says the same


def _unpack(spec: SourceSpec, layout: CacheLayout, dest: Path) -> None:
    """Unpack into a private directory, then rename it into place: nothing half-unpacked is ever used."""
    if not (dest / "tree" / "Makefile").exists():
        layout.sources.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=layout.sources))
        try:
            subprocess.run(["tar", "-xf", str(spec.path), "-C", str(tmp)], check=True, capture_output=True)
            tops = [p for p in tmp.iterdir() if p.is_dir()]
            if len(tops) != 1 or not (tops[0] / "Makefile").exists():
                raise SourceError(f"{spec.path} does not unpack to a single kernel tree.")
            tops[0].rename(tmp / "tree")
            try:
                tmp.rename(dest)
            except OSError:
                if not (dest / "tree" / "Makefile").exists():
                    raise
        except subprocess.CalledProcessError as e:
            raise SourceError(f"unpacking {spec.path} failed: {e.stderr.decode(errors='replace')[-500:]}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _git(tree: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SourceError(f"git {' '.join(args)} in {tree} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def _is_git(tree: Path) -> bool:
    return (tree / ".git").exists()


def worktree_dir(repo: Path, layout: CacheLayout) -> Path:
    """The one worktree the harness keeps per repository for --ref builds (moved from commit to commit, so a
    build of the next commit is an incremental build)."""
    return layout.sources / ("worktree-" + hashlib.sha256(str(repo).encode()).hexdigest()[:16])


def _from_git_ref(spec: SourceSpec, layout: CacheLayout) -> SourceTree:
    """A commit of a repository. Nothing is checked out here: harness.kernel.trees moves the worktree to the commit
    under the tree's lock, when (and if) a build needs it."""
    if not _is_git(spec.path):
        raise SourceError(f"--ref {spec.ref} given but {spec.path} is not a git tree.", usage=True)
    commit = _git(spec.path, "rev-parse", "--verify", f"{spec.ref}^{{commit}}")
    makefile = _git(spec.path, "show", f"{commit}:Makefile")
    return SourceTree(worktree_dir(spec.path, layout), f"git:{commit}", _kernelversion(spec.path, makefile), spec)


def _from_dir(spec: SourceSpec) -> SourceTree:
    tree = spec.path
    version = _kernelversion(tree)
    ident = git_identity(tree) if _is_git(tree) else "dir:" + _tree_fingerprint(tree)
    return SourceTree(tree, ident, version, spec)


def git_identity(tree: Path) -> str:
    """HEAD, plus a hash of every change git sees: tracked changes (staged or not) and untracked files that are
    not ignored, by content. Build outputs are ignored by the kernel's .gitignore, so they do not count."""
    head = _git(tree, "rev-parse", "HEAD")
    res = subprocess.run(["git", "-C", str(tree), "diff", "HEAD", "--binary"], capture_output=True, check=False)
    if res.returncode != 0:
        raise SourceError(f"git diff HEAD in {tree} failed: {res.stderr.decode(errors='replace').strip()}")
    h = hashlib.sha256(res.stdout)
    untracked = subprocess.run(["git", "-C", str(tree), "ls-files", "--others", "--exclude-standard", "-z"],
                               capture_output=True, check=False).stdout.split(b"\0")
    for rel in sorted(u for u in untracked if u):
        path = tree / os.fsdecode(rel)
        h.update(b"\0untracked\0" + rel + b"\0")
        try:
            h.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
        except OSError:
            continue
    # Files git was told not to look at (`update-index --assume-unchanged` / `--skip-worktree`): `git diff` does
    # not show their edits, but make reads them. Their content counts, by name.
    flagged = _flagged_files(tree)
    for rel in flagged:
        path = tree / os.fsdecode(rel)
        h.update(b"\0flagged\0" + rel + b"\0")
        try:
            h.update(path.read_bytes() if not path.is_symlink() else os.readlink(path).encode())
        except OSError:
            continue
    dirty = bool(res.stdout) or any(untracked) or bool(flagged)
    return f"git:{head}" + (f"+dirty:{h.hexdigest()}" if dirty else "") + (f"+flagged:{len(flagged)}" if flagged
                                                                            else "")


def _flagged_files(tree: Path) -> list[bytes]:
    """Tracked files marked assume-unchanged (a lowercase tag in `git ls-files -v`) or skip-worktree ('S')."""
    out = subprocess.run(["git", "-C", str(tree), "ls-files", "-v", "-z"], capture_output=True, check=False).stdout
    flagged = []
    for entry in out.split(b"\0"):
        if len(entry) > 2 and entry[1:2] == b" " and (entry[:1].islower() or entry[:1] == b"S"):
            flagged.append(entry[2:])
    return sorted(flagged)


_BUILD_OUTPUT = re.compile(r"\.(o|cmd|ko|a|d|tmp|mod|order|symvers)$")


def _tree_fingerprint(tree: Path) -> str:
    """Hash of every source file's path, size and mtime (build outputs excluded)."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if _BUILD_OUTPUT.search(name) or name.startswith("."):
                continue
            st = os.lstat(os.path.join(root, name))
            h.update(f"{os.path.relpath(os.path.join(root, name), tree)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
