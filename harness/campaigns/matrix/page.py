# SPDX-License-Identifier: GPL-2.0
"""The matrix HTML page: one self-contained file (inline CSS, SVG charts and a small filter script, nothing fetched).

Top to bottom: each kernel with a chart of its counts and suite wall time; the failures and flaky cases, each
expandable to its full reason, tries and logs; notes; the grid of every case on every kernel, filterable by
status, kernel, rule and node id; a chart of the slowest cases. Links point into the results directory
(run.py copies the logs there), so the directory can be moved or uploaded whole.
"""

from __future__ import annotations

import html
import re

from harness.campaigns.matrix.report import CASE_LOGS, SHORT, Cell, KernelRun, Report, counts_text
from harness.campaigns.results import first_line
from harness.status import Status

# What each status means, for the legend (its label is SHORT's).
MEANING = {
    Status.PASS: "passed",
    Status.FAIL: "failed",
    Status.ERROR: "no verdict: setup, collection or the harness failed (e.g. audit records lost)",
    Status.LOST: "no verdict: the VM or its guest agent was lost during the case (a panic, a timeout)",
    Status.SKIP: "skipped (e.g. the kernel lacks a kfunc the case needs)",
    Status.XFAIL: "expected failure (known-failures list or an xfail mark)",
    Status.FLAKY: "failed, then passed when rerun",
    Status.MISSING: "not run on this kernel",
}
CHART_STATUSES = (Status.PASS, Status.FAIL, Status.ERROR, Status.LOST, Status.SKIP, Status.XFAIL, Status.FLAKY)
FILL = {Status.PASS: "#3a9a3a", Status.FAIL: "#c62828", Status.ERROR: "#8e0000", Status.LOST: "#5d4037",
        Status.SKIP: "#9e9e9e",
        Status.XFAIL: "#d99100", Status.FLAKY: "#a03ca0"}

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.2em 1.5em; color: #222; }
h1 { font-size: 22px; margin: 0 0 .2em; } h2 { font-size: 18px; margin: 1.4em 0 .5em; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 6px 8px; white-space: pre-wrap; word-break: break-word;
      max-height: 28em; overflow: auto; margin: .3em 0; }
[hidden] { display: none !important; }
.meta { color: #555; margin: 0 0 .8em; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 3px; font-weight: 700; }
.badge.ok { background: #d8f0d8; color: #1d5e1d; } .badge.bad { background: #f6c9c9; color: #8a1010; }
.kernels { display: flex; flex-wrap: wrap; gap: 12px; }
.kcard { border: 1px solid #ccc; border-radius: 4px; padding: 8px 10px; min-width: 300px; max-width: 420px; }
.kcard h3 { margin: 0; font-size: 16px; } .kcard .sub { color: #555; font-size: 12px; }
.kcard .pkgs, .kcard .files { font-size: 12px; margin-top: 4px; } .kcard .err { color: #8a1010; font-size: 12.5px; }
.chart text { font: 11px system-ui, sans-serif; fill: #333; }
.entry { border-left: 4px solid #ccc; margin: 4px 0; padding: 2px 8px; }
.entry.fail, .entry.error, .entry.lost { border-color: #c62828; } .entry.flaky { border-color: #a03ca0; }
.entry > summary { cursor: pointer; } .entry .why { color: #444; }
.entry .body { margin: 4px 0 8px 14px; }
.tries { margin: .3em 0; padding-left: 1.2em; }
.logs a, .files a { margin-right: .6em; } .gone { color: #999; margin-right: .6em; }
.st { display: inline-block; min-width: 3.5em; text-align: center; padding: 0 4px; border-radius: 2px;
      font-weight: 600; }
table.matrix { border-collapse: collapse; margin-top: 6px; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
table.matrix th.case, table.matrix td.case { text-align: left; }
table.matrix td.case summary { cursor: pointer; }
table.matrix td.cell { text-align: center; font-weight: 600; min-width: 5em; cursor: help; }
table.matrix td.cell a { color: inherit; }
.rule { font-size: 11px; color: #555; border: 1px solid #bbb; border-radius: 8px; padding: 0 5px; margin-left: 4px; }
.desc { color: #444; margin: 3px 0; }
.pass { background: #d8f0d8; color: #1d5e1d; }
.fail, .error, .lost { background: #f6c9c9; color: #8a1010; }
.skip { background: #eeeeee; color: #666; }
.xfail { background: #fde9c4; color: #7a4d00; }
.flaky { background: #f4d6f4; color: #6d1d6d; }
.missing { background: #fff; color: #aaa; }
.entry.fail, .entry.error, .entry.lost, .entry.flaky { background: none; color: inherit; }
#filters { background: #f4f6f8; border: 1px solid #dde; padding: 6px 8px; display: flex; flex-wrap: wrap;
           gap: 12px; align-items: center; }
#filters label { font-size: 13px; } #shown { color: #555; font-size: 13px; }
.legend { font-size: 12.5px; margin: 6px 0; } .legend span.item { margin-right: 14px; white-space: nowrap; }
"""

# Filters: status, kernel, rule, node-id text; kept in the URL's #fragment (a link shows the same view).
_JS = """
(function () {
  var form = document.getElementById('filters');
  if (!form) return;
  var problem = ['fail', 'error', 'lost', 'flaky'];
  function matches(status, want) {
    return !want || (want === 'problem' ? problem.indexOf(status) >= 0 : status === want);
  }
  function hasRule(el, rule) {
    return !rule || (' ' + (el.getAttribute('data-rules') || '') + ' ').indexOf(' ' + rule + ' ') >= 0;
  }
  function hasText(el, q) { return !q || (el.getAttribute('data-case') || '').toLowerCase().indexOf(q) >= 0; }
  function apply(save) {
    var st = form.elements.status.value, k = form.elements.kernel.value, rule = form.elements.rule.value;
    var q = form.elements.q.value.trim().toLowerCase();
    document.querySelectorAll('#matrix [data-kernel]').forEach(function (el) {
      el.hidden = !!k && el.getAttribute('data-kernel') !== k;
    });
    var rows = document.querySelectorAll('#matrix tbody tr[data-case]'), shown = 0;
    rows.forEach(function (tr) {
      var cells = Array.prototype.filter.call(tr.querySelectorAll('td[data-status]'), function (td) {
        return !k || td.getAttribute('data-kernel') === k;
      });
      var ok = (!st || cells.some(function (td) { return matches(td.getAttribute('data-status'), st); }))
        && hasRule(tr, rule) && hasText(tr, q);
      tr.hidden = !ok;
      if (ok) shown++;
    });
    document.querySelectorAll('.entry').forEach(function (e) {
      e.hidden = !(matches(e.getAttribute('data-status'), st) && (!k || e.getAttribute('data-kernel') === k)
        && hasRule(e, rule) && hasText(e, q));
    });
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' cases shown';
    if (save) {
      var p = [];
      ['status', 'kernel', 'rule', 'q'].forEach(function (n) {
        var v = form.elements[n].value; if (v) p.push(n + '=' + encodeURIComponent(v));
      });
      history.replaceState(null, '', p.length ? '#' + p.join('&') : location.pathname);
    }
  }
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    var i = kv.indexOf('='); if (i < 0) return;
    var el = form.elements[kv.slice(0, i)];
    if (el) el.value = decodeURIComponent(kv.slice(i + 1));
  });
  form.addEventListener('input', function () { apply(true); });
  form.addEventListener('reset', function () { setTimeout(function () { apply(true); }, 0); });
  apply(false);
})();
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def anchor(cell: Cell) -> str:
    """The id of a failure or flaky entry (a grid cell links to it)."""
    return "c-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{cell.kernel}-{cell.case}")


def _link(report: Report, label: str, href: str, title: str = "") -> str:
    t = f' title="{_e(title)}"' if title else ""
    return f'<a href="{_e(report.link_prefix + href)}"{t}>{_e(label)}</a>'


# -- charts (inline SVG) ---------------------------------------------------------------------------------------

def kernel_chart(k: KernelRun, max_count: int, max_seconds: float) -> str:
    """Bars of the kernel's counts (one scale for every kernel) and a bar of its suite wall time."""
    bw, gap, top, h = 34, 8, 16, 70
    width = len(CHART_STATUSES) * (bw + gap) + gap
    counts = k.counts()
    parts = []
    for i, s in enumerate(CHART_STATUSES):
        n = counts[s]  # a square-root scale: 1 failure among 80 passes must still show
        bh = 0 if not n else max(3, round(h * (n / max(max_count, 1)) ** 0.5))
        x, y = gap + i * (bw + gap), top + h - bh
        parts.append(f'<g><title>{_e(f"{MEANING[s]}: {n}")}</title>'
                     f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" fill="{FILL[s]}"/>'
                     f'<text x="{x + bw / 2}" y="{y - 3}" text-anchor="middle">{n}</text>'
                     f'<text x="{x + bw / 2}" y="{top + h + 13}" text-anchor="middle">{_e(SHORT[s])}</text></g>')
    ty = top + h + 24
    tw = 0 if not k.suite_seconds else max(2, round((width - 2 * gap - 90) * k.suite_seconds / max(max_seconds, 1)))
    parts.append(f'<g><title>{_e(f"suite wall time {k.suite_seconds:.1f} s (first run and reruns)")}</title>'
                 f'<rect x="{gap}" y="{ty}" width="{tw}" height="10" fill="#5472a8"/>'
                 f'<text x="{gap + tw + 5}" y="{ty + 9}">suite {k.suite_seconds:.0f} s</text></g>')
    height = ty + 16
    label = ", ".join(f"{counts[s]} {s}" for s in CHART_STATUSES if counts[s]) or "no results"
    return (f'<svg class="chart" role="img" aria-label="{_e(k.kernel)}: {_e(label)}; suite '
            f'{k.suite_seconds:.0f} s" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f"<title>{_e(label)} (bar heights on a square-root scale)</title>" + "".join(parts) + "</svg>")


def slowest_chart(report: Report, n: int = 12) -> str:
    """Horizontal bars of the slowest case runs (node id on kernel), longest first."""
    cells = sorted((c for k in report.kernels for c in k.cells if c.seconds > 0), key=lambda c: -c.seconds)[:n]
    if not cells:
        return "<p>No timings recorded.</p>"
    label_w, bar_w, row = 560, 300, 18
    top = max(c.seconds for c in cells)
    parts = []
    for i, c in enumerate(cells):
        y = i * row
        w = max(2, round(bar_w * c.seconds / top))
        fill = FILL.get(c.status, "#9e9e9e")
        parts.append(f'<g><title>{_e(f"{c.case} on {c.kernel}: {c.seconds:.1f} s, {c.status}")}</title>'
                     f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" class="mono">'
                     f'{_e(c.case)} <tspan fill="#777">@ {_e(c.kernel)}</tspan></text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row - 6}" fill="{fill}"/>'
                     f'<text x="{label_w + w + 5}" y="{y + 13}">{c.seconds:.1f} s</text></g>')
    width, height = label_w + bar_w + 60, len(cells) * row + 4
    return (f'<svg class="chart slowest" role="img" aria-label="the {len(cells)} slowest case runs" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">' + "".join(parts) + "</svg>")


# -- sections --------------------------------------------------------------------------------------------------

def _kernel_card(report: Report, k: KernelRun, max_count: int, max_seconds: float) -> str:
    sub = " · ".join(x for x in (k.release, k.description) if x)
    pkgs = "".join(f"<div><code>{_e(name)} {_e(version)}</code></div>" for name, version in k.packages)
    notes = "".join(f'<div class="sub">{_e(n)}</div>' for n in k.version_notes)
    files = " ".join(_link(report, f.label, f.href) for f in k.files)
    err = f'<div class="err">could not run: <code>{_e(first_line(k.error))}</code></div>' if k.error else ""
    total = f"{k.seconds:.0f} s in all (build or fetch included)" if k.seconds else ""
    return (f'<div class="kcard" data-kernel-card="{_e(k.kernel)}"><h3>{_e(k.kernel)}</h3>'
            f'<div class="sub">{_e(sub)}</div>{err}{kernel_chart(k, max_count, max_seconds)}'
            f'<div class="sub">{_e(total)}</div>'
            + (f'<div class="pkgs">{pkgs}{notes}</div>' if pkgs or notes else "")
            + (f'<div class="files">{files}</div>' if files else "") + "</div>")


def _logs_html(report: Report, cell: Cell, attempt: int) -> str:
    """Links to a try's files; a log the run named but that was not kept is shown greyed, with its old path."""
    links = cell.links(attempt)
    parts = [_link(report, link.label, link.href) for link in links]
    have = {link.label for link in links}
    if 0 < attempt <= len(cell.tries):
        parts += [f'<span class="gone" title="{_e(v)}">{_e(k)} (not kept)</span>'
                  for k, v in cell.tries[attempt - 1].properties if k in CASE_LOGS and k not in have]
    return " ".join(parts)


def _case_files(report: Report, cell: Cell) -> str:
    """Every file of one case on one kernel: per try (its JUnit and logs), then the kernel's pytest log."""
    items = []
    for n, t in enumerate(cell.tries, 1):
        logs = _logs_html(report, cell, n)
        label = f"try {n}" if len(cell.tries) > 1 else "logs"
        items.append(f'<li>{label} <span class="st {t.status}">{_e(SHORT[t.status])}</span> '
                     f'<span class="logs">{logs or "none recorded"}</span></li>')
    common = _logs_html(report, cell, 0)
    if common:
        items.append(f'<li><span class="logs">{common}</span></li>')
    return f'<ul class="tries">{"".join(items)}</ul>' if items else ""


def _entry(report: Report, c: Cell) -> str:
    """One failure or flaky case: its headline, expandable to the full reason, each try and the logs."""
    rules = " ".join(c.rules)
    desc = f'<div class="desc">{_e(c.description)}</div>' if c.description else ""
    tries = ""
    if len(c.tries) > 1:
        tries = "".join(f"<div>try {n}: <b>{_e(t.status)}</b> {_e(t.message)}</div>"
                        + (f"<pre>{_e(t.detail)}</pre>" if t.status.failing and t.detail else "")
                        for n, t in enumerate(c.tries, 1))
    elif c.detail:
        tries = f"<pre>{_e(c.detail)}</pre>"
    rule_tags = "".join(f'<span class="rule">rule {_e(r)}</span>' for r in c.rules)
    return (f'<details class="entry {c.status}" id="{anchor(c)}" data-status="{c.status}" '
            f'data-kernel="{_e(c.kernel)}" data-case="{_e(c.case)}" data-rules="{_e(rules)}">'
            f'<summary><span class="st {c.status}">{_e(SHORT[c.status])}</span> <b>{_e(c.kernel)}</b> '
            f'<code>{_e(c.case)}</code>{rule_tags}<br><span class="why">{_e(first_line(c.reason))}</span></summary>'
            f'<div class="body">{desc}{tries}{_case_files(report, c)}</div></details>')


def _problems(report: Report) -> str:
    out = []
    failures, flaky = report.failures(), report.flaky()
    broken = [k for k in report.kernels if k.error]
    out.append(f'<h2 id="failures">Failures ({len(failures)})</h2>')
    out.append("".join(_entry(report, c) for c in failures) or "<p>None.</p>")
    if broken:
        out.append("<h3>Kernels that did not run</h3><ul>" + "".join(
            f"<li><b>{_e(k.kernel)}</b>: <pre>{_e(k.error)}</pre></li>" for k in broken) + "</ul>")
    out.append(f'<h2 id="flaky">Flaky ({len(flaky)})</h2>')
    out.append("".join(_entry(report, c) for c in flaky) or "<p>None.</p>")
    return '<section id="problems">' + "".join(out) + "</section>"


def _notes(report: Report) -> str:
    notes = []
    for k in report.kernels:
        for case, kf in k.now_passing:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: known failure now passes, prune it from known-failures.toml: "
                         f"<code>{_e(case)}</code> ({_e(kf.link)})</li>")
        for note in k.version_notes:
            notes.append(f"<li><b>{_e(k.kernel)}</b>: {_e(note)}</li>")
    notes += [f"<li>{_e(n)}</li>" for n in report.notes]
    return f'<section id="notes"><h2>Notes</h2><ul>{"".join(notes)}</ul></section>' if notes else ""


def _grid_row(report: Report, case: str, row: list[Cell]) -> str:
    ran = [c for c in row if c.status is not Status.MISSING]
    rules = next((c.rules for c in ran if c.rules), ())
    desc = next((c.description for c in ran if c.description), "")
    files = "".join(f"<div><b>{_e(c.kernel)}</b>{_case_files(report, c)}</div>" for c in ran)
    rule_tags = "".join(f'<span class="rule">rule {_e(r)}</span>' for r in rules)
    name = (f'<details><summary><code>{_e(case)}</code>{rule_tags}</summary>'
            + (f'<div class="desc">{_e(desc)}</div>' if desc else "") + files + "</details>")
    cells = []
    for c in row:
        text = _e(SHORT[c.status])
        if c.status.failing or c.status is Status.FLAKY:
            text = f'<a href="#{anchor(c)}">{text}</a>'
        cells.append(f'<td class="cell {c.status}" data-kernel="{_e(c.kernel)}" data-status="{c.status}" '
                     f'title="{_e(c.reason or MEANING[c.status])}">{text}</td>')
    return (f'<tr data-case="{_e(case)}" data-rules="{_e(" ".join(rules))}">'
            f'<td class="case">{name}</td>{"".join(cells)}</tr>')


def _rule_key(rule: str) -> tuple[int, str]:
    m = re.match(r"\d+", rule)
    return (int(m.group()) if m else 10**6, rule)


def _grid(report: Report) -> str:
    head = "".join(f'<th class="kernel" data-kernel="{_e(k.kernel)}" title="{_e(k.description)}">{_e(k.kernel)}'
                   f'<br><small>{_e(k.release)}</small></th>' for k in report.kernels)
    counts = "".join(f'<td data-kernel="{_e(k.kernel)}" title="{_e(k.error)}">'
                     f'{_e(counts_text(k) or ("ERROR" if k.error else "no results"))}</td>' for k in report.kernels)
    rows = "\n".join(_grid_row(report, case, row) for case, row in report.grid())
    statuses = [s for s in Status if any(c.status is s for _, row in report.grid() for c in row)]
    st_opts = ('<option value="">any</option><option value="problem">failed, error, lost or flaky</option>'
               + "".join(f'<option value="{s}">{_e(SHORT[s])}</option>' for s in statuses))
    k_opts = '<option value="">all</option>' + "".join(
        f'<option value="{_e(k.kernel)}">{_e(k.kernel)}</option>' for k in report.kernels)
    rules = sorted({r for k in report.kernels for c in k.cells for r in c.rules}, key=_rule_key)
    r_opts = '<option value="">any</option>' + "".join(f'<option value="{_e(r)}">rule {_e(r)}</option>'
                                                        for r in rules)
    legend = "".join(f'<span class="item"><span class="st {s}">{_e(SHORT[s])}</span> {_e(MEANING[s])}</span>'
                     for s in Status)
    filters = (
        '<form id="filters" onsubmit="return false">'
        f'<label>status <select name="status">{st_opts}</select></label>'
        f'<label>kernel <select name="kernel">{k_opts}</select></label>'
        f'<label>rule <select name="rule">{r_opts}</select></label>'
        '<label>node id <input name="q" type="search" placeholder="e.g. verifier/" size="24"></label>'
        '<button type="reset">show all</button><span id="shown"></span></form>')
    return (f'<section id="grid"><h2>All cases</h2>{filters}<p class="legend">{legend}</p>'
            f'<table class="matrix" id="matrix"><thead><tr><th class="case">case (click for its logs)</th>{head}'
            f'</tr>\n<tr class="counts"><td class="case">counts</td>{counts}</tr></thead>\n<tbody>\n{rows}\n'
            "</tbody></table></section>")


def render(report: Report) -> str:
    max_count = max([n for k in report.kernels for n in k.counts().values()] + [1])
    max_seconds = max([k.suite_seconds for k in report.kernels] + [1.0])
    cards = "".join(_kernel_card(report, k, max_count, max_seconds) for k in report.kernels)
    ok = "ok" if report.ok() else "bad"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{_e(report.title)}</h1>\n"
        f'<p class="meta">Overall: <b id="overall" class="badge {ok}">{_e(report.overall())}</b> · '
        f"{_e(report.generated)}</p>\n"
        f'<section id="kernels" class="kernels">{cards}</section>\n'
        + _problems(report) + "\n" + _notes(report) + "\n" + _grid(report) + "\n"
        + '<section id="slowest"><h2>Slowest cases</h2><p class="meta">each case on each kernel, its first try; '
        f"the colour is its status there</p>{slowest_chart(report)}</section>\n"
        + f"<script>{_JS}</script>\n</body></html>\n"
    )
