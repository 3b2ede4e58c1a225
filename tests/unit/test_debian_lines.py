# SPDX-License-Identifier: GPL-2.0
"""Debian source lines (kernel-config/sources.toml): the file, the private apt configuration, and the fetch with a
stand-in apt (refresh, newest version, cached copy, unreachable archive, package gone), all without the network;
plus the real apt against an archive nobody answers for (the one clear error, exit 3)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from helpers import HARNESS, cli, one_paragraph_error

from harness.errors import SourceError
from harness.kernel import debian
from harness.kernel.source import SourceSpec, identify, kernel_line_of, resolve
from harness.settings import CacheLayout

LINE = debian.DebianLine("debian-7.3", "linux-source-7.3", "http://deb.debian.org/debian", "trixie-backports")


# -- the sources file -------------------------------------------------------------------------------------------

def test_shipped_sources_declare_the_two_lines():
    lines = {line.name: line for line in debian.load_lines(debian.DEFAULT_SOURCES)}
    assert set(lines) == {"debian-7.3", "debian-6.12"}
    l73, l612 = lines["debian-7.3"], lines["debian-6.12"]
    assert (l73.package, l73.suite, l73.archive, l73.kernel_line) == (
        "linux-source-7.3", "trixie-backports", "http://deb.debian.org/debian", "7.3")
    assert (l612.package, l612.suite, l612.archive, l612.kernel_line) == (
        "linux-source-6.12", "bookworm-security", "http://deb.debian.org/debian-security", "6.12")
    assert l73.sources_list() == ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                                  "http://deb.debian.org/debian trixie-backports main\n")


@pytest.mark.parametrize("text, says", [
    ("", "no [[line]] entries"),
    ("[[line]]\nname = 'a'\npackage = 'linux-source-7.3'\narchive = 'http://x/'\n", "suite must be a non-empty"),
    ("[[line]]\nname = 'a'\npackage = 'linux-image-7.3'\narchive = 'http://x/'\nsuite = 's'\n",
     "package must be linux-source-<major>.<minor>"),
    ("[[line]]\nname = 'a'\npackage = 'linux-source-7.3'\narchive = 'ftp://x/'\nsuite = 's'\n", "http(s) URL"),
    ("[[line]]\nname = 'a/b'\npackage = 'linux-source-7.3'\narchive = 'http://x/'\nsuite = 's'\n", "name may hold"),
    ("[[line]]\nname = 'a'\npackage = 'linux-source-7.3'\narchive = 'http://x/'\nsuite = 's'\npin = '1'\n",
     "unknown field(s) ['pin']"),
    ("[[line]]\nname = 'a'\npackage = 'linux-source-7.3'\narchive = 'http://x/'\nsuite = 's'\n" * 2,
     "duplicate name 'a'"),
    ("[line]\nname = 'a'\n", "write each line as a [[line]] section"),
    ("[[line]\n", "not valid TOML"),
])
def test_a_bad_sources_file_is_a_usage_error_naming_file_and_entry(text, says):
    with pytest.raises(SourceError) as e:
        debian.parse_sources(text, Path("/x/sources.toml"))
    assert says in str(e.value) and "/x/sources.toml" in str(e.value) and e.value.exit_code == 2


def test_a_line_name_is_a_source_and_anything_else_a_path(tmp_path):
    spec = SourceSpec.from_args("debian-7.3", None)
    assert spec.kind == "debian" and spec.line is not None and spec.line.package == "linux-source-7.3"
    assert kernel_line_of(spec, CacheLayout(tmp_path)) == "7.3"  # from the name: nothing fetched
    assert not (tmp_path / "apt").exists() and not (tmp_path / "src").exists()
    assert SourceSpec.from_args("./debian-7.3", None).kind == "dir"  # a directory called so: say it as a path
    with pytest.raises(SourceError, match="--ref needs a git tree; debian-7.3 is a Debian source line"):
        SourceSpec.from_args("debian-7.3", "v7.3")


def test_the_kernel_line_of_every_kind_of_source_is_known_before_anything_is_built(tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 9\nEXTRAVERSION = -rc1\n")
    assert kernel_line_of(SourceSpec.from_args(str(tree), None), layout) == "6.1"
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "Makefile"], check=True)
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v"],
                   check=True)
    (tree / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 3\n")  # the worktree moved on; the ref did not
    assert kernel_line_of(SourceSpec.from_args(str(tree), "HEAD"), layout) == "6.1"
    tarball = tmp_path / "linux-6.12.3.tar.xz"
    tarball.write_bytes(b"not unpacked: the name says it")
    assert kernel_line_of(SourceSpec.from_args(str(tarball), None), layout) == "6.12"


def test_the_private_apt_configuration_keeps_everything_under_its_root(tmp_path):
    conf = debian.apt_conf(tmp_path)
    assert f'Dir "{tmp_path}/";' in conf and f'Dir::State::status "{tmp_path}/var/lib/dpkg/status";' in conf
    assert 'APT::Update::Error-Mode "any";' in conf and 'Debug::NoLocking "true";' in conf
    assert "/etc/apt" not in conf


def test_apts_reason_for_a_failed_update_is_its_own_words():
    out = ("Ign:1 http://127.0.0.1:9/debian trixie-backports InRelease\n"
           "Err:1 http://127.0.0.1:9/debian trixie-backports InRelease\n"
           "  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
           "W: Download is performed unsandboxed as root as file 'x' couldn't be accessed by user '_apt'.\n"
           "E: Failed to fetch http://127.0.0.1:9/debian/dists/trixie-backports/InRelease  Could not connect\n"
           "E: Some index files failed to download. They have been ignored, or old ones used instead.\n")
    reason = debian.update_failure(out)
    assert reason.startswith("E: Failed to fetch http://127.0.0.1:9/") and "unsandboxed" not in reason
    assert "Some index files" not in reason
    assert debian.update_failure("Err:1 http://x s InRelease\n  Connection timed out\n") == (
        "Err:1 http://x s InRelease Connection timed out")


def test_lists_are_fresh_for_six_hours():
    now = 1_000_000.0
    assert debian.lists_fresh(now - 60, now) and debian.lists_fresh(now - 6 * 3600 + 1, now)
    assert not debian.lists_fresh(now - 6 * 3600, now) and not debian.lists_fresh(None, now)
    assert not debian.lists_fresh(now + 60, now)  # a stamp from the future: the clock moved, refresh
    assert debian.version_dirname("1:7.3.4-1~bpo13+1") == "1_7.3.4-1~bpo13+1"


# -- the fetch, with a stand-in apt -----------------------------------------------------------------------------

def _deb(dest: Path, package: str, version: str) -> Path:
    """A real .deb (dpkg-deb --build) holding usr/src/<package>.tar.xz: a tree with only a Makefile."""
    root = dest / f"build-{version}"
    line = package.removeprefix("linux-source-")
    major, minor = line.split(".")
    upstream = version.split("-")[0]
    src = io.BytesIO()
    with tarfile.open(fileobj=src, mode="w:xz") as t:
        data = f"VERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = {upstream.split('.')[2]}\n".encode()
        info = tarfile.TarInfo(f"{package}/Makefile")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    (root / "usr/src").mkdir(parents=True)
    (root / f"usr/src/{package}.tar.xz").write_bytes(src.getvalue())
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
                                         "Maintainer: t <t@t>\nDescription: stand-in\n")
    deb = dest / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


class FakeArchive:
    """apt-get/apt-cache on PATH that answer from a directory: `reachable` decides whether update works, the
    .debs in debs/ are the archive's versions (listed once an update has seen them), calls are logged."""

    def __init__(self, root: Path, monkeypatch) -> None:
        self.root = root
        (root / "bin").mkdir(parents=True)
        (root / "debs").mkdir()
        self.reachable = True
        for name, body in (("apt-get", self._APT_GET), ("apt-cache", self._APT_CACHE)):
            path = root / "bin" / name
            path.write_text(body.replace("@ROOT@", str(root)))
            path.chmod(0o755)
        monkeypatch.setenv("PATH", f"{root / 'bin'}:{os.environ['PATH']}")

    _APT_GET = """#!/bin/sh
echo "apt-get $* APT_CONFIG=$APT_CONFIG" >> @ROOT@/calls
case "$1" in
update)
    if [ -e @ROOT@/reachable ]; then ls @ROOT@/debs > @ROOT@/listed; echo "Hit:1 fake"; exit 0; fi
    echo "Err:1 http://127.0.0.1:9/debian trixie-backports InRelease"
    echo "  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"
    echo "E: Failed to fetch http://127.0.0.1:9/debian/dists/trixie-backports/InRelease" >&2
    exit 100;;
download)
    pkg=${2%%=*}; ver=${2#*=}
    cp @ROOT@/debs/${pkg}_${ver}_all.deb . || exit 100;;
esac
"""
    _APT_CACHE = """#!/bin/sh
echo "apt-cache $*" >> @ROOT@/calls
[ -e @ROOT@/listed ] || exit 0
for deb in $(cat @ROOT@/listed); do
    v=${deb#$2_}; v=${v%_all.deb}
    case "$deb" in "$2"_*) echo "$2 | $v | http://fake trixie-backports/main amd64 Packages";; esac
done
"""

    def publish(self, version: str, package: str = "linux-source-7.3") -> None:
        _deb(self.root / "debs", package, version)

    def set_reachable(self, yes: bool) -> None:
        (self.root / "reachable").unlink(missing_ok=True)
        if yes:
            (self.root / "reachable").touch()

    def calls(self) -> list[str]:
        return (self.root / "calls").read_text().splitlines() if (self.root / "calls").exists() else []


@pytest.fixture
def archive(tmp_path, monkeypatch) -> FakeArchive:
    a = FakeArchive(tmp_path / "archive", monkeypatch)
    a.set_reachable(True)
    return a


def _fetch(layout: CacheLayout, log: Path, **kw) -> debian.Fetched:
    said: list[str] = []
    f = debian.fetch(LINE, layout, log, say=said.append, **kw)
    return f


def test_the_newest_version_is_fetched_published_and_then_reused(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    log = tmp_path / "fetch.log"
    archive.publish("7.3.2-1~bpo13+1")
    archive.publish("7.3.4-1~bpo13+1")
    f = _fetch(layout, log)
    assert (f.version, f.upstream, f.notes) == ("7.3.4-1~bpo13+1", "7.3.4", ())
    assert f.tarball == layout.sources / "debian/debian-7.3/7.3.4-1~bpo13+1/linux-source-7.3.tar.xz"
    rec = json.loads((f.tarball.parent / debian.FETCHED).read_text())
    assert rec["package"] == "linux-source-7.3" and rec["suite"] == "trixie-backports" and len(rec["deb_sha256"]) == 64
    assert not list(f.tarball.parent.glob("*.deb")), "the .deb is not kept beside the tarball"
    assert [d.name for d in (layout.sources / "debian/debian-7.3").iterdir()] == ["7.3.4-1~bpo13+1"]
    # apt ran on the harness's own root: its configuration names only that root.
    root = layout.apt / "debian-7.3"
    assert all(f"APT_CONFIG={root}/apt.conf" in c for c in archive.calls() if c.startswith("apt-get"))
    assert (root / "etc/apt/sources.list").read_text() == LINE.sources_list()
    assert (root / "var/lib/dpkg/status").read_text() == ""
    before = len(archive.calls())
    again = _fetch(layout, log)  # lists fresh, newest cached: no update, no download
    assert again.tarball == f.tarball and archive.calls()[before:] == ["apt-cache madison linux-source-7.3"]


def test_stale_lists_are_refreshed_and_a_new_point_release_replaces_the_old(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    archive.publish("7.3.4-1~bpo13+1")
    first = _fetch(layout, tmp_path / "log")
    archive.publish("7.3.5-1~bpo13+1")
    assert _fetch(layout, tmp_path / "log").version == "7.3.4-1~bpo13+1"  # lists are fresh: not asked again
    stamp = layout.apt / "debian-7.3" / "lists.updated"
    old = time.time() - 7 * 3600
    os.utime(stamp, (old, old))
    newer = _fetch(layout, tmp_path / "log")
    assert newer.version == "7.3.5-1~bpo13+1" and first.tarball.is_file()  # the one before is kept
    archive.publish("7.3.6-1~bpo13+1")
    os.utime(stamp, (old, old))
    assert _fetch(layout, tmp_path / "log").version == "7.3.6-1~bpo13+1"
    kept = sorted(d.name for d in (layout.sources / "debian/debian-7.3").iterdir())
    assert kept == ["7.3.5-1~bpo13+1", "7.3.6-1~bpo13+1"]  # KEEP_VERSIONS: the oldest went


def test_lists_that_lack_the_package_are_refreshed_at_once(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    archive.set_reachable(True)
    (archive.root / "listed").write_text("")  # lists fetched before the package existed
    debian.Apt(LINE, layout.apt / "debian-7.3", tmp_path / "log").prepare()
    (layout.apt / "debian-7.3" / "lists.updated").touch()
    archive.publish("7.3.4-1~bpo13+1")
    assert _fetch(layout, tmp_path / "log").version == "7.3.4-1~bpo13+1"
    assert any(c.startswith("apt-get update") for c in archive.calls())


def test_an_unreachable_archive_with_a_cached_copy_uses_it_and_says_so(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    archive.publish("7.3.4-1~bpo13+1")
    _fetch(layout, tmp_path / "log")
    archive.set_reachable(False)
    stamp = layout.apt / "debian-7.3" / "lists.updated"
    os.utime(stamp, (time.time() - 7 * 3600,) * 2)
    f = _fetch(layout, tmp_path / "log")
    assert f.version == "7.3.4-1~bpo13+1"
    (note,) = f.notes
    assert note.startswith("the package lists of trixie-backports could not be refreshed (E: Failed to fetch")
    assert "using the cached linux-source-7.3 7.3.4-1~bpo13+1, fetched " in note
    updates = [c for c in archive.calls() if c.startswith("apt-get update")]
    assert _fetch(layout, tmp_path / "log").notes == (note,)  # the next caller (another worker): the same note,
    assert [c for c in archive.calls() if c.startswith("apt-get update")] == updates  # without asking again
    failed = layout.apt / "debian-7.3" / "lists.failed"
    os.utime(failed, (time.time() - debian.RETRY_AFTER - 1,) * 2)
    archive.set_reachable(True)
    assert _fetch(layout, tmp_path / "log").notes == ()  # later the archive is asked again, and answers
    assert not failed.exists()


def test_an_unreachable_archive_and_nothing_cached_is_one_clear_error(archive, tmp_path):
    archive.set_reachable(False)
    with pytest.raises(SourceError) as e:
        _fetch(CacheLayout(tmp_path / "cache"), tmp_path / "log")
    msg = str(e.value)
    assert e.value.exit_code == HARNESS
    assert "cannot fetch linux-source-7.3: the archive http://deb.debian.org/debian (trixie-backports) could not " \
           "be reached (E: Failed to fetch" in msg
    assert "--kernel-src TREE" in msg and f"Full log: {tmp_path / 'log'}" in msg
    assert not (tmp_path / "cache" / "src").exists()


def test_an_archive_that_dropped_the_package_is_one_clear_error(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    archive.publish("7.3.4-1~bpo13+1")
    f = _fetch(layout, tmp_path / "log")
    (archive.root / "debs" / f"linux-source-7.3_{f.version}_all.deb").unlink()
    os.utime(layout.apt / "debian-7.3" / "lists.updated", (time.time() - 7 * 3600,) * 2)
    with pytest.raises(SourceError) as e:
        _fetch(layout, tmp_path / "log")
    msg = str(e.value)
    assert "(trixie-backports) no longer has linux-source-7.3" in msg and "--kernel-src TREE" in msg
    assert f"A copy of an older version is cached: --kernel-src {f.tarball}" in msg


def test_offline_is_the_cache_or_an_error_and_never_apt(archive, tmp_path):
    layout = CacheLayout(tmp_path / "cache")
    with pytest.raises(SourceError, match="has not been fetched"):
        _fetch(layout, tmp_path / "log", offline=True)
    assert archive.calls() == []
    archive.publish("7.3.4-1~bpo13+1")
    _fetch(layout, tmp_path / "log")
    n = len(archive.calls())
    assert _fetch(layout, tmp_path / "log", offline=True).version == "7.3.4-1~bpo13+1"
    assert len(archive.calls()) == n


def test_a_line_resolves_to_its_unpacked_tree_and_names_its_package_version(archive, tmp_path, monkeypatch):
    sources = tmp_path / "sources.toml"
    sources.write_text('[[line]]\nname = "debian-7.3"\npackage = "linux-source-7.3"\n'
                       'archive = "http://deb.debian.org/debian"\nsuite = "trixie-backports"\n')
    monkeypatch.setenv(debian.SOURCES_ENV, str(sources))
    archive.publish("7.3.4-1~bpo13+1")
    layout = CacheLayout(tmp_path / "cache")
    spec = SourceSpec.from_args("debian-7.3", None)
    key_only = identify(spec, layout)  # build --print-key: hashed, not unpacked
    assert key_only.path.name == "linux-source-7.3.tar.xz" and key_only.kernelversion == "7.3.4"
    tree = resolve(spec, layout)
    assert (tree.path / "Makefile").is_file() and tree.kernelversion == "7.3.4"
    assert tree.identity == key_only.identity and tree.identity.startswith("tarball:")
    assert tree.packages() == {"linux-source-7.3": "7.3.4-1~bpo13+1"}
    assert tree.describe() == "Debian linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)"
    assert tree.fetched is not None and tree.fetched.record()["suite"] == "trixie-backports"


# -- the real apt, an archive nobody answers for ----------------------------------------------------------------

def test_an_unreachable_archive_is_exit_3_naming_package_suite_and_the_alternative(tmp_path):
    """A test copy of sources.toml whose archive is 127.0.0.1:9 (nothing listens), an empty cache: apt itself
    fails to fetch the lists, and the build stops with one paragraph, exit 3, before anything is unpacked."""
    sources = tmp_path / "sources.toml"
    sources.write_text(debian.DEFAULT_SOURCES.read_text().replace("http://deb.debian.org/debian",
                                                                 "http://127.0.0.1:9/debian"))
    env = {**os.environ, debian.SOURCES_ENV: str(sources)}
    cache = tmp_path / "cache"
    res = cli("build", "--kernel-src", "debian-7.3", "--no-patches", "--cache-dir", str(cache), env=env, timeout=300)
    err = one_paragraph_error(res, "source", HARNESS)
    assert "cannot fetch linux-source-7.3: the archive http://127.0.0.1:9/debian (trixie-backports) could not be " \
           "reached" in err and "--kernel-src TREE" in err
    assert "Connection refused" in err or "Could not connect" in err
    assert not (cache / "src").exists() and not (cache / "kernels").exists()
