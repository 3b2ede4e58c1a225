# SPDX-License-Identifier: GPL-2.0
"""pytest collection of a kernel tree's selftests/bpf/progs/*.c (RUN_TESTS files): one item per subtest."""

from __future__ import annotations

import functools
import json
import platform
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness.cases.compile import CompileResult
from harness.cases.console_check import check_console, console_start
from harness.errors import HarnessError
from harness.selftests.build import compile_selftest, read_file_specs
from harness.selftests.discover import SELFTESTS, Discovery, Skeleton, discover
from harness.selftests.evidence import KernelEvidence, tree_kfuncs, uapi_enumerators
from harness.selftests.evidence import from_kernel as evidence_from_kernel
from harness.selftests.judge import failure_kind
from harness.selftests.recipe import Recipe
from harness.selftests.run import discovery_tree
from harness.selftests.select import Filter, Selector
from harness.selftests.spec import UNPRIV
from harness.selftests.suite import FileSpecs, Subtest
from harness.selftests.test_progs_log import name_of_test
from harness.selftests.testmod import Testmod
from harness.selftests.vmlinux_h import recipe_for
from harness.settings import CacheLayout
from harness.status import NOT_VERDICT_PROPERTY, STATUS_PROPERTY, Status

UNPRIV_ITEM_SUFFIX = "[unpriv]"
PROGS = SELFTESTS / "progs"


@dataclass(frozen=True)
class KernelForSelftests:
    """What collection needs of the kernel under test: its vmlinux.h (the recipe compiles against it), its
    release (for messages), the harness cache (objects, generated headers, libbpf builds), and its vmlinux and
    .config (the evidence that it lacks a feature a selftest needs; None: nothing is known, nothing skips)."""

    vmlinux_h: Path
    release: str
    cache_root: Path
    vmlinux: Path | None = None
    config: Path | None = None
    kernel_dir: Path | None = None  # its cache entry (meta.json names the tree and slot it was built in)

    def evidence(self, tree: Path) -> KernelEvidence:
        return _evidence(Path(tree), self.vmlinux_h, self.vmlinux, self.config, self.release)


@functools.cache
def _evidence(tree: Path, vmlinux_h: Path, vmlinux: Path | None, config: Path | None, release: str) -> KernelEvidence:
    return evidence_from_kernel(tree, vmlinux_h, vmlinux, config, release)


def selftest_source(path: Path) -> tuple[Path, str] | None:
    """(tree, skeleton name) when `path` is <tree>/tools/testing/selftests/bpf/progs/<name>.c, else None."""
    path = Path(path)
    if path.suffix != ".c" or path.parent.name != "progs":
        return None
    parts = path.parent.parts
    if tuple(parts[-len(PROGS.parts):]) != PROGS.parts:
        return None
    return Path(*parts[:-len(PROGS.parts)]), path.name.removesuffix(".c")


@functools.cache
def discovered(tree: Path) -> Discovery:
    return discover(tree)


def selftest_skeleton(path: Path) -> Skeleton | None:
    """The RUN_TESTS skeleton `path` is the source of, or None (another file, or a progs/*.c that test_progs does
    not run through test_loader)."""
    found = selftest_source(path)
    if found is None:
        return None
    tree, name = found
    try:
        skel = discovered(tree.resolve()).by_name().get(name)
    except HarnessError:
        return None
    return skel if skel is not None and skel.source is not None else None


def is_selftest_file(path: Path) -> bool:
    return selftest_skeleton(path) is not None


def is_selftests_dir(path: Path) -> bool:
    """A directory pytest would walk into selftest files: a tree's progs/ or one of the directories above it, up
    to the tree itself."""
    path = Path(path).resolve()
    for k in range(len(PROGS.parts) + 1):
        progs = path.joinpath(*PROGS.parts[k:])
        if progs.is_dir() and progs.parts[-len(PROGS.parts):] == PROGS.parts:
            return any(is_selftest_file(p) for p in progs.glob("*.c"))
    return False


_lock = threading.Lock()


@functools.cache
def _recipe(tree: Path, vmlinux_h: Path, cache_root: Path, vmlinux: Path | None = None) -> Recipe:
    return recipe_for(tree, vmlinux_h, CacheLayout(cache_root), vmlinux)


@functools.cache
def _testmod(tree: Path) -> Testmod:
    return Testmod.from_tree(tree)


@functools.cache
def _modules(tree: Path, kernel_dir: Path | None, config: Path | None, cache_root: Path) -> tuple[Path | None, str]:
    """bpf_testmod.ko of `tree` for a kernel with module support (built once), or (None, why not)."""
    from harness.selftests.testmod_build import MODULE, modules_for

    built, why = modules_for(tree, kernel_dir, config, CacheLayout(cache_root))
    return (built / MODULE if built is not None else None), why


def compile_file(skel: Skeleton, kernel: KernelForSelftests) -> tuple[CompileResult, FileSpecs]:
    """Compile a RUN_TESTS file with upstream's recipe against the kernel's vmlinux.h and read its plans."""
    assert skel.source is not None
    tree = discovery_tree(skel)
    with _lock:
        recipe = _recipe(tree, kernel.vmlinux_h, kernel.cache_root, kernel.vmlinux)
    res = compile_selftest(skel.source, recipe, CacheLayout(kernel.cache_root).objects)
    if not res.ok or res.obj is None:
        return res, FileSpecs(skel, None, error=res.stderr or "compile failed", compile_error=True)
    module, why = _modules(tree, kernel.kernel_dir, kernel.config, kernel.cache_root)
    fs = read_file_specs(skel, res.obj, tree, recipe, CacheLayout(kernel.cache_root).objects,
                         None if module is not None else _testmod(tree), arch=_arch())
    if module is not None:
        fs = replace(fs, modules=(module,))  # loaded into every guest first, as test_progs loads it
    elif why and any(r.feature == "bpf_testmod" for s in fs.specs for r in s.unsupported):
        fs = replace(fs, specs=tuple(replace(s, unsupported=tuple(
            replace(r, detail=f"{r.detail}; {why}") if r.feature == "bpf_testmod" else r for r in s.unsupported))
            for s in fs.specs))
    return res, fs


def _arch() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())


_MISSING_TYPE = re.compile(r"(?:incomplete type|forward declaration of) '((?:struct|union|enum) \w+)'")
_UNDECLARED_FUNC = re.compile(r"call to undeclared function '(\w+)'")
_UNDECLARED_NAME = re.compile(r"use of undeclared identifier '(\w+)'")
_ERROR_LINE = re.compile(r":\d+:\d+: (?:fatal )?error: |^(?:clang[-\d]*: )?error: ", re.M)


def missing_from_vmlinux_h(stderr: str, vmlinux_h: Path, evidence: KernelEvidence | None = None,
                           tree: Path | None = None) -> list[str]:
    """What a failed compile could not find that the kernel under test provably lacks: a struct/union/enum its
    vmlinux.h (a dump of its BTF) does not define (crypto_basic: struct bpf_crypto_params, CONFIG_CRYPTO); a kfunc
    the tree registers (BTF_ID_FLAGS) that the kernel's BTF does not have (7.x's bpf_qdisc files: bpf_qdisc_skb_drop
    without CONFIG_NET_SCH_BPF); an enumerator of the tree's uapi bpf.h the kernel's BTF does not have (no code built
    into it uses that enum: lwt_misc's BPF_LWT_ENCAP_IP without CONFIG_LWTUNNEL). Every error of the compile must be
    one of these; an undeclared name of any other kind may be a macro (NSEC_PER_SEC), which BTF never has, so it is
    no evidence. Empty when the failure is not shown to be the kernel's (then it is a failure)."""
    errors = [line for line in stderr.splitlines() if _ERROR_LINE.search(line)]
    if not errors:
        return []
    try:
        text = vmlinux_h.read_text(errors="replace")
    except OSError:
        return []
    missing = []
    for line in errors:
        if m := _MISSING_TYPE.search(line):
            if re.search(rf"\b{re.escape(m.group(1))}\s*\{{", text):
                return []  # vmlinux.h has it: the failure is not the kernel's
            missing.append(m.group(1))
        elif (m := _UNDECLARED_FUNC.search(line)) and evidence is not None and tree is not None:
            name = m.group(1)
            if evidence.btf_funcs is None or name in evidence.btf_funcs or name not in tree_kfuncs(tree):
                return []
            missing.append(f"kfunc {name} (registered by the tree, not in the kernel's BTF)")
        elif (m := _UNDECLARED_NAME.search(line)) and tree is not None:
            name = m.group(1)
            if name not in uapi_enumerators(tree) or re.search(rf"\b{re.escape(name)}\b", text):
                return []
            missing.append(f"{name} (an enumerator of the tree's uapi bpf.h the kernel's BTF has no type for)")
        else:
            return []
    return list(dict.fromkeys(missing))


def item_names(subtests: list[Subtest]) -> list[str]:
    """An item name per subtest: its test_loader name, `[unpriv]` for the unprivileged one; a name that two
    programs share (a copied __description) gets the program's name too."""
    def base(s: Subtest) -> str:
        return s.spec.description

    counts = Counter((base(s), s.mode) for s in subtests)
    names = []
    for s in subtests:
        name = base(s)
        if counts[(name, s.mode)] > 1:
            name = f"{name} ({s.prog_name})"
        names.append(name + (UNPRIV_ITEM_SUFFIX if s.mode == UNPRIV else ""))
    return names


class SelftestFileCollector(pytest.File):
    """A RUN_TESTS file of a kernel tree: compiled (cached) with upstream's recipe against the kernel under test's
    vmlinux.h, one item per subtest. A file that does not compile is one item: skipped when the kernel lacks
    what it needs (its vmlinux.h has no such type), failed otherwise. `kernel` (given by the plugin) prepares the
    kernel under test once and says what collection needs of it."""

    def __init__(self, *, kernel: Callable[[], KernelForSelftests], **kw) -> None:
        super().__init__(**kw)
        self.kernel = kernel

    def collect(self):
        skel = selftest_skeleton(Path(self.path))
        assert skel is not None  # pytest_collect_file only hands over selftest files
        kernel = self.kernel()
        res, fs = compile_file(skel, kernel)
        if fs.error:
            yield _whole_file_item(self, skel, fs, res, kernel)
            return
        for spec in fs.invalid():  # test_loader fails the file's test for it, and it has no subtest
            yield _invalid_spec_item(self, fs, spec)
        subtests = fs.subtests()
        selector = _selector(self.config)
        test = name_of_test(skel.test)
        for name, sub in zip(item_names(subtests), subtests, strict=True):
            if selector is not None and not _selected(selector, test, fs, sub):
                continue
            item = SelftestItem.from_parent(self, name=name, callobj=_subtest_function(fs, sub, kernel))
            item.add_marker(pytest.mark.vm)
            item.user_properties += [("selftest_file", fs.name), ("subtest", sub.name), ("program", sub.prog_name),
                                     ("mode", sub.mode), ("group", skel.group)]
            yield item


class SelftestItem(pytest.Function):
    """One subtest: located in its selftest file (not this module), headlined by its name."""

    def reportinfo(self):  # pytest API
        return self.path, 0, self.name


def _whole_file_item(parent: SelftestFileCollector, skel: Skeleton, fs: FileSpecs, res: CompileResult,
                     kernel: KernelForSelftests) -> SelftestItem:
    tree = discovery_tree(skel)
    missing = missing_from_vmlinux_h(fs.error or "", kernel.vmlinux_h, kernel.evidence(tree), tree) \
        if fs.compile_error else []

    def whole_file() -> None:
        if missing:
            pytest.skip(f"{skel.name}.c does not compile: the kernel under test ({kernel.release}) lacks "
                        f"{', '.join(missing)} in its BTF, so it was built without the feature this file tests")
        what = "does not compile" if fs.compile_error else "cannot be read"
        pytest.fail(f"{skel.name}.c {what} against {kernel.release}'s vmlinux.h:\n{(fs.error or '').strip()}\n"
                    f"$ {res.command}", pytrace=False)

    item = SelftestItem.from_parent(parent, name=skel.name, callobj=whole_file)
    item.user_properties += [("selftest_file", skel.name), ("subtest", "(whole file)"), ("group", skel.group)]
    return item


INVALID_SPEC_SUFFIX = " [invalid spec]"


def _invalid_spec_item(parent: SelftestFileCollector, fs: FileSpecs, spec) -> SelftestItem:
    """A program whose tags test_loader cannot parse: no subtest, but its test fails (PRINT_FAIL "Can't parse test
    spec"), so here a failing item named after the program, saying which tag."""
    def invalid_spec() -> None:
        pytest.fail(f"{fs.name}/{spec.prog_name}: can't parse test spec for program '{spec.prog_name}': "
                    f"{spec.error}", pytrace=False)

    item = SelftestItem.from_parent(parent, name=spec.prog_name + INVALID_SPEC_SUFFIX, callobj=invalid_spec)
    item.user_properties += [("selftest_file", fs.name), ("subtest", spec.prog_name + INVALID_SPEC_SUFFIX),
                             ("program", spec.prog_name), ("mode", "priv"), ("group", fs.skeleton.group),
                             ("failure", "invalid_spec")]
    return item


def _selector(config: pytest.Config) -> Selector | None:
    """The --selftests-filter of the run (test_progs' -t/-a/-b/-d and the tree's lists), None: everything."""
    text = config.getoption("--selftests-filter", None)
    if not text:
        return None
    data = json.loads(text)
    return Selector([Filter(f["test"], tuple(f["subtests"])) for f in data["whitelist"]],
                    [Filter(f["test"], tuple(f["subtests"])) for f in data["blacklist"]], data.get("sources", []))


def _selected(selector: Selector, test: str, fs: FileSpecs, sub: Subtest) -> bool:
    """should_run_subtest() on the names test_progs gives it: 6.x names a subtest by its description, 7.x by its
    program and keeps the description beside (a filter may name either)."""
    suffix = " @unpriv" if sub.mode == "unpriv" else ""
    if fs.dialect.subtest_desc:
        return selector.should_run_subtest(test, sub.prog_name + suffix, sub.name)
    return selector.should_run_subtest(test, sub.name)


def _subtest_function(fs: FileSpecs, sub: Subtest, kernel: KernelForSelftests):
    def subtest(selftest_sessions, case_log_root, request) -> None:
        from harness.selftests import run as runner

        session = selftest_sessions(fs.skeleton)
        if session.mitigations_config != fs.dialect.mitigations_config:  # the tree's get_unpriv_disabled()
            session.mitigations_config, session._probe = fs.dialect.mitigations_config, None
        if fs.modules:
            try:
                session.load_modules(fs.modules)
            except HarnessError as e:  # GuestCommandError, LostVMError: the machine's, not the subtest's
                request.node.user_properties.append((STATUS_PROPERTY, NOT_VERDICT_PROPERTY[Status.ERROR]))
                pytest.fail(f"NO VERDICT (a harness or machine problem, not the subtest's): {e}", pytrace=False)
        start = console_start(session.machine)
        result = runner.run_subtest(session, fs, sub, kernel.evidence(discovery_tree(fs.skeleton)),
                                    min_log_level=min(2, request.config.getoption("--selftests-verbosity", 0) or 0))
        props = request.node.user_properties
        if result.status is not Status.ERROR or result.load is not None:  # the machine is there: its console too
            check = check_console(session.guest, start, write=lambda line: session.request("kmsg", timeout=10,
                                                                                        text=line))
            runner.apply_console(result, check, request.config.getoption("--console-findings"), props)
        record = request.config.getoption("--selftests-record", None)
        if record:
            try:
                runner.record(Path(record), fs, sub, result)
            except (OSError, TypeError, ValueError) as e:  # the verdict stands; the capture sees the gap
                props.append(("record error", f"{type(e).__name__}: {e}"))
        props.append(("kernel", kernel.release))
        props.append(("libbpf", session.libbpf_used))
        props.append(("seconds", f"{result.seconds:.3f}"))
        for note in session.notes:
            props.append(("note", note))
        if result.status in (Status.FAIL, Status.ERROR) and result.load is not None:
            log_dir = case_log_root / "selftests" / fs.name
            log_dir.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{sub.prog_name}-{sub.mode}")[:120]
            path = log_dir / f"{stem}.verifier.log"
            path.write_text(result.verifier_log)
            (log_dir / f"{stem}.libbpf.log").write_text("\n".join(result.load.get("libbpf_log") or []) + "\n")
            props.append(("verifier log", str(path)))
        if result.status is Status.SKIP:
            pytest.skip(result.reason)
        if result.status is Status.ERROR:
            props.append((STATUS_PROPERTY, NOT_VERDICT_PROPERTY[Status.ERROR]))
            pytest.fail(f"NO VERDICT (a harness or machine problem, not the subtest's): {result.reason}",
                        pytrace=False)
        if result.status is Status.FAIL:
            props.append(("failure", failure_kind(result.reason)))
            pytest.fail(f"{fs.name}/{sub.name}: {result.reason}", pytrace=False)

    subtest.__doc__ = f"{fs.name}: {sub.name}"
    return subtest
