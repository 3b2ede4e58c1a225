# SPDX-License-Identifier: GPL-2.0
"""Pure: render a generated Program as a case file (cases/harness.h annotations hold the model's prediction)."""

from __future__ import annotations

import re

from harness.gen import model
from harness.gen.ast import DENY, IOCTL_CMD, End, Exit, KptrStore, Log, Program, Start

HOOK_ARGS = {
    "file_open": "struct file *file",
    "file_ioctl": "struct file *file, unsigned int cmd, unsigned long arg",
    "inode_unlink": "struct inode *dir, struct dentry *dentry",
    "task_kill": "struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred",
    "socket_connect": "struct socket *sock, struct sockaddr *address, int addrlen",
    "socket_bind": "struct socket *sock, struct sockaddr *address, int addrlen",
}


def c_string(text: str) -> str:
    """A C string literal for `text` (printable ASCII; anything else as an octal escape)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def _ret(value: int) -> str:
    return "prop_deny()" if value == DENY else "0"


# Without the barrier clang may fold "filter ? 0 : -EPERM" into -(x & 1), and 6.12's verifier does not bound
# BPF_NEG: "At program exit the register R0 has unknown scalar value should have been in [-4095, 0]".
PROP_DENY = """/* -EPERM hidden from clang's arithmetic folding (6.12's verifier cannot bound a BPF_NEG result) */
static __always_inline int prop_deny(void)
{
\tint ret = -EPERM;

\tasm volatile("" : "+r"(ret));
\treturn ret;
}
"""


def _denies(prog: Program) -> bool:
    return prog.ret == DENY or any(isinstance(op, Exit) and op.ret == DENY for op in prog.ops)


def trigger_args(prog: Program) -> tuple[str, ...]:
    s = prog.setup
    if prog.hook == "file_open":
        return ("open", f"path={s.path}", f"comm={s.comm}")
    if prog.hook == "file_ioctl":
        return ("ioctl", f"path={s.path}", f"cmd=0x{IOCTL_CMD:x}", f"comm={s.comm}")
    if prog.hook == "inode_unlink":
        return ("unlink", f"path={s.path}", f"comm={s.comm}")
    if prog.hook == "task_kill":
        return ("kill", "sig=0", f"target_comm={s.target_comm}", f"comm={s.comm}")
    if prog.hook == "socket_bind":
        return ("bind", "family=inet", "addr=127.0.0.1", f"port={s.port}", f"comm={s.comm}")
    return ("connect", "family=inet", "addr=127.0.0.1", f"port={s.port}", "bind_addr=127.0.0.1",
            f"bind_port={s.bind_port}", f"comm={s.comm}")


def _filter(prog: Program) -> list[str]:
    s = prog.setup
    comm = f"!harness_comm_is({c_string(s.comm)})"
    if prog.hook in ("file_open", "file_ioctl"):
        cond = f"{comm} || !harness_file_name_is(file, {c_string(s.file)})"
    elif prog.hook == "inode_unlink":
        # the dentry's d_inode is trusted on 6.12, trusted-or-NULL on 7.3: checked once, then trusted on both
        cond = f"!inode || {comm} || !harness_dentry_name_is(dentry, {c_string(s.file)})"
    elif prog.hook == "task_kill":
        # only the trigger's signal 0, not the SIGKILL the agent cleans its target up with
        cond = f"{comm} || sig != 0"
    else:
        cond = f"address->sa_family != AF_INET || {comm}"
    return [f"if ({cond})", "\treturn 0;"]


def _log_call(prog: Program, op: Log) -> list[str]:
    ac = f"ac{op.ctx}"
    if op.logger == "cause":
        if op.bad == "stack":
            return ["{", "\tchar cause[HARNESS_COMM_LEN];", "",
                    "\tbpf_get_current_comm(cause, sizeof(cause));", f"\tbpf_audit_log_cause({ac}, cause);", "}"]
        if op.bad == "writable":
            return [f"bpf_audit_log_cause({ac}, prop_writable_cause);"]
        return [f"bpf_audit_log_cause({ac}, {c_string(str(op.arg))});"]
    if op.logger == "cap":
        return [f"bpf_audit_log_cap({ac}, {op.arg});"]
    if op.logger == "path":
        return [f"bpf_audit_log_path({ac}, &file->f_path);"]
    if op.logger == "file":
        return [f"bpf_audit_log_file({ac}, file);"]
    if op.logger == "ioctl_op":
        cmd = "(u16)cmd" if op.arg is None else f"0x{op.arg:x}"
        return [f"bpf_audit_log_ioctl_op({ac}, file, {cmd});"]
    if op.logger == "dentry":
        return [f"bpf_audit_log_dentry({ac}, dentry);"]
    if op.logger == "inode":
        src = {"file": "file->f_inode", "dentry": "inode", "dir": "dir"}[str(op.arg)]
        return [f"bpf_audit_log_inode({ac}, {src});"]
    if op.logger == "task":
        src = "bpf_get_current_task_btf()" if op.arg == "current" else "p"
        return [f"bpf_audit_log_task({ac}, {src});"]
    if op.logger == "net_sock":
        return [f"bpf_audit_log_net_sock({ac}, {op.arg}, sock);"]
    if op.logger == "net_sockaddr":
        addrlen = "2" if op.bad == "short" else "addrlen"
        saddr, daddr = {"src": ("address", "NULL"), "both": ("address", "address")}.get(
            str(op.side), ("NULL", "address"))
        if op.bad == "null":
            saddr = daddr = "NULL"
        return [f"bpf_audit_log_net_sockaddr({ac}, {op.arg}, {saddr}, {daddr}, {addrlen});"]
    raise ValueError(op.logger)


def _body(prog: Program) -> list[str]:
    lines: list[str] = []
    ctxs = prog.contexts
    if ctxs:
        lines.append("struct bpf_audit_context " + ", ".join(f"*ac{c}" for c in ctxs) + ";")
    if prog.uses_kptr:
        lines += ["struct bpf_audit_context *old;", "struct prop_slot *slot;", "int key = 0;"]
    if prog.hook == "inode_unlink":
        lines.append("struct inode *inode = dentry->d_inode;")
    if lines:
        lines.append("")
    lines += _filter(prog)
    if prog.uses_kptr:
        lines += ["slot = bpf_map_lookup_elem(&m, &key);", "if (!slot)", "\treturn 0;"]
    states = model.static_states(prog)
    exits = 0
    for i, op in enumerate(prog.ops):
        lines.append(f"/* op {i + 1} */")
        if isinstance(op, Start):
            lines.append(f"ac{op.ctx} = bpf_audit_log_start();")
            if op.null_check:
                cleanup = model.null_path_cleanup(states[i], op.ctx)
                if not cleanup:
                    lines += [f"if (!ac{op.ctx})", "\treturn 0;"]
                else:
                    lines.append(f"if (!ac{op.ctx}) {{")
                    for c, check in cleanup:
                        lines += [f"\tif (ac{c})", f"\t\tbpf_audit_log_end(ac{c});"] if check else \
                            [f"\tbpf_audit_log_end(ac{c});"]
                    lines += ["\treturn 0;", "}"]
        elif isinstance(op, Log):
            lines += _log_call(prog, op)
        elif isinstance(op, End):
            lines.append(f"bpf_audit_log_end(ac{op.ctx});")
        elif isinstance(op, KptrStore):
            lines += [f"old = bpf_kptr_xchg(&slot->ac, ac{op.ctx});", "if (old)", "\tbpf_audit_log_end(old);"]
        elif isinstance(op, Exit):
            # unlikely: the compiler lays the branch out of line, so the verifier walks the main path first
            lines.append(f"if (__builtin_expect(prop_exit_{exits}, 0)) {{")
            lines += [f"\tbpf_audit_log_end(ac{c});" for c in op.ends]
            lines += [f"\treturn {_ret(op.ret)};", "}"]
            exits += 1
    lines.append(f"return {_ret(prog.ret)};")
    return lines


def _regex_literal(text: str) -> str:
    """`text` as a regex matching itself, escaping only what is special (readable in an annotation)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _q(text: str) -> str:
    return c_string(text)


def _annotation(name: str, args: tuple[str, ...] | list[str], indent: str = "\t\t") -> str:
    """name("a", "b", ...) wrapped under 120 columns."""
    parts = [_q(a) for a in args]
    lines, cur = [], f"{name}("
    for i, p in enumerate(parts):
        piece = p + (", " if i < len(parts) - 1 else ")")
        if len(cur) + len(piece) > 118 and cur.strip() not in (f"{name}(",):
            lines.append(cur.rstrip())
            cur = indent + piece
        else:
            cur += piece
    lines.append(cur)
    return "\n".join(lines)


def record_checks(rec: model.RecordSpec) -> list[str]:
    """The __expect_record checks that pin one predicted record: every value the model knows, every field
    that must be absent, the exact field sequence (fields=) and which fields occur once."""
    checks: list[str] = []
    seen: set[str] = set()
    for f in rec.fields:
        if f.name in seen:
            continue  # value checks read a field's first occurrence; leading= pins the repeats
        seen.add(f.name)
        checks.append(f.name if f.value is None else f"{f.name}={f.value}")
        if f.raw is not None:
            checks.append(f"raw:{f.name}={f.raw}")
    names = rec.names
    checks += [f"!{n}" for n in model.RECORD_FIELDS if n not in names]
    checks.append("fields=" + ",".join(names))
    once = [n for n in dict.fromkeys(names) if names.count(n) == 1]
    if once:
        checks.append("once=" + ",".join(once))
    return checks


def _msg_annotations(rej: model.Rejection) -> list[str]:
    """__libbpf_msg for libbpf's own message, __msg for a message every line words the same, __msg_before/__msg_since
    (model.LINE_SPLIT) for one the lines word differently. When the first error depends on clang's block layout the
    last message is a regex of every possible one, per line."""
    out = []
    for i, m in enumerate(rej.messages):
        old, new = m.old, m.new
        if i == len(rej.messages) - 1 and rej.alternatives:
            either = [m] + [a for _, a in rej.alternatives]
            old = "{{" + "|".join(_regex_literal(x) for x in dict.fromkeys(e.old for e in either)) + "}}"
            new = "{{" + "|".join(_regex_literal(x) for x in dict.fromkeys(e.new for e in either)) + "}}"
        if m.log == "libbpf":  # printed by libbpf before the verifier ran: never in the verifier's log
            assert old == new and not (i == len(rej.messages) - 1 and rej.alternatives), m
            out.append(f"__libbpf_msg({_q(old)})")
        elif old == new:
            out.append(f"__msg({_q(old)})")
        else:
            split = _q(model.LINE_SPLIT)
            out += [f"__msg_before({split}, {_q(old)})", f"__msg_since({split}, {_q(new)})"]
    return out


def case_annotations(prog: Program, pred: model.Prediction, description: str) -> list[str]:
    needs = []
    if prog.contexts:
        needs.append('"bpf_audit"')
    if prog.uses_kptr:
        needs.append('"btf_type_tag"')
    out = [f"__description({_q(description)})"]
    if pred.rejection is not None:
        rej = pred.rejection
        out.append(" ".join(f"__rule({r})" for r in rej.rules) + (f" __needs({', '.join(needs)})" if needs else ""))
        out.append("__failure " + " ".join(_msg_annotations(rej)))
        return out
    assert pred.run is not None
    if needs:
        out.append(f"__needs({', '.join(needs)})")
    out.append("__success")
    out.append(_annotation("__trigger", trigger_args(prog)))
    out.append(f"__expect_errno({pred.run.errno})")
    groups: dict[tuple[str, ...], int] = {}
    for rec in pred.run.records:
        key = tuple(record_checks(rec))
        groups[key] = groups.get(key, 0) + 1
    for checks, n in groups.items():
        out.append(_annotation("__expect_record", ("BPF_LSM_ACCESS",) + checks + (f"count={n}",)))
    if pred.run.records:
        out.append(_annotation("__expect_record",
                               ("BPF_LSM_ACCESS", "prog-id=${prog_id}", f"count={len(pred.run.records)}")))
    else:
        out.append('__expect_no_record("BPF_LSM_ACCESS", "prog-id=${prog_id}")')
    return out


def default_description(prog: Program, pred: model.Prediction) -> str:
    return f"generated (harness.gen): {pred.summary()}"


def render(prog: Program, pred: model.Prediction | None = None, description: str | None = None,
           comment: str | None = None) -> str:
    """The complete case file for `prog`: its prediction as annotations (the model's unless given)."""
    pred = pred if pred is not None else model.predict(prog)
    s = prog.setup
    desc = description if description is not None else default_description(prog, pred)
    out = ["// SPDX-License-Identifier: GPL-2.0",
           "/* Generated by harness.gen from a hypothesis example; edit freely, it is an ordinary case file. */",
           '#include "harness.h"', ""]
    if comment:
        out += ["/*"] + [f" * {line}".rstrip() for line in comment.splitlines()] + [" */", ""]
    out += ['char _license[] SEC("license") = "GPL";', ""]
    if prog.uses_kptr:
        out += ["/* rule 4: no destructor for the context, so the kernel refuses this object's BTF */",
                "struct prop_slot {", "\tstruct bpf_audit_context __kptr *ac;", "};", "",
                "struct {", "\t__uint(type, BPF_MAP_TYPE_ARRAY);", "\t__uint(max_entries, 1);",
                "\t__type(key, int);", "\t__type(value, struct prop_slot);", '} m SEC(".maps");', ""]
    if any(isinstance(op, Log) and op.bad == "writable" for op in prog.ops):
        out += ['char prop_writable_cause[16] = "writable";', ""]
    exits = [op for op in prog.ops if isinstance(op, Exit)]
    for n, op in enumerate(exits):
        out.append(f"volatile int prop_exit_{n} = {int(op.taken)}; /* the verifier cannot know it */")
    if exits:
        out.append("")
    if _denies(prog):
        out += PROP_DENY.splitlines() + [""]
    out.append(f'SEC("{prog.section}")')
    out += case_annotations(prog, pred, desc)
    out.append(f"int BPF_PROG({s.name}, {HOOK_ARGS[prog.hook]})")
    out.append("{")
    out += [("\t" + line) if line else "" for line in _body(prog)]
    out.append("}")
    return "\n".join(out) + "\n"


def found_case(prog: Program, pred: model.Prediction, observed: str, report: str, kernel: str, how: str) -> str:
    """The case file for a program on which kernel and model disagreed: the model's prediction as its
    annotations (the suite fails on it the same way until kernel or model is fixed), expected vs observed
    in its description, the operations and the kernel's full report in a comment."""
    desc = (f"found by the generated-programs property on {kernel}: the model expected {pred.summary()}; "
            f"the kernel: {observed}")
    comment = "\n".join([
        "Shrunk by hypothesis from a generated program; the annotations hold the reference model's",
        "prediction (harness/gen/model.py). Found with: " + how,
        "Run alone: pytest this file once git tracks it (cases/found/conftest.py).", "",
        "Operations:", prog.describe(), "", "What the kernel did:", report])
    return render(prog, pred, description=desc, comment=comment.replace("*/", "* /"))
