# SPDX-License-Identifier: GPL-2.0
"""tests/conftest.py holds each test to its directory: tests/unit/ builds no kernel and boots no VM, every test in
tests/system/ does one or the other (its marks say which, automatic or by hand). A misplaced test is a usage
error at collection that names it and where it belongs."""

import pytest
from helpers import HERE

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester):
    """A scratch project with this repository's tests/conftest.py: tests/unit/ and tests/system/ fill in."""
    pytester.makeini("[pytest]\nmarkers =\n    vm: boots\n    slow: builds\n")
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    (pytester.path / "tests" / "system").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (pytester.path / "tests" / "unit" / "test_pure.py").write_text("def test_parses():\n    pass\n")
    (pytester.path / "tests" / "system" / "test_real.py").write_text(
        "import pytest\n\n\ndef test_boots(vm):\n    pass\n\n\n"
        "@pytest.mark.slow\ndef test_builds_in_its_body():\n    pass\n")
    return pytester


def test_tests_in_their_directories_collect(project):
    result = project.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "tests")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["tests/system/test_real.py::test_boots",
                                 "tests/system/test_real.py::test_builds_in_its_body",
                                 "tests/unit/test_pure.py::test_parses"])


def _misplace(project) -> None:
    (project.path / "tests" / "unit" / "test_x.py").write_text(
        "import pytest\n\n\ndef test_y(kernel_artifact):\n    pass\n\n\n"
        "@pytest.mark.vm\ndef test_boots_by_hand():\n    pass\n")
    (project.path / "tests" / "system" / "test_z.py").write_text("def test_pure():\n    pass\n")


MISPLACED = [
    "*tests in the wrong directory (tests/unit: no kernel build and no VM; tests/system: a build or a VM):",
    "  tests/system/test_z.py::test_pure neither builds a kernel nor boots a VM (no slow or vm mark): "
    "move it to tests/unit/*",
    "  tests/unit/test_x.py::test_y builds a kernel (slow): move it to tests/system/",
    "  tests/unit/test_x.py::test_boots_by_hand boots a VM (vm): move it to tests/system/",
]


def test_a_building_test_in_unit_and_a_pure_test_in_system_are_usage_errors(project):
    _misplace(project)
    # -m cannot hide a misplaced test: the check sees every collected item, deselected or not
    result = project.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["ERROR: " + MISPLACED[0][1:], *MISPLACED[1:]])
    assert "test_pure.py" not in result.stderr.str() and "test_real.py" not in result.stderr.str()


def test_a_misplaced_test_stops_the_run_before_any_kernel_is_prepared(project):
    """Not only at --collect-only: the run ends at collection, with and without xdist, and the kernel the
    misplaced test asks for is not prepared (this test's marks forbid a build anyway: it would be refused)."""
    _misplace(project)
    cache = ("--harness-cache", str(project.path / "cache"))
    plain = project.runpytest_subprocess("-p", "no:cacheprovider", *cache, "tests")
    assert plain.ret == pytest.ExitCode.USAGE_ERROR, plain.stdout.str() + plain.stderr.str()
    plain.stderr.fnmatch_lines(["ERROR: " + MISPLACED[0][1:], *MISPLACED[1:]])
    # xdist shows a worker's usage error as an interruption with the same message
    xdist = project.runpytest_subprocess("-p", "no:cacheprovider", *cache, "-n", "2", "tests")
    assert xdist.ret == pytest.ExitCode.INTERRUPTED, xdist.stdout.str() + xdist.stderr.str()
    xdist.stdout.fnmatch_lines([*MISPLACED[:-1], MISPLACED[-1] + "*"])
    for res in (plain, xdist):
        out = res.stdout.str() + res.stderr.str()
        assert "stage failed" not in out and "refused" not in out and " passed" not in out, out
