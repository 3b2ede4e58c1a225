# SPDX-License-Identifier: GPL-2.0
"""Unit tests of harness.cases: every annotation, every malformed form, and the shipped suite's coverage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cases.model import CaseProgram, FieldCheck
from harness.cases.parse import parse_case_file, parse_case_text
from harness.cases.values import value_matches
from harness.errors import CaseError
from harness.settings import REPO_ROOT

CASE_FILES = sorted((REPO_ROOT / "cases").rglob("*.bpf.c"))

HEAD = '// SPDX-License-Identifier: GPL-2.0\n/* test */\n#include "harness.h"\n'  # 3 lines


def src(*programs: str) -> str:
    return HEAD + "\n".join(programs)


def prog(annotations: str, name: str = "p", section: str = "lsm/file_open", body: str = "return 0;") -> str:
    return f'SEC("{section}")\n{annotations}\nint BPF_PROG({name}, struct file *file)\n{{\n\t{body}\n}}\n'


def one(text: str) -> CaseProgram:
    cf = parse_case_text(text, "t.bpf.c")
    assert len(cf.programs) == 1
    return cf.programs[0]


def raises(text: str, line: int, *fragments: str) -> str:
    with pytest.raises(CaseError) as exc:
        parse_case_text(text, "t.bpf.c")
    message = str(exc.value)
    assert message.startswith(f"t.bpf.c:{line}: "), message
    for frag in fragments:
        assert frag in message, message
    return message


# --- well-formed annotations ----------------------------------------------------------------------

FULL = src(
    """SEC("lsm/file_open")
__description("all" " the things")
__rule(9) __rule(11) __decided
__needs("bpf_audit") __needs("btf_type_tag", "bpf_audit")
__drop_caps("sys_boot")
__success
__trigger("open", "path=/tmp/bah/x", "flags=rw", "comm=bah_x")
__expect_errno(EPERM)
__audit_disabled
__expect_record("AUDIT_BPF_LSM_ACCESS", "prog-id=${prog_id}", "raw:comm=\\"bah_x\\"", "dev", "!netif",
                "count=2", "order=path,dev", "leading=prog-id,pid,comm", "once=path", "same_event=SYSCALL")
__expect_record("SYSCALL", "pid=${pid}")
__expect_no_record("1334", "op=UNLOAD")
int BPF_PROG(everything, struct file *file)
{
	if (x) { return 0; }
	return bpf_audit_log_start(0) ? 0 : 0;
}
"""
)


def test_every_annotation_parses() -> None:
    with pytest.raises(CaseError, match="__audit_disabled with __expect_record"):
        parse_case_text(FULL, "t.bpf.c")
    p = one(FULL.replace("__audit_disabled\n", ""))
    assert (p.name, p.section, p.line, p.expect) == ("everything", "lsm/file_open", 16, "success")
    assert p.description == "all the things"
    assert p.rules == (9, 11) and p.decided
    assert p.needs == ("bpf_audit", "btf_type_tag")
    assert p.drop_caps == ("sys_boot",)
    assert p.trigger is not None and p.trigger.action == "open"
    assert p.trigger.as_dict() == {"path": "/tmp/bah/x", "flags": "rw", "comm": "bah_x"}
    assert p.trigger.comm == "bah_x" and p.trigger.get("nope", "d") == "d"
    assert p.expect_errno == 1
    assert not p.audit_disabled and not p.load_only and p.prog_kind == "lsm"
    rec, sysc = p.expect_records
    assert rec.type == "BPF_LSM_ACCESS" and rec.line == 12
    assert rec.checks == (
        FieldCheck("prog-id", "eq", "${prog_id}"),
        FieldCheck("comm", "raw", '"bah_x"'),
        FieldCheck("dev", "present"),
        FieldCheck("netif", "absent"),
    )
    assert rec.count == 2 and rec.order == ("path", "dev") and rec.leading == ("prog-id", "pid", "comm")
    assert rec.once == ("path",) and rec.same_event == "SYSCALL"
    assert sysc.type == "SYSCALL" and sysc.count is None
    (nrec,) = p.expect_no_records
    assert nrec.type == 1334 and nrec.checks == (FieldCheck("op", "eq", "UNLOAD"),)
    assert "count=2" in rec.describe() and "raw:comm=" in rec.describe()
    assert [a.name for a in p.annotations][:3] == ["__description", "__rule", "__rule"]


def test_failure_case_with_ordered_regex_msgs_is_load_only() -> None:
    p = one(src(prog('__description("d") __failure\n__msg("first")\n__msg("ref id={{[0-9]+}} \\"q\\"")')))
    assert p.expect == "failure" and p.load_only
    assert p.msgs == ("first", 'ref id={{[0-9]+}} "q"')


def test_success_without_run_annotations_is_load_only() -> None:
    assert one(src(prog('__description("d") __success'))).load_only


def test_annotations_before_sec_attach_to_the_next_program() -> None:
    text = src(
        '__description("before") __success\nSEC("lsm/file_open")\nint BPF_PROG(p, struct file *f)\n{ return 0; }\n'
    )
    p = one(text)
    assert p.description == "before" and p.section == "lsm/file_open" and p.line == 6


def test_plain_function_and_kprobe_names() -> None:
    text = src(
        'SEC("kprobe/do_unlinkat") __description("k") __success\nint kp(struct pt_regs *ctx)\n{ return 0; }\n',
        'SEC("tp_btf/x") __description("t") __success\nint BPF_PROG(tp, struct task_struct *t, int x)\n{ return 0; }\n',
    )
    cf = parse_case_text(text, "t.bpf.c")
    assert [(p.name, p.prog_kind) for p in cf.programs] == [("kp", "kprobe"), ("tp", "tp_btf")]


def test_comments_strings_maps_and_helpers_are_not_annotations() -> None:
    text = src(
        '/* __msg("not me") __bogus */\n// __sucess\n',
        'char _license[] SEC("license") = "GPL";\n',
        'struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); } m SEC(".maps");\n',
        "static __always_inline int helper(__u32 x) { return x; }\n",
        "#define NOISE(x) __msg(x) \\\n   more\n",
        prog('__description("has ( and \\" and */ inside") __success', body='char s[] = "__msg(";'),
    )
    p = one(text)
    assert p.description == 'has ( and " and */ inside'


def test_c_escapes_are_decoded() -> None:
    p = one(src(prog('__description("a\\tb\\x41\\101\\\\") __success')))
    assert p.description == "a\tbAA\\"


def test_errno_forms() -> None:
    base = '__description("d") __success __trigger("open", "path=/tmp/bah/x") '
    assert one(src(prog(base + "__expect_errno(0)"))).expect_errno == 0
    assert one(src(prog(base + "__expect_errno(13)"))).expect_errno == 13
    assert one(src(prog(base + "__expect_errno(EACCES)"))).expect_errno == 13


@pytest.mark.parametrize(
    "trigger",
    [
        '"connect", "family=inet", "addr=127.0.0.1", "port=1", "bind_addr=127.0.0.1", "bind_port=2"',
        '"connect", "family=inet6", "addr=::1", "port=80", "type=dgram"',
        '"connect", "family=unix", "path=/tmp/bah/s"',
        '"ioctl", "path=/tmp/bah/i", "cmd=0x541b"',
        '"kill", "sig=SIGUSR1", "target_comm=t t"',
        '"kill", "sig=0"',
        '"unlink", "path=/tmp/bah/u"',
        '"sethostname"',
        '"mprotect", "prot=rx"',
        '"read", "path=/tmp/bah/r"',
        '"open", "path=/tmp/bah/t", "thread=1"',
        '"shell", "cmd=cat /etc/hostname"',
        '"bind", "family=inet", "addr=127.0.0.1", "port=1234"',
        '"bind", "family=unix", "path=/tmp/bah/s.sock", "type=dgram"',
        '"getsockopt", "family=inet6", "addr=::1", "port=1234", "connect=self"',
        '"getsockopt", "family=unix", "path=/tmp/bah/u.sock"',
        '"readlink", "path=/proc/self/exe"',
        '"getpgid", "comm=bah_pg"',
    ],
)
def test_trigger_actions(trigger: str) -> None:
    p = one(src(prog(f'__description("d") __success __trigger({trigger})')))
    assert p.trigger is not None and p.trigger.action == trigger.split('"')[1]


def test_parsed_msgs_match_with_verifier_log_rules() -> None:
    """__msg strings from a case are matched by harness.verifier_log (in order, {{regex}} parts)."""
    from harness.cases.verifier_log import match_messages

    p = one(src(prog('__description("d") __failure __msg("Unreleased") __msg("reference id={{[0-9]+}}")')))
    assert match_messages("Unreleased reference id=2", p.msgs).ok
    assert not match_messages("Unreleased reference id=2", tuple(reversed(p.msgs))).ok


def test_value_matching_helpers() -> None:
    env = {"prog_id": "42", "comm": "a b"}
    assert value_matches("${prog_id}", "42", env)
    assert not value_matches("${prog_id}", "420", env)
    assert value_matches("x{{[0-9]+}}${comm}", "x12a b", env)
    assert not value_matches("a.b", "axb", env)


# --- malformed annotations: each names file:line and says what to write ---------------------------


def test_unknown_annotation_suggests_the_right_one() -> None:
    raises(src(prog('__description("d")\n__sucess')), 6, "unknown annotation __sucess", "Did you mean __success?")


def test_bpf_misc_only_annotation() -> None:
    raises(src(prog('__description("d") __success\n__retval(0)')), 6, "__retval is a bpf_misc.h annotation")


def test_unbalanced_quotes() -> None:
    raises(src(prog('__description("d) __success')), 5, "unbalanced quotes", "never closes")


def test_unbalanced_parentheses() -> None:
    raises(src(prog('__description("d") __success\n__msg("x"')), 6, "unbalanced parentheses")
    raises(src(prog('__description("d")) __success')), 5, "unbalanced parentheses")


def test_unterminated_comment() -> None:
    raises(src(prog('__description("d") __success'), "/* open"), 11, "comment '/*' never closes")


def test_failure_with_success() -> None:
    raises(src(prog('__description("d")\n__success\n__failure __msg("msg")')), 7, "both __success and __failure")


def test_msg_on_success_case() -> None:
    raises(src(prog('__description("d")\n__success\n__msg("msg")')), 7, "__msg on program p", "Drop __msg")


def test_failure_without_msg() -> None:
    raises(src(prog('__description("d")\n__failure')), 6, "__failure without __msg", '__msg("')


def test_neither_success_nor_failure() -> None:
    raises(src(prog('__description("d")')), 6, "neither __success nor __failure")


def test_missing_and_duplicate_description() -> None:
    raises(src(prog("__success")), 6, "has no __description")
    raises(src(prog('__description("a")\n__description("b") __success')), 6, "__description given twice")


def test_non_literal_argument() -> None:
    raises(src(prog('__description("d") __failure\n__msg(EXPECTED)')), 6, "not a string literal", "preprocessor")


def test_flag_with_arguments_and_argument_annotation_without() -> None:
    raises(src(prog('__description("d") __success()')), 5, "__success takes no arguments")
    raises(src(prog('__description("d") __failure\n__msg')), 6, "__msg needs an argument list")
    raises(src(prog('__description("d") __success __needs()')), 5, "__needs() has no argument")
    raises(src(prog('__description("d") __success __needs("bpf_audit",)')), 5, "argument 2 of __needs is empty")


def test_rule_forms() -> None:
    raises(src(prog('__description("d") __success\n__rule("4")')), 6, "plain decimal integer", "__rule(4)")
    raises(src(prog('__description("d") __success\n__rule(99)')), 6, "rules 1-20")
    raises(src(prog('__description("d") __success\n__rule(3) __rule(3)')), 6, "__rule(3) given twice")
    raises(src(prog('__description("d") __success\n__decided')), 6, "__decided needs the rule")


def test_unknown_feature_and_capability() -> None:
    raises(src(prog('__description("d") __success\n__needs("audit2")')), 6, "unknown feature", "bpf_audit")
    raises(src(prog('__description("d") __success\n__drop_caps("boot")')), 6, "unknown capability")
    raises(src(prog('__description("d") __success\n__drop_caps("CAP_SYS_BOOT")')), 6, '__drop_caps("sys_boot")')


def test_bare_program_in_annotated_file() -> None:
    text = src(prog('__description("d") __success'), 'SEC("lsm/file_open")\nint BPF_PROG(bare, struct file *f)\n{}\n')
    raises(text, 12, "without annotations in a file with annotated ones", "bare (line 12)")


def test_file_without_annotations_or_programs() -> None:
    raises(src('SEC("lsm/file_open")\nint BPF_PROG(bare, struct file *f)\n{}\n'), 5, "no program in this file")
    raises(src("int x;\n"), 1, "no SEC")


def test_annotation_on_a_declaration() -> None:
    raises(
        src('__success\nchar _license[] SEC("license") = "GPL";\n', prog('__description("d") __success')),
        4,
        "not followed by a SEC",
    )


def test_annotation_on_a_helper_without_sec() -> None:
    raises(src('__description("d") __success\nstatic int helper(int x)\n{ return x; }\n'), 4, "has no SEC")


def test_annotation_after_parameter_list() -> None:
    text = src('SEC("lsm/file_open") __description("d")\nint BPF_PROG(p, struct file *f) __success\n{ return 0; }\n')
    raises(text, 5, "after the function's parameter list")


def test_second_sec() -> None:
    raises(src('SEC("a") SEC("b") __description("d") __success\nint f(void *c) { return 0; }\n'), 4, "second SEC")


@pytest.mark.parametrize(
    ("trigger", "fragment"),
    [
        ('"opne", "path=/tmp/x"', "Did you mean 'open'?"),
        ('"open", "path=/tmp/x", "mode=r"', "has no key 'mode'"),
        ('"open"', '"path=..."'),
        ('"open", "path"', "not key=value"),
        ('"open", "path=relative"', "must be absolute"),
        ('"open", "path=/tmp/x", "comm=a_very_long_comm_name"', "1-15 bytes"),
        ('"open", "path=/tmp/x", "path=/tmp/y"', "given twice"),
        ('"shell", "cmd=true", "comm=x"', "comm= does not apply to shell"),
        ('"connect", "family=unix", "path=/tmp/s", "port=1"', "family=unix takes path="),
        ('"connect", "family=inet", "addr=::1", "port=1"', "not an IPv4 address"),
        ('"connect", "family=inet6", "addr=::1", "port=70000"', "port number"),
        ('"connect", "family=inet", "addr=1.2.3.4", "port=1", "bind_addr=1.2.3.4"', "go together"),
        ('"connect", "family=ipx"', "family=inet"),
        ('"ioctl", "path=/tmp/x", "cmd=FIONREAD"', "not an integer"),
        ('"kill", "sig=USR1"', "SIGUSR1"),
        ('"open", "path=/tmp/x", "thread=yes"', "write thread=1"),
        ('"bind", "family=unix", "path=@abstract"', "absolute socket path"),
        ('"bind", "family=inet", "addr=::1", "port=1"', "not an IPv4 address"),
        ('"bind", "family=inet", "addr=127.0.0.1", "port=1", "bind_port=2"', "has no key 'bind_port'"),
        ('"getsockopt", "family=unix", "path=/tmp/s", "connect=self"', "connect=self applies to family=inet"),
        ('"getsockopt", "family=inet", "addr=127.0.0.1", "port=1", "connect=peer"', "write connect=self"),
        ('"readlink"', '"path=..."'),
        ('"readlink", "path=exe"', "must be absolute"),
        ('"getpgid", "pid=1"', "has no key 'pid'"),
    ],
)
def test_bad_triggers(trigger: str, fragment: str) -> None:
    raises(src(prog(f'__description("d") __success\n__trigger({trigger})')), 6, fragment)


def test_run_annotations_need_a_trigger_and_a_success_case() -> None:
    raises(src(prog('__description("d") __success\n__expect_errno(1)')), 6, "__expect_errno needs a __trigger")
    raises(src(prog('__description("d") __success\n__audit_disabled')), 6, "__audit_disabled needs a __trigger")
    raises(src(prog('__description("d") __failure __msg("msg")\n__trigger("sethostname")')), 6, "a __failure case")
    raises(src(prog('__description("d") __success __trigger("sethostname")\n__expect_errno(-1)')), 6, "positive")
    raises(
        src(prog('__description("d") __success __trigger("sethostname")\n__expect_errno(EBOGUS)')),
        6,
        "unknown errno name",
    )


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ('"bpf_lsm_access"', "neither a number nor an audit type name"),
        ('"BPF", "count=0"', "__expect_no_record"),
        ('"BPF", "count=x"', "non-negative integer"),
        ('"BPF", "count=1", "count=2"', "given twice"),
        ('"BPF", "a b"', "not a field check"),
        ('"BPF", "order="', "comma-separated list"),
        ('"BPF", "x=${nope}"', "unknown placeholder"),
        ('"BPF", "x=${pid}"', "needs a built-in __trigger"),
        ('"BPF", "x=${target_pid}"', '__trigger("kill"'),
        ('"BPF", "x=${prog_id"', "unclosed placeholder"),
        ('"BPF", "x={{[0-9}}"', "bad regular expression"),
        ('"BPF", "x={{[0-9]"', "has no closing"),
        ('"BPF", "x=1", "!x"', "both required and forbidden"),
        ('"BPF", "same_event=SYSCALL"', "must name another __expect_record"),
        ('"BPF", "raw:comm"', "raw:field=text"),
        ('"BPF", "fields="', "comma-separated list"),
        ('"BPF", "x=${ino}"', "names the inode it used"),
    ],
)
def test_bad_record_expectations(record: str, fragment: str) -> None:
    raises(src(prog(f'__description("d") __success\n__expect_record({record})')), 6, fragment)


def test_bad_no_record_expectations() -> None:
    raises(src(prog('__description("d") __success\n__expect_no_record("BPF", "count=1")')), 6, "meaningless")
    raises(src(prog('__description("d") __success\n__expect_no_record("BPF", "!x")')), 6, "no absent fields")


def test_msg_regex_errors() -> None:
    raises(src(prog('__description("d") __failure\n__msg("abc{{(}}")')), 6, "bad regular expression")
    raises(src(prog('__description("d") __failure\n__msg("")')), 6, "matches anything")
    raises(src(prog('__description("d") __failure\n__msg_since("7.0", "a{{(}}")')), 6, "bad regular expression")


def test_per_line_messages_are_chosen_by_the_kernel_version() -> None:
    p = one(src(prog('__description("d") __failure\n__msg("Error loading")\n'
                     '__msg_before("7.3", "trusted arg0")\n__msg_since("7.3", "trusted R1")\n__msg("processed")')))
    assert p.msgs == ("Error loading", "processed")  # the ones every kernel prints
    assert p.msgs_for("6.12.118") == ("Error loading", "trusted arg0", "processed")
    assert p.msgs_for("7.3.4-amd64") == ("Error loading", "trusted R1", "processed")
    assert p.msgs_for("7.3") == ("Error loading", "trusted R1", "processed")
    assert p.msgs_for("8.0.0") == ("Error loading", "trusted R1", "processed")
    assert p.msgs_for("not-a-version") == ("Error loading", "processed")
    since, before = p.messages[2], p.messages[1]
    assert (since.since, before.before, since.line) == ((7, 3), (7, 3), 8)
    assert "kernels >= 7.3" in since.describe() and "kernels < 7.3" in before.describe()
    three = one(src(prog('__description("d") __failure\n__msg_before("6.13", "aaa")\n'
                         '__msg_since("6.13", "bbb") __msg_before("7.0.2", "bb1")\n__msg_since("7.0.2", "ccc")')))
    assert [three.msgs_for(r) for r in ("6.12.1", "6.13", "7.0.1", "7.0.2")] == [
        ("aaa", "bb1"), ("bbb", "bb1"), ("bbb", "bb1"), ("bbb", "ccc")]


def test_per_line_messages_must_cover_every_kernel_and_name_a_version() -> None:
    raises(src(prog('__description("d") __failure\n__msg_since("7.3", "new words")')), 6,
           "expects no message on kernels before 7.3", '__msg_before("7.3"')
    raises(src(prog('__description("d") __failure\n__msg_before("7.3", "old words")')), 6,
           "expects no message on kernels 7.3 and later")
    raises(src(prog('__description("d") __failure\n__msg_before("6.13", "aaa")\n__msg_since("7.3", "bbb")')), 6,
           "kernels 6.13 up to 7.3")
    raises(src(prog('__description("d") __failure\n__msg_since("v7", "xyz")')), 6, 'kernel version like "7.3"')
    raises(src(prog('__description("d") __failure\n__msg_since("7.3")')), 6, "takes a kernel version and a message")
    raises(src(prog('__description("d") __success\n__msg_before("7.3", "xyz")')), 6, "__msg_before on",
           "a __success case")
    # a plain __msg covers every kernel: a conditional one beside it needs no twin
    assert one(src(prog('__description("d") __failure __msg("aaa")\n__msg_since("7.3", "bbb")'))).msgs_for("6.1") == (
        "aaa",)


def test_decided_only_on_decided_rules_and_always_on_them() -> None:
    raises(src(prog('__description("d") __rule(12) __decided __success')), 5, "does not mark", "Drop __decided")
    raises(src(prog('__description("d") __rule(20) __success')), 5, "add __decided")
    assert one(src(prog('__description("d") __rule(12) __rule(20) __decided __success'))).decided


def test_fields_keyword_is_the_exact_field_sequence() -> None:
    from harness.cases import audit, expect

    p = one(src(prog('__description("d") __success __trigger("open", "path=/tmp/bah/f")\n'
                     '__expect_record("BPF_LSM_ACCESS", "fields=prog-id,pid,comm,path,dev,ino,path")')))
    (rec,) = p.expect_records
    assert rec.fields == ("prog-id", "pid", "comm", "path", "dev", "ino", "path")
    assert "fields=prog-id" in rec.describe()
    types = {1427: "BPF_LSM_ACCESS"}
    exact = audit.parse_netlink(1427, 'audit(1.0:1): prog-id=1 pid=2 comm="c" path="/a" dev="d" ino=3 path="/b"',
                                types)
    extra = audit.parse_netlink(1427, 'audit(1.0:1): prog-id=1 pid=2 comm="c" path="/a" dev="d" ino=3 path="/b" x=1',
                                types)
    assert expect.judge([exact], p.expect_records, (), {}).ok
    verdict = expect.judge([extra], p.expect_records, (), {})
    assert not verdict.ok and "wanted exactly" in "\n".join(verdict.problems)


def test_ino_placeholder_needs_a_trigger_that_reports_it() -> None:
    for action in ('"open", "path=/tmp/bah/i"', '"ioctl", "path=/tmp/bah/i", "cmd=1"', '"unlink", "path=/tmp/bah/i"',
                   '"readlink", "path=/proc/self/exe"', '"read", "path=/tmp/bah/i"'):
        assert one(src(prog(f'__description("d") __success __trigger({action})\n'
                            '__expect_record("BPF_LSM_ACCESS", "ino=${ino}")'))).expect_records
    raises(src(prog('__description("d") __success __trigger("getpgid")\n__expect_record("BPF", "ino=${ino}")')), 6,
           "${ino}")


def test_kfunc_use_needs_bpf_audit_and_kptr_needs_type_tags() -> None:
    raises(src(prog('__description("d") __success', body="bpf_audit_log_end(0);")), 6, '__needs("bpf_audit")')
    raises(src(prog('__description("d") __success', body="bpf_kptr_xchg(0, 0);")), 6, '__needs("btf_type_tag")')


def test_task_kfunc_use_needs_task_kfuncs() -> None:
    # Debian's 6.1 has no bpf_task_acquire: without the need the case failed to load there instead of skipping.
    raises(src(prog('__description("d") __success', body="bpf_task_acquire(0);")), 6, '__needs("task_kfuncs")')
    assert one(src(prog('__description("d") __success __needs("task_kfuncs")',
                        body="bpf_task_acquire(0);"))).needs == ("task_kfuncs",)


def test_parse_case_file_reads_the_file(tmp_path: Path) -> None:
    f = tmp_path / "x.bpf.c"
    f.write_text(src(prog('__description("d") __success')))
    cf = parse_case_file(f)
    assert cf.path == f and cf.program("p").location == f"{f}:6"
    with pytest.raises(KeyError):
        cf.program("nope")


# --- the shipped suite ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> list[CaseProgram]:
    return [p for f in CASE_FILES for p in parse_case_file(f).programs]


def test_suite_files_have_spdx_and_purpose() -> None:
    assert CASE_FILES
    for f in [*CASE_FILES, REPO_ROOT / "cases" / "harness.h"]:
        first, second = f.read_text().splitlines()[:2]
        assert "SPDX-License-Identifier" in first, f
        assert re.match(r"^/\* .+ \*/$", second), f


def test_every_rule_is_covered(suite: list[CaseProgram]) -> None:
    for rule in range(1, 21):
        assert any(rule in p.rules for p in suite), f"no case for spec rule {rule}"


def test_every_verifier_rule_has_a_rejection_and_an_accepted_twin(suite: list[CaseProgram]) -> None:
    for rule in range(1, 9):
        expects = {p.expect for p in suite if rule in p.rules}
        assert expects == {"success", "failure"}, f"rule {rule}: {expects}"


def test_decided_cases_say_so(suite: list[CaseProgram]) -> None:
    for p in suite:
        assert p.decided == ("decided here" in p.description), p.location
    assert {r for p in suite if p.decided for r in p.rules} >= {11, 20}


def test_baseline_cases_need_no_series(suite: list[CaseProgram]) -> None:
    base = [p for p in suite if "/baseline/" in p.path]
    assert base and all("bpf_audit" not in p.needs for p in base)


def test_every_rfc_selftest_row_maps_to_existing_programs(suite: list[CaseProgram]) -> None:
    """cases/README.md maps each row of the spec's RFC-selftest table (13 rows) to programs that exist, the first
    one in audit/rfc_selftest.bpf.c and pinning its record exactly (fields=, count=1)."""
    text = (REPO_ROOT / "cases" / "README.md").read_text()
    table = text.split("## The RFC's own selftest, row by row", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"^\| (net|file|task|ioctl|sleepable) \|", line)]
    assert len(rows) == 13, rows
    by_id = {f"{Path(p.path).relative_to(REPO_ROOT / 'cases')}::{p.name}": p for p in suite}
    rfc_programs = set()
    for row in rows:
        programs = re.findall(r"`([a-z_/]+\.bpf\.c::[a-z0-9_]+)`", row.split("|")[3])
        assert programs, row
        for nodeid in programs:
            assert nodeid in by_id, f"cases/README.md names {nodeid}, which does not exist"
        first = by_id[programs[0]]
        assert first.path.endswith("audit/rfc_selftest.bpf.c"), row
        assert all(r.fields and r.count == 1 for r in first.expect_records), first.location
        rfc_programs.update(p for p in programs if p.startswith("audit/rfc_selftest.bpf.c::"))
    in_file = {n for n in by_id if n.startswith("audit/rfc_selftest.bpf.c::")}
    assert in_file == rfc_programs, f"rfc_selftest.bpf.c programs no row names: {in_file - rfc_programs}"


# --- __msg that proves nothing is refused at collection (issue 21 item 4) ---------------------------


@pytest.mark.faults  # issue 21: provokes the fault for real
@pytest.mark.parametrize(
    "msg, why",
    [
        ('__msg("{{.*}}")', "no word of three"),
        ('__msg("{{}}")', "no word of three"),
        ('__msg(" ")', "blank"),
        ('__msg("R1 {{.*}}")', "no word of three"),
        ('__msg_since("7.3", ": ")', "no word of three"),
        ('__msg("bpf_audit_log_start")', "a function the program calls"),
    ],
)
def test_vacuous_message_is_refused(msg: str, why: str) -> None:
    body = "struct bpf_audit_context *ac = bpf_audit_log_start(); return 0;"
    raises(src(prog(f'__description("d") __failure {msg}', body=body)), 5, why)


def test_a_function_name_the_program_does_not_call_is_a_message() -> None:
    p = one(src(prog('__description("d") __failure __msg("bpf_audit_log_end")')))
    assert p.msgs == ("bpf_audit_log_end",)


@pytest.mark.faults  # issue 21: provokes the fault for real
def test_libbpf_msg_is_kept_apart_and_never_alone() -> None:
    p = one(src(prog('__description("d") __failure __libbpf_msg("Error loading .BTF") __msg("has to have BTF")')))
    assert [(m.text, m.log) for m in p.messages] == [("Error loading .BTF", "libbpf"), ("has to have BTF", "verifier")]
    raises(src(prog('__description("d") __failure __libbpf_msg("Error loading .BTF")')), 5,
           "names only libbpf's messages")
