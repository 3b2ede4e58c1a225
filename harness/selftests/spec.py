# SPDX-License-Identifier: GPL-2.0
"""test_loader's test specs: each program's bpf_misc.h tags (its BTF decl tags) as priv and unpriv subspecs, read
as the tree's own test_loader reads them (harness.selftests.dialect: 6.12's and 7.3's encodings and tags)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness.btf import FUNC, Btf
from harness.selftests.dialect import ARCH_NAMES, COUNTER, COUNTER_DYNAMIC, LINUX_6_12, NUMBERED, Dialect
from harness.selftests.match import Pattern, PatternError, compile_pattern

PRIV, UNPRIV = "priv", "unpriv"
MODES = (PRIV, UNPRIV)
UNPRIV_SUFFIX = " @unpriv"
TAG = "comment:"

# enum bpf_prog_load flags (include/uapi/linux/bpf.h) that __flag() may name.
PROG_FLAGS = {
    "BPF_F_STRICT_ALIGNMENT": 1 << 0,
    "BPF_F_ANY_ALIGNMENT": 1 << 1,
    "BPF_F_TEST_RND_HI32": 1 << 2,
    "BPF_F_TEST_STATE_FREQ": 1 << 3,
    "BPF_F_SLEEPABLE": 1 << 4,
    "BPF_F_XDP_HAS_FRAGS": 1 << 5,
    "BPF_F_TEST_REG_INVARIANTS": 1 << 7,
}
# testing_prog_flags(): the flags every test_loader program gets, each only if the kernel accepts it on a
# trivial BPF_PROG_TYPE_SOCKET_FILTER program (mov r0, 0; exit). A runner probes once and passes the accepted
# mask to TestSpec.prog_flags().
TESTING_PROG_FLAGS = ("BPF_F_TEST_RND_HI32", "BPF_F_TEST_REG_INVARIANTS")
TEST_DATA_LEN = 64
# test_loader's drop_capabilities() for unpriv subtests.
UNPRIV_DROP_CAPS = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_BPF")
# __linear_size applies to these program types only (enum bpf_prog_type): SCHED_CLS, SCHED_ACT, CGROUP_SKB
LINEAR_SIZE_TYPES = frozenset({3, 4, 8})
JITED_MODE, NO_JITED_MODE = "jited", "no_jited"


@dataclass(frozen=True)
class Reason:
    """Why this harness cannot judge a subtest: the feature it needs (the key totals group by) and details."""

    feature: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.feature} ({self.detail})" if self.detail else self.feature


class SpecError(ValueError):
    """A tag test_loader cannot parse: the program is no subtest and its test fails (PRINT_FAIL)."""


@dataclass(frozen=True)
class SubSpec:
    """What one mode (priv or unpriv) of a program expects."""

    name: str
    expect_failure: bool = False
    msgs: tuple[Pattern, ...] = ()
    xlated: tuple[Pattern, ...] = ()
    jited: tuple[Pattern, ...] = ()
    retval: int | None = None  # None: not executed; else BPF_PROG_TEST_RUN's expected return value
    stderr: tuple[Pattern, ...] = ()  # the program's BPF stderr stream after the test run (7.x)
    stdout: tuple[Pattern, ...] = ()
    caps: int = 0  # __caps_unpriv: capabilities given back to the unprivileged subtest (a mask of CAP_ numbers)
    any_retval_value: int | None = None  # POINTER_VALUE of the tree: any return value is accepted

    @property
    def execute(self) -> bool:
        return self.retval is not None

    @property
    def any_retval(self) -> bool:
        """__retval(POINTER_VALUE): run the program, accept whatever it returns."""
        return self.retval is not None and self.retval == self.any_retval_value


@dataclass(frozen=True)
class TestSpec:
    """parse_test_spec()'s result for one program. `modes` are the subtests it has (priv, unpriv); an
    auxiliary program has modes but no subtest: it is loaded beside every subtest of its file in those modes."""

    __test__ = False  # not a pytest test class, despite the name

    prog_name: str
    section: str = ""
    description: str = ""
    priv: SubSpec = field(default_factory=lambda: SubSpec(""))
    unpriv: SubSpec = field(default_factory=lambda: SubSpec(""))
    modes: tuple[str, ...] = (PRIV,)
    auxiliary: bool = False
    log_level: int = 0
    flags_set: int = 0  # prog flags the tags set, applied over the testing_prog_flags() base
    flags_cleared: int = 0  # ... and the ones they clear ("!FLAG")
    arches: tuple[str, ...] = ()  # empty: every arch (uname -m names)
    btf_path: str | None = None
    error: str | None = None  # set: test_loader could not parse the tags (the spec is not valid)
    unsupported: tuple[Reason, ...] = ()  # file/program level reasons this harness cannot run it (both modes)
    exec_unsupported: tuple[Reason, ...] = ()  # reasons it cannot judge a test run (__retval) of it
    unknown_tags: tuple[str, ...] = ()  # tags the tree's test_loader does not parse: no verdict is given
    btf_func_path: str | None = None
    load_mode: str | None = None  # __load_if_JITed / __load_if_no_JITed
    linear_size: int = 0
    dialect: str = ""

    @property
    def valid(self) -> bool:
        return self.error is None

    def subspec(self, mode: str) -> SubSpec:
        if mode not in MODES:
            raise ValueError(f"mode must be {PRIV!r} or {UNPRIV!r}, not {mode!r}")
        return self.priv if mode == PRIV else self.unpriv

    @property
    def subtests(self) -> tuple[str, ...]:
        """The modes that are subtests: none for an invalid or auxiliary program."""
        return () if not self.valid or self.auxiliary else self.modes

    def prog_flags(self, default: int = 0) -> int:
        """The load flags test_loader sets: testing_prog_flags()'s `default` (what the kernel accepted of
        TESTING_PROG_FLAGS) with the __flag tags applied in order. The program's own flags (a ".s" section is
        sleepable) are OR'd in by libbpf on top."""
        return (default & ~self.flags_cleared) | self.flags_set

    def log_level_for(self, min_log_level: int = 0) -> int:
        """prepare_case(): __log_level, raised to test_progs' verbosity minimum (0 quiet, 1 with -v, 2 with
        -vv) while keeping the stats bit 4."""
        if (self.log_level & 3) < min_log_level:
            return (self.log_level & 4) | min_log_level
        return self.log_level

    def runs_on(self, arch: str) -> bool:
        return not self.arches or arch in self.arches

    def unsupported_reasons(self, mode: str) -> tuple[Reason, ...]:
        """Why this harness cannot judge the subtest."""
        self.subspec(mode)
        return self.unsupported

    def with_unsupported(self, *reasons: Reason, execution: bool = False) -> TestSpec:
        """This spec with more reasons it cannot be judged; `execution`: only its test runs (__retval) cannot."""
        if execution:
            return replace(self, exec_unsupported=self.exec_unsupported + tuple(
                r for r in reasons if r not in self.exec_unsupported))
        return replace(self, unsupported=self.unsupported + tuple(r for r in reasons if r not in self.unsupported))


def parse_int(text: str, what: str) -> int:
    """parse_int(): "0x" then hex, else decimal (strtol: leading blanks and a sign allowed), truncated to a
    32-bit int as test_loader's `int` is."""
    body, base = (text[2:], 16) if text.startswith("0x") else (text, 10)
    value = _strtol(body, base)
    if value is None:
        raise SpecError(f"failed to parse {what} from '{text}'")
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _strtol(text: str, base: int) -> int | None:
    """strtol() as parse_int() checks it: the value when the whole string is consumed and fits a long, else
    None. No digits at all consume nothing, so only the empty string parses (as 0)."""
    i = len(text) - len(text.lstrip(" \t\n\v\f\r"))
    sign = 1
    if text[i:i + 1] in ("+", "-"):
        sign = -1 if text[i] == "-" else 1
        i += 1
    if base == 16 and text[i:i + 2].lower() == "0x" and text[i + 2:i + 3] and text[i + 2] in _HEX:
        i += 2
    digits = _HEX if base == 16 else "0123456789"
    j = i
    while j < len(text) and text[j] in digits:
        j += 1
    if j == i:
        return 0 if text == "" else None
    if j != len(text):
        return None
    value = sign * int(text[i:j], base)
    return value if -(1 << 63) <= value < 1 << 63 else None  # ERANGE


_HEX = "0123456789abcdefABCDEF"


def parse_caps(text: str) -> int:
    """7.x's parse_caps(): CAP_ numbers joined by "|" (bpf_misc.h defines the names as numbers); a CAP_ name left
    unexpanded, a zero or a non-number is an error."""
    mask = 0
    for token in (t for t in text.split("|") if t):
        if token.startswith("CAP_"):
            raise SpecError(f"define {token} constant in bpf_misc.h, failed to parse caps")
        value = _strtol_prefix(token)
        if not value:
            raise SpecError("failed to parse caps test caps")
        mask |= 1 << value
    return mask


def _strtol_prefix(text: str) -> int:
    """strtol(text, NULL, 10): the leading number, 0 when there is none."""
    s = text.lstrip(" \t\n\v\f\r")
    j = 1 if s[:1] in ("+", "-") else 0
    while j < len(s) and s[j].isdigit():
        j += 1
    try:
        return int(s[:j])
    except ValueError:
        return 0


def strverscmp(a: str, b: str) -> int:
    """glibc's strverscmp() as collect_decl_tags() sorts with it: digit runs compare as numbers ("comment:9:" before
    "comment:10:"); a run with a leading zero compares as a fraction (character by character)."""
    if a == b:
        return 0
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    start = i
    while start > 0 and a[start - 1].isdigit():
        start -= 1
    da, db = _digits(a, start), _digits(b, start)
    if da and db and not (da.startswith("0") or db.startswith("0")):
        if len(da) != len(db):
            return -1 if len(da) < len(db) else 1
    ca, cb = a[i:i + 1], b[i:i + 1]
    return -1 if ca < cb else 1


def _digits(s: str, start: int) -> str:
    j = start
    while j < len(s) and s[j].isdigit():
        j += 1
    return s[start:j]


def tag_bodies(tags: list[str], dialect: Dialect) -> list[str]:
    """The test tags of a program, without their encoding, in the order test_loader walks them: 7.x sorts the
    "comment:<N>:" tags with strverscmp and drops the others; older trees walk BTF order, tags with "comment:"."""
    if dialect.encoding == NUMBERED:
        ordered = sorted(tags, key=functools.cmp_to_key(strverscmp))
        out = []
        for t in ordered:
            if not t.startswith(TAG):
                continue
            num, sep, body = t[len(TAG):].partition(":")
            if sep and num.isdigit():
                out.append(body)
        return out
    return [t[len(TAG):] for t in tags if t.startswith(TAG)]


def _match_tag(body: str, dialect: Dialect) -> tuple[str, str | None] | None:
    """(tag, value) for a tag body: the known tag it starts with (exact for the ones without "=") and the value
    after it (the counter encoding's "<N>=" skipped for msg/xlated/jited tags)."""
    for tag in sorted(dialect.tags, key=len, reverse=True):
        if tag.endswith("="):
            if not body.startswith(tag):
                continue
            value = body[len(tag):]
            if dialect.encoding == COUNTER and tag in COUNTER_DYNAMIC:
                eq = value.find("=")
                if eq < 0:
                    return None  # skip_dynamic_pfx() finds no "<N>=": not this tag
                value = value[eq + 1:]
            return tag, value
        if body == tag:
            return tag, None
    return None


def parse_spec(tags: list[str], prog_name: str, *, section: str = "", arch: str = "x86_64",
               dialect: Dialect = LINUX_6_12, prog_type: int | None = None) -> TestSpec:
    """parse_test_spec() on a program's decl tags (BTF order) as `dialect`'s test_loader parses them. A tag it
    cannot parse gives a spec with `error` set (not valid: no subtest, the test fails); a tag it does not know at
    all is kept in `unknown_tags` (the harness gives such a subtest no verdict). `arch` (uname -m) decides which
    __jited patterns are collected; `prog_type` is what __linear_size checks (None: not known, accepted)."""
    try:
        return _parse(tags, prog_name, section, arch, dialect, prog_type)
    except (SpecError, PatternError) as e:
        return TestSpec(prog_name, section, prog_name, modes=(), error=str(e), dialect=dialect.name)


@dataclass
class _Side:
    """One mode's collected patterns and next-line states, as parse_test_spec() keeps them in locals."""

    lists: dict[str, list[Pattern]] = field(default_factory=lambda: {k: [] for k in (
        "msgs", "xlated", "jited", "stderr", "stdout")})
    next_line: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(("xlated", "jited", "stderr", "stdout"),
                                                                             True))

    def push_disasm(self, key: str, text: str) -> None:
        """push_disasm_msg(): "..." lifts the next-line rule for the next pattern; each other pattern must be on
        the line after the previous match."""
        if text == "...":
            self.next_line[key] = False
            return
        self.lists[key].append(compile_pattern(text, on_next_line=self.next_line[key]))
        self.next_line[key] = True


@dataclass
class _Collect:
    """What parse_test_spec() keeps in locals while it walks a program's tags; one method per tag."""

    prog_name: str
    arch: str
    dialect: Dialect
    prog_type: int | None
    sides: dict[str, _Side] = field(default_factory=lambda: {PRIV: _Side(), UNPRIV: _Side()})
    mode_mask: set[str] = field(default_factory=set)
    fail: dict[str, bool] = field(default_factory=lambda: {PRIV: False, UNPRIV: False})
    retval: dict[str, int | None] = field(default_factory=lambda: {PRIV: None, UNPRIV: None})
    caps: int = 0
    description: str | None = None
    has_unpriv_result: bool = False
    has_unpriv_retval: bool = False
    auxiliary: bool = False
    collect_jit: bool = False
    log_level: int = 0
    flags_set: int = 0
    flags_cleared: int = 0
    linear_size: int = 0
    arches: list[str] = field(default_factory=list)
    btf_path: str | None = None
    btf_func_path: str | None = None
    load_mode: str | None = None
    unknown: list[str] = field(default_factory=list)

    # tags with an _unpriv twin: (the tag without _unpriv, its value, whether it was the _unpriv one)
    def result(self, base: str, val: str | None, unpriv: bool) -> None:
        side = UNPRIV if unpriv else PRIV
        self.fail[side] = base == "test_expect_failure"
        self.mode_mask.add(side)
        self.has_unpriv_result |= unpriv

    def auxiliary_tag(self, base: str, val: str | None, unpriv: bool) -> None:
        self.auxiliary = True
        self.mode_mask.add(UNPRIV if unpriv else PRIV)

    def msg(self, base: str, val: str | None, unpriv: bool) -> None:
        side = UNPRIV if unpriv else PRIV
        self.sides[side].lists["msgs"].append(compile_pattern(val or "", negative="not_msg" in base))
        self.mode_mask.add(side)

    def jited(self, base: str, val: str | None, unpriv: bool) -> None:
        if not self.arches:
            raise SpecError(f"__{'unpriv_' if unpriv else ''}jited used before __arch_*")
        if self.collect_jit:
            side = UNPRIV if unpriv else PRIV
            self.sides[side].push_disasm("jited", val or "")
            self.mode_mask.add(side)

    def xlated(self, base: str, val: str | None, unpriv: bool) -> None:
        side = UNPRIV if unpriv else PRIV
        self.sides[side].push_disasm("xlated", val or "")
        self.mode_mask.add(side)

    def output(self, base: str, val: str | None, unpriv: bool) -> None:
        side = UNPRIV if unpriv else PRIV
        self.sides[side].push_disasm(base[len("test_expect_"):-1], val or "")  # no mode of its own

    def retval_tag(self, base: str, val: str | None, unpriv: bool) -> None:
        side = UNPRIV if unpriv else PRIV
        what = "__retval_unpriv" if unpriv else "__retval"
        self.retval[side] = self.dialect.retvals[val] if val in self.dialect.retvals else parse_int(val or "", what)
        self.mode_mask.add(side)
        self.has_unpriv_retval |= unpriv

    # tags without a twin: their value
    def log_level_tag(self, val: str | None) -> None:
        self.log_level = parse_int(val or "", "test log level")

    def prog_flags(self, val: str | None) -> None:
        clear = (val or "").startswith("!")
        name = (val or "")[1:] if clear else (val or "")
        flag = PROG_FLAGS[name] if name in PROG_FLAGS else parse_int(name, "test prog flags")
        if clear:
            self.flags_cleared, self.flags_set = self.flags_cleared | flag, self.flags_set & ~flag
        else:
            self.flags_set, self.flags_cleared = self.flags_set | flag, self.flags_cleared & ~flag

    def arch_tag(self, val: str | None) -> None:
        if val not in self.dialect.arches:
            raise SpecError(f"bad arch spec: '{val}'")
        self.arches.append(ARCH_NAMES[val])
        self.collect_jit = ARCH_NAMES[val] == self.arch
        self.sides[PRIV].next_line["jited"] = self.sides[UNPRIV].next_line["jited"] = True

    def caps_unpriv(self, val: str | None) -> None:
        self.caps |= parse_caps(val or "")
        self.mode_mask.add(UNPRIV)

    def load_mode_tag(self, val: str | None) -> None:
        if val not in (JITED_MODE, NO_JITED_MODE):
            raise SpecError(f"bad load spec: '{val}'")
        self.load_mode = val

    def linear_size_tag(self, val: str | None) -> None:
        if self.prog_type is not None and self.prog_type not in LINEAR_SIZE_TYPES:
            raise SpecError("__linear_size for unsupported program type")
        self.linear_size = parse_int(val or "", "test linear size")

    def tag(self, tag: str, val: str | None) -> None:
        """Take one tag: matched by name without "_unpriv" where it has an _unpriv twin, else by its exact name."""
        base = tag.replace("_unpriv", "")
        if base in _BY_BASE:
            _BY_BASE[base](self, base, val, tag.endswith("_unpriv=") or tag.endswith("_unpriv"))
        elif tag in _VALUE_TAGS:
            setattr(self, _VALUE_TAGS[tag], val)
        elif tag in _BY_TAG:
            _BY_TAG[tag](self, val)

    def spec(self, section: str) -> TestSpec:
        """The TestSpec the tags make: the unprivileged side inherits what it does not set."""
        modes = tuple(m for m in MODES if m in self.mode_mask) or (PRIV,)
        description = self.description if self.description is not None else self.prog_name
        p, fail, retval, dialect = self.sides[PRIV].lists, self.fail, self.retval, self.dialect
        priv = SubSpec(description, fail[PRIV], tuple(p["msgs"]), tuple(p["xlated"]), tuple(p["jited"]),
                       retval[PRIV], tuple(p["stderr"]), tuple(p["stdout"]), 0, dialect.pointer_value)
        u = self.sides[UNPRIV].lists
        unpriv_spec = SubSpec(
            description + UNPRIV_SUFFIX,
            fail[UNPRIV] if self.has_unpriv_result else fail[PRIV],
            tuple(u["msgs"]) or priv.msgs, tuple(u["xlated"]) or priv.xlated, tuple(u["jited"]) or priv.jited,
            retval[UNPRIV] if self.has_unpriv_retval else retval[PRIV],
            tuple(u["stderr"]) or priv.stderr, tuple(u["stdout"]) or priv.stdout, self.caps, dialect.pointer_value,
        )
        return TestSpec(self.prog_name, section, description, priv, unpriv_spec, modes, self.auxiliary,
                        self.log_level, self.flags_set, self.flags_cleared, tuple(dict.fromkeys(self.arches)),
                        self.btf_path, unknown_tags=tuple(self.unknown), btf_func_path=self.btf_func_path,
                        load_mode=self.load_mode, linear_size=self.linear_size, dialect=dialect.name)


_BY_BASE: dict[str, Callable[[_Collect, str, str | None, bool], None]] = {
    "test_expect_failure": _Collect.result,
    "test_expect_success": _Collect.result,
    "test_auxiliary": _Collect.auxiliary_tag,
    "test_expect_msg=": _Collect.msg,
    "test_expect_not_msg=": _Collect.msg,
    "test_jited=": _Collect.jited,
    "test_expect_xlated=": _Collect.xlated,
    "test_expect_stderr=": _Collect.output,
    "test_expect_stdout=": _Collect.output,
    "test_retval=": _Collect.retval_tag,
}
_VALUE_TAGS = {"test_description=": "description", "test_btf_path=": "btf_path", "test_btf_func_path=": "btf_func_path"}
_BY_TAG: dict[str, Callable[[_Collect, str | None], None]] = {
    "test_log_level=": _Collect.log_level_tag,
    "test_prog_flags=": _Collect.prog_flags,
    "test_arch=": _Collect.arch_tag,
    "test_caps_unpriv=": _Collect.caps_unpriv,
    "load_mode=": _Collect.load_mode_tag,
    "test_linear_size=": _Collect.linear_size_tag,
}


def _parse(tags: list[str], prog_name: str, section: str, arch: str, dialect: Dialect,
           prog_type: int | None) -> TestSpec:
    state = _Collect(prog_name, arch, dialect, prog_type)
    for body in tag_bodies(tags, dialect):
        found = _match_tag(body, dialect)
        if found is None:
            state.unknown.append(body)
            continue
        state.tag(*found)
    return state.spec(section)


def spec_for(btf: Btf | None, prog_name: str, *, section: str = "", arch: str = "x86_64",
             dialect: Dialect = LINUX_6_12, prog_type: int | None = None) -> TestSpec:
    """The spec of program `prog_name` from an object's BTF: the DECL_TAGs on its FUNC, in BTF order."""
    if btf is None:
        return TestSpec(prog_name, section, prog_name, modes=(), error="BPF object has no BTF", dialect=dialect.name)
    func = btf.find(prog_name, FUNC)
    if func is None:
        return TestSpec(prog_name, section, prog_name, modes=(),
                        error=f"failed to find FUNC BTF type for '{prog_name}'", dialect=dialect.name)
    return parse_spec(btf.decl_tags(func.id), prog_name, section=section, arch=arch, dialect=dialect,
                      prog_type=prog_type)
