# SPDX-License-Identifier: GPL-2.0
"""The one command line of a campaign's inner pytest session (matrix, mutants, bisect)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# What harness.campaigns.results.parse_junit is tested on. xunit2 is pytest's default and the schema CI tools
# read; the node id the reader needs is the plugin's `nodeid` property, written in either family. Passed
# explicitly so a project's ini file cannot change it under the campaigns.
JUNIT_FAMILY = "xunit2"


def inner_pytest_argv(paths: Sequence[str], *, junit: Path, kernel: Path, workers: int = 1, accel: str | None = None,
                      cache_dir: Path | None = None, pytest_cache: Path | None = None, rerun: str | None = None,
                      extra: Sequence[str] = ()) -> list[str]:
    """`python -m pytest PATHS ...` for an inner session, to be run from the harness's repository.

    The kernel is the artifact the campaign prepared (`kernel`: its cache entry, any kind), never a recipe the inner
    session would build or resolve again. Files are passed absolute (the session's working directory is the
    repository, not the caller's). The JUnit report is xunit2; the log gets pytest's quiet output and a summary
    of failures, errors and skips; `workers` > 1 runs xdist. pytest's own cache is off, unless `pytest_cache`
    names one for this campaign's runs (then `rerun`, "lf" or "ff", passes --lf / --ff on). `extra` comes last,
    so the user's own pytest arguments can override any of this.
    """
    if rerun and not pytest_cache:
        raise ValueError("--lf/--ff need a pytest cache of the earlier runs")
    argv = [sys.executable, "-m", "pytest", *paths, "--kernel", _abs(kernel)]
    argv += _options((("--accel", accel),))
    argv += [f"--junitxml={_abs(junit)}", "-o", f"junit_family={JUNIT_FAMILY}"]
    argv += ["-o", f"cache_dir={_abs(pytest_cache)}"] if pytest_cache else ["-p", "no:cacheprovider"]
    if rerun:
        argv.append(f"--{rerun}")
    argv += ["-q", "-rfEs"]
    if workers > 1:
        argv += ["-n", str(workers)]
    if cache_dir:
        argv += ["--cache-dir", _abs(cache_dir)]
    return argv + list(extra)


def _options(table: Sequence[tuple[str, Path | str | bool | None]]) -> list[str]:
    """Each option of `table` that is set, in its order: a flag when its value is True, else the option and its
    value (an unset or empty value is left out)."""
    argv: list[str] = []
    for option, value in table:
        if value is True:
            argv.append(option)
        elif value:
            argv += [option, str(value)]
    return argv


def _abs(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())
