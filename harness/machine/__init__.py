# SPDX-License-Identifier: GPL-2.0
"""Machines the cases run on: KVM/TCG choice, QEMU guests, SSH to them, per-worker pools, console."""
