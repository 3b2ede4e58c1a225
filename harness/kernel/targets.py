# SPDX-License-Identifier: GPL-2.0
"""The kernels of kernel-config/matrix.toml as data, and the one marked default: what runs when no kernel is named."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.settings import DEFAULT_CONFIG_DIR

DEFAULT_MATRIX = DEFAULT_CONFIG_DIR / "matrix.toml"
KINDS = ("build", "prebuilt-deb", "prebuilt")


class MatrixError(HarnessError):
    """The matrix or known-failures file, or a target name, is wrong: what the user gave (CLI exit 2)."""

    stage = "matrix"
    usage = True


@dataclass(frozen=True)
class KernelTarget:
    """One kernel of the matrix."""

    name: str
    kind: str
    description: str = ""
    source: str = ""  # (build) a line of kernel-config/sources.toml (debian-7.3), or a tree / tarball path
    ref: str | None = None
    series: bool = True
    fragments: tuple[Path, ...] = ()
    package: str | None = None
    version: str | None = None
    append: tuple[str, ...] = ()
    default: bool = False
    path: str = ""  # (prebuilt) a kernel built elsewhere: a bzImage (its vmlinux beside it) or a build directory

    @property
    def kernel_src(self) -> str:
        """The --kernel-src value of a build target."""
        return self.source


@dataclass(frozen=True)
class Matrix:
    path: Path
    targets: tuple[KernelTarget, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)

    def get(self, name: str) -> KernelTarget:
        for t in self.targets:
            if t.name == name:
                return t
        raise MatrixError(f"no kernel target {name!r} in {self.path}; known: {', '.join(self.names())}")

    def select(self, names: list[str] | None) -> tuple[KernelTarget, ...]:
        """The targets named (in the order given), or all of them."""
        if not names:
            return self.targets
        return tuple(self.get(n) for n in names)

    @property
    def default(self) -> KernelTarget:
        return next(t for t in self.targets if t.default)


_TARGET_KEYS = {"name", "kind", "description", "source", "ref", "series", "fragments", "package", "version", "path",
                "append", "default"}


def _read_toml(path: Path, text: str | None) -> dict:
    try:
        return tomllib.loads(text if text is not None else path.read_text())
    except OSError as e:
        raise MatrixError(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: not valid TOML: {e}") from e


def _typed(where: str, entry: dict, key: str, typ: type, default=None):
    if key not in entry:
        return default
    value = entry[key]
    if typ is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MatrixError(f"{where}: {key} must be a list of strings, got {value!r}")
        return value
    if not isinstance(value, typ):
        raise MatrixError(f"{where}: {key} must be a {typ.__name__}, got {value!r}")
    return value


def _tables(path: Path, data: dict, key: str) -> list[dict]:
    """`key`'s entries, which TOML must hold as an array of tables ([[key]] sections)."""
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MatrixError(f"{path}: {key} must be written as [[{key}]] sections (an array of tables), not "
                          f"{type(entries).__name__} {entries!r:.60}: start each entry with a [[{key}]] line")
    return entries


def _build_target(path: Path, where: str, entry: dict, common: dict) -> KernelTarget:
    for key in ("package", "version"):
        if key in entry:
            raise MatrixError(f"{where}: {key} is for kind = \"prebuilt-deb\", not \"build\"")
    frags = tuple((path.parent / f) for f in _typed(where, entry, "fragments", list, []))
    source = _typed(where, entry, "source", str, "")
    if not source:
        raise MatrixError(f"{where}: a build target needs source: a line of kernel-config/sources.toml "
                          "(such as \"debian-7.3\") or a kernel tree, git tree or tarball path")
    return KernelTarget(**common, source=source, ref=_typed(where, entry, "ref", str),
                        series=_typed(where, entry, "series", bool, True), fragments=frags)


def _prebuilt_target(path: Path, where: str, entry: dict, common: dict) -> KernelTarget:
    for key in ("source", "ref", "series", "fragments", "package", "version"):
        if key in entry:
            raise MatrixError(f"{where}: {key} is not for kind = \"prebuilt\": a kernel built elsewhere is "
                              "tested as it is")
    given = _typed(where, entry, "path", str, "")
    if not given:
        raise MatrixError(f"{where}: a prebuilt target needs path: a bzImage (its vmlinux beside it) or a "
                          "kernel build directory")
    return KernelTarget(**common, series=False, path=str((path.parent / given).expanduser()))


def _deb_target(path: Path, where: str, entry: dict, common: dict) -> KernelTarget:
    for key in ("source", "ref", "series", "fragments", "path"):
        if key in entry:
            raise MatrixError(f"{where}: {key} is for kind = \"build\"; a prebuilt kernel is booted as shipped")
    package = _typed(where, entry, "package", str)
    version = _typed(where, entry, "version", str)
    if not package or not version:
        raise MatrixError(f"{where}: a prebuilt-deb target needs package and version (pin the version: "
                          "the matrix must not change under you when the archive moves)")
    return KernelTarget(**common, series=False, package=package, version=version)


_BY_KIND = {"build": _build_target, "prebuilt": _prebuilt_target, "prebuilt-deb": _deb_target}


def _target(path: Path, i: int, entry: dict, targets: list[KernelTarget]) -> KernelTarget:
    """The i-th [[target]] entry, checked (its name against the targets before it)."""
    where = f"{path}: [[target]] #{i}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
    extra = set(entry) - _TARGET_KEYS
    if extra:
        raise MatrixError(f"{where}: unknown field(s) {sorted(extra)}; known: {sorted(_TARGET_KEYS)}")
    name = _typed(where, entry, "name", str)
    kind = _typed(where, entry, "kind", str)
    if not name:
        raise MatrixError(f"{where}: missing name")
    if kind not in KINDS:
        raise MatrixError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if any(t.name == name for t in targets):
        raise MatrixError(f"{where}: duplicate target name {name!r}")
    if not name[0].isalnum() or not all(c.isalnum() or c in "._-" for c in name):
        # It names a directory under --out: "." or ".." (or any name starting with a dot) would be another one.
        raise MatrixError(f"{where}: name must start with a letter or digit and hold only letters, digits, "
                          f"'.', '_' and '-' (it names a directory of the results): {name!r}")
    common = dict(name=name, kind=kind, description=_typed(where, entry, "description", str, ""),
                  append=tuple(_typed(where, entry, "append", list, [])),
                  default=_typed(where, entry, "default", bool, False))
    return _BY_KIND[kind](path, where, entry, common)


def parse_matrix(path: Path, text: str | None = None) -> Matrix:
    """Read and check a matrix file. Every error names the file, the entry and the field."""
    data = _read_toml(path, text)
    unknown_top = set(data) - {"target"}
    if unknown_top:
        raise MatrixError(f"{path}: unknown top-level key(s) {sorted(unknown_top)}; expected only [[target]] entries")
    entries = _tables(path, data, "target")
    if not entries:
        raise MatrixError(f"{path}: no [[target]] entries")
    targets: list[KernelTarget] = []
    for i, entry in enumerate(entries, 1):
        targets.append(_target(path, i, entry, targets))
    defaults = [t.name for t in targets if t.default]
    if len(defaults) != 1:
        raise MatrixError(f"{path}: exactly one target must have default = true, found {defaults or 'none'}")
    return Matrix(path, tuple(targets))


def load(path: Path | None = None) -> Matrix:
    return parse_matrix(path or DEFAULT_MATRIX)


def default_target(path: Path | None = None) -> KernelTarget:
    """The matrix target with default = true: the kernel a run tests when no kernel option names one (CLI and
    pytest alike). The one place that decides it is the matrix file."""
    return load(path).default


def default_build_target(path: Path | None = None) -> KernelTarget:
    """default_target(), which must be a build target where a source tree is wanted."""
    target = default_target(path)
    if target.kind != "build":
        raise MatrixError(f"the default target {target.name} of {path or DEFAULT_MATRIX} is a {target.kind} kernel, "
                          "which has no source tree: name one with --kernel-src")
    return target
