# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.evidence: what shows a kernel lacks a map type or a ksym, read from recorded inputs of the
6.12-series kernel (tests/data/selftests-evidence, capture/selftests-evidence.sh)."""

from __future__ import annotations

from pathlib import Path

from harness.selftests.evidence import KernelEvidence, errno_of, map_type_enum, map_type_guards, read_config

DATA = Path(__file__).resolve().parents[1] / "data" / "selftests-evidence"


def test_bpf_types_h_guards() -> None:
    guards = map_type_guards((DATA / "bpf_types-6.12.118.h").read_text())
    assert guards["BPF_MAP_TYPE_ARRAY"] == ()
    assert guards["BPF_MAP_TYPE_XSKMAP"] == ("CONFIG_NET", "CONFIG_XDP_SOCKETS")
    assert guards["BPF_MAP_TYPE_STRUCT_OPS"] == ("CONFIG_BPF_JIT",)
    assert guards["BPF_MAP_TYPE_SOCKMAP"] == ("CONFIG_NET", "CONFIG_INET")
    # an #else branch or a condition that is not a conjunction of options is no evidence
    odd = "#ifdef CONFIG_A\nBPF_MAP_TYPE(BPF_MAP_TYPE_X, x)\n#else\nBPF_MAP_TYPE(BPF_MAP_TYPE_Y, y)\n#endif\n" \
          "#if defined(CONFIG_B) || defined(CONFIG_C)\nBPF_MAP_TYPE(BPF_MAP_TYPE_Z, z)\n#endif\n"
    assert map_type_guards(odd) == {"BPF_MAP_TYPE_X": ("CONFIG_A",)}


def test_enum_and_config() -> None:
    enum = map_type_enum((DATA / "vmlinux-6.12.118-enum-bpf_map_type.h").read_text())
    assert enum[0] == "BPF_MAP_TYPE_UNSPEC" and enum[17] == "BPF_MAP_TYPE_XSKMAP" and enum[33] == "BPF_MAP_TYPE_ARENA"
    config = read_config((DATA / "config-6.12.118").read_text())
    assert config["CONFIG_BPF_JIT"] == "y" and "CONFIG_MODULES" not in config


def test_errno_texts() -> None:
    assert errno_of("Invalid argument(-22)") == 22 and errno_of("-EINVAL") == 22 and errno_of("-12") == 12
    assert errno_of("Cannot allocate memory(-12)") == 12 and errno_of("-EPERM") is None


def test_no_evidence_no_skip() -> None:
    empty = KernelEvidence()
    assert empty.map_type_missing(17, 22) is None and empty.ksym_missing("x", "func") is None
    assert empty.explain_load_failure(["libbpf: map 'm': failed to create: -EINVAL"], [{"name": "m", "type": 17}]) \
        is None


def test_bpf_testmod_is_read_where_the_tree_keeps_it(tmp_path: Path) -> None:
    """6.x: tools/testing/selftests/bpf/bpf_testmod/; 7.x moved it (with the other test modules) to test_kmods/.
    Was: a 7.3 tree's testmod kfuncs and struct_ops were not known, so its objects failed or skipped as if the
    kernel lacked them."""
    from harness.selftests.testmod import Testmod

    for sub in ("bpf_testmod", "test_kmods"):
        tree = tmp_path / sub
        d = tree / "tools/testing/selftests/bpf" / sub
        d.mkdir(parents=True)
        (d / "bpf_testmod.c").write_text("BTF_ID_FLAGS(func, bpf_kfunc_call_test4)\n"
                                         "register_bpf_struct_ops(&bpf_bpf_testmod_ops, bpf_testmod_ops);\n")
        (d / "bpf_test_no_cfi.c").write_text("register_bpf_struct_ops(&ops, bpf_test_no_cfi_ops);\n")
        t = Testmod.from_tree(tree)
        assert "bpf_kfunc_call_test4" in t.kfuncs and "bpf_testmod_ops" in t.struct_ops
        assert "bpf_test_no_cfi_ops" in t.struct_ops
