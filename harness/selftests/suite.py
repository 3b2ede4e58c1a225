# SPDX-License-Identifier: GPL-2.0
"""One selftest file as test_loader runs it: its programs' specs and the subtests a runner loads, with how."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.selftests.btf import BTFError
from harness.selftests.discover import Skeleton
from harness.selftests.elf import BpfObject, BtfMap
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
# test_loader attaches every struct_ops map of the object (bpf_map__attach_struct_ops) before a test run, and only
# then: a subtest that only loads is judged on bpf_object__load, struct_ops programs included.
STRUCT_OPS = Reason("struct_ops program", "a test run needs the object's struct_ops maps attached first "
                                          "(bpf_map__attach_struct_ops)")


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
        return Subtest(self.name, name, mode, effective, (spec.prog_name, *(a.prog_name for a in aux)), drop,
                       no_create, spec.btf_path)


def load_file(skeleton: Skeleton, obj_path: Path, testmod: Testmod | None = None, *,
              arch: str = "x86_64") -> FileSpecs:
    """Read a compiled file's programs and specs, with the reasons this harness cannot run some of them:
    __btf_path, bpf_testmod (its kfuncs, struct_ops types or attach targets, or a RUN_TESTS test_progs guards with
    env.has_testmod); for test runs only, a verifier.c pre-execution callback and an object with struct_ops maps."""
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
    if "env.has_testmod" in skeleton.guards and not file_reasons:
        file_reasons.append(Reason("bpf_testmod", f"test_progs runs it only with bpf_testmod.ko loaded "
                                                  f"(env.has_testmod, {skeleton.where})"))
    struct_ops = bool(obj.struct_ops_maps()) or any(p.is_struct_ops for p in programs)
    specs = []
    for prog in programs:
        spec = spec_for(btf, prog.name, section=prog.section, arch=arch).with_unsupported(*file_reasons)
        if struct_ops:
            spec = spec.with_unsupported(STRUCT_OPS, execution=True)
        if testmod is not None and (needs := testmod.program_needs(prog)):
            spec = spec.with_unsupported(Reason("bpf_testmod", "needs bpf_testmod.ko: " + ", ".join(needs)))
        if spec.btf_path is not None:
            spec = spec.with_unsupported(Reason("__btf_path", f"loads with a custom BTF {spec.btf_path}, a file "
                                                              "the selftests build"))
        if skeleton.pre_execution:
            maps = ", ".join(skeleton.pre_execution_maps) or "maps"
            spec = spec.with_unsupported(
                Reason("pre-execution callback", f"{skeleton.pre_execution} fills {maps} before the test run"),
                execution=True)
        specs.append(spec)
    return FileSpecs(skeleton, obj_path, tuple(specs), tuple(obj.maps()), reasons=tuple(file_reasons))


__all__ = ["PRIV", "UNPRIV", "FileSpecs", "Subtest", "load_file", "unpriv_capable"]
