# SPDX-License-Identifier: GPL-2.0
"""Properties of harness.kconfig.merge: fragments that do not conflict merge to the same options in any order;
a conflict is an error in every order."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.kernel import kconfig

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.expanduser("~/.cache/hypothesis/bpf-audit-harness"))
PURE = settings(database=None, deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])

OPTIONS = [f"CONFIG_OPT_{i}" for i in range(12)]
VALUES = st.sampled_from(["y", "n", "m", '"text"', "42", "0x10"])


@st.composite
def consistent_fragments(draw) -> list[kconfig.Fragment]:
    """Fragments drawn from one global assignment, so any option two fragments share has one value."""
    truth = draw(st.dictionaries(st.sampled_from(OPTIONS), VALUES, min_size=1))
    frags = []
    for n in range(draw(st.integers(1, 5))):
        chosen = draw(st.lists(st.sampled_from(sorted(truth)), unique=True))
        text = "\n".join(f"# {o} is not set" if truth[o] == "n" else f"{o}={truth[o]}" for o in chosen)
        frags.append(kconfig.parse_fragment(text, f"frag{n}.config"))
    return frags


def values(merged: kconfig.MergedConfig) -> dict[str, str]:
    return {s.name: s.value for s in merged.settings}


@PURE
@given(frags=consistent_fragments(), data=st.data())
def test_merge_is_order_independent_without_conflicts(frags: list[kconfig.Fragment], data) -> None:
    shuffled = data.draw(st.permutations(frags))
    a, b = kconfig.merge(frags), kconfig.merge(list(shuffled))
    assert values(a) == values(b)
    assert len(a.settings) == len({s.name for f in frags for s in f.settings})
    # every merged option comes from the first fragment (in that order) that asked for it
    for s in b.settings:
        first = next(f for f in shuffled if any(x.name == s.name for x in f.settings))
        assert s.source == first.path


@PURE
@given(frags=consistent_fragments(), option=st.sampled_from(OPTIONS), data=st.data())
def test_a_conflict_is_an_error_in_every_order(frags: list[kconfig.Fragment], option: str, data) -> None:
    merged = values(kconfig.merge(frags))
    current = merged.get(option, "y")
    other = "m" if current != "m" else "y"
    first = kconfig.parse_fragment(f"{option}={current}", "a.config")
    clash = kconfig.parse_fragment(f"{option}={other}", "b.config")
    order = data.draw(st.permutations([*frags, first, clash]))
    try:
        kconfig.merge(list(order))
    except ConfigError as e:
        # it names the option and both sides: the odd one out (b.config) and a fragment that disagrees with it
        assert f"{clash.settings[0].render()} in b.config:1" in str(e)
        assert f"{first.settings[0].render()} in " in str(e)
    else:
        raise AssertionError(f"{option}={current} vs {other} merged without an error")
