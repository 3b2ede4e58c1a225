# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.collect: which paths are a tree's RUN_TESTS files, item names, compile failures the kernel's
config explains, and pytest collecting a toy tree's files into one item per subtest (no kernel, no VM: the test
hands collection a stand-in vmlinux.h)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selftests_tree import BPF, make_tree, vmlinux_h

from harness.cases.compile import CLANG_CANDIDATES
from harness.selftests.collect import (
    is_selftest_file,
    is_selftests_dir,
    item_names,
    missing_from_vmlinux_h,
    selftest_source,
)
from harness.selftests.spec import parse_spec
from harness.selftests.suite import Subtest

pytest_plugins = ["pytester"]
needs_clang = pytest.mark.skipif(not any(shutil.which(c) for c in CLANG_CANDIDATES), reason="no clang-16..19")


def test_selftest_source_is_a_progs_file_of_a_selftests_tree() -> None:
    assert selftest_source(Path("/k/tools/testing/selftests/bpf/progs/verifier_and.c")) == (Path("/k"),
                                                                                              "verifier_and")
    assert selftest_source(Path("/k/tools/testing/selftests/bpf/progs/x.h")) is None
    assert selftest_source(Path("/k/tools/testing/selftests/net/progs/x.c")) is None
    assert selftest_source(Path("cases/audit/x.bpf.c")) is None


def test_only_run_tests_files_and_the_directories_above_them(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    progs = tree / BPF / "progs"
    (progs / "helper_only.c").write_text("/* no RUN_TESTS names it */\n")
    assert is_selftest_file(progs / "verifier_x.c") and is_selftest_file(progs / "foo_after.c")
    assert not is_selftest_file(progs / "helper_only.c")
    for path in (tree, tree / "tools", tree / BPF, progs):
        assert is_selftests_dir(path), path
    assert not is_selftests_dir(tmp_path) and not is_selftests_dir(tree / BPF / "prog_tests")


def _sub(name: str, mode: str, *tags: str) -> Subtest:
    spec = parse_spec([f"comment:{t}" for t in tags], name)
    return Subtest("f", spec.subspec(mode).name, mode, spec, (name,), ())


def test_item_names_say_unpriv_and_tell_shared_descriptions_apart() -> None:
    subs = [_sub("a", "priv", "test_description=same"), _sub("a", "unpriv", "test_description=same"),
            _sub("b", "priv", "test_description=same"), _sub("c", "priv")]
    assert item_names(subs) == ["same (a)", "same[unpriv]", "same (b)", "c"]


def test_a_compile_failure_is_the_kernels_only_when_its_vmlinux_h_lacks_the_names(tmp_path: Path) -> None:
    vmlinux = tmp_path / "vmlinux.h"
    vmlinux.write_text("struct task_struct {\n\tint pid;\n};\nenum bpf_map_type { BPF_MAP_TYPE_HASH = 1 };\n")
    crypto = ("progs/crypto_basic.c:15:27: error: variable has incomplete type 'struct bpf_crypto_params'\n"
              "progs/crypto_common.h:10:59: note: forward declaration of 'struct bpf_crypto_params'\n")
    assert missing_from_vmlinux_h(crypto, vmlinux) == ["struct bpf_crypto_params"]
    ours = "x.c:3:1: error: variable has incomplete type 'struct task_struct'\n"
    assert missing_from_vmlinux_h(ours, vmlinux) == []  # vmlinux.h has it: not the kernel's doing
    assert missing_from_vmlinux_h("x.c:1:1: error: expected ';'\n", vmlinux) == []
    assert missing_from_vmlinux_h("x.c: error: use of undeclared identifier 'BPF_MAP_TYPE_HASH'", vmlinux) == []


def test_an_undeclared_name_is_never_the_kernels(tmp_path: Path) -> None:
    """Was: `use of undeclared identifier 'NSEC_PER_SEC'` (a macro, which no vmlinux.h has) made the whole file a
    skip, "kernel built without the feature"; and a missing type beside any other error did too."""
    vmlinux = tmp_path / "vmlinux.h"
    vmlinux.write_text("struct task_struct {\n\tint pid;\n};\n")
    assert missing_from_vmlinux_h("progs/timer.c:40:20: error: use of undeclared identifier 'NSEC_PER_SEC'\n",
                                  vmlinux) == []
    mixed = ("progs/crypto_basic.c:15:27: error: variable has incomplete type 'struct bpf_crypto_params'\n"
             "progs/crypto_basic.c:20:3: error: use of undeclared identifier 'NSEC_PER_SEC'\n")
    assert missing_from_vmlinux_h(mixed, vmlinux) == []
    assert missing_from_vmlinux_h("progs/x.c:2:1: error: unknown type name 'u128'\n", vmlinux) == []


@needs_clang
def test_pytest_collects_one_item_per_subtest(pytester: pytest.Pytester) -> None:
    tmp_path = pytester.path  # the conftest below must be above the files
    tree = make_tree(tmp_path)
    (tree / BPF / "progs/foo_block.c").write_text("struct bpf_crypto_params p;\nint f(void) { return 0; }\n")
    pytester.makeconftest(f"""
from pathlib import Path
from harness.plugin import run_session
from harness.selftests.collect import KernelForSelftests

def pytest_configure(config):
    run_session(config).selftests_kernel = lambda: KernelForSelftests(Path({str(vmlinux_h(tmp_path))!r}), "toy",
                                                      Path({str(tmp_path / 'cache')!r}))
""")
    progs = tree / BPF / "progs"
    result = pytester.runpytest("--collect-only", "-q", str(progs / "verifier_x.c"), str(progs / "foo_block.c"))
    result.stdout.fnmatch_lines(["*verifier_x.c::verifier_x_prog", "*verifier_x.c::verifier_x_prog[[]unpriv[]]",
                                 "*verifier_x.c::verifier_x_bad", "*foo_block.c::foo_block", "4 tests collected*"])


INVALID_AND_UNKNOWN = """\
#define SEC(name) __attribute__((section(name), used))
#define TAG(text) __attribute__((btf_decl_tag(text)))

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_prog_flags=BPF_F_NO_SUCH_FLAG")
int bad_flag(void *ctx) { return 0; }

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_arch=MIPS")
int bad_arch(void *ctx) { return 0; }

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_jited=0=  endbr64")
int jited_first(void *ctx) { return 0; }

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_expect_msg=0={{[0-9}}")
int bad_regex(void *ctx) { return 0; }

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_skip")
int unknown_tag(void *ctx) { return 0; }

char _license[] SEC("license") = "GPL";
"""


@needs_clang
def test_an_invalid_spec_is_a_failing_item_and_an_unknown_tag_a_subtest_without_verdict(
        pytester: pytest.Pytester) -> None:
    """Was: a program with a bad __flag, arch or regex, or __jited before __arch_*, got no item at all (test_loader
    fails its test); a tag nobody parses was dropped in silence."""
    tmp_path = pytester.path
    tree = make_tree(tmp_path)
    (tree / BPF / "progs/verifier_x.c").write_text(INVALID_AND_UNKNOWN)
    pytester.makeconftest(f"""
from pathlib import Path
from harness.plugin import run_session
from harness.selftests.collect import KernelForSelftests

def pytest_configure(config):
    run_session(config).selftests_kernel = lambda: KernelForSelftests(Path({str(vmlinux_h(tmp_path))!r}), "toy",
                                                      Path({str(tmp_path / 'cache')!r}))
""")
    path = str(tree / BPF / "progs/verifier_x.c")
    items, _ = pytester.inline_genitems(path)
    assert [i.name for i in items] == ["bad_flag [invalid spec]", "bad_arch [invalid spec]",
                                       "jited_first [invalid spec]", "bad_regex [invalid spec]", "unknown_tag"]
    failures = []
    for item in items[:4]:  # they need no machine: the spec alone fails them
        with pytest.raises(pytest.fail.Exception) as e:
            item.runtest()
        failures.append(str(e.value))
        assert ("failure", "invalid_spec") in item.user_properties
    assert "bad_flag: can't parse test spec for program 'bad_flag': failed to parse test prog flags" in failures[0]
    assert "bad arch spec: 'MIPS'" in failures[1] and "__jited used before __arch_*" in failures[2]
    assert "Regexp compilation error" in failures[3]
    # the unknown tag's subtest is judged before anything loads: no verdict, naming the tag
    from harness.selftests.dialect import of_tree
    from harness.selftests.judge import ERROR, precheck
    from harness.selftests.spec import PRIV, parse_spec

    spec = parse_spec(["comment:test_expect_success", "comment:test_skip"], "unknown_tag", dialect=of_tree(tree))
    status, reason = precheck(spec, PRIV)
    assert status == ERROR and "unknown tag 'test_skip'" in reason and "6.12" in reason


def test_a_kfunc_or_uapi_enumerator_the_kernels_btf_lacks(tmp_path: Path) -> None:
    """7.3's bpf_qdisc files call bpf_qdisc_skb_drop, which the tree registers (BTF_ID_FLAGS) and a kernel without
    CONFIG_NET_SCH_BPF lacks; lwt_misc names BPF_LWT_ENCAP_IP, whose enum a kernel without CONFIG_LWTUNNEL never
    puts in its BTF. Recorded compiler lines of the 7.3.4 tree against the 7.3-series kernel."""
    from harness.selftests.evidence import KernelEvidence

    tree = tmp_path / "tree"
    (tree / "net/sched").mkdir(parents=True)
    (tree / "net/sched/bpf_qdisc.c").write_text("BTF_ID_FLAGS(func, bpf_qdisc_skb_drop, KF_RELEASE)\n")
    (tree / "include/uapi/linux").mkdir(parents=True)
    (tree / "include/uapi/linux/bpf.h").write_text("enum bpf_lwt_encap_mode {\n\tBPF_LWT_ENCAP_SEG6,\n"
                                                   "\tBPF_LWT_ENCAP_IP,\n};\n")
    vmlinux = tmp_path / "vmlinux.h"
    vmlinux.write_text("struct task_struct {\n\tint pid;\n};\n")
    ev = KernelEvidence(btf_funcs=frozenset({"bpf_task_acquire"}))
    qdisc = ("progs/bpf_qdisc_fail__invalid_dynptr.c:22:2: error: call to undeclared function 'bpf_qdisc_skb_drop'; "
             "ISO C99 and later do not support implicit function declarations [-Wimplicit-function-declaration]\n")
    assert missing_from_vmlinux_h(qdisc, vmlinux, ev, tree) == [
        "kfunc bpf_qdisc_skb_drop (registered by the tree, not in the kernel's BTF)"]
    lwt = "progs/lwt_misc.c:17:26: error: use of undeclared identifier 'BPF_LWT_ENCAP_IP'\n"
    assert missing_from_vmlinux_h(lwt, vmlinux, ev, tree)[0].startswith("BPF_LWT_ENCAP_IP (an enumerator")
    # the kernel's BTF has the kfunc, the tree does not register it, or nothing is known of the BTF: a failure
    assert missing_from_vmlinux_h(qdisc, vmlinux, KernelEvidence(btf_funcs=frozenset({"bpf_qdisc_skb_drop"})),
                                  tree) == []
    assert missing_from_vmlinux_h(qdisc.replace("bpf_qdisc_skb_drop", "my_helper"), vmlinux, ev, tree) == []
    assert missing_from_vmlinux_h(qdisc, vmlinux, KernelEvidence(), tree) == []
    vmlinux.write_text("enum bpf_lwt_encap_mode {\n\tBPF_LWT_ENCAP_SEG6 = 0,\n\tBPF_LWT_ENCAP_IP = 2,\n};\n")
    assert missing_from_vmlinux_h(lwt, vmlinux, ev, tree) == []
