# SPDX-License-Identifier: GPL-2.0
"""Build a tree's test_progs trimmed to named prog_tests, the way its selftests Makefile does, into the cache."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.errors import BuildError, HarnessError
from harness.kernel import cache
from harness.selftests import makevars
from harness.selftests.build import compile_selftest, default_jobs
from harness.selftests.discover import SELFTESTS
from harness.selftests.recipe import recipe_from_make
from harness.selftests.testprogs import makefile as tp_makefile
from harness.selftests.testprogs.entry import (
    BINARY,
    BUILD_VERSION,
    SHIM,
    BuiltTestProgs,
    Toolchain,
    _publish,
    _published,
    _sha,
    build_key,
    tree_digest,
)
from harness.selftests.testprogs.plan import (
    PROGS,
    TESTS_H,
    Plan,
    Selection,
    Skel,
    TestFile,
    defining_files,
    generated_tests_h,
    make_plan,
    read_test_file,
    undefined_symbols,
)
from harness.settings import GUESTS_DIR, CacheLayout, refuse_if_forbidden
from harness.tools import quoted

SHIM_SOURCE = GUESTS_DIR / "test_progs-shim.c"
HELPERS = "libtest_progs-helpers.a"
COMMAND_TIMEOUT = 600
LINK_ROUNDS = 4  # link, then add the prog_tests files that define what was missing, up to this many times


class TestSourceError(BuildError):
    """The named tests' own sources do not build (a prog_tests file, a BPF program or skeleton it needs): the
    tests' failure, not the harness's. `failed_files`: file name -> why."""

    __test__ = False

    def __init__(self, message: str, *, log_path: Path | None = None, failed_files: dict[str, str] | None = None):
        super().__init__(message, log_path=log_path)
        self.failed_files = dict(failed_files or {})


class _Log:
    """build.log: every command, shell-quoted, with its output, as it runs; and a progress callback."""

    def __init__(self, path: Path, say: Callable[[str], None] | None) -> None:
        self.path = path
        self.say = say or (lambda _msg: None)
        path.write_text("")

    def write(self, text: str) -> None:
        with self.path.open("a") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")

    def run(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            stdout: Path | None = None) -> subprocess.CompletedProcess:
        shown = quoted(argv) + (f" > {stdout.name}" if stdout else "")
        try:
            if stdout is not None:
                with stdout.open("wb") as out:
                    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE,
                                          timeout=COMMAND_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
                text = proc.stderr.decode(errors="replace")
            else:
                proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=COMMAND_TIMEOUT,
                                      check=False, stdin=subprocess.DEVNULL)
                text = (proc.stdout + proc.stderr).decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            self.write(f"$ {shown}\n(killed after {COMMAND_TIMEOUT} s)")
            raise BuildError(f"{shown}: did not finish within {COMMAND_TIMEOUT} s", log_path=self.path) from e
        self.write(f"$ {shown}" + (f" (in {cwd})" if cwd else "") + (f"\n{text.rstrip()}" if text.strip() else "")
                   + (f"\n(exit {proc.returncode})" if proc.returncode else ""))
        return subprocess.CompletedProcess(argv, proc.returncode, text, "")


def build_test_progs(tree: Path, selection: Selection, vmlinux_h: Path, layout: CacheLayout, *,
                     vmlinux: Path | None = None, toolchain: Toolchain | None = None, jobs: int | None = None,
                     say: Callable[[str], None] | None = None) -> BuiltTestProgs:
    """test_progs trimmed to `selection`'s files: a cache hit when every input is unchanged, else built under the
    key's lock in a work directory kept per tree (ccache then reuses what did not change), and published
    atomically. A file of the selection that does not compile or link is a BuildError naming the command and
    its log."""
    t0 = time.monotonic()
    tree = Path(tree).resolve()
    tc = toolchain or Toolchain(clang=_default_clang())
    files = [f.path.name for f in selection.files]
    key = build_key(tree_digest(tree), files, _sha(vmlinux_h), tc.versions(), _sha(SHIM_SOURCE))
    entry = layout.test_progs / key
    found = _published(entry)
    if found is not None:
        return BuiltTestProgs(entry, key, True, time.monotonic() - t0, found)
    refuse_if_forbidden("build", f"building test_progs for {', '.join(files)} from {tree}")
    layout.test_progs.mkdir(parents=True, exist_ok=True)
    work = layout.test_progs / f"work-{hashlib.sha256(str(tree).encode()).hexdigest()[:12]}"
    with cache.key_lock(layout, f"test_progs-{key}", holder=f"building test_progs ({', '.join(files)})"), \
            cache.key_lock(layout, f"test_progs-{work.name}", holder=f"building test_progs in {work}"):
        found = _published(entry)
        if found is not None:
            return BuiltTestProgs(entry, key, True, time.monotonic() - t0, found)
        meta = _Builder(tree, selection, vmlinux_h, vmlinux, layout, tc, work, jobs or default_jobs(), say).run()
        meta.update(key=key, seconds=round(time.monotonic() - t0, 1), build_version=BUILD_VERSION)
        _publish(layout, key, work, meta)
    return BuiltTestProgs(entry, key, False, time.monotonic() - t0, meta)


def _default_clang() -> str:
    from harness.cases.compile import find_clang

    return find_clang()


class _Builder:
    """One build in the work directory: what DEFINE_TEST_RUNNER's rules do for test_progs, for these files only."""

    def __init__(self, tree: Path, selection: Selection, vmlinux_h: Path, vmlinux: Path | None, layout: CacheLayout,
                 tc: Toolchain, work: Path, jobs: int, say: Callable[[str], None] | None) -> None:
        self.tree, self.selection, self.vmlinux_h, self.vmlinux = tree, selection, vmlinux_h, vmlinux
        self.layout, self.tc, self.work, self.jobs = layout, tc, work, jobs
        self.base = tree / SELFTESTS
        self.notes: list[str] = []
        self.phases: dict[str, float] = {}
        self.say = say or (lambda _msg: None)
        self.log: _Log

    def phase(self, name: str, t0: float) -> None:
        self.phases[name] = round(time.monotonic() - t0, 2)

    def run(self) -> dict[str, Any]:
        from harness.kernel.bpftool import build_bpftool
        from harness.kernel.libbpf import build_libbpf

        for stale in (self.work / "obj", self.work / "prog_tests"):
            shutil.rmtree(stale, ignore_errors=True)
        for old in self.work.glob("*") if self.work.is_dir() else ():
            if old.is_file():
                old.unlink()
        (self.work / "obj").mkdir(parents=True, exist_ok=True)
        self.log = _Log(self.work / "build.log", self.say)
        t = time.monotonic()
        self.say("test_progs: libbpf and bpftool of the tree (each built once per content)")
        self.libbpf = build_libbpf(self.tree, self.layout)
        self.bpftool = build_bpftool(self.tree, self.layout)
        self.log.write(f"# libbpf {self.libbpf.path} ({'cached' if self.libbpf.cached else 'built'}); bpftool "
                       f"{self.bpftool.path} ({'cached' if self.bpftool.cached else 'built'})")
        self.phase("libbpf+bpftool", t)
        t = time.monotonic()
        self.mk = tp_makefile.read(self.tree, self.tc.clang, self.vmlinux)
        self.recipe = recipe_from_make(self.tree, self._tree_vmlinux_h(), self.layout, self.tc.clang,
                                       self.mk.bpf_values, self.mk.bpf_per_file)
        self._include_dir()
        self.phase("makefile", t)
        done_objects: dict[str, str | None] = {}  # stem -> why it did not compile (None: it did)
        done_skels: dict[str, str | None] = {}
        files = self._named_files(done_objects, done_skels)
        plan = make_plan(self.tree, files, self.mk.facts)
        helpers = self._helpers(plan.tests)
        for round_ in range(LINK_ROUNDS):
            t = time.monotonic()
            missing = self._link(plan, helpers)
            self.phase(f"link{'' if not round_ else f' (round {round_ + 1})'}", t)
            if not missing:
                break
            more = defining_files(self.tree, missing, exclude=[f.path for f in plan.files])
            if not more:
                raise BuildError(f"linking test_progs failed: undefined {', '.join(missing[:12])}; no prog_tests file "
                                 f"or helper defines them{self._helper_failures()}", log_path=self.log.path)
            self.notes.append(f"linked against {', '.join(sorted({p.name for p in more.values()}))}, which "
                              f"define{'s' if len(more) == 1 else ''} {', '.join(sorted(more))}")
            extra = [read_test_file(p) for p in dict.fromkeys(more.values())]
            why = self._prepare_files(extra, done_objects, done_skels)
            if why:
                raise BuildError("a prog_tests file the tests link against does not build:\n"
                                 + "\n".join(f"{k}: {v}" for k, v in why.items()), log_path=self.log.path)
            # tests.h keeps the named files' tests only: the extra files are linked for their functions
            plan = make_plan(self.tree, [*plan.files, *extra], self.mk.facts)
            plan = Plan(plan.files, tuple(t for f in files for t in f.tests), plan.skeletons, plan.objects,
                        plan.runtime_objects, plan.problems)
        else:
            raise BuildError(f"linking test_progs still failed after {LINK_ROUNDS} rounds", log_path=self.log.path)
        self._after_link()
        t = time.monotonic()
        self._shim()
        self.phase("shim", t)
        return {
            "tree": str(self.tree), "files": [f.path.name for f in files], "failed_files": self.failed_files,
            "linked_files": [f.path.name for f in plan.files],
            "tests": list(dict.fromkeys(t for f in files for t in f.tests)),
            "objects": list(plan.objects), "runtime_objects": list(plan.runtime_objects),
            "skeletons": [s.header for s in plan.skeletons], "helpers_linked": self.linked_members,
            "notes": self.notes + list(self.recipe.skipped), "phases": self.phases,
            "libbpf": {"path": str(self.libbpf.path), "key": self.libbpf.key},
            "bpftool": {"path": str(self.bpftool.path), "key": self.bpftool.key},
            "vmlinux_h": str(self.vmlinux_h), "toolchain": self.tc.versions(),
            "cflags": list(self.cflags()), "ldlibs": list(self.mk.ldlibs),
        }

    # -- headers the Makefile's INCLUDE_DIR would hold -------------------------------------------------------------
    def _tree_vmlinux_h(self) -> Path:
        """The vmlinux.h the Makefile makes (`$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c`: the tree's own
        bpftool on the kernel under test), not the artifact's (the host's bpftool): 7.3's progs call kfuncs such as
        bpf_wq_set_callback that only the tree's dump declares. The artifact's when there is no vmlinux."""
        if self.vmlinux is None:
            return self.vmlinux_h
        from harness.selftests.vmlinux_h import tree_vmlinux_h

        path, how = tree_vmlinux_h(self.tree, self.vmlinux, self.layout, self.bpftool)
        self.log.write(f"# {how}: {path}")
        return path

    def _include_dir(self) -> None:
        """<work>/tools/include, where the Makefile's INCLUDE_DIR is ($(OUTPUT)/tools/include): vmlinux.h,
        bpf_helper_defs.h and libbpf's headers as <bpf/...> (what `install_headers` puts there)."""
        inc = self.work / "tools" / "include"
        shutil.rmtree(inc, ignore_errors=True)
        inc.mkdir(parents=True)
        (inc / "vmlinux.h").symlink_to(self.recipe.vmlinux_h)
        (inc / "bpf_helper_defs.h").symlink_to(self.recipe.include_dir / "bpf_helper_defs.h")
        (inc / "bpf").symlink_to(self.tree / "tools/lib/bpf")

    def cflags(self) -> list[str]:
        """The Makefile's CFLAGS with its OUTPUT mapped to the work directory."""
        out = self.mk.output
        return [tok.replace(out, str(self.work)) for tok in self.mk.cflags]

    def _cc(self) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.tc.use_ccache and shutil.which("ccache"):
            self.layout.ccache.mkdir(parents=True, exist_ok=True)
            env.update(CCACHE_DIR=str(self.layout.ccache), CCACHE_NOHASHDIR="true",
                       CCACHE_MAXSIZE=env.get("CCACHE_MAXSIZE", "20G"))
            return ["ccache", *shlex.split(self.mk.cc)], env
        return shlex.split(self.mk.cc), env

    # -- BPF objects, skeletons and the test files --------------------------------------------------------------------
    def _named_files(self, done_objects: dict[str, str | None], done_skels: dict[str, str | None]) -> list[TestFile]:
        """The named files that build: each one's BPF objects, skeletons and test object. A file that does not
        (its own source, or a BPF program or skeleton it needs) is left out and its reason kept in failed_files:
        its tests fail, the other files' still run. None building is a TestSourceError."""
        self.failed_files: dict[str, str] = {}
        why = self._prepare_files(list(self.selection.files), done_objects, done_skels)
        self.failed_files.update(why)
        files = [f for f in self.selection.files if f.path.name not in why]
        if not files:
            raise TestSourceError("none of the named prog_tests files builds:\n"
                                  + "\n".join(f"{k}: {v}" for k, v in why.items()), log_path=self.log.path,
                                  failed_files=why)
        return files

    def _prepare_files(self, files: list[TestFile], done_objects: dict[str, str | None],
                       done_skels: dict[str, str | None]) -> dict[str, str]:
        """Compile what `files` need and the files themselves; file name -> why it does not build."""
        plans = {f.path.name: make_plan(self.tree, [f], self.mk.facts) for f in files}
        for plan in plans.values():
            for problem in plan.problems:
                if problem not in self.notes:
                    self.notes.append(problem)
        todo = list(dict.fromkeys(o for plan in plans.values() for o in plan.objects if o not in done_objects))
        t = time.monotonic()
        if todo:
            self.say(f"test_progs: {len(todo)} BPF object(s) with the tree's recipe")
        done_objects.update(self._compile_bpf(todo))
        self.phase("bpf objects", t)
        t = time.monotonic()
        why: dict[str, str] = {}
        for name, plan in plans.items():
            bad = [str(done_objects[o]) for o in plan.objects if done_objects.get(o)]
            if bad:
                why[name] = "a BPF program it needs does not compile with the tree's recipe:\n" + "\n".join(bad)
                continue
            for skel in plan.skeletons:
                if skel.header not in done_skels:
                    done_skels[skel.header] = self._skeleton(skel)
                if done_skels[skel.header]:
                    why[name] = str(done_skels[skel.header])
                    break
        self.phase("skeletons", t)
        t = time.monotonic()
        why.update(self._compile_tests([f for f in files if f.path.name not in why]))
        self.phase("test objects", t)
        return why

    def _compile_bpf(self, stems: list[str]) -> dict[str, str | None]:
        def one(stem: str):
            return stem, compile_selftest(self.tree / PROGS / f"{stem}.c", self.recipe, self.layout.objects)

        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(stems) or 1))) as pool:
            results = list(pool.map(one, stems))
        out: dict[str, str | None] = {}
        for stem, res in results:
            self.log.write(f"$ {res.command}" + (" (cached)" if res.cached else "")
                           + (f"\n{res.stderr.rstrip()}" if res.stderr.strip() else ""))
            if not res.ok or res.obj is None:
                out[stem] = f"progs/{stem}.c:\n{res.stderr.strip()[-1500:]}\n$ {res.command}"
                continue
            shutil.copyfile(res.obj, self.work / f"{stem}.bpf.o")
            out[stem] = None
        return out

    def _skeleton(self, skel: Skel) -> str | None:
        """`bpftool gen object` three times (the Makefile's check that linking is stable), then `gen skeleton`
        (and `gen subskeleton` for a libbpf skeleton), as the Makefile's skeleton rules do. Returns why it could
        not be made, or None."""
        try:
            self._make_skeleton(skel)
        except BuildError as e:
            return e.message
        return None

    def _make_skeleton(self, skel: Skel) -> None:
        if skel.kind == "signed-lskel":
            raise BuildError(f"{skel.header} is a signed light skeleton (LSKELS_SIGNED): building it needs the "
                             "selftests' signing key, which the harness does not make", log_path=self.log.path)
        bpftool = str(self.bpftool.path)
        light = skel.kind == "lskel"
        stem = skel.header.split(".")[0]
        tag = "llinked" if light else "linked"
        inputs = [f"{o}.bpf.o" for o in skel.objects]
        steps = [[bpftool, "gen", "object", f"{stem}.{tag}1.o", *inputs],
                 [bpftool, "gen", "object", f"{stem}.{tag}2.o", f"{stem}.{tag}1.o"],
                 [bpftool, "gen", "object", f"{stem}.{tag}3.o", f"{stem}.{tag}2.o"]]
        for argv in steps:
            self._check(self.log.run(argv, cwd=self.work), argv, f"generating {skel.header}")
        if (self.work / f"{stem}.{tag}2.o").read_bytes() != (self.work / f"{stem}.{tag}3.o").read_bytes():
            raise BuildError(f"{skel.header}: `bpftool gen object` is not stable on {' '.join(inputs)} "
                             f"({stem}.{tag}2.o and {tag}3.o differ), as the Makefile's diff checks",
                             log_path=self.log.path)
        gen = [bpftool, "gen", "skeleton", *(["-L"] if light else []), f"{stem}.{tag}3.o", "name", skel.name]
        self._check(self.log.run(gen, cwd=self.work, stdout=self.work / skel.header), gen, f"generating {skel.header}")
        if not light:
            sub = [bpftool, "gen", "subskeleton", f"{stem}.{tag}3.o", "name", skel.name]
            self._check(self.log.run(sub, cwd=self.work, stdout=self.work / f"{stem}.subskel.h"), sub,
                        f"generating {stem}.subskel.h")
        for n in (1, 2, 3):
            (self.work / f"{stem}.{tag}{n}.o").unlink(missing_ok=True)

    def _check(self, proc: subprocess.CompletedProcess, argv: list[str], what: str) -> None:
        if proc.returncode != 0:
            raise BuildError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout.strip()[-2000:]}\n$ "
                             f"{quoted(argv)}", log_path=self.log.path)

    # -- user space ---------------------------------------------------------------------------------------------------
    def _helpers(self, tests: Sequence[str]) -> dict[str, Path]:
        """The runner's extra sources and tools/lib sources, each compiled (in parallel, ccache'd) as the Makefile's
        EXT-OBJ/LIB-OBJ rules do, with the work directory first on the include path (its prog_tests/tests.h, not
        one a tree's in-tree build left). They go into an archive, so the link takes only the ones the tests
        use. One that does not compile is left out and said (the link names it if it was needed)."""
        (self.work / "prog_tests").mkdir(exist_ok=True)
        (self.work / TESTS_H).write_text(generated_tests_h(tests))
        sources = [(s, self.base / s) for s in self.mk.extra_sources if s.endswith(".c")]
        sources += [(s, self.tree / "tools/lib" / s) for s in self.mk.lib_sources if s.endswith(".c")]
        self._generated_headers()
        for header in (s for s in self.mk.extra_sources if s.endswith(".h")):
            if not (self.base / header).is_file() and header not in self.mk.generated.values():
                self.notes.append(f"{header} (TRUNNER_EXTRA_SOURCES) is generated by the Makefile and not made here: "
                                  "the sources that include it do not compile")
        cc, env = self._cc()
        flags = self.cflags()
        t = time.monotonic()
        self.say(f"test_progs: {len(sources)} helper source(s) of the runner")

        def one(item: tuple[str, Path]):
            name, src = item
            obj = self.work / "obj" / (Path(name).name.removesuffix(".c") + ".o")
            own = shlex.split(self.mk.source_cflags.get(name, ""))
            argv = [*cc, f"-I{self.work}", *flags, *own, "-c", str(src), "-o", str(obj)]
            return name, obj, argv, self.log.run(argv, cwd=self.base, env=env)

        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(sources)))) as pool:
            results = list(pool.map(one, sources))
        objs: dict[str, Path] = {}
        self.helper_failures: dict[str, str] = {}
        for name, obj, _argv, proc in results:
            if proc.returncode == 0:
                objs[name] = obj
            else:
                self.helper_failures[name] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?"
                self.notes.append(f"{name} does not compile here and is left out of the link "
                                  f"({self.helper_failures[name][:200]})")
        self.phase("helpers", t)
        if "test_progs.c" not in objs:
            raise BuildError(f"test_progs.c does not compile: {self.helper_failures.get('test_progs.c')}",
                             log_path=self.log.path)
        archive = self.work / HELPERS
        archive.unlink(missing_ok=True)
        members = [str(p) for n, p in objs.items() if n != "test_progs.c"]
        self._check(self.log.run(["ar", "rcs", str(archive), *members]), ["ar", "rcs", str(archive)], "the helpers")
        return objs

    def _generated_headers(self) -> set[str]:
        """Headers the runner's sources include that the Makefile generates (7.3: $(VERIFY_SIG_HDR), the
        signing certificate test_progs registers at start), made by the Makefile's own rule into the work
        directory (first on the include path). One whose rule runs a make of its own in the tree is not made."""
        made: set[str] = set()
        for var, value in self.mk.generated.items():
            target = self.work / Path(value).name
            target.unlink(missing_ok=True)
            make_vars = {"CLANG": self.tc.clang, "VMLINUX_BTF": str(self.vmlinux or "/dev/null")}
            why = makevars.make_file(self.tree, target, var, output=self.work / "generated", make_vars=make_vars,
                                     log=lambda argv, proc: self.log.write(
                                         f"$ {quoted(argv)}\n{(proc.stdout + proc.stderr).rstrip()}"))
            if why is None:
                made.add(value)
                self.notes.append(f"{value} ($({var})) made by the Makefile's own rule into the build directory")
            else:
                self.notes.append(f"{value} ($({var})) not made: {why}")
        return made

    def _helper_failures(self) -> str:
        failed = getattr(self, "helper_failures", {})
        return f" (left out because they did not compile: {', '.join(failed)})" if failed else ""

    def _compile_tests(self, files: list[TestFile]) -> dict[str, str]:
        """Each prog_tests file as the Makefile's TEST-OBJ rule does: in the output directory (so `-I.` finds the
        skeletons), its CFLAGS, no per-file flags."""
        cc, env = self._cc()
        flags = self.cflags()
        if files:
            self.say(f"test_progs: {len(files)} prog_tests file(s)")

        def one(tf: TestFile):
            argv = [*cc, "-I.", *flags, "-c", str(tf.path), "-o", f"obj/{tf.stem}.test.o"]
            return tf, argv, self.log.run(argv, cwd=self.work, env=env)

        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(files) or 1))) as pool:
            results = list(pool.map(one, files))
        return {tf.path.name: f"does not compile:\n{proc.stdout.strip()[-3000:]}\n$ {quoted(argv)}"
                for tf, argv, proc in results if proc.returncode != 0}

    def _link(self, plan: Plan, helpers: dict[str, Path]) -> list[str]:
        """`$(CC) $(CFLAGS) <test objects> <extra objects> libbpf.a $(LDLIBS) $(LDFLAGS) -o test_progs`, with the
        helpers from their archive. Returns the undefined symbols of a failed link ([] when it worked)."""
        objs = [str(self.work / "obj" / f"{f.stem}.test.o") for f in plan.files]
        argv = [*shlex.split(self.mk.cc), *self.cflags(), *objs, str(helpers["test_progs.c"]),
                str(self.work / HELPERS), str(self.libbpf.archive), *self.mk.ldlibs, *self.mk.ldflags,
                f"-Wl,-Map={self.work / 'test_progs.map'}", "-o", str(self.work / BINARY)]
        self.say("test_progs: link")
        proc = self.log.run(argv, cwd=self.work)
        if proc.returncode == 0:
            return []
        missing = undefined_symbols(proc.stdout)
        if not missing:
            raise BuildError(f"linking test_progs failed:\n{proc.stdout.strip()[-3000:]}\n$ {quoted(argv)}",
                             log_path=self.log.path)
        return missing

    def _after_link(self) -> None:
        """Which helpers the link took (from its map), and what the Makefile would do next that is not done here."""
        try:
            text = (self.work / "test_progs.map").read_text(errors="replace")
        except OSError:
            text = ""
        self.linked_members = sorted(set(re.findall(rf"{re.escape(HELPERS)}\((\S+?)\.o\)", text)))
        if _has_section(self.work / BINARY, ".BTF_ids"):
            self.notes.append("the binary has a .BTF_ids section: the Makefile runs resolve_btfids on it, which is "
                              "not done here, so BTF IDs it resolves at build time stay 0")

    def _shim(self) -> None:
        argv = ["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(self.work / SHIM), str(SHIM_SOURCE), "-ldl"]
        self._check(self.log.run(argv), argv, "the shim")


def _has_section(path: Path, name: str) -> bool:
    try:
        out = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f" {name} " in out


__all__ = ["HarnessError", "TestSourceError", "build_test_progs"]

