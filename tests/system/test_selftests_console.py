# SPDX-License-Identifier: GPL-2.0
"""The kernel console is judged for selftest subtests and scenario tests as for cases (issue 25 item 5), on real
guests: a subtest or a scenario test that passes while the kernel reports a soft lockup on the console fails (was:
it passed), or only warns with --console-findings warn."""

from __future__ import annotations

import pytest
from selftests_tree import BPF, make_tree

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.vm, pytest.mark.slow]

# A RUN_TESTS file whose test run holds the guest's only CPU for 5 s: the soft-lockup watchdog (2 s with the guest
# booted with watchdog_thresh=1) reports it. The program passes as test_loader judges it (__retval(0)).
SPIN = """\
#define SEC(name) __attribute__((section(name), used))
#define TAG(text) __attribute__((btf_decl_tag(text)))
typedef unsigned long long __u64;
typedef unsigned int __u32;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_loop)(__u32 nr, void *cb, void *ctx, __u64 flags) = (void *)181;

static long inner(__u64 i, void *ctx) { return 0; }

static long outer(__u64 i, void *deadline)
{
	bpf_loop(1 << 12, inner, 0, 0);
	return bpf_ktime_get_ns() > *(__u64 *)deadline;
}

SEC("socket") TAG("comment:test_expect_success") TAG("comment:test_retval=0")
int verifier_x_spin(void *ctx)
{
	__u64 deadline = bpf_ktime_get_ns() + 5000000000ULL;

	bpf_loop(1 << 23, outer, &deadline, 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
"""


def test_a_kernel_report_during_a_subtest_fails_it(pytester, kernel_artifact, inner_args):
    tree = make_tree(pytester.path)
    (tree / BPF / "progs/verifier_x.c").write_text(SPIN)
    path = str(tree / BPF / "progs/verifier_x.c")
    lockup = ("--append", "watchdog_thresh=1")
    strict = pytester.runpytest_subprocess(path, *inner_args, *lockup, "-rA", timeout=900)
    out = strict.stdout.str()
    strict.assert_outcomes(failed=1)
    assert "kernel reported soft_lockup during the test: watchdog: BUG: soft lockup" in out, out[-5000:]
    lenient = pytester.runpytest_subprocess(path, *inner_args, *lockup, "--console-findings", "warn", "-rA",
                                            timeout=900)
    lenient.assert_outcomes(passed=1)


SCENARIO = """\
from pathlib import Path

LOCKUP = Path({case!r})


def test_a_hook_that_holds_the_cpu(bpf, case_session):
    bpf.load_and_attach(LOCKUP, "console_bug")
    case_session.link.shell("echo 1 > /proc/sys/kernel/watchdog_thresh; : > /tmp/bah/lockup; cat /tmp/bah/lockup",
                       timeout=120)
"""


def test_a_kernel_report_during_a_scenario_test_fails_it(pytester, kernel_artifact, inner_args):
    from test_faults_vm import HEAD, LOCKUP

    from harness.settings import REPO_ROOT

    case = pytester.path / "cases" / "lockup.bpf.c"
    case.parent.mkdir()
    (case.parent / "harness.h").write_text((REPO_ROOT / "cases" / "harness.h").read_text())
    case.write_text(HEAD + LOCKUP)
    pytester.makepyfile(test_scenario_lockup=SCENARIO.format(case=str(case)))
    result = pytester.runpytest_subprocess("test_scenario_lockup.py", *inner_args, "-rA", timeout=900)
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "kernel reported soft_lockup during the test: watchdog: BUG: soft lockup" in out, out[-5000:]
