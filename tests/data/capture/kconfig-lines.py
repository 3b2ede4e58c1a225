#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# Record which kernel lines define each option the kernel-config/ fragments name
# (tests/data/kconfig-symbols-by-line.txt).
#
#   .venv/bin/python tests/data/capture/kconfig-lines.py 6.1=TREE 6.12=TREE 7.3=TREE [--configure]
#
# TREE: an unpacked kernel source (Debian's linux-source-<line>, e.g. as the harness unpacks a line under
# ~/.cache/bpf-audit-harness/src/tar-*/tree). For every option of kernel-config/*.config and variants/*.config
# it writes one line "CONFIG_X 6.1 6.12 7.3" listing the lines whose Kconfig files (x86 and generic ones) have
# `config X` or `menuconfig X`. --configure also runs the harness's own configure step (allnoconfig with the
# fragments merged for that tree's version, then the stick check) on each tree in a scratch directory and
# prints what stuck; it needs the kernel build tools, not a build.
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
FRAGMENTS = [*sorted((REPO / "kernel-config").glob("*.config")),
             *sorted((REPO / "kernel-config/variants").glob("*.config"))]
OUT = REPO / "tests/data/kconfig-symbols-by-line.txt"


def symbols(tree: Path) -> set[str]:
    found = set()
    for root, dirs, files in os.walk(tree):
        rel = Path(root).relative_to(tree)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "Documentation"
                   and not (rel == Path("arch") and d != "x86")]
        for name in files:
            if name.startswith("Kconfig"):
                for line in (Path(root) / name).read_text(errors="replace").splitlines():
                    m = re.match(r"\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", line)
                    if m:
                        found.add("CONFIG_" + m.group(1))
    return found


def main(argv: list[str]) -> None:
    configure = "--configure" in argv
    trees = dict(a.split("=", 1) for a in argv if "=" in a)
    defined = {line: symbols(Path(tree)) for line, tree in trees.items()}
    options = []
    for frag in FRAGMENTS:
        for raw in frag.read_text().splitlines():
            m = re.match(r"^(?:# )?(CONFIG_[A-Za-z0-9_]+)[= ]", raw)
            if m and m.group(1) not in options:
                options.append(m.group(1))
    rows = [" ".join([o, *(line for line in trees if o in defined[line])]) for o in options]
    OUT.write_text("# SPDX-License-Identifier: GPL-2.0\n# Written by tests/data/capture/kconfig-lines.py from "
                   f"{', '.join(f'{k}: {Path(v).name}' for k, v in trees.items())}: each option a fragment names, and "
                   "the kernel lines whose Kconfig defines it.\n" + "\n".join(rows) + "\n")
    print(f"wrote {OUT} ({len(rows)} options)")
    if configure:
        from harness.kernel import build, kconfig
        from harness.kernel.source import _kernelversion

        for extra in ((), tuple(sorted((REPO / "kernel-config/variants").glob("*.config")))):
            frags = kconfig.load_fragments(REPO / "kernel-config", extra)
            for tree in trees.values():
                version = _kernelversion(Path(tree))
                merged = kconfig.merge(frags, version)
                slot = Path(tempfile.mkdtemp(prefix="kconfig-lines-"))
                build.configure(Path(tree), slot, merged, slot / "log", version)  # ConfigError when one did not stick
                print(f"{version} {[e.name for e in extra]}: all {len(merged.settings)} options stuck")


if __name__ == "__main__":
    main(sys.argv[1:])
