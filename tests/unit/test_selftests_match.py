# SPDX-License-Identifier: GPL-2.0
"""harness.selftests.match: test_loader's message patterns (verbatim text with {{POSIX ERE}} parts) compiled by
libc's regcomp() and matched on a log the way validate_msgs() does."""

from __future__ import annotations

import pytest

from harness.selftests.match import PatternError, compile_pattern, match_in_order, regex_source


def m(pattern: str, log: str) -> tuple[int, int] | None:
    return compile_pattern(pattern).find(log.encode(), 0)


def test_plain_text_is_a_substring_even_with_regex_characters() -> None:
    p = compile_pattern("R0 min value is outside (of) the allowed [memory] range.*")
    assert not p.is_regex
    assert p.find(b"x R0 min value is outside (of) the allowed [memory] range.* y", 0) == (2, 59)


def test_verbatim_parts_of_a_regex_are_escaped() -> None:
    p = compile_pattern("r1 = *(u64 *)(r10 -8) {{.*}} R1_w=scalar(id=1)")
    assert p.is_regex and p.source == rb"r1 = \*\(u64 \*\)\(r10 -8\) .* R1_w=scalar\(id=1\)"
    assert p.find(b"5: (79) r1 = *(u64 *)(r10 -8) ; frame1: R1_w=scalar(id=1)", 0) is not None
    assert p.find(b"5: (79) r1 = *(u64 X)(r10 -8) ; R1_w=scalar(id=1)", 0) is None
    assert m("a.b{{x}}", "aXbx") is None and m("a.b{{x}}", "a.bx") == (0, 4)


def test_regex_parts_are_posix_extended() -> None:
    assert m("R{{[0-9]+}} type=scalar", "... R12 type=scalar expected") == (4, 19)
    assert m("{{[[:digit:]]{2,3}x}}", "a1234x") == (2, 6)  # a regex part ends at the first "}}"
    assert m("{{[[:space:]]+}}end", "a \t end") == (1, 7)
    assert m("{{a|b}}c", "xbc") == (1, 3)
    assert m("{{(retq|jmp\t0x)}}", "  jmp\t0x1f") == (2, 8)


def test_backslash_is_literal_in_a_bracket_and_escapes_stand_for_themselves() -> None:
    assert m("{{[\\.]}}", "a\\b") == (1, 2)  # [\.] is a backslash or a dot in POSIX
    assert m("{{\\d}}", "1d") == (1, 2)  # \d is no digit class in glibc's ERE: it is a plain 'd'
    assert m("{{\\w+}}", "  abc_1 ") == (2, 7)  # GNU's \w does exist
    assert m("{{\\<x}}", "ax x") == (3, 4)


def test_reg_newline_dot_and_negated_brackets_stop_at_a_newline() -> None:
    assert m("a{{.*}}b", "a\nb") is None
    assert m("a{{[^x]*}}b", "a\nb") is None
    assert m("a{{[^x]*}}b", "a-b") == (0, 3)
    assert m("{{^start}}", "x\nstart") == (2, 7)  # ^ at a line start
    assert m("{{end$}}", "the end\nx") == (4, 7)


def test_posix_takes_the_longest_of_the_leftmost_matches() -> None:
    """Was an emulation for '|' only; now regexec() itself: leftmost-longest for every construct."""
    assert m("{{a|ab}}", "xxabc") == (2, 4)
    assert m("{{(a|ab)(c|bcd)}}", "abcd") == (0, 4)
    assert m("{{(a|ab)(c|bcd)(d*)}}", "abcd") == (0, 4)
    assert m("{{x*(y|yz)?}}", "xxyz") == (0, 4)


def test_messages_match_in_order_each_search_starting_where_the_last_match_ended() -> None:
    log = "0: R1=ctx\n1: call foo\n2: R1=ctx\nprocessed 3 insns\n"
    pats = [compile_pattern(t) for t in ("call foo", "R1=ctx", "processed")]
    assert match_in_order(log, pats) is None
    pats = [compile_pattern(t) for t in ("processed", "call foo")]
    miss = match_in_order(log, pats)
    assert miss is not None and miss.index == 1 and "EXPECTED   SUBSTR: 'call foo'" in miss.describe(pats)
    assert "MATCHED    SUBSTR: 'processed'" in miss.describe(pats)
    assert match_in_order("", []) is None


def test_a_regex_after_a_match_sees_the_rest_as_its_whole_string() -> None:
    """regexec() gets the log from the end of the previous match: '^' matches there even mid-line."""
    pats = [compile_pattern("abc"), compile_pattern("{{^def}}")]
    assert match_in_order("abcdef", pats) is None


def test_on_next_line_patterns_must_follow_line_by_line() -> None:
    log = "0: r0 = 1\n1: r1 = 2\n2: exit\n"
    ok = [compile_pattern(t, on_next_line=True) for t in ("r0 = 1", "r1 = 2", "exit")]
    assert match_in_order(log, ok) is None
    bad = [compile_pattern(t, on_next_line=True) for t in ("r0 = 1", "exit")]
    miss = match_in_order(log, bad)
    assert miss is not None and miss.wrong_line and (miss.expected_line, miss.actual_line) == (1, 2)
    assert "WRONG LINE" in miss.describe(bad) and "expecting match at line 1" in miss.describe(bad)
    relaxed = [compile_pattern("r0 = 1", on_next_line=True), compile_pattern("exit", on_next_line=False)]
    assert match_in_order(log, relaxed) is None


def test_negative_patterns_hold_between_their_neighbours() -> None:
    """7.3's __not_msg: a negative pattern between two positive ones must not match in the span between them."""
    log = "alpha\nforbidden\nbeta\nforbidden again\n"
    not_ = compile_pattern("forbidden", negative=True)
    pats = [compile_pattern("alpha"), not_, compile_pattern("beta")]
    miss = match_in_order(log, pats)
    assert miss is not None and miss.index == 1 and "UNEXPECTED SUBSTR: 'forbidden'" in miss.describe(pats)
    pats = [compile_pattern("beta"), compile_pattern("forbidden again", negative=True)]
    assert match_in_order(log, pats).index == 1  # to the log's end after the last positive
    pats = [compile_pattern("forbidden"), compile_pattern("alpha", negative=True), compile_pattern("beta")]
    assert match_in_order(log, pats) is None  # "alpha" is before the span
    # test_loader searches every negative pattern of a run with the run's first one
    pats = [compile_pattern("alpha"), compile_pattern("nothing", negative=True), compile_pattern("forbidden",
                                                                                              negative=True)]
    assert match_in_order(log, pats) is None


def test_split_and_its_limits() -> None:
    assert regex_source("a{{b}}c") == b"abc" and regex_source("a.{{b.}}") == b"a\\.b."
    with pytest.raises(PatternError, match="no closing"):
        compile_pattern("a{{b")
    with pytest.raises(PatternError, match="too long"):
        compile_pattern("{{x}}" + "(" * 128)  # each escaped "(" takes two bytes of the 256
    assert regex_source("}}{{a}}") == b"\\}\\}a"  # "}}" outside a regex is text


@pytest.mark.parametrize("ere", ["[[:nope:]]", "a{x", "[abc", "a\\", "(a"])
def test_regexes_regcomp_refuses(ere: str) -> None:
    with pytest.raises(PatternError, match="Regexp compilation error"):
        compile_pattern("{{" + ere + "}}")
