# SPDX-License-Identifier: GPL-2.0
"""One selftest file as test_loader runs it: its programs' specs and the subtests a runner loads, with how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.btf import BTFError
from harness.selftests.dialect import LINUX_6_12, Dialect
from harness.selftests.discover import Skeleton
from harness.selftests.elf import BpfObject, BtfMap
from harness.selftests.preexec import MapWrite, PreExecutionError, plan
from harness.selftests.spec import PRIV, UNPRIV, UNPRIV_DROP_CAPS, Reason, TestSpec, spec_for
from harness.selftests.testmod import Testmod

# enum bpf_map_type values test_loader's is_unpriv_capable_map() lets an unpriv subtest create; the others get
# autocreate off in unpriv mode. Hash maps only without BPF_F_ZERO_SEED.
UNPRIV_CAPABLE_MAPS = frozenset({
    2,  # ARRAY
    3,  # PROG_ARRAY
    4,  # PERF_EVENT_ARRAY
    6,  # PERCPU_ARRAY
    8,  # CGROUP_ARRAY
    12,  # ARRAY_OF_MAPS
    19,  # CGROUP_STORAGE
    21,  # PERCPU_CGROUP_STORAGE
    27,  # RINGBUF
    31,  # USER_RINGBUF
})
UNPRIV_CAPABLE_HASH_MAPS = frozenset({1, 5, 13})  # HASH, PERCPU_HASH, HASH_OF_MAPS
BPF_F_ZERO_SEED = 1 << 6
BPF_MAP_TYPE_STRUCT_OPS = 26
# enum bpf_prog_type by libbpf's section names, for __linear_size's check (SCHED_CLS, SCHED_ACT, CGROUP_SKB; the
# others only need to be "another type"). A section not listed is not known: __linear_size is then accepted.
_SECTION_TYPES = (("tc", 3), ("tcx/", 3), ("classifier", 3), ("netkit/", 3), ("action", 4), ("cgroup_skb/", 8),
                  ("cgroup/skb", 8), ("socket", 1), ("xdp", 6), ("kprobe", 2), ("tracepoint", 5), ("tp/", 5),
                  ("raw_tp", 17), ("fentry", 26), ("fexit", 26), ("lsm", 29), ("syscall", 31), ("struct_ops", 27),
                  ("cgroup/", 0), ("sk_", 0), ("sockops", 13), ("flow_dissector", 22), ("iter", 26), ("tp_btf", 26))


def prog_type_of(section: str) -> int | None:
    """The program type libbpf gives a section name (enough of it for __linear_size), None when not known."""
    name = section.lstrip("?")
    for prefix, ptype in sorted(_SECTION_TYPES, key=lambda x: -len(x[0])):
        if name == prefix.rstrip("/") or name.startswith(prefix if prefix.endswith("/") else (prefix, prefix + "/",
                                                                                                prefix + ".")):
            return ptype
    return None


def unpriv_capable(m: BtfMap) -> bool:
    if m.type in UNPRIV_CAPABLE_HASH_MAPS:
        return not m.flags & BPF_F_ZERO_SEED
    return m.type in UNPRIV_CAPABLE_MAPS


@dataclass(frozen=True)
class Subtest:
    """One test_loader subtest: load `autoload` from the file's object (all other programs off) with
    `log_level`, the spec's flags and `drop_caps` dropped from the effective set, then judge(spec, mode, ...).
    `spec` already carries the reasons an unsupported auxiliary program it loads beside brings."""

    __test__ = False

    file: str
    name: str
    mode: str
    spec: TestSpec
    autoload: tuple[str, ...]
    drop_caps: tuple[str, ...]
    no_autocreate_maps: tuple[str, ...] = ()  # unpriv: maps test_loader does not create (not unpriv-capable)
    btf_path: str | None = None
    pre_execution: tuple[MapWrite, ...] = ()  # what the file's pre-execution callback writes before a test run
    pre_execution_error: str | None = None  # its callback, when the harness cannot do what it does
    struct_ops_maps: tuple[str, ...] = ()  # attached (bpf_map__attach_struct_ops) before a test run

    @property
    def prog_name(self) -> str:
        return self.spec.prog_name

    def log_level(self, min_log_level: int = 0) -> int:
        return self.spec.log_level_for(min_log_level)


@dataclass(frozen=True)
class FileSpecs:
    """A compiled selftest file: every program's spec in libbpf's order (auxiliary and invalid ones too).
    `error` is set when the file yields no subtests: it did not compile, or libbpf would not open it."""

    skeleton: Skeleton
    obj: Path | None = None
    specs: tuple[TestSpec, ...] = ()
    maps: tuple[BtfMap, ...] = ()
    error: str | None = None
    compile_error: bool = False
    reasons: tuple[Reason, ...] = field(default=())  # what every program of the file needs
    pre_execution: tuple[MapWrite, ...] = ()
    pre_execution_error: str | None = None
    struct_ops_maps: tuple[str, ...] = ()
    dialect: Dialect = LINUX_6_12
    helpers: dict[int, str] = field(default_factory=dict)  # helper id -> name, for the xlated disassembly
    btf_objects: dict[str, Path] = field(default_factory=dict)  # __btf_path/__btf_func_path file -> built object
    btf_errors: dict[str, str] = field(default_factory=dict)  # ... or why it could not be built
    modules: tuple[Path, ...] = ()  # test modules (bpf_testmod.ko) every guest loads before its subtests

    def btf_files(self) -> list[str]:
        """The custom BTF files the specs name (progs/<stem>.c builds <stem>.bpf.o)."""
        return list(dict.fromkeys(p for s in self.specs for p in (s.btf_path, s.btf_func_path) if p))

    def invalid(self) -> list[TestSpec]:
        """The programs test_loader cannot parse a spec of: each fails its file's test, with no subtest."""
        return [s for s in self.specs if not s.valid]

    @property
    def name(self) -> str:
        return self.skeleton.name

    def auxiliaries(self, mode: str) -> list[TestSpec]:
        return [s for s in self.specs if s.valid and s.auxiliary and mode in s.modes]

    def subtests(self) -> list[Subtest]:
        """process_subtest()'s order: for each valid non-auxiliary program, its priv then its unpriv subtest."""
        out: list[Subtest] = []
        for spec in self.specs:
            for mode in spec.subtests:
                out.append(self.subtest(spec, mode))
        return out

    def subtest(self, spec: TestSpec, mode: str) -> Subtest:
        aux = self.auxiliaries(mode)
        aux_reasons = [Reason(r.feature, f"auxiliary program {a.prog_name}: {r.detail or r.feature}")
                       for a in aux for r in a.unsupported_reasons(mode)]
        effective = spec.with_unsupported(*aux_reasons) if aux_reasons else spec
        drop = tuple(self.skeleton.caps.disable)
        if mode == UNPRIV:
            drop += tuple(c for c in UNPRIV_DROP_CAPS if c not in drop)
        no_create = tuple(m.name for m in self.maps if not unpriv_capable(m)) if mode == UNPRIV else ()
        name = spec.subspec(mode).name
        struct_ops = tuple(m for m in self.struct_ops_maps if m not in no_create)
        return Subtest(self.name, name, mode, effective, (spec.prog_name, *(a.prog_name for a in aux)), drop,
                       no_create, spec.btf_path, self.pre_execution, self.pre_execution_error, struct_ops)


def load_file(skeleton: Skeleton, obj_path: Path, testmod: Testmod | None = None, *,
              arch: str = "x86_64", dialect: Dialect = LINUX_6_12, tree: Path | None = None) -> FileSpecs:
    """Read a compiled file's programs and their specs as the tree's test_loader (`dialect`) reads them, with the
    reasons this harness cannot run some of them, the pre-execution callback's map writes (read from `tree`'s
    verifier.c) and the struct_ops maps a test run attaches first. `testmod`: what bpf_testmod.ko would give, for a
    kernel that runs without it (its kfuncs, struct_ops types or attach targets, or a RUN_TESTS test_progs guards
    with env.has_testmod, are then unsupported); None when the guest loads bpf_testmod.ko first, as test_progs does
    on a kernel with modules (env.has_testmod is true there)."""
    try:
        obj = BpfObject.read(obj_path)
        programs = obj.programs
        btf = obj.btf
    except (OSError, BTFError) as e:
        return FileSpecs(skeleton, obj_path, error=f"libbpf would not open {obj_path.name}: {e}")
    file_reasons: list[Reason] = []
    if testmod is not None:
        needs = testmod.object_needs(obj)
        if needs:
            file_reasons.append(Reason("bpf_testmod", "needs bpf_testmod.ko: " + ", ".join(needs)))
    if testmod is not None and "env.has_testmod" in skeleton.guards and not file_reasons:
        file_reasons.append(Reason("bpf_testmod", f"test_progs runs it only with bpf_testmod.ko loaded "
                                                  f"(env.has_testmod, {skeleton.where})"))
    writes: tuple[MapWrite, ...] = ()
    pre_error = None
    if skeleton.pre_execution:
        try:
            writes = plan(tree, skeleton.pre_execution) if tree is not None else ()
            if tree is None:
                pre_error = f"{skeleton.pre_execution}: the tree it is in is not known"
        except PreExecutionError as e:
            pre_error = str(e)
    struct_ops = tuple(name for name, _type in obj.struct_ops_maps())
    # every map test_loader sets autocreate on: the .maps ones and the struct_ops ones (never unpriv-capable)
    maps = (*obj.maps(), *(BtfMap(name, BPF_MAP_TYPE_STRUCT_OPS, 0) for name in struct_ops))
    specs = []
    for prog in programs:
        spec = spec_for(btf, prog.name, section=prog.section, arch=arch, dialect=dialect,
                        prog_type=prog_type_of(prog.sec_name)).with_unsupported(*file_reasons)
        if testmod is not None and (needs := testmod.program_needs(prog)):
            spec = spec.with_unsupported(Reason("bpf_testmod", "needs bpf_testmod.ko: " + ", ".join(needs)))
        specs.append(spec)
    return FileSpecs(skeleton, obj_path, tuple(specs), maps, reasons=tuple(file_reasons), pre_execution=writes,
                     pre_execution_error=pre_error, struct_ops_maps=struct_ops, dialect=dialect)


__all__ = ["PRIV", "UNPRIV", "FileSpecs", "Subtest", "load_file", "prog_type_of", "unpriv_capable"]
