# SPDX-License-Identifier: GPL-2.0
"""Patch series: pick the one for a kernel line, parse its quilt-style `series`, apply it, report the failing hunk.

The patches root (the repo's patches/, or --patches DIR) holds one directory per kernel line, named major.minor:
patches/7.3/series, patches/6.12/series, each with its mutants/. A --patches DIR that holds a `series` file itself
is a developer's own series, used as given for any tree."""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import PatchError
from harness.tools import quoted


@dataclass(frozen=True)
class Patch:
    path: Path
    strip: int  # the -pN level
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Series:
    directory: Path
    patches: tuple[Patch, ...]

    def key_material(self) -> list[tuple[str, int, str]]:
        return [(p.name, p.strip, p.sha256) for p in self.patches]


def parse_series_text(text: str, source: str = "series") -> list[tuple[str, int, int]]:
    """Entries of a series file as (file name, strip level, line number). Comments and blanks skipped."""
    entries = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        strip = 1
        for opt in parts[1:]:
            m = re.fullmatch(r"-p(\d+)", opt)
            if not m:
                raise PatchError(f"{source}:{lineno}: unknown option {opt!r} (only -pN is understood).", usage=True)
            strip = int(m.group(1))
        entries.append((parts[0], strip, lineno))
    return entries


def lines_with_series(root: Path) -> list[str]:
    """The kernel lines (major.minor directory names) under a patches root that have a series, oldest first."""
    found = []
    for d in root.iterdir() if root.is_dir() else ():
        if re.fullmatch(r"\d+\.\d+", d.name) and (d / "series").is_file():
            found.append(d.name)
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def series_dir(root: Path, line: str) -> Path:
    """The directory of the series for kernel `line` (major.minor) under patches root `root`: `root` itself when
    it holds a series file (a developer's own series, for any tree), else root/<line>. A root without one for this
    line is a PatchError naming the lines that have one and --no-patches."""
    if (root / "series").is_file():
        return root
    if not root.is_dir():
        raise PatchError(f"patch directory {root} does not exist. Check the path, or pass --no-patches to build the "
                         "source as is.", usage=True)
    if (root / line / "series").is_file():
        return root / line
    have = lines_with_series(root)
    which = (f"series exist for {', '.join(have)} ({', '.join(str(root / v / 'series') for v in have)})" if have
             else f"no kernel line has one there (a series is {root}/<major.minor>/series)")
    raise PatchError(f"no patch series for Linux {line} in {root}: {root / line / 'series'} does not exist; {which}. "
                     f"Build this tree without patches with --no-patches, or name a directory holding your own series "
                     "file with --patches DIR.", usage=True)


def load_series(directory: Path, series_file: Path | None = None) -> Series:
    """The series in `directory` (its `series` file). A directory that does not exist or has no series file is an
    error, never "no patches": a mistyped --patches must not quietly build the unpatched kernel."""
    series_path = series_file or directory / "series"
    if not series_path.is_file():
        if not directory.is_dir():
            raise PatchError(f"patch directory {directory} does not exist. Check the path, or pass --no-patches "
                             "to build the source as is.", usage=True)
        raise PatchError(f"{series_path} does not exist: a patch directory needs a series file (one patch file name "
                         "per line, applied in order, quilt style). Create it, or pass --no-patches.", usage=True)
    patches = []
    for name, strip, lineno in parse_series_text(series_path.read_text(), str(series_path)):
        path = (series_path.parent / name).resolve()
        if not path.is_file():
            raise PatchError(f"{series_path}:{lineno}: patch {name} is listed but {path} does not exist.", usage=True)
        patches.append(Patch(path, strip, hashlib.sha256(path.read_bytes()).hexdigest()))
    return Series(directory, tuple(patches))


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[str, ...]
    already_applied: tuple[str, ...]


_FAIL_RE = re.compile(r"Hunk #(\d+) FAILED at (\d+)")
_FILE_RE = re.compile(r"^(?:patching file|checking file) '?([^'\n]+)'?$", re.M)


def first_failure(patch_output: str) -> tuple[str, str] | None:
    """From `patch --dry-run` output: (file, 'hunk #N at line L') of the first failure, if any."""
    current = None
    for line in patch_output.splitlines():
        m = _FILE_RE.match(line)
        if m:
            current = m.group(1)
            continue
        m = _FAIL_RE.search(line)
        if m and current:
            return current, f"hunk #{m.group(1)} at line {m.group(2)}"
        if "can't find file to patch" in line:
            return "(a file the patch names does not exist)", "whole file"
    return None


def _patch(tree: Path, patch: Patch, *extra: str) -> subprocess.CompletedProcess:
    argv = ["patch", f"-p{patch.strip}", "--batch", "--forward", "--no-backup-if-mismatch",
            "-i", str(patch.path), *extra]
    return subprocess.run(argv, cwd=tree, capture_output=True, text=True, check=False)


def reproduction(series: Series, failing: Patch, applied: list[str], pristine: Path,
                 scratch: str = "/tmp/bpf-audit-harness-patch-check") -> str:
    """Shell commands that redo the failed step by hand on a scratch copy of the pristine source (the
    harness's own copy is removed when the build stops)."""
    steps = [quoted(["rm", "-rf", scratch]), quoted(["cp", "-a", str(pristine), scratch]), quoted(["cd", scratch])]
    by_name = {p.name: p for p in series.patches}
    steps += [quoted(["patch", f"-p{by_name[n].strip}", "-i", str(by_name[n].path)]) for n in applied]
    steps.append(quoted(["patch", f"-p{failing.strip}", "--dry-run", "-i", str(failing.path)]))
    return " && ".join(steps)


def already_applied(series: Series, tree: Path) -> bool:
    """Every patch of the series reverse-applies cleanly: the tree (a user's, never modified) carries it."""
    return all(_patch(tree, patch, "--dry-run", "--reverse").returncode == 0 for patch in series.patches)


def apply_series(series: Series, tree: Path, log: Path | None = None, *, pristine: Path | None = None) -> ApplyResult:
    """Apply every patch in order onto `tree` (a disposable copy of `pristine`). Already-applied patches are
    skipped. A patch that does not apply is a PatchError naming the patch, file and hunk, and how to redo it."""
    applied, skipped = [], []
    for patch in series.patches:
        dry = _patch(tree, patch, "--dry-run")
        if dry.returncode == 0:
            real = _patch(tree, patch)
            if log:
                with log.open("a") as f:
                    f.write(f"== {patch.name}\n{real.stdout}{real.stderr}")
            if real.returncode != 0:  # dry run passed; a real failure means the tree changed under us
                raise PatchError(f"{patch.name} applied in a dry run but not for real:\n{real.stdout[-800:]}")
            applied.append(patch.name)
            continue
        reverse = _patch(tree, patch, "--dry-run", "--reverse")
        if reverse.returncode == 0:
            skipped.append(patch.name)
            continue
        where = first_failure(dry.stdout + dry.stderr)
        location = f"{where[0]}, {where[1]}" if where else "see output below"
        if pristine is not None:
            by_hand = reproduction(series, patch, applied, pristine)
        else:
            by_hand = quoted(["patch", f"-p{patch.strip}", "--dry-run", "-d", str(tree), "-i", str(patch.path)])
        raise PatchError(
            f"patch {patch.path} does not apply: first failure in {location}. "
            f"Earlier patches applied: {', '.join(applied) or 'none'}. Reproduce with: {by_hand}\n"
            f"{(dry.stdout + dry.stderr)[-1500:]}",
            output=dry.stdout + dry.stderr,
        )
    return ApplyResult(tuple(applied), tuple(skipped))


# -- mutants: a series plus one deliberate bug (patches/<line>/mutants/NAME.patch) ----------------------------

MUTANTS_SUBDIR = "mutants"


def mutants_dir(patches_dir: Path) -> Path:
    return patches_dir / MUTANTS_SUBDIR


def available_mutants(patches_dir: Path) -> list[str]:
    """Names of the mutants shipped beside a series (file stem of <series dir>/mutants/*.patch), sorted."""
    d = mutants_dir(patches_dir)
    return sorted(p.name[: -len(".patch")] for p in d.glob("*.patch")) if d.is_dir() else []


def mutant_path(patches_dir: Path, name: str) -> Path:
    """The patch file of mutant `name`; PatchError naming the known mutants when there is none."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise PatchError(f"mutant name {name!r} is not a plain file stem (letters, digits, '.', '_', '-').",
                         usage=True)
    path = mutants_dir(patches_dir) / f"{name}.patch"
    if not path.is_file():
        known = ", ".join(available_mutants(patches_dir)) or "none"
        raise PatchError(f"no mutant {name!r}: {path} does not exist. Known mutants: {known}.", usage=True)
    return path


def with_mutant(series: Series, patches_dir: Path, name: str) -> Series:
    """`series` with mutant `name` appended: a different patch list, hence a different cache key."""
    path = mutant_path(patches_dir, name)
    mutant = Patch(path.resolve(), 1, hashlib.sha256(path.read_bytes()).hexdigest())
    return Series(series.directory, (*series.patches, mutant))
