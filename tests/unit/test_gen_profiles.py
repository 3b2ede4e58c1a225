# SPDX-License-Identifier: GPL-2.0
"""harness.gen.profiles: the property's hypothesis profiles, chosen with hypothesis' own pytest options."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.gen import profiles

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _restore_hypothesis_home():
    """profiles.register() points hypothesis's storage at the given cache: undo it for the other tests."""
    from hypothesis.configuration import set_hypothesis_home_dir

    yield
    set_hypothesis_home_dir(None)


def test_ci_is_the_default_derandomized_without_database(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(profiles.EXAMPLES_ENV, raising=False)
    name = profiles.selected_name(None)
    chosen, seed = profiles.selected(tmp_path, name, None)
    assert name == "ci" and seed is None
    assert chosen.derandomize and chosen.database is None and chosen.max_examples == profiles.CI_EXAMPLES


def test_nightly_has_a_seed_and_its_database_under_the_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(profiles.EXAMPLES_ENV, "7")
    chosen, seed = profiles.selected(tmp_path, profiles.selected_name("nightly"), "1234")
    assert seed == 1234 and chosen.max_examples == 7 and not chosen.derandomize
    assert str(tmp_path / "hypothesis") in str(chosen.database)
    assert profiles.selected(tmp_path, "nightly", None)[1] is not None  # a fresh random seed


@pytest.mark.parametrize(("var", "value", "says"), [
    (profiles.EXAMPLES_ENV, "many", "positive number"),
    (profiles.HOOKS_ENV, "file_open,bprm_check", "unknown hook(s) bprm_check"),
])
def test_bad_values_say_what_to_write(monkeypatch, tmp_path: Path, var: str, value: str, says: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=r".*" + says.replace("(", r"\(").replace(")", r"\)")):
        profiles.selected(tmp_path, "nightly", None)
        profiles.selected_hooks()


def test_a_bad_seed_says_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--hypothesis-seed 'x1': write a non-negative integer"):
        profiles.selected(tmp_path, "nightly", "x1")


def test_hooks_narrow_the_generator(monkeypatch) -> None:
    monkeypatch.setenv(profiles.HOOKS_ENV, " socket_connect , task_kill ")
    assert profiles.selected_hooks() == ("socket_connect", "task_kill")
    monkeypatch.setenv(profiles.HOOKS_ENV, "")
    assert profiles.selected_hooks() is None


def test_hypothesis_own_options_load_the_property_profiles(pytester, tmp_path: Path) -> None:
    """--hypothesis-profile nightly works in a real pytest session: the plugin registers the profiles before
    hypothesis' own plugin loads the one named (an unregistered name would stop the session at start-up)."""
    pytester.makepyfile(test_profile="""
        from hypothesis import core, settings

        def test_loaded():
            assert settings.get_current_profile_name() == "nightly"
            assert settings.default.max_examples == 500 and not settings.default.derandomize
            assert core.global_force_seed == 77
    """)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cache-dir", str(tmp_path / "cache"),
                                        "--hypothesis-profile", "nightly", "--hypothesis-seed", "77")
    res.assert_outcomes(passed=1)
