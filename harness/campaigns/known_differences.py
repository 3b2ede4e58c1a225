# SPDX-License-Identifier: GPL-2.0
"""The selftests' known differences: a subtest's explained failure, matched on the subtest and the failure it shows."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.settings import DEFAULT_CONFIG_DIR

KNOWN_DIFFERENCES = DEFAULT_CONFIG_DIR / "selftests-known-differences.toml"
# The failures harness.selftests.judge reports (the first word of a failure's reason, its "failure" property).
OUTCOMES = ("unexpected_load_success", "unexpected_load_failure", "expect_msg", "expect_xlated", "expect_jited",
            "expect_stderr", "expect_stdout", "retval", "test_run", "invalid_spec", "console")
_KEYS = {"file", "subtest", "outcome", "message", "lines", "reason"}
_REQUIRED = ("file", "subtest", "outcome", "reason")
_LINE = re.compile(r"\d+\.\d+")


@dataclass(frozen=True)
class KnownDifference:
    """A subtest that fails here for an explained reason that is not a harness bug (the kernel's own code, its
    config): its failure is counted apart, never as a pass. It explains exactly one subtest (`subtest`: test_loader's
    name, " @unpriv" for the unprivileged one; no patterns) failing in one way: `outcome` (the judge's failure kind)
    and, when given, `message` (text the failure's reason holds). `lines`: the kernel lines it applies to (none:
    every line)."""

    file: str
    subtest: str
    outcome: str
    reason: str
    message: str = ""
    lines: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.file}: {self.subtest} ({self.outcome}{', ' + repr(self.message) if self.message else ''})"

    def applies_to(self, files: Sequence[str], line: str | None) -> bool:
        """Whether this run should show it: its file ran, on a kernel line it names."""
        return self.file in files and (not self.lines or line in self.lines)

    def explains(self, file: str, subtest: str, outcome: str, reason: str) -> bool:
        return (self.file == file and self.subtest == subtest and self.outcome == outcome
                and self.message in reason)


def load_known_differences(path: Path | None = None) -> list[KnownDifference]:
    """The [[difference]] tables of a TOML file. Anything else in it, an entry without file/subtest/outcome/reason,
    an unknown key or outcome, a wildcard subtest, a bad kernel line or an entry given twice is a usage error naming
    the entry (exit 2): a table that cannot be read must never absorb nothing in silence."""
    path = Path(path or KNOWN_DIFFERENCES)
    if not path.is_file():
        if path == KNOWN_DIFFERENCES:
            return []
        raise UsageError(f"--known-differences {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{path} cannot be read as TOML: {e}") from e
    unknown = set(data) - {"difference"}
    if unknown:
        raise UsageError(f"{path}: only [[difference]] tables belong here, not {', '.join(sorted(unknown))}")
    entries = data.get("difference", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"{path}: 'difference' must be an array of tables ([[difference]])")
    out: list[KnownDifference] = []
    for i, entry in enumerate(entries, 1):
        out.append(_entry(path, i, entry))
        if out[-1] in out[:-1]:
            raise UsageError(f"{path}: difference #{i} repeats an earlier entry: {out[-1].name}")
    return out


def _entry(path: Path, i: int, entry: dict) -> KnownDifference:
    where = f"{path}: difference #{i} ({entry.get('file', '?')}: {entry.get('subtest', '?')})"
    missing = [k for k in _REQUIRED if not isinstance(entry.get(k), str) or not entry[k].strip()]
    if missing:
        raise UsageError(f"{where} needs {', '.join(missing)} (non-empty strings)")
    if set(entry) - _KEYS:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(set(entry) - _KEYS))} (known: "
                         f"{', '.join(sorted(_KEYS))})")
    if entry["outcome"] not in OUTCOMES:
        raise UsageError(f"{where}: outcome {entry['outcome']!r} is not a failure the judge reports "
                         f"({', '.join(OUTCOMES)})")
    if entry["subtest"].strip() in ("*", "**") or entry["file"].strip() in ("*", "**"):
        raise UsageError(f"{where}: no wildcards: an entry names one subtest of one file")
    message = entry.get("message", "")
    if not isinstance(message, str):
        raise UsageError(f"{where}: message must be a string")
    lines = entry.get("lines", [])
    if not isinstance(lines, list) or not all(isinstance(x, str) and _LINE.fullmatch(x) for x in lines):
        raise UsageError(f"{where}: lines must be a list of kernel lines such as \"6.12\"")
    return KnownDifference(entry["file"], entry["subtest"], entry["outcome"], " ".join(entry["reason"].split()),
                           message, tuple(lines))


def kernel_line(release: str | None) -> str | None:
    """major.minor of a kernel release ("6.12.118" -> "6.12")."""
    m = re.match(r"(\d+\.\d+)", release or "")
    return m.group(1) if m else None
