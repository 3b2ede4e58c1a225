# SPDX-License-Identifier: GPL-2.0
"""Tests for harness.audit against audit records recorded from a real guest (tests/data/audit-*.log)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cases import audit
from harness.cases.audit import Record

# Hypothesis keeps its example database and caches out of the repository (read lazily, so this works
# as long as nothing in this process has used Hypothesis's storage yet).
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.expanduser("~/.cache/hypothesis/bpf-audit-harness"))
settings.register_profile("harness-audit", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile("harness-audit")



def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8", errors="surrogateescape")


@pytest.fixture(scope="module")
def types(plain_source: Path) -> dict[int, str]:
    """The record types of Debian's 6.12 as shipped (the harness's own unpacked tree, without the series)."""
    return audit.parse_audit_h((plain_source / "include/uapi/linux/audit.h").read_text())


# ---------------------------------------------------------------- audit.h


def test_parse_audit_h_6_12(types: dict[int, str]) -> None:
    assert types[1334] == "BPF"
    assert types[1300] == "SYSCALL"
    assert types[1302] == "PATH"
    assert types[1320] == "EOE"
    assert types[1327] == "PROCTITLE"
    assert types[1400] == "AVC"
    assert types[1200] == "DAEMON_START"
    assert types[2000] == "KERNEL"
    assert types[1000] == "GET"
    assert 1301 not in types  # AUDIT_FS_WATCH is commented out
    assert 1100 not in types  # AUDIT_FIRST_USER_MSG is a range marker, not a type
    assert 1427 not in types  # no bpf_audit series in the plain 6.12 tree
    assert all(1000 <= n <= 2999 for n in types)
    assert "BITMASK_SIZE" not in types.values() and "ARCH_X86_64" not in types.values()
    assert audit.type_number(types, "AUDIT_BPF") == 1334
    assert audit.type_number(types, "BPF") == 1334
    assert audit.type_number(types, "BPF_LSM_ACCESS") is None


def test_parse_audit_h_takes_the_number_from_the_text() -> None:
    header = """
/* #define AUDIT_OLD 1301 */
#define AUDIT_BPF		1334	/* BPF subsystem */
#define AUDIT_LANDLOCK_ACCESS	1423
#define AUDIT_BPF_LSM_ACCESS	1427	/* BPF LSM access decision */
#define AUDIT_FIRST_KERN_ANOM_MSG   1700
#define AUDIT_ANOM_PROMISCUOUS      1700 /* Device changed promiscuous mode */
#define AUDIT_FILTER_EXIT	0x04
#define AUDIT_MAX_KEY_LEN  256
"""
    table = audit.parse_audit_h(header)
    assert table == {1334: "BPF", 1423: "LANDLOCK_ACCESS", 1427: "BPF_LSM_ACCESS", 1700: "ANOM_PROMISCUOUS"}
    moved = audit.parse_audit_h(header.replace("1427", "1430"))
    assert moved[1430] == "BPF_LSM_ACCESS" and 1427 not in moved
    rec = audit.parse_netlink(1430, 'audit(1.002:3): prog-id=9 pid=1 comm="x"', moved)
    assert rec.type_name == "BPF_LSM_ACCESS"
    # 7.3's header: 1425 and 1426 are taken by the multiple-LSM context records, the series' type follows them
    lines_7_3 = ("#define AUDIT_MAC_TASK_CONTEXTS\t1425\n#define AUDIT_MAC_OBJ_CONTEXTS\t1426\n"
                 "#define AUDIT_BPF_LSM_ACCESS\t1427\t/* BPF LSM program denial or grant */\n")
    assert audit.type_number(audit.parse_audit_h(lines_7_3), "BPF_LSM_ACCESS") == 1427
    assert audit.parse_audit_h(b"#define AUDIT_X 1999\n") == {1999: "X"}
    assert audit.parse_audit_h("garbage {{") == {}


# ---------------------------------------------------------------- console form (dmesg, no auditd)


def test_console_bpf_load_unload(types: dict[int, str]) -> None:
    records = audit.parse_log(read("audit-console-bpf-load-unload.log"), types)
    assert len(records) == 54  # the "audit_lost=..." / "hold queue overflow" lines are not records
    assert all(r.ok for r in records), [r.problem for r in records if not r.ok]
    bpf = [r for r in records if r.type == 1334]
    assert [(r.get("prog-id"), r.get("op")) for r in bpf] == [
        ("1", "LOAD"),
        ("1", "UNLOAD"),
        ("2", "LOAD"),
        ("2", "UNLOAD"),
        ("3", "LOAD"),
        ("3", "UNLOAD"),
        ("4", "LOAD"),
        ("4", "UNLOAD"),
        ("5", "LOAD"),
        ("5", "UNLOAD"),
    ]
    assert all(r.type_name == "BPF" and r.field_names() == ("prog-id", "op") for r in bpf)
    load = bpf[8]
    assert (load.timestamp, load.serial, load.stamp) == (1795423843.784, 27, "1795423843.784:27")


def test_console_events_group_bpf_with_its_syscall(types: dict[int, str]) -> None:
    events = audit.group_events(audit.parse_log(read("audit-console-bpf-load-unload.log"), types))
    by_serial = {e.serial: e for e in events}
    assert len(events) == 22
    assert [e.serial for e in events] == list(range(10, 32))
    load = by_serial[27]
    assert load.types() == ("BPF", "SYSCALL", "PROCTITLE")
    syscall = load.first("SYSCALL")
    assert syscall is not None
    assert syscall.get("syscall") == "321"  # bpf(2)
    assert syscall.decoded("comm") == "bpftool"
    assert syscall.decoded("key") == "bpf-syscall"
    assert load.first(1334).get("op") == "LOAD"  # type: ignore[union-attr]
    # the program is freed inside rm's unlinkat(2) of its pin
    unload = by_serial[31]
    assert unload.types() == ("BPF", "SYSCALL", "CWD", "PATH", "PATH", "PROCTITLE")
    assert unload.first("SYSCALL").decoded("comm") == "rm"  # type: ignore[union-attr]
    assert [p.decoded("name") for p in unload.of_type("PATH")] == ["/sys/fs/bpf/", "/sys/fs/bpf/minimal"]
    assert unload.first("PROCTITLE").decoded_bytes("proctitle") == b"rm\x00-f\x00/sys/fs/bpf/minimal"  # type: ignore[union-attr]
    # a BPF record without a syscall around it (UNLOAD after an RCU grace period) is an event of its own
    assert by_serial[11].types() == ("BPF",)


def test_console_hex_encoded_comm(types: dict[int, str]) -> None:
    records = audit.parse_log(read("audit-console-syscall-hex-comm.log"), types)
    syscalls = [r for r in records if r.type_name == "SYSCALL"]
    assert [r.get("comm") for r in syscalls] == ['"cat"', "612062", "712274"]
    assert [r.decoded("comm") for r in syscalls] == ["cat", "a b", 'q"t']
    assert [r.decoded("exe") for r in syscalls] == ["/usr/bin/cat", "/tmp/a b", '/tmp/q"t']
    assert [r.decoded_bytes("comm") for r in syscalls] == [b"cat", b"a b", b'q"t']
    # a field not known to be untrusted is never hex-decoded, even when it looks like hex
    assert syscalls[1].decoded("a0") == "ffffff9c"
    assert syscalls[1].decoded("arch") == "c000003e"
    titles = [r.decoded_bytes("proctitle") for r in records if r.type_name == "PROCTITLE"]
    assert titles == [b"cat\x00/etc/hostname", b"/tmp/a b\x00/etc/hostname", b'/tmp/q"t\x00/etc/hostname']
    paths = [r for r in records if r.type_name == "PATH"]
    assert {p.decoded("name") for p in paths} == {"/etc/hostname"}
    events = audit.group_events(records)
    assert [e.types() for e in events] == [("SYSCALL", "CWD", "PATH", "PROCTITLE")] * 3
    assert [e.serial for e in events] == [32, 33, 34]


# ---------------------------------------------------------------- auditd form


def test_auditd_log(types: dict[int, str]) -> None:
    records = audit.parse_log(read("audit-auditd.log"), types)
    assert len(records) == 128
    assert all(r.ok for r in records)
    hex_comm = [r for r in records if r.type_name == "SYSCALL" and r.get("comm") == "612062"]
    assert len(hex_comm) == 1
    rec = hex_comm[0]
    assert rec.type == 1300
    assert rec.decoded("comm") == "a b"
    assert rec.decoded("exe") == "/tmp/a b"
    assert rec.get("key") == '"hostname-read"'
    # auditd's ENRICHED interpretations (after \x1d) are kept apart from the kernel's fields
    assert rec.enriched[:2] == (("ARCH", "x86_64"), ("SYSCALL", "openat"))
    assert "ARCH" not in rec.field_names() and rec.field_names()[-1] == "key"
    loads = [(r.get("prog-id"), r.get("op")) for r in records if r.type_name == "BPF"]
    assert len(loads) == 17 and loads[-1] == ("10", "UNLOAD")


def test_auditd_user_message_is_flattened_and_named_without_a_number(types: dict[int, str]) -> None:
    records = audit.parse_log(read("audit-auditd.log"), types)
    usys = [r for r in records if r.type_name == "USYS_CONFIG"]
    assert len(usys) == 2
    # USYS_CONFIG (1111) is auditd's name inside the kernel's 1100-1199 user range: no number in audit.h
    assert usys[0].type == -1
    assert usys[0].field_names() == (
        "pid", "uid", "auid", "ses", "subj", "op", "exe", "hostname", "addr", "terminal", "res",
    )  # fmt: skip
    assert usys[0].decoded("exe") == "/usr/sbin/hwclock"
    avc = [r for r in records if r.type_name == "AVC"]
    assert avc[0].get("info") == '"AppArmor Filesystem Enabled"'  # a quoted value with spaces stays whole


AUPARSE_JSON = "audit-auditd.auparse.json"


def test_agrees_with_auparse(types: dict[int, str]) -> None:
    """auparse (auditd's own parser, Debian python3-audit) read the same log at capture time."""
    reference = json.loads(read(AUPARSE_JSON))
    ours = audit.group_events(audit.parse_log(read("audit-auditd.log"), types))
    assert len(ours) == len(reference) == 54
    differences = set()
    compared = 0
    for mine, theirs in zip(ours, reference, strict=True):
        assert (mine.serial, f"{mine.timestamp:.3f}") == (theirs["serial"], theirs["timestamp"])
        assert list(mine.types()) == [r["type_name"] for r in theirs["records"]]
        for rec, ref in zip(mine.records, theirs["records"], strict=True):
            ref_fields = [tuple(f) for f in ref["fields"] if f[0] != "type"]
            if list(rec.fields) != ref_fields:
                differences.update(
                    (rec.type_name, a[0], a[1], b[1]) for a, b in zip(rec.fields, ref_fields, strict=False) if a != b
                )
                continue
            compared += 1
            for name, value in ref["interpreted"].items():
                decoded = rec.decoded(name)
                # auparse shows (null) as the text "(null)" (harness.audit: None) and the NULs between
                # proctitle's arguments as spaces (harness.audit: the bytes as logged)
                shown = (
                    "(null)" if decoded is None else decoded.replace("\x00", " ") if name == "proctitle" else decoded
                )
                assert shown == value, (name, rec.raw)
    assert compared == 125
    # auparse's own quirks: it cuts values at spaces and drops a closing parenthesis
    assert differences == {
        ("MAC_MAP_ADD", "nlbl_domain", "(default)", "(default"),
        ("AVC", "info", '"AppArmor Filesystem Enabled"', '"AppArmor'),
        ("AVC", "info", '"AppArmor sha1 policy hashing enabled"', '"AppArmor'),
    }


# ---------------------------------------------------------------- netlink form (what the agent returns)


def test_netlink_form_from_recorded_console_lines(types: dict[int, str]) -> None:
    lines = [ln for ln in read("audit-console-bpf-load-unload.log").splitlines() if "audit(" in ln]
    raw = []
    for line in lines:
        rest = line.split("audit: type=", 1)[1]
        number, text = rest.split(" ", 1)
        raw.append({"type": int(number), "text": text})
    via_netlink = audit.parse_records(raw, types)
    via_console = audit.parse_log("\n".join(lines), types)
    assert [(r.type, r.type_name, r.stamp, r.fields) for r in via_netlink] == [
        (r.type, r.type_name, r.stamp, r.fields) for r in via_console
    ]
    assert via_netlink[0].raw == "audit(1795423843.176:10): prog-id=1 op=LOAD"


def test_record_helpers() -> None:
    rec = audit.parse_any({"type": 1300, "text": 'audit(1700000000.123:45): a=1 comm="x y" a=2 name=(null) z=?'})
    assert rec.ok and rec.type_name is None and rec.type == 1300
    assert rec.field_names() == ("a", "comm", "a", "name", "z")
    assert rec.get("a") == "1" and rec.get_all("a") == ("1", "2")
    assert rec.get("missing") is None and rec.get("missing", "d") == "d"
    assert rec.decoded("comm") == "x y"  # quoted: the inside, whatever it holds
    assert rec.decoded("name") is None and rec.decoded_bytes("name") is None
    assert rec.decoded("z") == "?"
    assert rec.as_dict() == {"a": "1", "comm": '"x y"', "name": "(null)", "z": "?"}
    assert rec.is_type(1300) and rec.is_type("1300") and not rec.is_type("SYSCALL")


def test_auditd_unknown_type_uses_the_table() -> None:
    table = {1427: "BPF_LSM_ACCESS"}
    line = 'type=UNKNOWN[1427] msg=audit(1700000000.500:7): prog-id=3 pid=42 comm=612062 cause="deny"'
    rec = audit.parse_line(line, table)
    assert (rec.type, rec.type_name, rec.serial) == (1427, "BPF_LSM_ACCESS", 7)
    assert rec.decoded("comm") == "a b" and rec.decoded("cause") == "deny"
    assert rec.is_type("AUDIT_BPF_LSM_ACCESS")
    node = audit.parse_line("node=vm1 type=BPF msg=audit(1.000:2): prog-id=1 op=LOAD", {1334: "BPF"})
    assert (node.type, node.fields) == (1334, (("node", "vm1"), ("prog-id", "1"), ("op", "LOAD")))


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (None, "not an audit record: NoneType"),
        (42, "not an audit record: int"),
        ({"type": 1300}, "netlink record without 'text'"),
        ({"type": 1300, "text": None}, "record text is not a string"),
        ({"type": None, "text": "audit(1.0:1): a=b"}, "no record type"),
        ({"type": 1300, "text": "prog-id=1 op=LOAD"}, "no audit(SECONDS.MILLIS:SERIAL) stamp"),
        ("type=SYSCALL msg=audit(garbage", "no audit(SECONDS.MILLIS:SERIAL) stamp"),
        ('type=SYSCALL msg=audit(1.000:9): comm="unterminated', "unterminated quoted value of field 'comm'"),
        ("type=USER msg=audit(1.000:9): pid=1 msg='op=x", "unterminated single-quoted value of field 'msg'"),
        ("", "no record type"),
    ],
)
def test_unparseable_records_are_kept_and_flagged(item, problem: str) -> None:
    rec = audit.parse_any(item)
    assert isinstance(rec, Record)
    assert rec.ok is False
    assert rec.problem == problem


def test_group_events_preserves_first_appearance_and_keeps_lone_records() -> None:
    texts = [
        (1300, "audit(10.000:2): a=1"),
        (1334, "audit(10.000:3): prog-id=1 op=LOAD"),
        (1327, "audit(10.000:2): proctitle=6869"),
        (1300, "no stamp at all"),
        (1334, "audit(10.000:3): prog-id=1 op=UNLOAD"),
        (1320, "audit(11.000:2): "),  # same serial, other time: another event
    ]
    events = audit.group_events(audit.parse_records(texts))
    assert [(e.timestamp, e.serial, len(e.records)) for e in events] == [
        (10.0, 2, 2),
        (10.0, 3, 2),
        (None, None, 1),
        (11.0, 2, 1),
    ]
    assert [r.type for r in events[0].records] == [1300, 1327]
    assert events[0].types() == ("1300", "1327")


# ---------------------------------------------------------------- untrusted strings


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"cat", '"cat"'),
        (b"a b", "612062"),
        (b'q"t', "712274"),
        (b"", '""'),
        (b"!~", '"!~"'),  # 0x21 and 0x7e are printable for audit
        (b"\x7f", "7F"),
        (b"\x20", "20"),
        (b"\xff\x00", "FF00"),
        (b"it's=ok", '"it\'s=ok"'),
    ],
)
def test_encode_untrusted_follows_the_kernel_rule(data: bytes, encoded: str) -> None:
    assert audit.encode_untrusted(data) == encoded


def test_decode_value() -> None:
    assert audit.decode_value("comm", "612062") == b"a b"
    assert audit.decode_value("comm", "61206") == b"61206"  # odd length: not hex
    assert audit.decode_value("comm", "61206a") == b"61206a"  # lowercase: the kernel writes uppercase
    assert audit.decode_value("a1", "612062") == b"a b"  # EXECVE argument
    assert audit.decode_value("a1[2]", "612062") == b"a b"
    assert audit.decode_value("pid", "1234") == b"1234"
    assert audit.decode_value("comm", "(null)") is None
    assert audit.decode_value("comm", None) is None
    assert audit.is_untrusted_field("ocomm") and not audit.is_untrusted_field("prog-id")


UNTRUSTED_FOR_ROUND_TRIP = ["comm", "ocomm", "name", "path", "cause", "exe", "proctitle"]


@PROFILE
@given(data=st.binary(max_size=64), field=st.sampled_from(UNTRUSTED_FOR_ROUND_TRIP), serial=st.integers(0, 2**32))
def test_untrusted_round_trip(data: bytes, field: str, serial: int) -> None:
    text = f"audit(1700000000.123:{serial}): prog-id=7 pid=1 {field}={audit.encode_untrusted(data)} res=1"
    for rec in (
        audit.parse_netlink(1427, text, {1427: "BPF_LSM_ACCESS"}),
        audit.parse_line(f"type=UNKNOWN[1427] msg={text}", {1427: "BPF_LSM_ACCESS"}),
        audit.parse_line(f"[   12.345678] audit: type=1427 {text}", {1427: "BPF_LSM_ACCESS"}),
    ):
        assert rec.ok, rec.problem
        assert rec.serial == serial
        assert rec.field_names() == ("prog-id", "pid", field, "res")
        assert rec.decoded_bytes(field) == data
        decoded = rec.decoded(field)
        assert decoded is not None and decoded.encode("utf-8", "surrogateescape") == data


@PROFILE
@given(data=st.one_of(st.text(max_size=300), st.binary(max_size=300)), number=st.integers(-5, 5000))
def test_arbitrary_input_never_raises(data, number: int) -> None:
    assert isinstance(audit.parse_any(data), Record)
    assert isinstance(audit.parse_netlink(number, data), Record)
    assert isinstance(audit.parse_any({"type": number, "text": data}), Record)
    records = audit.parse_log(data)
    for rec in records:
        rec.field_names()
        for name in rec.field_names():
            rec.decoded(name)
    audit.group_events(records)
    audit.parse_audit_h(data)


@PROFILE
@given(st.lists(st.sampled_from(["a=1", 'comm="x"', "b='c d'", "=", "'", '"', "msg='", "x", " ", "audit(1.2:3):"])))
def test_token_soup_never_raises(tokens: list[str]) -> None:
    rec = audit.parse_netlink(1300, "audit(1.000:1): " + " ".join(tokens))
    assert rec.serial == 1
