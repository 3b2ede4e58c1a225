# SPDX-License-Identifier: GPL-2.0
"""bpf-audit-harness: build, boot and test kernels against the bpf_audit kfunc contract."""

__version__ = "0.1.0"
