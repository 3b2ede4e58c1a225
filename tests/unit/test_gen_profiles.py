# SPDX-License-Identifier: GPL-2.0
"""harness.gen.profiles: the property's hypothesis profiles and the environment variables that pick them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.gen import profiles


@pytest.fixture(autouse=True)
def _restore_hypothesis_home():
    """profiles.register() points hypothesis's storage at the given cache: undo it for the other tests."""
    from hypothesis.configuration import set_hypothesis_home_dir

    yield
    set_hypothesis_home_dir(None)


def test_ci_is_the_default_derandomized_without_database(monkeypatch, tmp_path: Path) -> None:
    for var in (profiles.PROFILE_ENV, profiles.EXAMPLES_ENV, profiles.SEED_ENV):
        monkeypatch.delenv(var, raising=False)
    chosen, seed = profiles.selected(tmp_path)
    assert profiles.selected_name() == "ci" and seed is None
    assert chosen.derandomize and chosen.database is None and chosen.max_examples == profiles.CI_EXAMPLES


def test_nightly_has_a_seed_and_its_database_under_the_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(profiles.PROFILE_ENV, "nightly")
    monkeypatch.setenv(profiles.SEED_ENV, "1234")
    monkeypatch.setenv(profiles.EXAMPLES_ENV, "7")
    chosen, seed = profiles.selected(tmp_path)
    assert seed == 1234 and chosen.max_examples == 7 and not chosen.derandomize
    assert str(tmp_path / "hypothesis") in str(chosen.database)
    monkeypatch.delenv(profiles.SEED_ENV)
    assert profiles.selected(tmp_path)[1] is not None  # a fresh random seed


@pytest.mark.parametrize(("var", "value", "says"), [
    (profiles.PROFILE_ENV, "weekly", "choose one of ci, nightly"),
    (profiles.EXAMPLES_ENV, "many", "positive number"),
    (profiles.HOOKS_ENV, "file_open,bprm_check", "unknown hook(s) bprm_check"),
])
def test_bad_values_say_what_to_write(monkeypatch, tmp_path: Path, var: str, value: str, says: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=r".*" + says.replace("(", r"\(").replace(")", r"\)")):
        profiles.selected(tmp_path)
        profiles.selected_hooks()


def test_hooks_narrow_the_generator(monkeypatch) -> None:
    monkeypatch.setenv(profiles.HOOKS_ENV, " socket_connect , task_kill ")
    assert profiles.selected_hooks() == ("socket_connect", "task_kill")
    monkeypatch.setenv(profiles.HOOKS_ENV, "")
    assert profiles.selected_hooks() is None
