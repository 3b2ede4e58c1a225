# SPDX-License-Identifier: GPL-2.0
"""Which test_loader a tree has: its tag encoding and the tags it parses, read from its own test_loader.c."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness.errors import UsageError
from harness.selftests.discover import SELFTESTS

# How a tree's bpf_misc.h writes a tag into a BTF decl tag, and how its test_loader reads it back:
PLAIN = "plain"  # "comment:test_expect_msg=TEXT" (the first test_loader, before __COUNTER__ prefixes)
COUNTER = "counter"  # "comment:test_expect_msg=<N>=TEXT" for msg/xlated/jited, the rest plain (6.12)
NUMBERED = "numbered"  # "comment:<N>:<tag>" for every tag, sorted with strverscmp (7.x)
# Every tag some test_loader parses, with the harness's support. `dynamic`: in the counter encoding these carry
# "<N>=" after the prefix. A tag the tree's test_loader does not parse is unknown there.
TAGS = ("test_description=", "test_expect_failure", "test_expect_success", "test_expect_failure_unpriv",
        "test_expect_success_unpriv", "test_auxiliary", "test_auxiliary_unpriv", "test_expect_msg=",
        "test_expect_msg_unpriv=", "test_expect_not_msg=", "test_expect_not_msg_unpriv=", "test_jited=",
        "test_jited_unpriv=", "test_expect_xlated=", "test_expect_xlated_unpriv=", "test_retval=",
        "test_retval_unpriv=", "test_log_level=", "test_prog_flags=", "test_arch=", "test_btf_path=",
        "test_btf_func_path=", "test_caps_unpriv=", "load_mode=", "test_expect_stderr=",
        "test_expect_stderr_unpriv=", "test_expect_stdout=", "test_expect_stdout_unpriv=", "test_linear_size=")
COUNTER_DYNAMIC = ("test_expect_msg=", "test_expect_msg_unpriv=", "test_jited=", "test_jited_unpriv=",
                   "test_expect_xlated=", "test_expect_xlated_unpriv=")
# __arch_* names -> uname -m of the machine test_progs runs on
ARCH_NAMES = {"X86_64": "x86_64", "ARM64": "aarch64", "RISCV64": "riscv64", "s390x": "s390x",
              "LOONGARCH": "loongarch64"}
INT_MIN = -(1 << 31)
TEST_DATA_LEN = 64


class DialectError(UsageError):
    """A tree whose test_loader.c this reader does not recognise (or that has none)."""


@dataclass(frozen=True)
class Dialect:
    """One tree's test_loader: how tags are encoded, which it parses, which __arch_* names it knows, the named
    __retval values parse_retval() takes, its POINTER_VALUE (the "any return value" retval), and whether its
    unpriv_helpers.c reads the kernel config for the mitigations."""

    name: str
    encoding: str
    tags: frozenset[str]
    arches: tuple[str, ...]
    retval_names: tuple[tuple[str, int], ...]
    pointer_value: int
    mitigations_config: bool = False  # get_unpriv_disabled() also wants CONFIG_CPU_MITIGATIONS=y in the config
    subtest_desc: bool = False  # subtests are named by program and described (7.x): test_progs' -t matches both

    @property
    def retvals(self) -> dict[str, int]:
        return dict(self.retval_names)

    def knows(self, tag: str) -> bool:
        return tag in self.tags


def _dialect(name: str, encoding: str, tags: tuple[str, ...], arches: tuple[str, ...],
             retvals: tuple[tuple[str, int], ...], pointer_value: int, mitigations_config: bool) -> Dialect:
    return Dialect(name, encoding, frozenset(tags), arches, retvals, pointer_value, mitigations_config)


# What Linux 6.12's and 7.3's test_loader.c parse (read from Debian's 6.12.118 and 7.3.4 trees); a tree's own
# test_loader.c is read by from_text(), these are what it is checked against in the tests.
LINUX_6_12 = _dialect("6.12", COUNTER, tuple(t for t in TAGS if "not_msg" not in t and "stderr" not in t
                                             and "stdout" not in t and t not in (
                                                 "test_btf_func_path=", "test_caps_unpriv=", "load_mode=",
                                                 "test_linear_size=")), ("X86_64", "ARM64", "RISCV64"),
                      (("INT_MIN", INT_MIN), ("POINTER_VALUE", 0xCAFE4A), ("TEST_DATA_LEN", TEST_DATA_LEN)), 0xCAFE4A,
                      False)
LINUX_7_3 = Dialect("7.3", NUMBERED, frozenset(TAGS), tuple(ARCH_NAMES), (("_INT_MIN", INT_MIN),), 0xBADCAFE, True,
                    True)

_POINTER = re.compile(r"#define\s+POINTER_VALUE\s+(0x[0-9a-fA-F]+|\d+)")
_LITERAL = re.compile(r'"((?:comment:)?[a-z_]+=?)"')


def from_text(test_loader_c: str, name: str = "", unpriv_helpers_c: str = "") -> Dialect:
    """The dialect of a tree's test_loader.c: its encoding (skip_decl_tag_pfx: numbered; skip_dynamic_pfx:
    counter; neither: plain), the tags it compares against (string literals), its __arch_* names and named
    retvals, its POINTER_VALUE; and whether its unpriv_helpers.c looks for CONFIG_CPU_MITIGATIONS=y."""
    if "parse_test_spec" not in test_loader_c:
        raise DialectError("no parse_test_spec() in it: not a test_loader this harness knows")
    if "skip_decl_tag_pfx" in test_loader_c or '"comment:%*d:' in test_loader_c:
        encoding = NUMBERED
    elif "skip_dynamic_pfx" in test_loader_c:
        encoding = COUNTER
    else:
        encoding = PLAIN
    literals = {m.removeprefix("comment:") for m in _LITERAL.findall(test_loader_c)}
    tags = frozenset(t for t in TAGS if t in literals)
    missing = {"test_expect_failure", "test_expect_success", "test_expect_msg="} - tags
    if missing:
        raise DialectError(f"its parse_test_spec() does not compare tags as 6.x/7.x do (no {', '.join(missing)})")
    arches = tuple(a for a in ARCH_NAMES if f'"{a}"' in test_loader_c)
    pointer = _POINTER.search(test_loader_c)
    pointer_value = int(pointer.group(1), 0) if pointer else 0xCAFE4A
    retvals: list[tuple[str, int]] = []
    if '"_INT_MIN"' in test_loader_c:
        retvals.append(("_INT_MIN", INT_MIN))
    for named, value in (("INT_MIN", INT_MIN), ("POINTER_VALUE", pointer_value), ("TEST_DATA_LEN", TEST_DATA_LEN)):
        if f'"{named}"' in test_loader_c:
            retvals.append((named, value))
    return Dialect(name or encoding, encoding, tags, arches, tuple(retvals), pointer_value,
                   '"CONFIG_CPU_MITIGATIONS=y"' in unpriv_helpers_c, "test__start_subtest_with_desc" in test_loader_c)


def tree_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL of a kernel tree's Makefile ("" when it has none)."""
    try:
        head = (Path(tree) / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        return ""
    v = re.search(r"^VERSION\s*=\s*(\d+)", head, re.M)
    p = re.search(r"^PATCHLEVEL\s*=\s*(\d+)", head, re.M)
    return f"{v.group(1)}.{p.group(1)}" if v and p else ""


@cache
def of_tree(tree: Path) -> Dialect:
    """The dialect of a kernel tree's selftests: its own test_loader.c read, named by the tree's version."""
    path = Path(tree) / SELFTESTS / "test_loader.c"
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise DialectError(f"{path} cannot be read ({e.strerror}): the tree's test_loader decides how its tags "
                           "are read") from e
    try:
        helpers = (path.parent / "unpriv_helpers.c").read_text(errors="replace")
    except OSError:
        helpers = ""
    try:
        return from_text(text, tree_version(tree), helpers)
    except DialectError as e:
        raise DialectError(f"{path}: {e}") from None
