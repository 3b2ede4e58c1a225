# SPDX-License-Identifier: GPL-2.0
"""Cases: the case file format, compiling, loading and judging programs, audit records, scenarios."""
