#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Dump how auparse (Debian python3-audit, auditd's own parser) sees an audit log, as JSON for the tests.

    cd tests/data && /usr/bin/python3 ../../guests/auparse_dump.py audit-auditd.log > audit-auditd.auparse.json
    /usr/bin/python3 guests/auparse_dump.py records.jsonl   # raw agent records, named as auditd would name them

Output: a list of events {"serial", "timestamp", "records": [{"type", "type_name", "fields": [[name, raw], ...],
"interpreted": {name: value}}]}. The raw values are auparse's get_field_str(); "interpreted" holds
interpret_field() for the untrusted-string fields, i.e. auparse's decoding of hex/quoted strings.
"""

import json
import sys

import auparse

UNTRUSTED = ("comm", "exe", "name", "cwd", "proctitle", "key")


def auditd_log(raw_json_lines: str) -> str:
    """Raw netlink records ({"type", "text"} per line) as auditd would write them to audit.log: the type by its
    libaudit name, or UNKNOWN[n] for a type this libaudit does not know (auditd's own fallback)."""
    import audit

    out = []
    for line in raw_json_lines.splitlines():
        if line.strip():
            rec = json.loads(line)
            name = audit.audit_msg_type_to_name(rec["type"]) or f"UNKNOWN[{rec['type']}]"
            out.append(f"type={name} msg={rec['text']}\n")
    return "".join(out)


def main(path: str) -> None:
    if path.endswith(".jsonl"):  # raw records from the harness agent: convert the way auditd does first
        log = path[: -len(".jsonl")] + ".log"
        with open(path) as src, open(log, "w") as dst:
            dst.write(auditd_log(src.read()))
        path = log
    au = auparse.AuParser(auparse.AUSOURCE_FILE, path)
    events = []
    while au.parse_next_event():
        ts = au.get_timestamp()
        event = {"serial": ts.serial, "timestamp": f"{ts.sec}.{ts.milli:03d}", "records": []}
        au.first_record()
        while True:
            try:
                type_name = au.get_type_name()
            except LookupError:  # a type this libaudit has no name for (e.g. 1425, AUDIT_BPF_LSM_ACCESS)
                type_name = None
            rec = {"type": au.get_type(), "type_name": type_name, "fields": [], "interpreted": {}}
            au.first_field()
            while True:
                name = au.get_field_name()
                raw = au.get_field_str()
                rec["fields"].append([name, raw])
                if name in UNTRUSTED and name not in rec["interpreted"]:
                    rec["interpreted"][name] = au.interpret_field()
                if not au.next_field():
                    break
            event["records"].append(rec)
            if not au.next_record():
                break
        events.append(event)
    json.dump(events, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
