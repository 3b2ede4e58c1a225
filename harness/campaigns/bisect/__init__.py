# SPDX-License-Identifier: GPL-2.0
"""git bisect run with the harness: the driver and the per-commit step."""
