# SPDX-License-Identifier: GPL-2.0
"""A kernel tree's own test_progs, trimmed to named prog_tests: planned, built (cached), run in a guest, judged."""
