# SPDX-License-Identifier: GPL-2.0
"""Generated conformance programs: AST, hypothesis strategy, C renderer and a pure reference model."""
