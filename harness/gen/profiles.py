# SPDX-License-Identifier: GPL-2.0
"""The hypothesis profiles of the generated-program property, registered in this one place, chosen with
hypothesis' own pytest options.

    (no option)                                    the ci profile: fixed, derandomized, small: fits a CI run
    --hypothesis-profile nightly                   500 examples (BPF_AUDIT_HYPOTHESIS_EXAMPLES overrides), a random
                                                   seed that is printed
    --hypothesis-profile nightly --hypothesis-seed N   replays one

    BPF_AUDIT_PROPERTY_HOOKS=socket_connect,task_kill   generate programs for these hooks only

Hypothesis's storage lives under the harness cache (<cache>/hypothesis), never in the repository. The ci
profile, being derandomized, uses no example database; a nightly run is replayed from its printed seed
(hypothesis bypasses the example database whenever a seed is forced, so <cache>/hypothesis/examples only
fills from unseeded runs).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

EXAMPLES_ENV = "BPF_AUDIT_HYPOTHESIS_EXAMPLES"  # hypothesis has no option for an example count
HOOKS_ENV = "BPF_AUDIT_PROPERTY_HOOKS"
CI_EXAMPLES = 40
NIGHTLY_EXAMPLES = 500


def register(cache_root: Path) -> None:
    """Register both profiles (idempotent); hypothesis's storage (example database, caches) under `cache_root`."""
    set_hypothesis_home_dir(cache_root / "hypothesis")  # not .hypothesis/ in the current directory
    db = DirectoryBasedExampleDatabase(str(cache_root / "hypothesis" / "examples"))
    common: dict[str, Any] = dict(deadline=None, print_blob=True,
                                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                         HealthCheck.function_scoped_fixture])
    # derandomize implies no database: a CI run is the same examples every time
    settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, **common)
    # derandomize=False explicitly: under CI=true hypothesis loads its own derandomized "ci" profile, and a
    # registered profile inherits from whatever is loaded (the nightly job then lost its seed).
    settings.register_profile("nightly", max_examples=NIGHTLY_EXAMPLES, database=db, derandomize=False,
                              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                              **common)


def selected_name(option: str | None) -> str:
    """The profile --hypothesis-profile named (`option`), or ci."""
    return option or "ci"


def selected(cache_root: Path, profile: str, forced_seed: str | None) -> tuple[settings, int | None]:
    """The `profile`'s settings and, for a randomized profile, the seed: the one --hypothesis-seed forced (hypothesis
    applies it itself), else a new one the caller applies and prints."""
    register(cache_root)
    base = settings.get_profile(profile)
    examples = os.environ.get(EXAMPLES_ENV)
    if examples:
        if not examples.isdigit() or int(examples) < 1:
            raise ValueError(f"{EXAMPLES_ENV}={examples!r}: write a positive number of examples")
        base = settings(base, max_examples=int(examples))
    if base.derandomize:
        return base, None
    if forced_seed is not None:
        if not forced_seed.isdigit():
            raise ValueError(f"--hypothesis-seed {forced_seed!r}: write a non-negative integer")
        return base, int(forced_seed)
    return base, random.SystemRandom().randrange(2**32)


def selected_hooks() -> tuple[str, ...] | None:
    """The hooks to generate programs for (None: all of harness.gen.ast.HOOKS)."""
    from harness.gen.ast import HOOKS

    raw = os.environ.get(HOOKS_ENV, "").strip()
    if not raw:
        return None
    hooks = tuple(h.strip() for h in raw.split(",") if h.strip())
    unknown = [h for h in hooks if h not in HOOKS]
    if unknown:
        raise ValueError(f"{HOOKS_ENV}={raw!r}: unknown hook(s) {', '.join(unknown)}; known: {', '.join(HOOKS)}")
    return hooks
