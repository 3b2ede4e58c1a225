# SPDX-License-Identifier: GPL-2.0
"""Spec rule 18 under load: thousands of hook calls; every record is received or counted in the kernel's `lost`."""

import pytest

from harness.cases import audit
from harness.cases.flood import flood
from harness.settings import REPO_ROOT

pytestmark = [pytest.mark.vm, pytest.mark.slow]
CASE = REPO_ROOT / "cases" / "audit" / "load.bpf.c"
CALLS = 5000


def _record_type(kernel_under_test) -> int:
    return next(n for n, name in kernel_under_test.audit_types.items() if name == "BPF_LSM_ACCESS")


@pytest.mark.parametrize("backlog_limit", [8192, 32], ids=["roomy-backlog", "tiny-backlog"])
def test_every_record_is_received_or_counted_lost(vm, bpf, case_session, kernel_under_test, backlog_limit,
                                                  record_property):
    missing = kernel_under_test.features.missing("bpf_audit")
    if missing:
        pytest.skip(missing)
    prog = bpf.load_and_attach(CASE, "load_flood")
    res = flood(case_session, _record_type(kernel_under_test), prog.id, CALLS, backlog_limit=backlog_limit)
    print(res.describe())
    record_property("audit_flood", res.describe())
    record_property("records_per_second", round(res.records_per_second))
    assert res.overruns == 0, res.describe()
    assert res.received + res.lost == CALLS, res.describe()
    if backlog_limit == 8192:
        assert res.lost == 0, f"records lost with room in the backlog: {res.describe()}"
    # the kernel is still whole: a record after the flood is complete (no half-written or leaked context)
    guest_open = "printf bah_load > /proc/self/comm; : < /tmp/bah/load"
    rec_type = _record_type(kernel_under_test)
    agent = case_session.agent
    mark = agent.request("audit_mark")["mark"]
    case_session.link.shell(guest_open)
    raw = agent.request("audit_read", since=mark, wait=0.5, types=[rec_type])["records"]
    recs = [r for r in audit.parse_records(raw, kernel_under_test.audit_types) if r.get("prog-id") == str(prog.id)]
    assert len(recs) == 1 and recs[0].decoded("cause") == "load", [r.raw for r in recs]
