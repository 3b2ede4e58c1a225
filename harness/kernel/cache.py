# SPDX-License-Identifier: GPL-2.0
"""Content-addressed kernel cache: keys from inputs, a per-key lock, atomic publish."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import CacheError
from harness.proc import pid_alive
from harness.settings import CacheLayout, listdir

# Bump when the build recipe changes in a way the inputs below do not show.
RECIPE_VERSION = 2  # 2: out-of-tree builds in kept slots (harness.kernel.trees, build.slot_dir)


@dataclass(frozen=True)
class KeyInputs:
    source_identity: str
    patches: tuple[tuple[str, int, str], ...]  # (name, strip, sha256)
    merged_config: str
    toolchain: tuple[str, ...]
    recipe: int = RECIPE_VERSION

    def key(self) -> str:
        blob = json.dumps(
            {
                "source": self.source_identity,
                "patches": [list(p) for p in self.patches],
                "config": self.merged_config,
                "toolchain": list(self.toolchain),
                "recipe": self.recipe,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


def ensure_writable(layout: CacheLayout) -> None:
    """The cache exists, is ours alone and can be written. What the harness keeps there runs with the user's
    rights (ccache's configuration, a build slot's auto.conf, the libbpf the guest agent loads, the bzImage
    booted), so a cache another user can write is a way into this account: refused, exit 2."""
    try:
        layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise CacheError(
            f"cache directory {layout.root} is not writable ({e.strerror}). "
            "Point BPF_AUDIT_HARNESS_CACHE (or --cache-dir) at a writable directory.") from e
    problem = untrusted_path(layout.root.resolve())
    if problem:
        raise CacheError(
            f"cache directory {layout.root} is not safe to use: {problem}. Another user could change what the "
            f"harness builds, loads and boots. Fix the ownership or mode (e.g. `chmod go-w {layout.root}`), or "
            "point BPF_AUDIT_HARNESS_CACHE (or --cache-dir) at a directory of your own.", usage=True)
    try:
        probe = tempfile.NamedTemporaryFile(dir=layout.root, prefix=".write-probe-")
        probe.close()
    except OSError as e:
        raise CacheError(
            f"cache directory {layout.root} is not writable ({e.strerror}). "
            "Point BPF_AUDIT_HARNESS_CACHE (or --cache-dir) at a writable directory.") from e


def untrusted_path(path: Path, uid: int | None = None) -> str | None:
    """Why `path` (absolute, resolved) could be changed by a user other than `uid` (default: ours), or None.
    `path` itself must be owned by `uid` and writable by nobody else; each parent must be owned by `uid` or root
    and writable by nobody else, except a root-owned sticky directory such as /tmp (no one may rename or remove
    another user's entry there)."""
    import stat

    me = os.getuid() if uid is None else uid
    for i, part in enumerate([path, *path.parents]):
        try:
            st = os.stat(part)
        except OSError as e:
            return f"{part} cannot be checked ({e.strerror})"
        writable_by_others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if i == 0:
            if st.st_uid != me:
                return f"it is owned by uid {st.st_uid}, not by uid {me} who runs the harness"
            if writable_by_others:
                return f"it is writable by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
            continue
        if st.st_uid not in (me, 0):
            return f"its parent {part} is owned by uid {st.st_uid}"
        if writable_by_others and not (st.st_uid == 0 and st.st_mode & stat.S_ISVTX):
            return f"its parent {part} is writable by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


LOCK_TIMEOUT_ENV = "BPF_AUDIT_HARNESS_LOCK_TIMEOUT"
LOCK_TIMEOUT = 3600.0  # seconds a waiter gives a lock holder: a cold build takes minutes, a bisect step too


def _lock_timeout() -> float:
    try:
        return float(os.environ.get(LOCK_TIMEOUT_ENV, LOCK_TIMEOUT))
    except ValueError:
        return LOCK_TIMEOUT


@contextmanager
def key_lock(layout: CacheLayout, key: str, *, holder: str = "", waiting=None) -> Iterator[IO[str]]:
    """Exclusive lock for one key: one process builds, the others wait and then reuse. `holder` says what the
    holder does (written beside the lock); `waiting(message)` is told, once, when another process holds it."""
    layout.locks.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(layout.locks, 0o700)  # only we may open (and so hold) our locks
    path = layout.locks / f"{key}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a lock file from before this rule
    with os.fdopen(fd, "r+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait_for_lock(fh, path, waiting)
        try:
            if holder:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()}: {holder}\n")
                fh.flush()
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(fh: IO[str]) -> str:
    fh.seek(0)
    return fh.read().strip() or "another process (it did not say what it does)"


def _wait_for_lock(fh: IO[str], path: Path, waiting) -> None:
    """Wait for the lock on `fh`, saying who holds it; give up after the lock timeout with an error that names the
    holder and what to do."""
    who = _holder(fh)
    if waiting is not None:
        waiting(f"[lock] waiting for {who}")
    limit = _lock_timeout()
    t0 = time.monotonic()
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() - t0 >= limit:
                who = _holder(fh)
                raise CacheError(
                    f"gave up after {limit:.0f}s waiting for the lock {path}, held by {who}. If that process is "
                    f"stuck, end it; to wait longer, set {LOCK_TIMEOUT_ENV}=SECONDS.") from None
            time.sleep(0.2)
    if waiting is not None:
        waiting(f"[lock] got it after {time.monotonic() - t0:.0f}s")


LAST_USED = ".last-used"  # touched in an entry on every lookup that finds it (harness.kernel.gc evicts by it)


def published(layout: CacheLayout, key: str, validate: Callable[[Path], str | None] | None = None) -> Path | None:
    """The published entry for `key`, or None. Finding it counts as a use. An entry `validate` finds damaged
    (it returns what is wrong) is a miss, said once: the build that follows replaces it."""
    path = layout.kernels / key
    if not (path / "meta.json").is_file():
        return None
    problem = _meta_problem(path, key) or (validate(path) if validate else None)
    if problem:
        warn_once(f"bpf-audit-harness: cache entry {path} is damaged ({problem}); it is built again and replaced")
        return None
    try:
        (path / LAST_USED).touch()
    except OSError:
        pass  # a read-only cache still serves hits
    return path


def _meta_problem(entry: Path, key: str) -> str | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as e:
        return f"meta.json unreadable: {e}"
    if not isinstance(meta, dict) or meta.get("key") != key or not meta.get("release"):
        return "meta.json does not describe this entry (no key/release)"
    return None


_WARNED: set[str] = set()


def warn_once(msg: str) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        print(msg, file=sys.stderr, flush=True)


OWNER = ".owner-pid"  # in a staging or work directory: the process it belongs to (sweep_stale spares it)
YOUNG_SECONDS = 600  # an owner-less staging dir younger than this may be one whose owner is writing OWNER now


@contextmanager
def staging(layout: CacheLayout, key: str) -> Iterator[Path]:
    """A private directory that becomes the published entry only via `publish`; removed otherwise. It names its
    owner at once, so no other build's sweep takes it for a dead process's leftover."""
    layout.kernels.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".staging-{key}-", dir=layout.kernels))
    (tmp / OWNER).write_text(str(os.getpid()))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(layout: CacheLayout, key: str, staged: Path, meta: dict) -> Path:
    """Write meta.json last, make everything durable, then rename into place: readers see all or nothing, also
    after a power cut (an entry is never renamed into place before its files reached the disk)."""
    (staged / OWNER).unlink(missing_ok=True)
    meta_tmp = staged / "meta.json.tmp"
    meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(meta_tmp, staged / "meta.json")
    _fsync_tree(staged)
    dest = layout.kernels / key
    if dest.exists():  # a damaged or unpublished leftover: move it away first, then replace it
        doomed = dest.with_name(f".evicting-{key}-{os.getpid()}")
        os.rename(dest, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    os.rename(staged, dest)
    _fsync_dir(layout.kernels)
    return dest


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_stale(layout: CacheLayout) -> None:
    """Remove staging and work dirs left by killed processes (their lock is free)."""
    for parent in (layout.kernels, layout.work):
        for entry in listdir(parent):
            if not entry.name.startswith((".staging-", "build-", ".evicting-")):
                continue
            try:
                pid = int((entry / OWNER).read_text())
            except (OSError, ValueError):
                try:
                    if time.time() - entry.stat().st_mtime < YOUNG_SECONDS:
                        continue  # just made: its owner may be about to write OWNER
                except OSError:
                    continue
                pid = None
            if pid is not None and pid_alive(pid):
                continue
            shutil.rmtree(entry, ignore_errors=True)


def update_with_files(h, tree: Path, paths: list[Path]) -> None:
    """Feed each file's path (relative to `tree`) and content digest into hash `h`: a key of what a build reads,
    the same for the same files in any copy of a tree. Unreadable files are left out."""
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        h.update(str(path.relative_to(tree)).encode() + b"\0" + hashlib.sha256(data).digest())
