# SPDX-License-Identifier: GPL-2.0
"""The resident guest agent: JSON-lines requests to load/attach BPF objects, run triggers and read audit records."""

# Runs in the guest as `/usr/bin/python3 -S agent.pyz [--no-kmsg] [--kmsg-level N] [--quiet] [--libbpf PATH]`: the
# host ships this package as one zipapp (harness/machine/ssh.py). Stdlib only. Protocol: guests/README.md. Only JSON
# responses go to stdout; diagnostics go to stderr and /dev/kmsg. Imports are kept minimal at start-up (no `re`, no
# `json` module on the fast path) and lazy elsewhere.
