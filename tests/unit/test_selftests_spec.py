# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.spec: parse_test_spec()'s semantics on decl tag lists (what a program's BTF holds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.selftests.dialect import INT_MIN, LINUX_6_12, LINUX_7_3, PLAIN, TEST_DATA_LEN, Dialect, from_text
from harness.selftests.spec import PRIV, PROG_FLAGS, UNPRIV, Reason, SpecError, parse_int, parse_spec, strverscmp

POINTER_VALUE = LINUX_6_12.pointer_value

T = "comment:"


def spec(*tags: str, name: str = "prog", arch: str = "x86_64"):
    return parse_spec([T + t for t in tags], name, arch=arch)


def test_an_untagged_program_must_load_privileged_only() -> None:
    s = spec()
    assert s.valid and s.modes == (PRIV,) and s.subtests == (PRIV,)
    assert not s.priv.expect_failure and s.priv.msgs == () and not s.priv.execute
    assert s.priv.name == "prog" and s.description == "prog" and s.arches == () and s.runs_on("riscv64")


def test_unpriv_inherits_result_messages_and_retval_unless_it_has_its_own() -> None:
    s = spec("test_expect_failure", "test_expect_msg=0=priv msg", "test_retval=3", "test_expect_success_unpriv")
    assert s.modes == (PRIV, UNPRIV)
    assert s.unpriv.expect_failure is False and [p.text for p in s.unpriv.msgs] == ["priv msg"]
    assert s.unpriv.retval == 3
    s = spec("test_expect_failure", "test_expect_msg=0=priv msg", "test_expect_msg_unpriv=1=own",
             "test_retval_unpriv=INT_MIN")
    assert s.unpriv.expect_failure is True and [p.text for p in s.unpriv.msgs] == ["own"]
    assert s.unpriv.retval == INT_MIN and s.priv.retval is None
    s = spec("test_expect_failure_unpriv")  # only an unpriv tag: no priv subtest
    assert s.modes == (UNPRIV,) and s.unpriv.expect_failure and not s.priv.expect_failure


def test_description_names_both_subtests_and_the_last_one_wins() -> None:
    s = spec("test_description=first", "test_expect_success_unpriv", "test_description=invalid and of x")
    assert s.priv.name == "invalid and of x" and s.unpriv.name == "invalid and of x @unpriv"
    assert s.modes == (UNPRIV,)


def test_success_and_failure_the_last_tag_wins() -> None:
    assert not spec("test_expect_failure", "test_expect_success").priv.expect_failure
    assert spec("test_expect_success", "test_expect_failure").priv.expect_failure


def test_messages_keep_their_btf_order_and_any_text_after_the_counter() -> None:
    s = spec("test_expect_msg=7=a=b", "test_expect_msg=3=", "test_expect_msg=9=c")
    assert [p.text for p in s.priv.msgs] == ["a=b", "", "c"]
    # without a second '=', 6.12's skip_dynamic_pfx() does not recognise it and test_loader ignores it; the
    # harness names it as a tag it cannot read (its subtests get no verdict)
    s = spec("test_expect_msg=nocounter")
    assert s.priv.msgs == () and s.unknown_tags == ("test_expect_msg=nocounter",)


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("-1", -1), ("0x10", 16), ("0xabcdef12", 0xABCDEF12 - (1 << 32)), ("4294967295", -1),
    ("INT_MIN", INT_MIN), ("POINTER_VALUE", POINTER_VALUE), ("TEST_DATA_LEN", TEST_DATA_LEN), (" 5", 5),
    ("", 0), ("0x", 0), ("0x0x1f", 31),  # strtol: nothing to parse is 0 when nothing follows
])
def test_retval_values(text: str, value: int) -> None:
    s = spec(f"test_retval={text}")
    assert s.valid and s.priv.retval == value and s.priv.execute


@pytest.mark.parametrize("text", ["5x", "abc", "1 ", "99999999999999999999", "0xg"])
def test_a_value_test_loader_cannot_parse_makes_the_spec_invalid(text: str) -> None:
    s = spec("test_expect_success", f"test_retval={text}")
    assert not s.valid and "failed to parse __retval" in s.error and s.subtests == ()
    with pytest.raises(SpecError):
        parse_int(text, "x")


def test_pointer_value_accepts_any_return_value() -> None:
    assert spec("test_retval=POINTER_VALUE").priv.any_retval
    assert not spec("test_retval=0").priv.any_retval


def test_flags_are_applied_in_order_over_testing_prog_flags() -> None:
    rnd, inv, state = (PROG_FLAGS[n] for n in ("BPF_F_TEST_RND_HI32", "BPF_F_TEST_REG_INVARIANTS",
                                              "BPF_F_TEST_STATE_FREQ"))
    default = rnd | inv
    assert spec().prog_flags(default) == default and spec().prog_flags() == 0
    s = spec("test_prog_flags=BPF_F_TEST_STATE_FREQ", "test_prog_flags=!BPF_F_TEST_REG_INVARIANTS")
    assert s.prog_flags(default) == rnd | state and s.prog_flags(0) == state
    s = spec("test_prog_flags=!BPF_F_TEST_STATE_FREQ", "test_prog_flags=BPF_F_TEST_STATE_FREQ")
    assert s.prog_flags(0) == state  # a later set undoes an earlier clear
    s = spec("test_prog_flags=0x100", "test_prog_flags=!4")
    assert s.prog_flags(default) == (inv | 0x100)
    assert not spec("test_prog_flags=BPF_F_NO_SUCH_FLAG").valid


def test_log_level_and_the_verbosity_minimum() -> None:
    s = spec("test_log_level=2")
    assert s.log_level == 2 and s.log_level_for(0) == 2 and s.log_level_for(1) == 2
    assert spec().log_level_for(1) == 1 and spec().log_level_for(0) == 0
    assert spec("test_log_level=4").log_level_for(1) == 5  # stats bit kept


def test_arch_tags_restrict_where_it_runs() -> None:
    s = spec("test_arch=ARM64", "test_arch=RISCV64")
    assert s.arches == ("aarch64", "riscv64") and not s.runs_on("x86_64") and s.runs_on("aarch64")
    assert not spec("test_arch=MIPS").valid


def test_jited_needs_an_arch_first_and_counts_only_for_the_running_arch() -> None:
    assert "__jited used before __arch_*" in spec("test_jited=0=  endbr64").error
    s = spec("test_arch=ARM64", "test_jited=0=arm insn", "test_arch=X86_64", "test_jited=1=endbr64",
             "test_jited=2=...", "test_jited=3=nopl")
    assert [p.text for p in s.priv.jited] == ["endbr64", "nopl"]
    assert [p.on_next_line for p in s.priv.jited] == [True, False]  # "..." lifts the next-line rule once
    assert [p.text for p in s.unpriv.jited] == ["endbr64", "nopl"]
    assert spec("test_arch=ARM64", "test_jited=0=x").priv.jited == ()
    assert spec("test_arch=ARM64", "test_jited=0=x", arch="aarch64").priv.jited[0].text == "x"


def test_xlated_patterns_go_line_by_line_and_are_judged() -> None:
    s = spec("test_expect_xlated=0=r0 = 1", "test_expect_xlated=1=exit")
    assert [p.on_next_line for p in s.priv.xlated] == [True, True]
    assert not s.unsupported_reasons(PRIV)


def test_auxiliary_programs_are_no_subtests() -> None:
    s = spec("test_auxiliary")
    assert s.auxiliary and s.modes == (PRIV,) and s.subtests == ()
    s = spec("test_auxiliary_unpriv")
    assert s.auxiliary and s.modes == (UNPRIV,)


def test_btf_path_and_added_reasons() -> None:
    s = spec("test_btf_path=btf__core_reloc_x.bpf.o")
    assert s.btf_path == "btf__core_reloc_x.bpf.o"
    r = Reason("bpf_testmod", "kfunc k")
    s2 = s.with_unsupported(r).with_unsupported(r)
    assert s2.unsupported == (r,) and str(r) == "bpf_testmod (kfunc k)"
    s3 = s.with_unsupported(Reason("x"), execution=True)
    assert s3.exec_unsupported == (Reason("x"),) and s3.unsupported == ()


def test_bad_patterns_make_the_spec_invalid() -> None:
    assert "no closing" in spec("test_expect_msg=0=a {{[0-9]+").error
    assert "too long" in spec("test_expect_msg=0={{x}}" + "." * 130).error
    assert spec("test_expect_msg=0=" + "." * 300).valid  # a plain substring has no length limit


def test_subspec_asks_for_a_known_mode() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        spec().subspec("root")


# -- 7.3's test_loader (comment:<N>:<tag>, sorted with strverscmp) and the dialects -------------------------------
DIALECTS = Path(__file__).resolve().parents[1] / "data" / "selftests-dialect"


def spec73(*tags: str, name: str = "prog", prog_type: int | None = None):
    """Tags as 7.3's bpf_misc.h writes them: "comment:" __COUNTER__ ":" tag, in the given order."""
    return parse_spec([f"{T}{i}:{t}" for i, t in enumerate(tags)], name, dialect=LINUX_7_3, prog_type=prog_type)


def test_each_tree_gets_its_own_test_loader() -> None:
    """Read from the trees' own test_loader.c (recorded: tests/data/selftests-dialect)."""
    for version, expected in (("6.12.118", LINUX_6_12), ("7.3.4", LINUX_7_3)):
        d = DIALECTS / version
        got = from_text((d / "test_loader.c").read_text(), version.rsplit(".", 1)[0],
                        (d / "unpriv_helpers.c").read_text())
        assert got == expected, version
    assert from_text("int parse_test_spec(void) { \"comment:test_expect_failure\" \"comment:test_expect_success\" "
                     "\"comment:test_expect_msg=\" }").encoding == PLAIN


def test_7_3_tags_are_read_in_counter_order_not_btf_order() -> None:
    """Was: the 6.12 reader on a 7.3 object saw no tag at all (every program "must load", privileged only)."""
    btf_order = [f"{T}10:test_expect_msg=second", f"{T}9:test_expect_msg=first", f"{T}11:test_expect_failure",
                 f"{T}12:test_expect_msg_unpriv=own", "other:tag"]
    s = parse_spec(btf_order, "p", dialect=LINUX_7_3)
    assert [p.text for p in s.priv.msgs] == ["first", "second"] and s.priv.expect_failure
    assert s.modes == (PRIV, UNPRIV) and [p.text for p in s.unpriv.msgs] == ["own"] and not s.unknown_tags
    assert strverscmp("comment:9:x", "comment:10:x") < 0 < strverscmp("comment:10:x", "comment:9:x")
    assert strverscmp("a01", "a1") < 0 and strverscmp("a", "a") == 0
    # the same object read as 6.12 reads it: nothing it knows
    assert parse_spec(btf_order, "p").unknown_tags == ("10:test_expect_msg=second", "9:test_expect_msg=first",
                                                       "11:test_expect_failure", "12:test_expect_msg_unpriv=own")


def test_7_3_only_tags() -> None:
    s = spec73("test_expect_failure", "test_expect_msg=a", "test_expect_not_msg=b", "test_expect_not_msg_unpriv=c")
    assert [(p.text, p.negative) for p in s.priv.msgs] == [("a", False), ("b", True)]
    assert [(p.text, p.negative) for p in s.unpriv.msgs] == [("c", True)] and s.modes == (PRIV, UNPRIV)
    s = spec73("test_caps_unpriv=21|39", "test_expect_success")
    assert s.unpriv.caps == (1 << 21) | (1 << 39) and s.modes == (PRIV, UNPRIV)
    assert "define CAP_BPF constant" in spec73("test_caps_unpriv=CAP_BPF").error
    assert spec73("load_mode=jited").load_mode == "jited" and "bad load spec" in spec73("load_mode=x").error
    s = spec73("test_retval=0", "test_expect_stderr=line 1", "test_expect_stderr=...", "test_expect_stderr=line 3",
               "test_expect_stdout=out")
    assert [(p.text, p.on_next_line) for p in s.priv.stderr] == [("line 1", True), ("line 3", False)]
    assert [p.text for p in s.unpriv.stderr] == ["line 1", "line 3"] and s.modes == (PRIV,)  # no mode of its own
    assert [p.text for p in s.priv.stdout] == ["out"]
    assert spec73("test_linear_size=64", prog_type=3).linear_size == 64
    assert "__linear_size for unsupported program type" in spec73("test_linear_size=64", prog_type=1).error
    assert spec73("test_btf_func_path=btf__x.bpf.o").btf_func_path == "btf__x.bpf.o"
    assert spec73("test_retval=_INT_MIN").priv.retval == INT_MIN
    assert not spec73("test_retval=INT_MIN").valid  # 6.12's named values are gone in 7.3
    assert spec73("test_retval=0xbadcafe").priv.any_retval and not spec("test_retval=0xbadcafe").priv.any_retval
    assert spec73("test_arch=s390x").arches == ("s390x",) and not spec("test_arch=s390x").valid
    assert "__jited used before __arch_*" in spec73("test_jited=x").error


def test_an_unknown_tag_is_kept_and_named() -> None:
    """Was: parsed to nothing, so a subtest with a tag the harness did not know was judged without it."""
    s = spec73("test_expect_success", "test_skip", "test_log_always")
    assert s.valid and s.unknown_tags == ("test_skip", "test_log_always")
    # 6.12 has no __not_msg: a tree of that line does not parse it
    assert spec("test_expect_not_msg=0=x").unknown_tags == ("test_expect_not_msg=0=x",)


def test_the_plain_encoding_keeps_every_equals_sign() -> None:
    """Before the counter: comment:test_expect_msg=TEXT (was: cut at the first '=' of TEXT)."""
    plain = Dialect("plain", PLAIN, LINUX_6_12.tags, LINUX_6_12.arches, LINUX_6_12.retval_names,
                    LINUX_6_12.pointer_value)
    s = parse_spec([f"{T}test_expect_msg=R1=ctx", f"{T}test_expect_failure"], "p", dialect=plain)
    assert [p.text for p in s.priv.msgs] == ["R1=ctx"] and s.priv.expect_failure
