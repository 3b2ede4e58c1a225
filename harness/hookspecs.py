# SPDX-License-Identifier: GPL-2.0
"""Hooks the plugin offers to conftest.py files and other plugins."""

from __future__ import annotations

import pytest


@pytest.hookspec(firstresult=True)
def pytest_harness_needs_kernel(config: pytest.Config) -> bool | None:
    """Whether this run's selected tests need the kernel under test, decided before collection (in the
    controller, before xdist starts workers). True: the kernel is prepared there, with its progress on the
    terminal, and a failure ends the run once. The plugin says True when the paths hold case files; a
    conftest.py whose own tests use the kernel fixtures says so for them. Return None to defer."""
