# SPDX-License-Identifier: GPL-2.0
"""Campaigns over many runs: the kernel matrix, mutation checks, bisection."""
