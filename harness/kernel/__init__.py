# SPDX-License-Identifier: GPL-2.0
"""Kernel stages: source tree, patch series, config fragments, build, cache, prebuilt kernels."""
