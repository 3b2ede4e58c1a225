# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.discover and .testmod: the RUN_TESTS set of a tree (a toy one, and Debian's 6.12), its
groups with the capabilities test_progs changes, guards, pre-execution callbacks, and what bpf_testmod gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selftests_tree import BPF, make_tree

from harness.errors import HarnessError
from harness.selftests.discover import RUN_TESTS_GROUP, VERIFIER_GROUP, Caps, discover, guards_at, strip_comments
from harness.selftests.elf import Program
from harness.selftests.testmod import Testmod


def test_the_toy_tree(tmp_path: Path) -> None:
    d = discover(make_tree(tmp_path))
    by = d.by_name()
    # file order (foo.c before verifier.c), line order within, each name once; the comment is no call
    assert [s.name for s in d.skeletons] == ["foo_success", "foo_testmod", "foo_block", "foo_after", "bar_missing",
                                             "verifier_x", "verifier_mtu", "verifier_arr"]
    assert [s.name for s in d.missing] == ["bar_missing"] and by["foo_success"].source.name == "foo_success.c"
    assert by["foo_success"].group == RUN_TESTS_GROUP and by["foo_success"].where == "prog_tests/foo.c:6"
    assert by["foo_success"].function == "test_foo" and not by["foo_success"].serial
    assert by["foo_testmod"].guards == ("env.has_testmod",) and by["foo_block"].guards == ("env.has_testmod",)
    assert by["foo_after"].guards == () and by["foo_success"].guards == ()
    assert by["bar_missing"].guards == ("env.has_testmod",) and by["bar_missing"].serial  # the early return
    x = by["verifier_x"]
    assert x.group == VERIFIER_GROUP and x.caps.disable == ("CAP_SYS_ADMIN",) and x.caps.enable == ()
    assert x.caps.where == ("prog_tests/verifier.c:9",) and x.pre_execution is None
    mtu = by["verifier_mtu"]
    assert mtu.caps.enable == ("CAP_BPF", "CAP_NET_ADMIN")
    assert mtu.caps.disable == ("CAP_SYS_ADMIN", "CAP_PERFMON")
    arr = by["verifier_arr"]
    assert arr.pre_execution == "init_maps" and arr.pre_execution_maps == ("map_one",)
    assert arr.caps.disable == ("CAP_SYS_ADMIN",)


def test_not_a_selftests_tree_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no tools/testing/selftests/bpf/prog_tests") as e:
        discover(tmp_path)
    assert e.value.usage


def test_caps_compose_in_order() -> None:
    a = Caps(("CAP_BPF",), ("CAP_SYS_ADMIN",))
    assert a.then(Caps((), ("CAP_BPF",))) == Caps((), ("CAP_SYS_ADMIN", "CAP_BPF"))
    assert a.then(Caps(("CAP_SYS_ADMIN",), ())) == Caps(("CAP_BPF", "CAP_SYS_ADMIN"), ())


def test_strip_comments_keeps_lines_and_strings() -> None:
    text = 'a /* x\ny */ b // RUN_TESTS(z)\nc "/* kept */"'
    out = strip_comments(text)
    assert out.count("\n") == 2 and "RUN_TESTS" not in out and '"/* kept */"' in out and "x" not in out


def test_guards_only_around_the_call() -> None:
    text = "void f(void)\n{\n\tif (env.has_testmod) {\n\t\ta();\n\t}\n\tCALL;\n}\n"
    assert guards_at(text, 0, text.index("CALL")) == ()
    assert guards_at(text, 0, text.index("a()")) == ("env.has_testmod",)


def test_testmod_names_from_the_toy_sources(tmp_path: Path) -> None:
    base = tmp_path / "tools/testing/selftests/bpf/bpf_testmod"
    base.mkdir(parents=True)
    (base / "bpf_testmod.c").write_text(
        "noinline int\nbpf_testmod_fentry_test1(int a)\n{\n\treturn a;\n}\n"
        "__bpf_kfunc void bpf_kfunc_common_test(void)\n{\n}\n"
        "noinline int bpf_fentry_shadow_test(int a)\n{\n\treturn a;\n}\n"
        "BTF_ID_FLAGS(func, bpf_kfunc_common_test)\n"
        "\tret = ret ?: register_bpf_struct_ops(&bpf_bpf_testmod_ops, bpf_testmod_ops);\n")
    (base / "bpf_testmod-events.h").write_text(
        "TRACE_EVENT(bpf_testmod_test_read,\n\tTP_PROTO(x),\n);\n"
        "#define MY_TRACE(call, proto) \\\n\tDECLARE_TRACE(call, PARAMS(proto))\n"
        "DECLARE_TRACE(bpf_testmod_test_nullable_bare,\n\tTP_PROTO(x));\n")
    t = Testmod.from_tree(tmp_path)
    assert t.kfuncs == {"bpf_kfunc_common_test"} and t.struct_ops == {"bpf_testmod_ops"}
    assert t.tracepoints == {"bpf_testmod_test_read", "bpf_testmod_test_nullable_bare"}  # not the macro's "call"
    assert "bpf_testmod_fentry_test1" in t.functions and "bpf_fentry_shadow_test" not in t.functions
    prog = Program("p", "tp_btf/bpf_testmod_test_nullable_bare", 3, 0, 8)
    assert t.program_needs(prog) == ["attach target tracepoint bpf_testmod_test_nullable_bare"]
    assert t.program_needs(Program("p", "?fentry.s/bpf_testmod_fentry_test1", 3, 0, 8)) == [
        "attach target bpf_testmod_fentry_test1()"]
    assert t.program_needs(Program("p", "fentry/bpf_fentry_shadow_test", 3, 0, 8)) == []
    assert Testmod.from_tree(tmp_path / "elsewhere").kfuncs == frozenset()


# include/linux/tracepoint.h of 7.3 (Debian's linux-source-7.3, 7.3.4): DECLARE_TRACE names the tracepoint <name>_tp.
TRACEPOINT_H_7_3 = """#define DECLARE_TRACE(name, proto, args)\t\t\t\t\\
\t__DECLARE_TRACE(name##_tp, PARAMS(proto), PARAMS(args),\t\t\\
\t\t\tcpu_online(raw_smp_processor_id()),\t\t\\
\t\t\tPARAMS(void *__data, proto))

#define DECLARE_TRACE_EVENT(name, proto, args)\t\t\t\t\\
\t__DECLARE_TRACE(name, PARAMS(proto), PARAMS(args),\t\t\\
\t\t\tcpu_online(raw_smp_processor_id()),\t\t\\
\t\t\tPARAMS(void *__data, proto))
"""


def test_testmod_tracepoints_take_the_tp_suffix_where_the_trees_declare_trace_adds_it(tmp_path: Path) -> None:
    """7.3's raw_tp_null_fail attaches to tp_btf/bpf_testmod_test_raw_tp_null_tp (test_kmods/bpf_testmod-events.h:
    DECLARE_TRACE(bpf_testmod_test_raw_tp_null, ...), which 7.x's DECLARE_TRACE names <name>_tp). Was: the name
    without _tp, so on the default kernel (no modules) the program was loaded and judged (expect_msg FAIL on an
    empty log) instead of skipped naming bpf_testmod like the other 284. TRACE_EVENT keeps its name; a tree whose
    DECLARE_TRACE adds nothing (6.12) keeps every name."""
    events = ("TRACE_EVENT(bpf_testmod_test_read,\n\tTP_PROTO(x),\n);\n"
              "DECLARE_TRACE(bpf_testmod_test_raw_tp_null,\n\tTP_PROTO(struct sk_buff *skb),\n\tTP_ARGS(skb)\n);\n"
              "BPF_TESTMOD_DECLARE_TRACE(bpf_testmod_test_writable_bare,\n\tTP_PROTO(x), TP_ARGS(x), 8);\n"
              "DECLARE_TRACE_EVENT(bpf_testmod_an_event,\n\tTP_PROTO(x));\n")
    for line, header in (("7.3", TRACEPOINT_H_7_3), ("6.12", TRACEPOINT_H_7_3.replace("name##_tp", "name"))):
        tree = tmp_path / line
        base = tree / "tools/testing/selftests/bpf/test_kmods"
        base.mkdir(parents=True)
        (base / "bpf_testmod.c").write_text("BTF_ID_FLAGS(func, bpf_kfunc_common_test)\n")
        (base / "bpf_testmod-events.h").write_text(events)
        (tree / "include/linux").mkdir(parents=True)
        (tree / "include/linux/tracepoint.h").write_text(header)
        t = Testmod.from_tree(tree)
        sfx = "_tp" if line == "7.3" else ""
        assert t.tracepoints == {"bpf_testmod_test_read", "bpf_testmod_an_event",
                                 f"bpf_testmod_test_raw_tp_null{sfx}", f"bpf_testmod_test_writable_bare{sfx}"}
        prog = Program("test_raw_tp_null_bpf_testmod_test_raw_tp_null_arg_1",
                       f"tp_btf/bpf_testmod_test_raw_tp_null{sfx}", 26, 0, 16)
        assert t.program_needs(prog) == [f"attach target tracepoint bpf_testmod_test_raw_tp_null{sfx}"]


def test_every_testmod_tracepoint_the_trees_programs_attach_to_is_the_modules(plain_source: Path,
                                                                              source_7_3: Path) -> None:
    """On the real trees: each tp_btf/raw_tp/raw_tp.w program of progs/ whose target is a bpf_testmod tracepoint
    names one Testmod knows (7.3: the _tp names, e.g. raw_tp_null_fail's bpf_testmod_test_raw_tp_null_tp; 6.12:
    the bare names), so none of them is loaded on a kernel without the module."""
    sec = re.compile(r'SEC\("\??(?:tp_btf|raw_tp|raw_tp\.w|raw_tracepoint)/(bpf_testmod\w*)"\)')
    for tree, suffix in ((plain_source, ""), (source_7_3, "_tp")):
        t = Testmod.from_tree(tree)
        targets = {m for p in (tree / BPF / "progs").glob("*.c") for m in sec.findall(p.read_text(errors="replace"))}
        assert f"bpf_testmod_test_raw_tp_null{suffix}" in targets and targets <= t.tracepoints, (tree, targets)


def test_debian_6_12_has_156_files(plain_source: Path) -> None:
    d = discover(plain_source)
    assert len(d.skeletons) == 156 and d.missing == []
    groups = [s.group for s in d.skeletons]
    assert groups.count(VERIFIER_GROUP) == 94 and groups.count(RUN_TESTS_GROUP) == 62
    by = d.by_name()
    assert all("CAP_SYS_ADMIN" in s.caps.disable for s in d.skeletons if s.group == VERIFIER_GROUP)
    assert by["verifier_mtu"].caps.disable == ("CAP_SYS_ADMIN", "CAP_PERFMON")
    assert by["verifier_array_access"].pre_execution_maps == ("map_array_ro",)
    assert {s.name for s in d.skeletons if s.guards} == {"iters_testmod", "iters_testmod_seq", "nested_acquire",
                                                         "test_tp_btf_nullable"}
    t = Testmod.from_tree(plain_source)
    assert "bpf_kfunc_call_test_acquire" in t.kfuncs and "bpf_testmod_st_ops" in t.struct_ops


def test_a_run_tests_call_in_a_static_helper_runs_in_the_test_that_calls_it(tmp_path: Path) -> None:
    """exceptions.c: RUN_TESTS(exceptions_fail) is in the static test_exceptions_failure(), which the test
    test_exceptions calls; test_progs prints those subtests under `exceptions`, and -t exceptions selects them."""
    tree = make_tree(tmp_path)
    (tree / BPF / "prog_tests/exceptions.c").write_text(
        "static void test_exceptions_failure(void)\n{\n\tRUN_TESTS(foo_after);\n}\n\n"
        "static void helper(void)\n{\n\ttest_exceptions_failure();\n}\n\n"
        "void test_exceptions(void)\n{\n\thelper();\n}\n")
    (tree / BPF / "prog_tests/foo.c").write_text("void test_foo(void)\n{\n\tRUN_TESTS(foo_success);\n}\n")
    by = discover(tree).by_name()
    assert by["foo_after"].function == "test_exceptions_failure" and by["foo_after"].test == "test_exceptions"
    assert by["foo_success"].test == "test_foo"
