# SPDX-License-Identifier: GPL-2.0
"""verifier.c's pre-execution callbacks as map writes: what test_loader's pre_execution_cb puts in maps before a run."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.selftests.discover import SELFTESTS, VERIFIER_C, strip_comments

# init_test_val_map() of Linux 6.12 and 7.3's prog_tests/verifier.c (the same function in both), by the sha256 of its
# text with whitespace collapsed: it writes `struct test_val { unsigned int index; int foo[MAX_ENTRIES]; }` with
# .index = (6 + 1) * sizeof(int) and .foo[6] = 0xabcdef12 at key 0 (an int) of the named map. A tree whose function
# differs is not guessed at: its callbacks are reported as unknown (no verdict on the test run).
INIT_TEST_VAL_MAP = "774800a07d69b02efba246069baaab84f7b95c7cc84d10070dfc7d1274326e2c"
_FUNC = r"^static int {name}\(struct bpf_object \*obj[^)]*\)\s*\{{.*?^\}}"
_CALLS_INIT = re.compile(r'^static int \w+\(struct bpf_object \*obj\) \{ return init_test_val_map\(obj, "(\w+)"\); \}$')
_TEST_VAL = re.compile(r"struct test_val \{\s*unsigned int index;\s*int foo\[MAX_ENTRIES\];\s*\};")
_MAX_ENTRIES = re.compile(r"^#define MAX_ENTRIES (\d+)$", re.M)


@dataclass(frozen=True)
class MapWrite:
    """bpf_map_update_elem(bpf_map__fd(map), key, value, 0) on the loaded object's map `map`."""

    map: str
    key: bytes
    value: bytes


class PreExecutionError(ValueError):
    """A callback the harness cannot do as verifier.c does it."""


def _function(text: str, name: str) -> str | None:
    m = re.search(_FUNC.format(name=re.escape(name)), text, re.S | re.M)
    return " ".join(m.group(0).split()) if m else None


def plan(tree: Path, callback: str) -> tuple[MapWrite, ...]:
    """The map writes verifier.c's `callback` does, read from the tree: a callback that returns
    init_test_val_map(obj, "<map>") with the init_test_val_map() this harness knows. PreExecutionError otherwise."""
    path = Path(tree) / SELFTESTS / "prog_tests" / VERIFIER_C
    try:
        text = strip_comments(path.read_text(errors="replace"))
    except OSError as e:
        raise PreExecutionError(f"{path} cannot be read: {e.strerror}") from e
    body = _function(text, callback)
    if body is None:
        raise PreExecutionError(f"no function {callback}() in {path}")
    m = _CALLS_INIT.match(body)
    if not m:
        raise PreExecutionError(f"{callback}() in {path} does not only return init_test_val_map(obj, \"<map>\"): "
                                f"{body[:200]}")
    init = _function(text, "init_test_val_map")
    if init is None or hashlib.sha256(init.encode()).hexdigest() != INIT_TEST_VAL_MAP:
        raise PreExecutionError(f"init_test_val_map() in {path} is not the one this harness knows (Linux 6.12/7.3's)")
    entries = _MAX_ENTRIES.search(text)
    if not _TEST_VAL.search(text) or entries is None:
        raise PreExecutionError(f"struct test_val or MAX_ENTRIES in {path} is not as Linux 6.12/7.3 define them")
    foo = [0] * int(entries.group(1))
    if len(foo) <= 6:
        raise PreExecutionError(f"MAX_ENTRIES {len(foo)} in {path}: foo[6] does not exist")
    foo[6] = 0xABCDEF12
    value = ((6 + 1) * 4).to_bytes(4, "little") + b"".join(v.to_bytes(4, "little") for v in foo)
    return (MapWrite(m.group(1), (0).to_bytes(4, "little"), value),)
