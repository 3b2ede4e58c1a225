# SPDX-License-Identifier: GPL-2.0
"""The kernel matrix: the matrix file, running the suite per kernel, the reports."""
