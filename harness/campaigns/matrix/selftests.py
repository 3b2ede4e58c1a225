# SPDX-License-Identifier: GPL-2.0
"""`matrix --suite selftests`: which tree's BPF selftests a matrix kernel runs, which files, and their summary."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.campaigns import selftests as st
from harness.campaigns.known_differences import KnownDifference
from harness.campaigns.matrix.spec import KernelTarget
from harness.campaigns.results import parse_junit
from harness.errors import HarnessError, UsageError
from harness.selftests.discover import SELFTESTS
from harness.selftests.listing import SelftestsError
from harness.settings import CacheLayout

SUITES = ("cases", "selftests")
SUMMARY_JSON, SUMMARY_TEXT = "selftests.json", "selftests.txt"


def parse_names(text: str | None) -> tuple[str, ...]:
    """--selftests FILE,...: the skeleton names (or progs/*.c paths), in order, each once; an empty list is a
    usage error (say nothing to run them all)."""
    if text is None:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError(f"--selftests {text!r} names no file (a comma-separated list such as "
                         "verifier_and,verifier_lsm; leave it out to run every RUN_TESTS file)")
    return names


@dataclass(frozen=True)
class TreeChoice:
    """Where a target's selftests come from: the source it is built from (`kernel_src`/`ref` as the build reads
    them: a Debian source line such as debian-7.3, or a path), or for a prebuilt Debian kernel the linux-source
    package of the image's upstream kernel (`image_version`)."""

    target: str
    kernel_src: str | None = None
    ref: str | None = None
    image_version: str | None = None

    def describe(self) -> str:
        if self.image_version is not None:
            from harness.kernel.prebuilt import source_package

            return f"Debian's {source_package(self.image_version)} of {self.image_version} (the image's source)"
        if self.kernel_src is None:
            return "the default kernel's source (the source it is built from)"
        from harness.kernel.debian import find_line

        line = find_line(self.kernel_src)
        if line is not None:
            return f"Debian's {line.package} ({line.name}, {line.suite}: the source it is built from)"
        return f"{self.kernel_src}{'@' + self.ref if self.ref else ''} (the source it is built from)"


def tree_choice(target: KernelTarget, meta: Mapping[str, Any]) -> TreeChoice:
    """Pure: the tree a target's selftests come from, given its kernel's meta (a prebuilt's image_version)."""
    if target.kind == "build":
        return TreeChoice(target.name, target.source, target.ref)
    version = meta.get("image_version") or ""
    if not version:
        raise SelftestsError("its kernel's meta names no image_version, so the Debian source "
                             "package it was built from is unknown (prepare the kernel again: "
                             f"`bpf-audit-harness build --kernel-target {target.name}`)")
    return TreeChoice(target.name, image_version=version)


def resolve_tree(choice: TreeChoice, layout: CacheLayout, log: Path) -> tuple[Path, dict[str, str], tuple[str, ...]]:
    """The tree on disk (unpacked into the cache as the build's source is), the Debian packages it came from and
    notes. A tree that cannot be had is a SelftestsError saying why (never an empty, passing column)."""
    try:
        if choice.image_version is None:
            tree = st.source_tree(choice.kernel_src, layout, ref=choice.ref, what=f"{choice.target}'s source")
            return tree, {}, ()  # its packages are the kernel's own (the build's meta names them)
        from harness.kernel.prebuilt import source_tarball

        tarball, res = source_tarball(choice.image_version, layout, log)
        tree = st.source_tree(str(tarball), layout)
        return tree, {res.package: res.version}, ((res.note,) if res.note else ())
    except HarnessError as e:
        raise SelftestsError(f"no selftests tree ({choice.describe()}): {e}",
                             log_path=getattr(e, "log_path", None)) from e


def select(tree: Path, names: Sequence[str]) -> st.Selection:
    """The files of `tree` to run: `names` (all: none given) that this tree has. Names it lacks (a kernel older
    than the file) are left out and said; none left, or no selftests at all, is a SelftestsError."""
    try:
        chosen = st.select_files(tree, names, allow_absent=True)
    except UsageError as e:  # no prog_tests/ at all, or a path outside the RUN_TESTS set
        raise SelftestsError(str(e)) from e
    if not chosen.files:
        asked = f"none of {', '.join(names)} is" if names else "no file is"
        raise SelftestsError(f"{asked} in the RUN_TESTS set of {tree / SELFTESTS}: nothing to run")
    return chosen


def absent_note(chosen: st.Selection) -> tuple[str, ...]:
    if not chosen.absent:
        return ()
    return (f"selftests not in this tree's RUN_TESTS set (not run here): {', '.join(chosen.absent)}",)


def rerun_args(rootdir: Path, nodeids: Sequence[str]) -> list[str]:
    """Node ids of the inner run (relative to its --rootdir, the tree's selftests directory) as arguments the
    inner pytest, started in the harness's repository, finds."""
    return [str(rootdir / n) for n in nodeids]


def write_summary(tdir: Path, chosen: st.Selection, junit: Path, known: Sequence[KnownDifference],
                  meta: Mapping[str, Any]) -> st.Summary:
    """The `selftests` command's own per-file summary of this kernel's first run, as selftests.json and .txt."""
    summary = st.summarize(parse_junit(junit.read_text()), chosen.names, known,
                           {"tree": str(chosen.tree), **meta})
    (tdir / SUMMARY_JSON).write_text(json.dumps(summary.to_json(), indent=1) + "\n")
    (tdir / SUMMARY_TEXT).write_text(st.format_table(summary))
    return summary
