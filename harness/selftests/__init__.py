# SPDX-License-Identifier: GPL-2.0
"""The kernel's own BPF selftests (the bpf_misc.h-annotated RUN_TESTS programs) judged the way test_loader does."""
