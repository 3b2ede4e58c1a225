# SPDX-License-Identifier: GPL-2.0
"""`selftests --list`: discover, compile and parse a tree's RUN_TESTS files; a per-file table and the totals."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.cases.compile import CompileResult, require_vmlinux_h
from harness.errors import HarnessError, UsageError
from harness.selftests.build import compile_all, read_file_specs
from harness.selftests.discover import SELFTESTS, Discovery, Skeleton, discover
from harness.selftests.recipe import Recipe
from harness.selftests.spec import UNPRIV
from harness.selftests.suite import FileSpecs, Subtest
from harness.selftests.testmod import Testmod
from harness.settings import CacheLayout


class SelftestsError(HarnessError):
    """The selftests stage could not go on (no vmlinux.h to compile against, ...): exit 3."""

    stage = "selftests"


@dataclass
class Listing:
    tree: Path
    vmlinux_h: Path
    recipe: Recipe
    discovery: Discovery
    files: list[FileSpecs] = field(default_factory=list)
    compiled: dict[str, CompileResult] = field(default_factory=dict)
    arch: str = "x86_64"
    discovered: int = 0  # files in the tree's whole RUN_TESTS set (the discovery holds the selected ones)

    @property
    def dialect(self) -> str:
        from harness.selftests.dialect import of_tree

        d = of_tree(self.tree)
        return f"Linux {d.name}: {d.encoding} tags"

    @property
    def failed(self) -> list[FileSpecs]:
        return [f for f in self.files if f.error]

    def file_row(self, f: FileSpecs) -> dict[str, Any]:
        """One file's counts: programs, subtests by mode, and which of them cannot be judged here and why."""
        subtests = f.subtests()
        other_arch = [s for s in subtests if not s.spec.runs_on(self.arch)]
        unsupported = [s for s in subtests if s.spec.runs_on(self.arch) and s.spec.unsupported_reasons(s.mode)]
        features = Counter(feat for s in unsupported
                           for feat in dict.fromkeys(r.feature for r in s.spec.unsupported_reasons(s.mode)))
        runnable = [s for s in subtests if s not in other_arch and s not in unsupported]
        execute = [s for s in runnable if s.spec.subspec(s.mode).execute and not s.spec.subspec(s.mode).expect_failure]
        return {
            "file": f.name, "group": f.skeleton.group, "programs": len(f.specs),
            "auxiliary": sum(1 for s in f.specs if s.valid and s.auxiliary),
            "invalid": [f"{s.prog_name}: {s.error}" for s in f.specs if not s.valid],
            "unknown_tags": [f"{s.prog_name}: {t}" for s in f.specs for t in s.unknown_tags],
            "priv": sum(1 for s in subtests if s.mode != UNPRIV),
            "unpriv": sum(1 for s in subtests if s.mode == UNPRIV),
            "other_arch": len(other_arch), "unsupported": len(unsupported), "unsupported_features": dict(features),
            "runnable": len(runnable), "execute": len(execute),
            "execute_unsupported": sum(1 for s in execute if s.spec.exec_unsupported),
            "error": f.error, "compile_error": f.compile_error,
        }

    def totals(self) -> dict[str, Any]:
        rows = [self.file_row(f) for f in self.files]
        features: Counter[str] = Counter()
        for r in rows:
            features.update(r["unsupported_features"])
        keys = ("programs", "auxiliary", "priv", "unpriv", "other_arch", "unsupported", "runnable", "execute",
                "execute_unsupported")
        out: dict[str, Any] = {k: sum(r[k] for r in rows) for k in keys}
        out.update(files=self.discovered or len(self.discovery.skeletons), selected=len(self.discovery.skeletons),
                   listed=len(self.files),
                   missing=[s.name for s in self.discovery.missing],
                   compile_failed=[f.name for f in self.files if f.compile_error],
                   unreadable=[f.name for f in self.files if f.error and not f.compile_error],
                   invalid=sum(len(r["invalid"]) for r in rows),
                   unknown_tags=sum(len(r["unknown_tags"]) for r in rows),
                   unsupported_features=dict(features.most_common()))
        return out

    def to_json(self) -> dict[str, Any]:
        files = []
        for f in self.files:
            row = self.file_row(f)
            row.update(source=str(f.skeleton.source) if f.skeleton.source else None, where=f.skeleton.where,
                       function=f.skeleton.function, guards=list(f.skeleton.guards),
                       caps_enable=list(f.skeleton.caps.enable), caps_disable=list(f.skeleton.caps.disable),
                       pre_execution=f.skeleton.pre_execution, object=str(f.obj) if f.obj else None,
                       stderr=self.compiled[f.name].stderr if f.name in self.compiled else "",
                       subtests=[_subtest_json(s, self.arch) for s in f.subtests()],
                       auxiliary_programs=[s.prog_name for s in f.specs if s.valid and s.auxiliary])
            files.append(row)
        return {"tree": str(self.tree), "vmlinux_h": str(self.vmlinux_h), "arch": self.arch,
                "recipe": {"argv": self.recipe.argv(Path("progs/NAME.c"), Path("NAME.bpf.o")),
                           "honoured": list(self.recipe.honoured), "skipped": list(self.recipe.skipped)},
                "totals": self.totals(), "files": files}

    def table(self) -> str:
        head = f"{'FILE':<40} {'GROUP':<9} {'PROGS':>5} {'PRIV':>5} {'UNPRIV':>6} {'ARCH':>4} {'UNSUP':>5}  NOTES"
        lines = [head]
        for f in self.files:
            r = self.file_row(f)
            notes = []
            if f.error:
                notes.append(("COMPILE FAILED: " if f.compile_error else "") + _first_error_line(f.error))
            if r["invalid"]:
                notes.append(f"{len(r['invalid'])} invalid spec(s)")
            if r["unknown_tags"]:
                notes.append(f"unknown tags: {', '.join(r['unknown_tags'][:3])}")
            notes += [f"{feat} x{n}" for feat, n in r["unsupported_features"].items()]
            if r["execute_unsupported"]:
                notes.append(f"retval unjudged x{r['execute_unsupported']} (pre-execution callback)")
            if f.skeleton.caps.disable:
                notes.append("caps -" + ",".join(c.removeprefix("CAP_") for c in f.skeleton.caps.disable))
            lines.append(f"{f.name:<40} {f.skeleton.group:<9} {r['programs']:>5} {r['priv']:>5} {r['unpriv']:>6} "
                         f"{r['other_arch']:>4} {r['unsupported']:>5}  {'; '.join(notes)}")
        for s in self.discovery.missing:
            lines.append(f"{s.name:<40} {s.group:<9} {'-':>5} {'-':>5} {'-':>6} {'-':>4} {'-':>5}  no progs/{s.name}.c "
                         f"({s.where})")
        t = self.totals()
        lines += ["", f"files: {t['files']} in the RUN_TESTS set, {t['selected']} selected, {len(t['missing'])} "
                      f"without a source, {len(t['compile_failed'])} failed to compile, {len(t['unreadable'])} "
                      "unreadable",
                  f"programs: {t['programs']} ({t['auxiliary']} auxiliary, {t['invalid']} with a spec test_loader "
                  f"cannot parse, {t['unknown_tags']} tags the tree's test_loader ({self.dialect}) does not know)",
                  f"subtests: {t['priv']} privileged + {t['unpriv']} unprivileged = {t['priv'] + t['unpriv']}",
                  f"  for another arch: {t['other_arch']}; unsupported here: {t['unsupported']}; judged by their "
                  f"load: {t['runnable']} ({t['execute']} of them also run BPF_PROG_TEST_RUN for __retval, "
                  f"{t['execute_unsupported']} of those unjudged)"]
        if t["unsupported_features"]:
            lines.append("unsupported subtests by feature (a subtest counts once per feature):")
            lines += [f"  {feat:<24} {n:>5}" for feat, n in t["unsupported_features"].items()]
        for name in t["compile_failed"]:
            f = next(x for x in self.files if x.name == name)
            lines += ["", f"{name}: compile failed:", (f.error or "").rstrip()]
        return "\n".join(lines) + "\n"


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if "error" in line:
            return line.strip()[:160]
    return text.strip().splitlines()[0][:160] if text.strip() else "failed"


def _subtest_json(s: Subtest, arch: str) -> dict[str, Any]:
    sub = s.spec.subspec(s.mode)
    return {"name": s.name, "program": s.prog_name, "mode": s.mode, "section": s.spec.section,
            "expect_failure": sub.expect_failure, "msgs": [p.text for p in sub.msgs], "retval": sub.retval,
            "log_level": s.spec.log_level, "flags_set": s.spec.flags_set, "flags_cleared": s.spec.flags_cleared,
            "autoload": list(s.autoload), "drop_caps": list(s.drop_caps),
            "no_autocreate_maps": list(s.no_autocreate_maps),
            "runs_on_arch": s.spec.runs_on(arch), "arches": list(s.spec.arches),
            "unsupported": [str(r) for r in s.spec.unsupported_reasons(s.mode)],
            "execute_unsupported": [str(r) for r in s.spec.exec_unsupported]}


def select(discovery: Discovery, names: Sequence[str]) -> list[Skeleton]:
    """The skeletons FILES names: a skeleton name, its file name, or a path to a progs/*.c of the tree (one not
    in the RUN_TESTS set is listed too, with group "none"). An unknown name is a usage error."""
    if not names:
        return list(discovery.skeletons)
    by_name = discovery.by_name()
    out: list[Skeleton] = []
    for raw in names:
        stem = Path(raw).name.removesuffix(".c").removesuffix(".bpf")
        if stem in by_name:
            out.append(by_name[stem])
            continue
        path = Path(raw)
        if path.suffix == ".c" and path.is_file():
            out.append(Skeleton(stem, path.resolve(), "none", "not in the RUN_TESTS set", ""))
            continue
        raise UsageError(f"{raw!r} is not in the RUN_TESTS set of {discovery.tree / SELFTESTS} (name a skeleton "
                           "such as verifier_and, its file, or the path of a .c file)")
    return list(dict.fromkeys(out))


def run_list(tree: Path, vmlinux_h: Path, layout: CacheLayout, names: Sequence[str] = (), *,
             jobs: int | None = None, progress: IO[str] | None = sys.stderr, arch: str = "x86_64",
             vmlinux: Path | None = None) -> Listing:
    """Discover, compile (into the object cache) and parse the selected files of `tree`; against the vmlinux.h
    the tree's Makefile would make from `vmlinux` when given, else `vmlinux_h`."""
    from harness.selftests.vmlinux_h import recipe_for

    require_vmlinux_h(vmlinux_h)
    disc = discover(tree)
    chosen = select(disc, names)
    recipe = recipe_for(tree, vmlinux_h, layout, vmlinux)
    testmod = Testmod.from_tree(tree)
    sources = [(s.name, s.source) for s in chosen if s.source is not None]
    compiled = compile_all(sources, recipe, layout.objects, jobs=jobs, progress=_progress(progress))
    listing = Listing(Path(tree), vmlinux_h, recipe, Discovery(disc.tree, tuple(chosen)), compiled=compiled,
                      arch=arch, discovered=len(disc.skeletons))
    for skel in chosen:
        if skel.source is None:
            continue
        res = compiled[skel.name]
        if not res.ok or res.obj is None:
            listing.files.append(FileSpecs(skel, None, error=res.stderr or "compile failed", compile_error=True))
        else:
            listing.files.append(read_file_specs(skel, res.obj, tree, recipe, layout.objects, testmod, arch=arch))
    return listing


def _progress(stream: IO[str] | None):
    if stream is None:
        return None
    tty = stream.isatty()
    failures: list[str] = []

    def show(done: int, total: int, name: str, res: CompileResult) -> None:
        state = "cached" if res.cached else ("ok" if res.ok else "FAILED")
        if not res.ok:
            failures.append(name)
        if tty:
            stream.write(f"\r\033[Kcompiling {done}/{total}: {name} ({state})")
            if done == total:
                stream.write(f"\r\033[Kcompiled {total} files, {len(failures)} failed\n")
        elif not res.ok or done == total or done % 20 == 0:
            stream.write(f"compiling {done}/{total}: {name} ({state})\n")
        stream.flush()

    return show
