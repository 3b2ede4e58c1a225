# SPDX-License-Identifier: GPL-2.0
"""Expected field values: ${placeholder} substitution and {{regex}} parts, matched against records at run time."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")


def split_regex(text: str) -> list[tuple[bool, str]]:
    """Split on {{regex}}: [(is_regex, part), ...]. Raises ValueError on an unclosed {{."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append((False, text[pos:]))
            return parts
        end = text.find("}}", start + 2)
        if end < 0:
            raise ValueError(f"'{{{{' at offset {start} has no closing '}}}}'")
        parts.append((False, text[pos:start]))
        parts.append((True, text[start + 2 : end]))
        pos = end + 2


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Substitute ${name} placeholders (KeyError for a missing variable)."""
    return PLACEHOLDER_RE.sub(lambda m: variables[m.group(1)], value)


def value_regex(value: str, variables: Mapping[str, str]) -> re.Pattern[str]:
    """An expected field value as a regex to fullmatch: literal, {{regex}} parts, ${var} substituted."""
    pieces = []
    for is_re, part in split_regex(value):
        pieces.append(part if is_re else re.escape(expand(part, variables)))
    return re.compile("".join(pieces), re.DOTALL)


def value_matches(expected: str, actual: str, variables: Mapping[str, str]) -> bool:
    return value_regex(expected, variables).fullmatch(actual) is not None
