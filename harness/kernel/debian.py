# SPDX-License-Identifier: GPL-2.0
"""Debian kernel source lines (kernel-config/sources.toml), fetched with the harness's own apt into its cache."""

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
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.kernel import apt, cache
from harness.settings import DEFAULT_CONFIG_DIR, CacheLayout, listdir
from harness.tools import quoted

SOURCES_ENV = "BPF_AUDIT_HARNESS_SOURCES"  # another sources.toml (tests point it at an unreachable archive)
DEFAULT_SOURCES = DEFAULT_CONFIG_DIR / "sources.toml"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE = 6 * 3600  # package lists older than this are refreshed before a version is chosen
RETRY_AFTER = 600  # after a refresh failed, a cached copy is used without asking again for this long
KEEP_VERSIONS = 2  # downloaded versions kept per line (the newest, and the one before it for a running session)
APT_TIMEOUT = 900  # seconds for one apt-get run (a 170 MB download on a slow link included)
FETCHED = "fetched.json"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PACKAGE_RE = re.compile(r"linux-source-(\d+\.\d+)")
_LINE_KEYS = {"name", "package", "archive", "suite", "component", "keyring", "why"}


@dataclass(frozen=True)
class DebianLine:
    """One [[line]] of sources.toml: a Debian linux-source package and the suite that carries it."""

    name: str
    package: str
    archive: str
    suite: str
    component: str = "main"
    keyring: str = DEFAULT_KEYRING
    why: str = ""

    @property
    def kernel_line(self) -> str:
        """major.minor of the kernel the package ships: linux-source-7.3 -> 7.3."""
        m = _PACKAGE_RE.fullmatch(self.package)
        assert m is not None  # parse_sources checked it
        return m.group(1)

    @property
    def tarball_relpath(self) -> str:
        return f"usr/src/{self.package}.tar.xz"

    def sources_list(self) -> str:
        """The one `deb` line of the harness's private sources.list for this line."""
        return f"deb [signed-by={self.keyring}] {self.archive} {self.suite} {self.component}\n"

    def describe(self, version: str) -> str:
        return f"Debian {self.package} {version} ({self.suite})"

    def alternative(self) -> str:
        return ("Build a tree of your own instead: --kernel-src TREE (a kernel source directory, a git tree with "
                "--kernel-ref, or a source tarball).")


def sources_path() -> Path:
    """The sources file in use: $BPF_AUDIT_HARNESS_SOURCES, else kernel-config/sources.toml."""
    explicit = os.environ.get(SOURCES_ENV)
    return Path(explicit).expanduser() if explicit else DEFAULT_SOURCES


def parse_sources(text: str, path: Path) -> tuple[DebianLine, ...]:
    """Read and check a sources file; every error names the file, the entry and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SourceError(f"{path}: not valid TOML: {e}", usage=True) from e
    extra = set(data) - {"line"}
    if extra:
        raise SourceError(f"{path}: unknown top-level key(s) {sorted(extra)}; expected only [[line]] entries",
                          usage=True)
    entries = data.get("line", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SourceError(f"{path}: write each line as a [[line]] section", usage=True)
    lines: list[DebianLine] = []
    for i, entry in enumerate(entries, 1):
        where = f"{path}: [[line]] #{i}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
        unknown = set(entry) - _LINE_KEYS
        if unknown:
            raise SourceError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_LINE_KEYS)}", usage=True)
        for key in ("name", "package", "archive", "suite"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise SourceError(f"{where}: {key} must be a non-empty string", usage=True)
        for key in ("component", "keyring", "why"):
            if key in entry and not isinstance(entry[key], str):
                raise SourceError(f"{where}: {key} must be a string", usage=True)
        if not _NAME_RE.fullmatch(entry["name"]):
            raise SourceError(f"{where}: name may hold only letters, digits, '.', '_' and '-' (it names "
                              "directories)", usage=True)
        if not _PACKAGE_RE.fullmatch(entry["package"]):
            raise SourceError(f"{where}: package must be linux-source-<major>.<minor> (its name says the kernel "
                              f"line), got {entry['package']!r}", usage=True)
        if not re.fullmatch(r"https?://\S+", entry["archive"]):
            raise SourceError(f"{where}: archive must be an http(s) URL, got {entry['archive']!r}", usage=True)
        if any(line.name == entry["name"] for line in lines):
            raise SourceError(f"{where}: duplicate name {entry['name']!r}", usage=True)
        lines.append(DebianLine(**{k: v.strip() for k, v in entry.items()}))
    if not lines:
        raise SourceError(f"{path}: no [[line]] entries", usage=True)
    return tuple(lines)


def load_lines(path: Path | None = None) -> tuple[DebianLine, ...]:
    path = path or sources_path()
    try:
        text = path.read_text()
    except OSError as e:
        raise SourceError(f"cannot read the Debian source lines {path}: {e.strerror}", usage=True) from e
    return parse_sources(text, path)


def find_line(name: str, path: Path | None = None) -> DebianLine | None:
    """The line called `name`, or None (then `name` is a path)."""
    if not _NAME_RE.fullmatch(name or ""):
        return None
    return next((line for line in load_lines(path) if line.name == name), None)


# -- pure: what apt said ----------------------------------------------------------------------------------------

def apt_conf(root: Path) -> str:
    """The private apt configuration (APT_CONFIG): everything under `root`, so the host's /etc/apt (its sources,
    its apt.conf.d, its keys) is never read; no lock on the host's dpkg; an update that fails to fetch any index
    is an error, not a warning; no translations."""
    return (f'Dir "{root}/";\n'
            f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
            'Debug::NoLocking "true";\n'
            'APT::Update::Error-Mode "any";\n'
            'Acquire::Languages "none";\n'
            'Acquire::Retries "1";\n'
            'Acquire::http::Timeout "30";\n'
            'Acquire::https::Timeout "30";\n')


def update_failure(output: str) -> str:
    """The reason an `apt-get update` failed, from its output: its E:/Err: lines (what apt said), joined."""
    lines = [line.strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith(("E:", "W:")) and "performed unsandboxed" not in line]
    if len(errors) > 1:  # apt's closing summary says nothing the lines before it did not
        errors = [line for line in errors if "Some index files failed to download" not in line]
    if not errors:
        errors = [f"{a} {b}" for a, b in zip(lines, [*lines[1:], ""], strict=True) if a.startswith("Err:")]
    reason = "; ".join(dict.fromkeys(errors)) or (output.strip().splitlines() or ["apt-get update failed"])[-1]
    return reason[:600]


def lists_fresh(stamp_mtime: float | None, now: float, max_age: float = LISTS_MAX_AGE) -> bool:
    return stamp_mtime is not None and 0 <= now - stamp_mtime < max_age


def version_dirname(version: str) -> str:
    """A directory name for a Debian version (':' and other odd characters replaced)."""
    return re.sub(r"[^A-Za-z0-9.+~-]", "_", version)


# -- what is cached ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fetched:
    """A line's tarball in the cache, and which package version it came from."""

    line: DebianLine
    version: str
    tarball: Path
    fetched_at: float
    deb_sha256: str = ""
    notes: tuple[str, ...] = ()

    @property
    def upstream(self) -> str:
        """The upstream kernel version: 7.3.4-1~bpo13+1 -> 7.3.4."""
        return apt.upstream_version(self.version)

    def describe(self) -> str:
        return self.line.describe(self.version)

    def record(self) -> dict:
        """What a kernel's meta.json says of its source (its `packages` entry holds package and version too)."""
        return {"line": self.line.name, "package": self.line.package, "version": self.version,
                "suite": self.line.suite, "archive": self.line.archive, "deb_sha256": self.deb_sha256}


def line_dir(layout: CacheLayout, line: DebianLine) -> Path:
    return layout.sources / "debian" / line.name


def apt_root(layout: CacheLayout, line: DebianLine) -> Path:
    return layout.apt / line.name


def cached(line: DebianLine, layout: CacheLayout) -> list[Fetched]:
    """The versions of `line` published in the cache, newest first (a half-written one is never there: publish
    renames a complete directory into place)."""
    out = []
    for d in listdir(line_dir(layout, line)):
        if d.name.startswith("."):
            continue
        try:
            rec = json.loads((d / FETCHED).read_text())
            tarball = d / Path(line.tarball_relpath).name
            if rec.get("package") != line.package or not tarball.is_file():
                continue
            out.append(Fetched(line, rec["version"], tarball, float(rec.get("fetched_at", 0)),
                               rec.get("deb_sha256", "")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    order = apt.newest_first([f.version for f in out])
    return sorted(out, key=lambda f: order.index(f.version))


# -- fetching -----------------------------------------------------------------------------------------------------

class Apt:
    """apt-get/apt-cache on a private root: one per line, under the cache."""

    def __init__(self, line: DebianLine, root: Path, log: Path) -> None:
        self.line, self.root, self.log = line, root, log
        self.conf = root / "apt.conf"
        self.stamp = root / "lists.updated"
        self.failed = root / "lists.failed"  # why the last refresh failed (its mtime: when)

    def prepare(self) -> None:
        """The directories apt needs, an empty dpkg status, this line's sources.list and the configuration. A
        changed sources.list (another archive or suite) makes the old lists stale."""
        for sub in ("etc/apt/apt.conf.d", "etc/apt/sources.list.d", "etc/apt/preferences.d",
                    "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
                    "var/lib/dpkg"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        status = self.root / "var/lib/dpkg/status"
        if not status.exists():
            status.write_text("")
        sources = self.root / "etc/apt/sources.list"
        want = self.line.sources_list()
        if not sources.is_file() or sources.read_text() != want:
            _write(sources, want)
            self.stamp.unlink(missing_ok=True)
        conf = apt_conf(self.root)
        if not self.conf.is_file() or self.conf.read_text() != conf:
            _write(self.conf, conf)

    def run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "APT_CONFIG": str(self.conf), "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as f:
            f.write(f"$ APT_CONFIG={self.conf} {quoted(argv)}\n")
        try:
            res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, errors="replace",
                                 timeout=APT_TIMEOUT, check=False)
        except FileNotFoundError as e:
            raise SourceError(f"{argv[0]} not found: fetching {self.line.package} needs apt (a Debian or Ubuntu "
                              f"host). {self.line.alternative()}") from e
        except subprocess.TimeoutExpired:
            res = subprocess.CompletedProcess(argv, 124, "", f"E: {argv[0]} timed out after {APT_TIMEOUT}s\n")
        with self.log.open("a") as f:
            f.write(res.stdout[-20000:] + res.stderr[-20000:] + f"(exit {res.returncode})\n")
        return res

    def lists_age_ok(self) -> bool:
        try:
            mtime = self.stamp.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        return lists_fresh(mtime, time.time())

    def update(self) -> str | None:
        """Refresh the lists; None when it worked, else why not (apt's own words, also kept in `failed`)."""
        res = self.run(["apt-get", "update"])
        if res.returncode != 0:
            reason = update_failure(res.stdout + "\n" + res.stderr)
            _write(self.failed, reason + "\n")
            return reason
        self.stamp.touch()
        self.failed.unlink(missing_ok=True)
        return None

    def recent_failure(self) -> str | None:
        """Why the last refresh failed, when that was less than RETRY_AFTER ago (xdist workers and the next
        commands of a session do not each wait for an archive that just did not answer)."""
        try:
            if 0 <= time.time() - self.failed.stat().st_mtime < RETRY_AFTER:
                return self.failed.read_text().strip()
        except OSError:
            pass
        return None

    def versions(self) -> list[str]:
        res = self.run(["apt-cache", "madison", self.line.package])
        return apt.parse_madison(res.stdout, self.line.package) if res.returncode == 0 else []

    def download(self, version: str, dest: Path) -> Path:
        """`apt-get download package=version` into dest (apt checks the .deb against the signed lists)."""
        spec = f"{self.line.package}={version}"
        res = self.run(["apt-get", "download", spec], cwd=dest)
        debs = sorted(dest.glob("*.deb"))
        if res.returncode != 0 or len(debs) != 1:
            reason = update_failure(res.stdout + "\n" + res.stderr)
            raise SourceError(f"downloading {spec} from {self.line.archive} {self.line.suite} failed: {reason}. "
                              f"{self.line.alternative()}", log_path=self.log)
        return debs[0]


def fetch(line: DebianLine, layout: CacheLayout, log: Path, *, say: Callable[[str], None] | None = None,
          offline: bool = False) -> Fetched:
    """The newest version of `line`'s package that its archive has, in the cache (downloaded on a miss).

    The lists are refreshed when older than LISTS_MAX_AGE or when they do not list the package. When they cannot
    be refreshed, the newest cached copy is used, with a note saying so. offline=True: the newest cached copy or
    a SourceError; no apt at all (doctor, questions about the cache)."""
    say = say or _stderr
    cache.ensure_writable(layout)
    with cache.key_lock(layout, f"debian-{line.name}", holder=f"fetching {line.package} (log: {log})",
                        waiting=say):
        have = cached(line, layout)
        if offline:
            if not have:
                raise SourceError(f"{line.package} ({line.name}) has not been fetched into {layout.root} yet.")
            return have[0]
        a = Apt(line, apt_root(layout, line), log)
        a.prepare()
        versions = a.versions() if a.lists_age_ok() else []
        if not versions:
            failed = a.recent_failure() if have else None
            failed = failed or a.update()
            if failed is not None:
                if have:
                    when = time.strftime("%Y-%m-%d", time.localtime(have[0].fetched_at))
                    note = (f"the package lists of {line.suite} could not be refreshed ({failed}); using the cached "
                            f"{line.package} {have[0].version}, fetched {when} (log: {log})")
                    return _with_note(have[0], note)
                raise SourceError(f"cannot fetch {line.package}: the archive {line.archive} ({line.suite}) could not "
                                  f"be reached ({failed}), and no copy of {line.name} is cached in {layout.root}. "
                                  f"{line.alternative()}", log_path=log)
            versions = a.versions()
        if not versions:
            kept = f" A copy of an older version is cached: --kernel-src {have[0].tarball}." if have else ""
            raise SourceError(f"the archive {line.archive} ({line.suite}) no longer has {line.package}: Debian "
                              f"dropped this line (update {sources_path()}).{kept} {line.alternative()}",
                              log_path=log)
        newest = versions[0]
        hit = next((f for f in have if f.version == newest), None)
        if hit is not None:
            return hit
        say(f"[source] downloading the newest {line.package} from {line.suite} (log: {log})")
        fetched = _download_and_publish(a, line, newest, layout, log)
        _prune(line, layout, keep=KEEP_VERSIONS)
        return fetched


def _download_and_publish(a: Apt, line: DebianLine, version: str, layout: CacheLayout, log: Path) -> Fetched:
    """Download the .deb, take the tarball out of it, publish the version's directory with one rename: nothing
    half-written is ever seen under its name."""
    parent = line_dir(layout, line)
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=parent))
    try:
        (work / "deb").mkdir()
        deb = a.download(version, work / "deb")
        fields = {}
        for field in ("Package", "Version"):
            res = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=False)
            fields[field] = res.stdout.strip()
        if (fields["Package"], fields["Version"]) != (line.package, version):
            raise SourceError(f"{deb.name} is {fields['Package']} {fields['Version']}, not {line.package} {version}",
                              log_path=log)
        out = work / "out"
        out.mkdir()
        res = subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], capture_output=True, text=True,
                             check=False)
        tarball = work / "root" / line.tarball_relpath
        if res.returncode != 0 or not tarball.is_file():
            raise SourceError(f"{deb.name} does not hold {line.tarball_relpath}: {res.stderr.strip()[-500:]}",
                              log_path=log)
        os.replace(tarball, out / tarball.name)
        now = time.time()
        deb_sha256 = _sha256(deb)
        record = {"package": line.package, "version": version, "suite": line.suite, "archive": line.archive,
                  "deb": deb.name, "deb_sha256": deb_sha256, "deb_bytes": deb.stat().st_size, "fetched_at": now}
        _write(out / FETCHED, json.dumps(record, indent=1) + "\n")
        dest = parent / version_dirname(version)
        if dest.exists():  # a damaged leftover (no fetched.json or tarball): cached() did not list it
            shutil.rmtree(dest)
        os.rename(out, dest)
        return Fetched(line, version, dest / tarball.name, now, deb_sha256)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(line: DebianLine, layout: CacheLayout, keep: int) -> None:
    """Older versions beyond the newest `keep`. (A session that still unpacks one of them holds its own open
    file; the unpacked trees are keyed by the tarball's content and stay.)"""
    for old in cached(line, layout)[keep:]:
        shutil.rmtree(old.tarball.parent, ignore_errors=True)


def _with_note(f: Fetched, note: str) -> Fetched:
    return Fetched(f.line, f.version, f.tarball, f.fetched_at, f.deb_sha256, (*f.notes, note))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
