# SPDX-License-Identifier: GPL-2.0
"""A kernel build's model: what is asked (BuildRequest), the published cache entry (KernelArtifact, its meta.json:
ArtifactMeta), the result."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.kernel import cache, kconfig
from harness.kernel.patches import Series
from harness.kernel.source import SourceTree
from harness.kernel.toolchain import toolchain_identity
from harness.settings import CacheLayout

ARTIFACT_FILES = ("bzImage", "vmlinux", "System.map", "config", "audit.h", "vmlinux.h")


@dataclass(frozen=True)
class BuildRequest:
    source: SourceTree
    series: Series
    fragments: tuple[kconfig.Fragment, ...]
    layout: CacheLayout
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    use_ccache: bool = True
    base_config: str = ""  # the developer's .config (--kernel-config): the fragments go onto it, not allnoconfig
    llvm: str = ""  # make's LLVM= (1, -SUFFIX or PREFIX/): the kernel built with clang and LLVM's binutils

    @property
    def toolchain(self) -> tuple[str, ...]:
        return toolchain_identity(self.llvm)

    @property
    def merged(self) -> kconfig.MergedConfig:
        """The fragments merged for this source's kernel version (options whose range excludes it left out)."""
        from dataclasses import replace

        return replace(kconfig.merge(list(self.fragments), self.source.kernelversion), base=self.base_config)

    def key_inputs(self) -> cache.KeyInputs:
        return cache.KeyInputs(
            source_identity=self.source.identity,
            patches=tuple(self.series.key_material()),
            merged_config=self.merged.render(),
            toolchain=self.toolchain,
        )


@dataclass(frozen=True)
class ArtifactMeta:
    """A cache entry's meta.json, typed: the keys the harness reads. Every other key is kept in `extra`, and the keys'
    order as read, so an entry (also one written by an older harness) is written back as the same JSON."""

    key: str
    release: str
    kind: str = ""  # "" (built from a source) | "prebuilt-deb" | "given"
    source_description: str = ""  # a build: its source in one line
    source_path: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)  # the Debian packages it came from: name -> version
    patches: tuple[str, ...] = ()  # a build: the series' patch names
    image_package: str = ""  # a prebuilt: the linux-image package booted, and its version
    image_version: str = ""
    toolchain: tuple[str, ...] = ()  # a build: what compiled it (harness.kernel.toolchain.toolchain_identity)
    llvm: str = ""  # a build: make's LLVM= ("" for gcc)
    tree: str = ""  # a build: the source tree it was built in
    extra: Mapping[str, Any] = field(default_factory=dict)  # every other key, as read
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the keys in the file's order

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactMeta:
        """From meta.json's object; KeyError without key or release (not a cache entry)."""
        known = {f.name for f in fields(cls)} - {"extra", "order"}
        typed: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for name in ("patches", "toolchain"):
            if name in typed:
                typed[name] = tuple(str(x) for x in typed[name] or ())
        if "packages" in typed:
            typed["packages"] = dict(typed["packages"] or {})
        for name in ("kind", "source_description", "source_path", "image_package", "image_version", "llvm", "tree"):
            if name in typed:
                typed[name] = "" if typed[name] is None else str(typed[name])
        return cls(**{"key": data["key"], "release": data["release"], **typed},
                   extra={k: v for k, v in data.items() if k not in known}, order=tuple(data))

    def to_json(self) -> dict[str, Any]:
        """meta.json's object: the keys read, in their order, with their values; then any typed field set since."""
        out: dict[str, Any] = {}
        defaults = ArtifactMeta("", "")
        names = [f.name for f in fields(self) if f.name not in ("extra", "order")]
        for name in (*self.order, *(n for n in names if n not in self.order), *self.extra):
            if name in out:
                continue
            if name in self.extra:
                out[name] = self.extra[name]
            elif name in names and (name in self.order or getattr(self, name) != getattr(defaults, name)):
                value = getattr(self, name)
                out[name] = list(value) if isinstance(value, tuple) else dict(value) if name == "packages" else value
        return out

    # meta.json read as the dict it is: `kernel_artifact.meta["tree"]` is how the fixture's users (their conftests,
    # the project's own system tests, capture scripts) have read it; the typed fields are the harness's own way.
    def __getitem__(self, name: str) -> Any:
        data = self.to_json()
        if name not in data:
            raise KeyError(name)
        return data[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.to_json().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.to_json()


@dataclass(frozen=True)
class KernelArtifact:
    """A published build. Every path is inside the cache entry `dir`."""

    key: str
    dir: Path
    release: str
    meta: ArtifactMeta

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def vmlinux(self) -> Path:
        return self.dir / "vmlinux"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def config(self) -> Path:
        return self.dir / "config"

    @property
    def audit_h(self) -> Path:
        return self.dir / "audit.h"

    @property
    def vmlinux_h(self) -> Path:
        return self.dir / "vmlinux.h"

    @classmethod
    def load(cls, entry: Path) -> KernelArtifact:
        meta = ArtifactMeta.from_json(json.loads((entry / "meta.json").read_text()))
        return cls(meta.key, entry, meta.release, meta)

    def files(self) -> tuple[Path, ...]:
        return (self.bzimage, self.vmlinux, self.system_map, self.config, self.audit_h, self.vmlinux_h)

    @classmethod
    def problem(cls, entry: Path) -> str | None:
        """What is wrong with a published entry (a file missing or empty), or None: cache.published's check."""
        try:
            art = cls.load(entry)
        except (OSError, ValueError, KeyError) as e:
            return f"meta.json: {e}"
        for path in art.files():
            try:
                if path.stat().st_size == 0:
                    return f"{path.name} is empty"
            except OSError:
                return f"{path.relative_to(entry)} is missing"
        return None


@dataclass(frozen=True)
class BuildResult:
    artifact: KernelArtifact
    cache_hit: bool
    seconds: float
    log: Path | None
    notes: tuple[str, ...] = ()  # what the user should hear once (e.g. a pinned package version apt no longer has)
    source: str = ""  # the source it was built from, in one line (SourceTree.describe), '' when not a build


def kernel_has_btf(vmlinux: Path) -> bool:
    out = subprocess.run(["readelf", "-S", "-W", str(vmlinux)], capture_output=True, text=True, check=False)
    return re.search(r"\s\.BTF\s", out.stdout) is not None
