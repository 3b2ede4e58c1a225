# SPDX-License-Identifier: GPL-2.0
"""Debian archive versions: compare them, ask apt which exist, and pick one for a pin the archive dropped."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cmp_to_key

from harness.errors import SourceError

# -- Debian version ordering (Debian Policy 5.6.12), pure -------------------------------------------------------

def _split(version: str) -> tuple[int, str, str]:
    """(epoch, upstream version, Debian revision) of a version string."""
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def _order(c: str) -> int:
    """Sort weight of one non-digit character: '~' before the end of the string, letters before the rest."""
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _run(pattern: re.Pattern[str], text: str) -> str:
    """The leading run of `text` that `pattern` (which also matches nothing) matches."""
    m = pattern.match(text)
    return m.group(0) if m else ""


_NON_DIGITS = re.compile(r"\D*")
_DIGITS = re.compile(r"\d*")


def _compare_part(a: str, b: str) -> int:
    """Compare upstream or revision parts: alternate non-digit runs (by _order) and digit runs (numerically)."""
    while a or b:
        na, nb = _run(_NON_DIGITS, a), _run(_NON_DIGITS, b)
        for i in range(max(len(na), len(nb))):
            ca = _order(na[i]) if i < len(na) else 0
            cb = _order(nb[i]) if i < len(nb) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(na):], b[len(nb):]
        da, db = _run(_DIGITS, a), _run(_DIGITS, b)
        if int(da or 0) != int(db or 0):
            return -1 if int(da or 0) < int(db or 0) else 1
        a, b = a[len(da):], b[len(db):]
    return 0


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions a lt/eq/gt b` would say."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def newest_first(versions: list[str]) -> list[str]:
    return sorted(set(versions), key=cmp_to_key(compare_versions), reverse=True)


def upstream_version(version: str) -> str:
    """The upstream kernel version of a Debian kernel package version: 6.1.192-2 -> 6.1.192,
    6.12.117-1~deb12u1 -> 6.12.117."""
    return _split(version)[1]


def kernel_line(version: str) -> str:
    """The kernel line (major.minor) of a Debian kernel package version: 6.1.192-2 -> 6.1."""
    return ".".join(upstream_version(version).split(".")[:2])


def parse_madison(text: str, package: str) -> list[str]:
    """Versions of `package` in `apt-cache madison` output (`pkg | version | origin`), newest first."""
    out = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) >= 3 and cols[0] == package and cols[1]:
            out.append(cols[1])
    return newest_first(out)


@dataclass(frozen=True)
class Resolution:
    """The version to fetch for a pin, and why it is not the pin (empty when it is)."""

    package: str
    pinned: str
    version: str
    note: str = ""


def _closest(package: str, want: str, available: list[str], alike) -> tuple[str, list[str]] | None:
    """`want` itself if the archive has it (None: nothing to say), else (the newest version `alike` to it, all
    of them); SourceError naming what apt knows when none is."""
    if want in available:
        return None
    candidates = [v for v in newest_first(available) if alike(v) == alike(want)]
    if not candidates:
        have = ", ".join(newest_first(available)) or "none"
        raise SourceError(f"{package} {want} is not in the archive and nothing like it is ({alike(want)}; apt "
                          f"knows: {have}). Run `apt-get update`, or pin a version apt lists "
                          f"(`apt-cache madison {package}`).")
    return candidates[0], candidates


def choose_version(package: str, pinned: str, available: list[str]) -> Resolution:
    """The pin if the archive has it, else the newest version of the same kernel line. A pin is a preference:
    Debian's archive drops old versions with every security update."""
    found = _closest(package, pinned, available, kernel_line)
    if found is None:
        return Resolution(package, pinned, pinned)
    chosen, same_line = found
    return Resolution(package, pinned, chosen,
                      f"{package} {pinned} (pinned) is no longer in the archive; using {chosen}, the newest "
                      f"{kernel_line(pinned)} version apt has (apt knows: {', '.join(same_line)})")


def choose_same_upstream(package: str, want: str, available: list[str]) -> Resolution:
    """A version of `package` built from the same upstream kernel as `want` (its Debian revision may differ):
    the exact version if the archive has it, else the newest with the same upstream version."""
    found = _closest(package, want, available, upstream_version)
    if found is None:
        return Resolution(package, want, want)
    chosen = found[0]
    return Resolution(package, want, chosen, f"{package} {want} is not in the archive; {chosen} is built from "
                                             f"the same upstream kernel {upstream_version(want)}")


# -- the archive, as apt on this machine sees it ----------------------------------------------------------------

def available_versions(package: str) -> list[str]:
    """Versions of `package` apt can download (from its local package lists), newest first."""
    try:
        res = subprocess.run(["apt-cache", "madison", package], capture_output=True, text=True, check=False,
                             timeout=60)
    except FileNotFoundError as e:
        raise SourceError("apt-cache not found: prebuilt Debian kernels need apt (a Debian or Ubuntu host).") from e
    return parse_madison(res.stdout, package)


def resolve(package: str, pinned: str) -> Resolution:
    return choose_version(package, pinned, available_versions(package))


def installed_version(path: str) -> tuple[str, str] | None:
    """(package, version) of the installed Debian package that owns `path`, if any."""
    owner = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True, check=False)
    if owner.returncode != 0 or ":" not in owner.stdout:
        return None
    pkg = owner.stdout.split(":", 1)[0].strip().split(",")[0].strip()
    ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False)
    return (pkg, ver.stdout.strip()) if ver.returncode == 0 and ver.stdout.strip() else None
