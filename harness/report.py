# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness report`: the benchmark history (benchmarks/results/*.json) as a PNG and an HTML page."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.settings import FROM_CHECKOUT, REPO_ROOT

DEFAULT_RESULTS = REPO_ROOT / "benchmarks" / "results" if FROM_CHECKOUT else Path("benchmarks") / "results"
DEFAULT_OUT = Path("results") / "report"


@dataclass(frozen=True)
class Section:
    """How one section of a benchmark result is drawn: its times on one panel, its headline ratio on another."""

    name: str
    title: str
    ratio_keys: tuple[str, ...]  # the headline ratio, under each name it has had
    ratio_title: str


SECTIONS = (
    Section("build", "kernel build", ("ratio_lean_vs_default",), "lean / default config build time"),
    Section("cache", "cache", ("ratio_incremental_vs_entry_build", "ratio_incremental_vs_cold"),
            "incremental / full build time"),
    Section("boot", "boot", ("ratio_harness_vs_vng",), "harness boot to SSH / plain vng"),
    Section("roundtrip", "load round trip", ("speedup",), "fresh boot / warm load (speed-up)"),
    Section("suite", "suite", ("speedup_n_auto",), "-n auto vs -n 1 (speed-up)"),
    Section("audit", "audit throughput", ("ratio_hook_loop_vs_bare_loop",), "hook loop / bare loop"),
    Section("devloop", "edit-build-test loop", ("ratio_harness_vs_make_incremental",),
            "harness / make incremental build"),
)
_TARGET = re.compile(r"([<>]=?)\s*([0-9]+(?:\.[0-9]+)?)\s*x")


@dataclass(frozen=True)
class Result:
    """One benchmark run (one JSON file): when, which commit, and its sections (some files have only a few)."""

    path: Path
    date: str
    commit: str
    sections: dict[str, dict]

    @property
    def label(self) -> str:
        return f"{self.commit}\n{self.date}"


def load(results_dir: Path, repo: Path = REPO_ROOT) -> list[Result]:
    """Every result file in `results_dir`, oldest first: by date, then by the commit's place in the repository's
    history (several runs a day), then by file name."""
    if not results_dir.is_dir():
        raise UsageError(f"no benchmark results directory {results_dir} (benchmarks/results/ holds `make bench` "
                         "results)")
    results = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"{path} is not a benchmark result (not readable JSON: {e})") from e
        if not isinstance(data, dict) or not isinstance(data.get("sections"), dict):
            raise UsageError(f"{path} is not a benchmark result (no 'sections' object)")
        results.append(Result(path, str(data.get("date", "")), str(data.get("commit", "")),
                              {k: v for k, v in data["sections"].items() if isinstance(v, dict)}))
    if not results:
        raise UsageError(f"no benchmark results (*.json) in {results_dir}: run `make bench` first")
    order = _commit_order(repo)

    def place(r: Result) -> int:
        return next((i for sha, i in order.items() if r.commit and sha.startswith(r.commit)), len(order))

    return sorted(results, key=lambda r: (r.date, place(r), r.path.name))


def _commit_order(repo: Path) -> dict[str, int]:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-list", "--topo-order", "--reverse", "HEAD"],
                             capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {sha: i for i, sha in enumerate(out.stdout.split())} if out.returncode == 0 else {}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def times(section: dict) -> dict[str, float]:
    """The section's durations in seconds (keys ending in _s)."""
    return {k: v for k, raw in section.items() if k.endswith("_s") and (v := _number(raw)) is not None}


def rates(section: dict) -> dict[str, float]:
    """The section's throughputs (keys with _per_second): the audit section measures these, not times."""
    return {k: v for k, raw in section.items() if "_per_second" in k and (v := _number(raw)) is not None}


def measures(results: list[Result], name: str):
    """The left panel's series for section `name`: its times if any result has some, else its rates."""
    if any(times(r.sections.get(name, {})) for r in results):
        return times, "times (s)", lambda key: key.removesuffix("_s")
    return rates, "rates (per second)", lambda key: key.replace("_per_second", "")


def ratio(spec: Section, section: dict) -> float | None:
    return next((v for k in spec.ratio_keys if (v := _number(section.get(k))) is not None), None)


def target(section: dict) -> tuple[str, float] | None:
    """The section's goal for its ratio, e.g. ('<=', 1.3) from "target": "<= 1.3x"."""
    m = _TARGET.search(str(section.get("target", "")))
    return (m.group(1), float(m.group(2))) if m else None


def present(results: list[Result]) -> list[Section]:
    """The sections some result has, in SECTIONS order (unknown sections are left out)."""
    return [s for s in SECTIONS if any(s.name in r.sections for r in results)]


def figure(results: list[Result]):
    """The history as a matplotlib Figure (no pyplot: no global state, no display): per section a row with its
    times (log scale; the audit section's rates) and its headline ratio against its target, over the results in
    order."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        from harness.errors import MissingToolError

        raise MissingToolError(
            "`bpf-audit-harness report` draws with matplotlib, which is not installed: it is an extra, only for "
            "these plots. Install it with: pip install 'bpf-audit-harness[plots]' (pipx: pipx inject "
            "bpf-audit-harness matplotlib; a checkout: make venv).") from None

    sections = present(results)
    fig = Figure(figsize=(15, 2.9 * max(1, len(sections))), layout="constrained")
    axes = fig.subplots(max(1, len(sections)), 2, squeeze=False)
    xs = list(range(len(results)))
    labels = [r.label for r in results]
    fig.suptitle(f"bpf-audit-harness benchmark history ({len(results)} runs, {results[0].date} .. "
                 f"{results[-1].date})", fontsize=13)
    for row, spec in zip(axes, sections, strict=False):
        t_ax, r_ax = row
        values, what, label = measures(results, spec.name)
        keys: list[str] = []
        for r in results:
            keys += [k for k in values(r.sections.get(spec.name, {})) if k not in keys]
        for key in keys:
            pts = [(x, v) for x, r in zip(xs, results, strict=True)
                   if (v := values(r.sections.get(spec.name, {})).get(key)) is not None]
            t_ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label(key), markersize=4)
        t_ax.set_title(f"{spec.name}: {what}")
        t_ax.set_yscale("log")
        if keys:
            t_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        pts = [(x, v) for x, r in zip(xs, results, strict=True)
               if spec.name in r.sections and (v := ratio(spec, r.sections[spec.name])) is not None]
        r_ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="tab:purple", markersize=5)
        for x, v in pts:
            r_ax.annotate(f"{v:.3g}", (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        goal = next((g for r in reversed(results) if (g := target(r.sections.get(spec.name, {})))), None)
        if goal:
            r_ax.axhline(goal[1], color="tab:red", linestyle="--", linewidth=1, label=f"target {goal[0]} {goal[1]:g}x")
            r_ax.legend(fontsize=7, loc="best")
        r_ax.set_title(f"{spec.name}: {spec.ratio_title}")
        r_ax.margins(y=0.2)
        for ax in row:
            ax.set_xticks(xs, labels, fontsize=7)
            ax.set_xlim(-0.5, len(xs) - 0.5)
            ax.grid(True, alpha=0.3)
    return fig


def _page(results: list[Result], png: str) -> str:
    sections = present(results)
    head = "".join(f"<th>{html.escape(s.name)}<br><small>{html.escape(s.ratio_title)}</small></th>" for s in sections)
    rows = []
    for r in reversed(results):
        cells = []
        for s in sections:
            sec = r.sections.get(s.name)
            v = ratio(s, sec) if sec else None
            goal = target(sec) if sec else None
            met = None if v is None or goal is None else (v <= goal[1] if goal[0].startswith("<") else v >= goal[1])
            css = {True: "met", False: "missed", None: ""}[met]
            cells.append(f'<td class="{css}">{"" if v is None else f"{v:.3g}"}</td>')
        rows.append(f"<tr><td>{html.escape(r.date)}</td><td><code>{html.escape(r.commit)}</code></td>"
                    f"{''.join(cells)}</tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bpf-audit-harness benchmark history</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td.met {{ background: #d6f5d6; }} td.missed {{ background: #f6c9c9; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>bpf-audit-harness benchmark history</h1>
<p>{len(results)} runs of <code>make bench</code> (benchmarks/results/), newest first. Green: the ratio meets the
section's target; red: it misses it.</p>
<table><tr><th>date</th><th>commit</th>{head}</tr>
{chr(10).join(rows)}
</table>
<p><img src="{html.escape(png)}" alt="times and ratios per section over the runs"></p>
</body></html>
"""


def write(results_dir: Path = DEFAULT_RESULTS, out_dir: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Render the PNG and the HTML page into out_dir; returns their paths."""
    results = load(results_dir)
    fig = figure(results)  # before anything is written: without matplotlib, nothing is
    out_dir.mkdir(parents=True, exist_ok=True)
    png, page = out_dir / "benchmark-history.png", out_dir / "index.html"
    fig.savefig(png, dpi=110)
    page.write_text(_page(results, png.name))
    return {"png": png, "html": page}
