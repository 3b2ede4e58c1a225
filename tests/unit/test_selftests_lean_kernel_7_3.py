# SPDX-License-Identifier: GPL-2.0
"""The 7.3 selftests that fail on the harness's default 7.3.4 kernel, replayed from the guest's recorded answers.

tests/data/selftests-7.3.4-lean-kernel/agent.tar.xz: the agent's answers recorded on 2026-12-07 by
`bpf-audit-harness selftests --kernel-src debian-7.3 --pytest-arg=--selftests-record=DIR verifier_percpu_addr
verifier_tailcall_jit verifier_private_stack verifier_map_lookup_refine verifier_unpriv` on the default kernel
(key c0126a531f61da080440f68a: Debian 7.3.4 + patches/7.3, TCG); of verifier_unpriv only its one failing subtest.
Each failure is the kernel's, as test_loader would judge it, not the harness's: the JITed bytes and the verifier's
own log show it. The replay runs the harness's spec, match and judge code (and libLLVM) again on them, so a change
that turned one of them into a pass, a skip or a known difference shows here."""

from __future__ import annotations

import json
import lzma
import tarfile
from pathlib import Path

import pytest

from harness.selftests.dialect import LINUX_7_3
from harness.selftests.jitdisasm import JitDisasmError, llvm
from harness.selftests.replay import dialect_of, replay_dir

ARCHIVE = Path(__file__).resolve().parents[1] / "data" / "selftests-7.3.4-lean-kernel" / "agent.tar.xz"
ENDBR64 = bytes.fromhex("f30f1efa")

# (file, subtest) -> (the failure, text its reason holds): every other recorded subtest passes.
FAILS = {
    # x86 JIT emit_mov_imm64() takes the shortest encoding: the per-CPU pointers here (0xffffffff82326xxx, the first
    # percpu chunk, just past __per_cpu_end 0xffffffff82321c58) fit a sign-extended imm32, so `movq $-0x7dcd....`
    # (REX.W C7 /0), where the subtests expect a 64-bit `movabsq`.
    ("verifier_percpu_addr", "per-CPU address resolution"): ("expect_jited", "movabsq\t$0x{{.*}}, %rax"),
    ("verifier_private_stack", "Private stack, single prog"): ("expect_jited", "movabsq\t$0x{{.*}}, %r9"),
    ("verifier_private_stack", "Private stack, subtree > MAX_BPF_STACK"): ("expect_jited", "movabsq\t$0x{{.*}}, %r9"),
    ("verifier_private_stack", "Private stack, async callback, not nested"): ("expect_jited",
                                                                              "movabsq\t$0x{{.*}}, %r9"),
    # no CONFIG_X86_KERNEL_IBT: the JIT emits no endbr64 (EMIT_ENDBR() is empty)
    ("verifier_private_stack", "Private stack, callback"): ("expect_jited", "EXPECTED   SUBSTR: '\tendbr64'"),
    ("verifier_tailcall_jit", "main"): ("expect_jited", "EXPECTED   SUBSTR: '\tendbr64'"),
    # no CONFIG_SYN_COOKIES (tools/testing/selftests/bpf/config has it): tc may not call the helper at all, so the
    # verifier stops before the argument check the subtest's __msg names
    ("verifier_map_lookup_refine", "mapofmaps_value_as_helper_fixed_mem"): (
        "expect_msg", "program of this type cannot use helper bpf_tcp_raw_check_syncookie_ipv4#206"),
    # no CONFIG_KALLSYMS_ALL: kallsyms has no data symbols, so check_pseudo_btf_id() cannot find a per-CPU variable
    ("verifier_unpriv", "unpriv: pseudo btf id log masks address @unpriv"): (
        "unexpected_load_failure: errno 2", "ldimm64 failed to find the address for kernel symbol 'bpf_prog_active'"),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        llvm()
    except JitDisasmError as e:
        pytest.skip(f"__jited is judged with libLLVM's disassembler: {e}")
    base = tmp_path_factory.mktemp("lean-7.3.4")
    with lzma.open(ARCHIVE) as xz, tarfile.open(fileobj=xz) as tar:
        tar.extractall(base, filter="data")
    return base / "agent"


def test_each_failure_replays_as_the_same_failure_and_the_rest_pass(recorded: Path) -> None:
    seen = {}
    for meta, rows in replay_dir(recorded):
        assert dialect_of(meta["dialect"]) == LINUX_7_3
        for row in rows:
            assert row["status"] == row["recorded"], row  # the harness's code gives what the run gave
            seen[(meta["file"], row["name"])] = (row["status"], row["reason"])
    failed = {k for k, (status, _) in seen.items() if status == "failed"}
    assert failed == set(FAILS)
    for key, (kind, text) in FAILS.items():
        reason = seen[key][1]
        assert reason.startswith(kind) and text in reason, (key, reason)
    assert {k: s for k, (s, _) in seen.items() if k not in FAILS} == dict.fromkeys(set(seen) - set(FAILS), "passed")


def test_the_jited_bytes_are_what_the_failures_say(recorded: Path) -> None:
    """The evidence under the verdicts, in the recorded images: no endbr64 anywhere, and each per-CPU address
    loaded by a 7-byte mov of a sign-extended imm32 (REX.W C7 C0+r), none by a 10-byte movabs (REX.W B8+r)."""
    images = {}
    for path in sorted(recorded.glob("verifier_*/[0-9]*.json")):
        rec = json.loads(path.read_text())
        for prog in (rec.get("load") or {}).get("programs") or ():
            if prog.get("jited_image"):
                images[(path.parent.name, rec["subtest"])] = bytes.fromhex(prog["jited_image"])
    assert ("verifier_tailcall_jit", "main") in images
    assert not [k for k, image in images.items() if ENDBR64 in image]
    percpu = images[("verifier_percpu_addr", "per-CPU address resolution")]
    movs = [percpu[i:i + 7] for i in range(len(percpu) - 6) if percpu[i] in (0x48, 0x49) and percpu[i + 1] == 0xC7
            and percpu[i + 2] & 0xF8 == 0xC0]
    assert len(movs) == 10 and len({m[3:] for m in movs}) == 1  # r0..r9 = &percpu_data, one address
    address = int.from_bytes(movs[0][3:], "little", signed=True) & (2 ** 64 - 1)
    assert 0xFFFFFFFF80000000 <= address  # fits a sign-extended imm32: movq, not movabsq
    assert not any(percpu[i] in (0x48, 0x49) and 0xB8 <= percpu[i + 1] <= 0xBF for i in range(len(percpu) - 1))

