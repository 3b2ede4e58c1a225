#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Record what harness/selftests/dialect.py reads of a kernel tree to know its test_loader: the selftests'
# test_loader.c and unpriv_helpers.c, and the Makefile's version lines.
#
#   tests/data/capture/selftests-dialect.sh TREE OUTDIR
#
# TREE: an unpacked kernel source (~/.cache/bpf-audit-harness/src/tar-*/tree). Writes OUTDIR/<version>/.
set -eu
tree=$1 out=$2
bpf="$tree/tools/testing/selftests/bpf"
v=$(sed -n 's/^VERSION = //p' "$tree/Makefile"); p=$(sed -n 's/^PATCHLEVEL = //p' "$tree/Makefile")
s=$(sed -n 's/^SUBLEVEL = //p' "$tree/Makefile")
[ -n "$v" ] && [ -n "$p" ] || { echo "no VERSION/PATCHLEVEL in $tree/Makefile" >&2; exit 1; }
dir="$out/$v.$p.$s"
mkdir -p "$dir"
cp "$bpf/test_loader.c" "$bpf/unpriv_helpers.c" "$dir/"
cp "$bpf/DENYLIST" "$out/DENYLIST-$v.$p.$s"
head -5 "$tree/Makefile" > "$dir/Makefile"
echo "recorded $v.$p.$s into $dir"
