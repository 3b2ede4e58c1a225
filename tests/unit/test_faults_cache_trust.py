# SPDX-License-Identifier: GPL-2.0
"""A cache another user could change is refused, and locks are ours alone: real ownership, real modes, a real
second process holding a lock (issue 21 item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import CLI

from harness.errors import CacheError
from harness.kernel import cache
from harness.settings import REPO_ROOT, CacheLayout

NOBODY = 65534


def _cache(tmp_path: Path, mode: int = 0o700) -> Path:
    root = tmp_path / "cache"
    root.mkdir(mode=mode)
    os.chmod(root, mode)
    return root


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_cache_owned_by_another_user_is_refused_with_exit_2(tmp_path):
    root = _cache(tmp_path, 0o777)
    os.chown(root, NOBODY, NOBODY)
    with pytest.raises(CacheError, match=f"owned by uid {NOBODY}, not by uid 0") as e:
        cache.ensure_writable(CacheLayout(root))
    assert e.value.exit_code == 2
    res = subprocess.run([CLI, "build", "--cache-dir", str(root)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "is not safe to use" in res.stderr and "--cache-dir" in res.stderr, res.stderr[-2000:]
    assert not (root / "locks").exists() and not (root / "kernels").exists(), "the refused cache was written"


def test_a_cache_others_can_write_is_refused(tmp_path):
    root = _cache(tmp_path, 0o777)
    with pytest.raises(CacheError, match="writable by its group or others .mode 0777."):
        cache.ensure_writable(CacheLayout(root))
    os.chmod(root, 0o755)
    cache.ensure_writable(CacheLayout(root))  # ours, not writable by others: fine


def test_a_parent_others_can_write_is_refused_but_a_sticky_tmp_is_fine(tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o777)
    with pytest.raises(CacheError, match=f"its parent {parent} is writable by its group or others"):
        cache.ensure_writable(CacheLayout(parent / "cache"))
    assert cache.untrusted_path(Path("/tmp")) is not None  # /tmp itself is not ours ...
    assert cache.untrusted_path(tmp_path) is None  # ... but a directory of ours under it is


def test_locks_are_ours_alone(tmp_path):
    layout = CacheLayout(_cache(tmp_path))
    layout.locks.mkdir(mode=0o755)
    old = layout.locks / "k.lock"
    old.write_text("")
    os.chmod(old, 0o644)  # a lock file from before the rule
    with cache.key_lock(layout, "k", holder="test"):
        assert oct(os.stat(layout.locks).st_mode & 0o777) == "0o700"
        assert oct(os.stat(old).st_mode & 0o777) == "0o600"
    with cache.key_lock(layout, "new"):
        assert oct(os.stat(layout.locks / "new.lock").st_mode & 0o777) == "0o600"


def test_a_lock_wait_names_the_holder_and_gives_up(tmp_path, monkeypatch):
    layout = CacheLayout(_cache(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from harness.kernel import cache
        from harness.settings import CacheLayout
        from pathlib import Path
        with cache.key_lock(CacheLayout(Path({str(layout.root)!r})), "k", holder="building kernel k"):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setenv(cache.LOCK_TIMEOUT_ENV, "1.5")
        said: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(CacheError, match=rf"gave up after 2s waiting for the lock .*k.lock, held by pid "
                                             rf"{holder.pid}: building kernel k\. .*{cache.LOCK_TIMEOUT_ENV}"):
            with cache.key_lock(layout, "k", waiting=said.append):
                pass
        assert time.monotonic() - t0 < 30
        assert said == [f"[lock] waiting for pid {holder.pid}: building kernel k"]
    finally:
        holder.kill()
        holder.wait()
