#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record tests/data/selftests-compare-*: the tree's own test_progs and `bpf-audit-harness selftests` on one kernel.
#
#   tests/data/capture/test_progs-compare.sh OUTDIR     (run from the repository root, as root)
#
# Environment: TREE (default: the tree the harness unpacked from Debian's linux-source-6.12), KEY (default:
# `bpf-audit-harness build --print-key`, whose artifact must be built), BUILD (where test_progs is built; the
# guest must see it, so not under /tmp, which virtme overlays), FILES (the skeletons to compare; their
# test_progs tests are derived from prog_tests/). Writes OUTDIR/test_progs.log (the guest command's stdout as
# captured) and OUTDIR/harness.json (`selftests --json`).
#
# test_progs is built from a hard-linked copy of TREE (nothing in TREE is written: the harness hashes it) with
# prog_tests/ cut down to the tests that run FILES (plus test_lsm.c, which iters.c links against) and progs/ to the
# skeletons those include; the selftests Makefile is otherwise untouched (OUTPUT=$BUILD, VMLINUX_BTF=the kernel's
# vmlinux, TRUNNER_EXTRA_FILES= : no bpf_testmod.ko and friends, the kernel has no modules). The kernel has no
# CONFIG_NET_NS, without which test_progs stops at start (open /proc/self/ns/net): test_progs-netns-shim.c,
# LD_PRELOADed, hands it /dev/null and makes setns(CLONE_NEWNET) on it a no-op. Nothing else is changed.
set -eu
out=$(mkdir -p "$1" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
hab=.venv/bin/bpf-audit-harness
TREE=${TREE:-$HOME/.cache/bpf-audit-harness/src/tar-585a4a074597aefa/tree}
KEY=${KEY:-$($hab build --print-key)}
BUILD=${BUILD:-/work/tp-out}
FILES=${FILES:-"verifier_lsm verifier_ref_tracking task_kfunc_failure cgrp_kfunc_failure verifier_kfunc_prog_types
verifier_global_subprogs verifier_vfs_reject dynptr_fail verifier_sock verifier_bounds_deduction
verifier_jeq_infer_not_null verifier_netfilter_ctx verifier_map_ptr verifier_array_access verifier_unpriv
iters_state_safety iters_looping iters iters_css_task iters_testmod iters_testmod_seq iters_task_failure
dummy_st_ops_fail"}
kernel=$HOME/.cache/bpf-audit-harness/kernels/$KEY
copy=$(mktemp -d /tmp/test_progs-tree.XXXXXX)
trap 'rm -rf "$copy"' EXIT
cp -al "$TREE/." "$copy/"
st=$copy/tools/testing/selftests/bpf
# the prog_tests files whose RUN_TESTS(x) / RUN(x) name FILES
tests=$(for f in $FILES; do grep -lE "\b(RUN_TESTS|RUN)\($f\)" "$st"/prog_tests/*.c | head -1; done | sort -u)
keep_tests="$(for t in $tests; do basename "$t" .c; done) test_lsm"
for f in "$st"/prog_tests/*.c; do
	case " $(echo $keep_tests) " in *" $(basename "$f" .c) "*) ;; *) rm -f "$f" ;; esac
done
skels=$(for t in $keep_tests; do grep -ho '#include "[a-z0-9_]*\.l\?skel\.h"' "$st/prog_tests/$t.c"; done |
	sed 's/#include "//; s/\.l\?skel\.h"//')
# named by the Makefile itself: LSKELS, LSKELS_EXTRA, the linked skeletons' parts, btf_data
made="fentry_test fexit_test fexit_sleep atomics trace_printk trace_vprintk map_ptr_kern core_kern core_kern_overflow
test_ringbuf test_ringbuf_n test_ringbuf_map_key test_ringbuf_write test_ksyms_module test_ksyms_weak kfunc_call_test
kfunc_call_test_subprog test_static_linked1 test_static_linked2 linked_funcs1 linked_funcs2 linked_vars1 linked_vars2
linked_maps1 linked_maps2 test_subskeleton_lib2 test_subskeleton_lib test_subskeleton test_usdt test_usdt_multispec
btf_data"
keep=" $(echo $skels $made) "
for f in "$st"/progs/*.c; do
	case "$keep" in *" $(basename "$f" .c) "*) ;; *) rm -f "$f" ;; esac
done
mkdir -p "$BUILD"
nice -n 19 make -C "$st" -j"$(nproc)" CLANG=clang-19 LLC=llc-19 LLVM_STRIP=llvm-strip-19 BPF_GCC= \
	OUTPUT="$BUILD" VMLINUX_BTF="$kernel/vmlinux" TRUNNER_EXTRA_FILES= test_progs
gcc -O2 -Wall -shared -fPIC -o "$BUILD/netns-shim.so" "$here/test_progs-netns-shim.c" -ldl
# the tests that run FILES, as test_progs names them (harness.selftests.discover: the function of the RUN call)
# shellcheck disable=SC2086
names=$(.venv/bin/python - "$TREE" $FILES <<'PY'
import sys
from pathlib import Path

from harness.selftests.discover import discover
from harness.selftests.test_progs_log import name_of_test

found = discover(Path(sys.argv[1])).by_name()
print(",".join(sorted({name_of_test(found[f].function) for f in sys.argv[2:]})))
PY
)
nice -n 19 $hab boot --kernel "$kernel/bzImage" --timeout 1800 -- sh -c "uname -r; sysctl kernel.unprivileged_bpf_disabled; \
cd $BUILD && LD_PRELOAD=$BUILD/netns-shim.so ./test_progs -a $names 2>&1; echo test_progs_exit=\$?" \
	> "$out/test_progs.log" || true
# shellcheck disable=SC2086
nice -n 19 $hab selftests $FILES -n 1 --json "$out/harness.json" > /dev/null || true
echo "wrote $out/test_progs.log ($(grep -c '^#[0-9]*/' "$out/test_progs.log") subtest lines), $out/harness.json"
