# SPDX-License-Identifier: GPL-2.0
"""test_loader's test specs: each program's bpf_misc.h tags (its BTF decl tags) as priv and unpriv subspecs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harness.selftests.btf import FUNC, Btf
from harness.selftests.match import Pattern, PatternError, compile_pattern

PRIV, UNPRIV = "priv", "unpriv"
MODES = (PRIV, UNPRIV)
UNPRIV_SUFFIX = " @unpriv"

TAG = "comment:"
TEST_EXPECT_FAILURE = TAG + "test_expect_failure"
TEST_EXPECT_SUCCESS = TAG + "test_expect_success"
TEST_EXPECT_FAILURE_UNPRIV = TAG + "test_expect_failure_unpriv"
TEST_EXPECT_SUCCESS_UNPRIV = TAG + "test_expect_success_unpriv"
TEST_AUXILIARY = TAG + "test_auxiliary"
TEST_AUXILIARY_UNPRIV = TAG + "test_auxiliary_unpriv"
TEST_DESCRIPTION = TAG + "test_description="
TEST_MSG = TAG + "test_expect_msg="  # + counter "=" + text
TEST_MSG_UNPRIV = TAG + "test_expect_msg_unpriv="
TEST_XLATED = TAG + "test_expect_xlated="
TEST_XLATED_UNPRIV = TAG + "test_expect_xlated_unpriv="
TEST_JITED = TAG + "test_jited="
TEST_JITED_UNPRIV = TAG + "test_jited_unpriv="
TEST_RETVAL = TAG + "test_retval="
TEST_RETVAL_UNPRIV = TAG + "test_retval_unpriv="
TEST_LOG_LEVEL = TAG + "test_log_level="
TEST_PROG_FLAGS = TAG + "test_prog_flags="
TEST_ARCH = TAG + "test_arch="
TEST_BTF_PATH = TAG + "test_btf_path="

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
ARCHES = {"X86_64": "x86_64", "ARM64": "arm64", "RISCV64": "riscv64"}
# Named __retval values (parse_retval), and the one that accepts any return value.
INT_MIN = -(1 << 31)
POINTER_VALUE = 0xCAFE4A
TEST_DATA_LEN = 64
RETVAL_NAMES = {"INT_MIN": INT_MIN, "POINTER_VALUE": POINTER_VALUE, "TEST_DATA_LEN": TEST_DATA_LEN}
# test_loader's drop_capabilities() for unpriv subtests.
UNPRIV_DROP_CAPS = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_BPF")


@dataclass(frozen=True)
class Reason:
    """Why this harness cannot judge a subtest: the feature it needs (the key totals group by) and details."""

    feature: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.feature} ({self.detail})" if self.detail else self.feature


XLATED = Reason("__xlated", "needs the xlated program's disassembly, which the agent cannot fetch")
JITED = Reason("__jited", "needs the JITed program's disassembly through LLVM")


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

    @property
    def execute(self) -> bool:
        return self.retval is not None

    @property
    def any_retval(self) -> bool:
        """__retval(POINTER_VALUE): run the program, accept whatever it returns."""
        return self.retval == POINTER_VALUE


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
    arches: tuple[str, ...] = ()  # empty: every arch
    btf_path: str | None = None
    error: str | None = None  # set: test_loader could not parse the tags (the spec is not valid)
    unsupported: tuple[Reason, ...] = ()  # file/program level reasons this harness cannot run it (both modes)
    exec_unsupported: tuple[Reason, ...] = ()  # reasons it cannot judge a test run (__retval) of it

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
        """Why this harness cannot judge the subtest: the spec's own reasons plus what the mode expects."""
        sub = self.subspec(mode)
        return self.unsupported + ((XLATED,) if sub.xlated else ()) + ((JITED,) if sub.jited else ())

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


def parse_retval(text: str, what: str) -> int:
    return RETVAL_NAMES[text] if text in RETVAL_NAMES else parse_int(text, what)


def _dynamic(tag: str, prefix: str) -> str | None:
    """skip_dynamic_pfx(): the text after "<prefix><counter>=", or None."""
    if not tag.startswith(prefix):
        return None
    rest = tag[len(prefix):]
    eq = rest.find("=")
    return None if eq < 0 else rest[eq + 1:]


@dataclass
class _Collect:
    """Mutable state of one parse, as parse_test_spec() keeps it in locals."""

    msgs: list[Pattern] = field(default_factory=list)
    msgs_unpriv: list[Pattern] = field(default_factory=list)
    xlated: list[Pattern] = field(default_factory=list)
    xlated_unpriv: list[Pattern] = field(default_factory=list)
    jited: list[Pattern] = field(default_factory=list)
    jited_unpriv: list[Pattern] = field(default_factory=list)
    next_line: dict[str, bool] = field(default_factory=lambda: {"xlated": True, "xlated_unpriv": True,
                                                                 "jited": True, "jited_unpriv": True})


def _push_disasm(text: str, key: str, into: list[Pattern], state: _Collect) -> None:
    """push_disasm_msg(): "..." lifts the next-line rule for the next pattern; each pattern after a match must
    otherwise be on the line after it."""
    if text == "...":
        state.next_line[key] = False
        return
    into.append(compile_pattern(text, on_next_line=state.next_line[key]))
    state.next_line[key] = True


def parse_spec(tags: list[str], prog_name: str, *, section: str = "", arch: str = "x86_64") -> TestSpec:
    """parse_test_spec() on a program's decl tags (BTF order). A tag test_loader cannot parse gives a spec with
    `error` set (not valid: no subtest). `arch` decides which __jited patterns are collected (those after an
    __arch_* naming the arch test_progs runs on)."""
    try:
        return _parse(tags, prog_name, section, arch)
    except (SpecError, PatternError) as e:
        return TestSpec(prog_name, section, prog_name, modes=(), error=str(e))


def _parse(tags: list[str], prog_name: str, section: str, arch: str) -> TestSpec:
    st = _Collect()
    description: str | None = None
    priv_fail = unpriv_fail = False
    has_unpriv_result = False
    priv_retval: int | None = None
    unpriv_retval: int | None = None
    has_unpriv_retval = False
    priv_mode = unpriv_mode = False
    auxiliary = False
    log_level = flags_set = flags_cleared = 0
    arches: list[str] = []
    collect_jit = False
    btf_path: str | None = None
    for s in tags:
        if s.startswith(TEST_DESCRIPTION):
            description = s[len(TEST_DESCRIPTION):]
        elif s == TEST_EXPECT_FAILURE:
            priv_fail, priv_mode = True, True
        elif s == TEST_EXPECT_SUCCESS:
            priv_fail, priv_mode = False, True
        elif s == TEST_EXPECT_FAILURE_UNPRIV:
            unpriv_fail, unpriv_mode, has_unpriv_result = True, True, True
        elif s == TEST_EXPECT_SUCCESS_UNPRIV:
            unpriv_fail, unpriv_mode, has_unpriv_result = False, True, True
        elif s == TEST_AUXILIARY:
            auxiliary, priv_mode = True, True
        elif s == TEST_AUXILIARY_UNPRIV:
            auxiliary, unpriv_mode = True, True
        elif (msg := _dynamic(s, TEST_MSG)) is not None:
            st.msgs.append(compile_pattern(msg))
            priv_mode = True
        elif (msg := _dynamic(s, TEST_MSG_UNPRIV)) is not None:
            st.msgs_unpriv.append(compile_pattern(msg))
            unpriv_mode = True
        elif (msg := _dynamic(s, TEST_JITED)) is not None:
            if not arches:
                raise SpecError("__jited used before __arch_*")
            if collect_jit:
                _push_disasm(msg, "jited", st.jited, st)
                priv_mode = True
        elif (msg := _dynamic(s, TEST_JITED_UNPRIV)) is not None:
            if not arches:
                raise SpecError("__unpriv_jited used before __arch_*")
            if collect_jit:
                _push_disasm(msg, "jited_unpriv", st.jited_unpriv, st)
                unpriv_mode = True
        elif (msg := _dynamic(s, TEST_XLATED)) is not None:
            _push_disasm(msg, "xlated", st.xlated, st)
            priv_mode = True
        elif (msg := _dynamic(s, TEST_XLATED_UNPRIV)) is not None:
            _push_disasm(msg, "xlated_unpriv", st.xlated_unpriv, st)
            unpriv_mode = True
        elif s.startswith(TEST_RETVAL):
            priv_retval, priv_mode = parse_retval(s[len(TEST_RETVAL):], "__retval"), True
        elif s.startswith(TEST_RETVAL_UNPRIV):
            unpriv_retval = parse_retval(s[len(TEST_RETVAL_UNPRIV):], "__retval_unpriv")
            unpriv_mode, has_unpriv_retval = True, True
        elif s.startswith(TEST_LOG_LEVEL):
            log_level = parse_int(s[len(TEST_LOG_LEVEL):], "test log level")
        elif s.startswith(TEST_PROG_FLAGS):
            val = s[len(TEST_PROG_FLAGS):]
            clear = val.startswith("!")
            val = val[1:] if clear else val
            flag = PROG_FLAGS[val] if val in PROG_FLAGS else parse_int(val, "test prog flags")
            if clear:
                flags_cleared, flags_set = flags_cleared | flag, flags_set & ~flag
            else:
                flags_set, flags_cleared = flags_set | flag, flags_cleared & ~flag
        elif s.startswith(TEST_ARCH):
            val = s[len(TEST_ARCH):]
            if val not in ARCHES:
                raise SpecError(f"bad arch spec: '{val}'")
            arches.append(ARCHES[val])
            collect_jit = ARCHES[val] == arch
            st.next_line["jited"] = st.next_line["jited_unpriv"] = True
        elif s.startswith(TEST_BTF_PATH):
            btf_path = s[len(TEST_BTF_PATH):]
    modes = tuple(m for m, on in ((PRIV, priv_mode), (UNPRIV, unpriv_mode)) if on) or (PRIV,)
    description = description if description is not None else prog_name
    priv = SubSpec(description, priv_fail, tuple(st.msgs), tuple(st.xlated), tuple(st.jited), priv_retval)
    unpriv = SubSpec(
        description + UNPRIV_SUFFIX,
        unpriv_fail if has_unpriv_result else priv_fail,
        tuple(st.msgs_unpriv) or priv.msgs,
        tuple(st.xlated_unpriv) or priv.xlated,
        tuple(st.jited_unpriv) or priv.jited,
        unpriv_retval if has_unpriv_retval else priv_retval,
    )
    return TestSpec(prog_name, section, description, priv, unpriv, modes, auxiliary, log_level, flags_set,
                    flags_cleared, tuple(dict.fromkeys(arches)), btf_path)


def spec_for(btf: Btf | None, prog_name: str, *, section: str = "", arch: str = "x86_64") -> TestSpec:
    """The spec of program `prog_name` from an object's BTF: the DECL_TAGs on its FUNC, in BTF order."""
    if btf is None:
        return TestSpec(prog_name, section, prog_name, modes=(), error="BPF object has no BTF")
    func = btf.find(prog_name, FUNC)
    if func is None:
        return TestSpec(prog_name, section, prog_name, modes=(),
                        error=f"failed to find FUNC BTF type for '{prog_name}'")
    return parse_spec(btf.decl_tags(func.id), prog_name, section=section, arch=arch)
