#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Dump how auparse (Debian python3-audit, auditd's own parser) sees an audit log, as JSON for the tests.

    cd tests/data && /usr/bin/python3 ../../guests/auparse_dump.py audit-auditd.log > audit-auditd.auparse.json

Output: a list of events {"serial", "timestamp", "records": [{"type", "type_name", "fields": [[name, raw], ...],
"interpreted": {name: value}}]}. The raw values are auparse's get_field_str(); "interpreted" holds
interpret_field() for the untrusted-string fields, i.e. auparse's decoding of hex/quoted strings.
"""

import json
import sys

import auparse

UNTRUSTED = ("comm", "exe", "name", "cwd", "proctitle", "key")


def main(path: str) -> None:
    au = auparse.AuParser(auparse.AUSOURCE_FILE, path)
    events = []
    while au.parse_next_event():
        ts = au.get_timestamp()
        event = {"serial": ts.serial, "timestamp": f"{ts.sec}.{ts.milli:03d}", "records": []}
        au.first_record()
        while True:
            rec = {"type": au.get_type(), "type_name": au.get_type_name(), "fields": [], "interpreted": {}}
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
