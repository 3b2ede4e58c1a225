# SPDX-License-Identifier: GPL-2.0
"""The matrix HTML page as a browser sees it: headless Chromium renders it, the failures come before the grid and
the filter script hides rows."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import DATA

from harness.campaigns.matrix import formats as mf
from harness.campaigns.matrix import report as mr
from harness.campaigns.matrix.spec import KnownFailure

MATRIX_DATA = DATA / "matrix"
SERIAL = "cases/audit/serial.bpf.c::grouped_with_syscall"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not installed (apt-get install chromium, or `make deps`): the page was not rendered")


def render(page: Path, tmp_path: Path, *extra: str, fragment: str = "") -> subprocess.CompletedProcess:
    # --user-data-dir: a private profile, so parallel runs do not share (and lock) one.
    argv = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
            *extra, page.as_uri() + fragment]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


class Dom(HTMLParser):
    """Rows of the rendered matrix table: case -> [(kernel, status, title, text)]."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, str, str, str]]] = {}
        self.hidden_rows: set[str] = set()
        self.table_ids: list[str] = []
        self.order: list[str] = []  # ids of the page's sections and the matrix table, in document order
        self.entries: list[tuple[str, str, bool]] = []  # failure/flaky entries: (kernel, node id, hidden)
        self.kernels: list[str] = []
        self._row: str | None = None
        self._cell: dict | None = None
        self._th = False
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("section", "table") and a.get("id"):
            self.order.append(a["id"])
        if tag == "details" and "entry" in (a.get("class") or ""):
            self.entries.append((a["data-kernel"], a["data-case"], "hidden" in a))
        if tag == "table":
            self.table_ids.append(a.get("id", ""))
        elif tag == "tr" and "data-case" in a:
            self._row = a["data-case"]
            self.rows[self._row] = []
            if "hidden" in a:
                self.hidden_rows.add(self._row)
        elif tag == "td" and self._row and "data-status" in a:
            self._cell, self._text = a, ""
        elif tag == "th" and "kernel" in (a.get("class") or ""):
            self._th, self._text = True, ""
        elif tag == "br" and self._th:
            self.kernels.append(self._text.strip())
            self._th = False

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row:
            c = self._cell
            self.rows[self._row].append((c["data-kernel"], c["data-status"], c.get("title", ""), self._text.strip()))
            self._cell = None
        elif tag == "tr":
            self._row = None


def _report() -> mr.Report:
    first = mr.parse_junit((MATRIX_DATA / "6.12-series-serial-case-timeout-lost-vm.junit.xml").read_text())
    again = mr.parse_junit((MATRIX_DATA / "6.12-series-serial-rerun-passes.junit.xml").read_text())
    old61 = mr.parse_junit((MATRIX_DATA / "6.1-debian-kptr-task-fails-no-nodeids.junit.xml").read_text())
    kf = KnownFailure("cases/verifier/kptr_store_task.bpf.c::*", "6.1-debian", "no bpf_task_acquire in 6.1",
                      "https://example.invalid/kptr")
    flaky, _ = mr.judge("6.12-series", first, [again])
    cells61, _ = mr.judge("6.1-debian", old61, [], (kf,))
    return mr.Report((mr.KernelRun("6.12-series", "series", "6.12.117", tuple(flaky)),
                      mr.KernelRun("6.1-debian", "prebuilt 6.1", "6.1.0-56-amd64", tuple(cells61))))


def test_headless_chromium_renders_the_matrix_table(tmp_path):
    page = tmp_path / "matrix.html"
    page.write_text(mf.to_html(_report()))
    res = render(page, tmp_path, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = Dom()
    dom.feed(res.stdout)
    assert dom.table_ids == ["matrix"]
    assert dom.kernels == ["6.12-series", "6.1-debian"]
    assert len(dom.rows) == 86  # the 6.1 run's cases; the serial case is one of them (the same node id)
    assert dom.rows[SERIAL][0][:2] == ("6.12-series", "flaky")
    assert dom.rows[SERIAL][0][2].startswith("flaky: passed 1 of 2 tries")
    assert dom.rows[SERIAL][0][3] == "FLAKY"
    assert dom.rows[SERIAL][1][:2] == ("6.1-debian", "skip")
    assert dom.rows["cases/audit/deny.bpf.c::deny_only_its_file"][0][:2] == ("6.12-series", "missing")
    xfail = dom.rows["cases/verifier/kptr_store_task.bpf.c::kptr_store_task"][1]
    assert xfail == ("6.1-debian", "xfail", "known failure: no bpf_task_acquire in 6.1 (https://example.invalid/kptr)",
                     "xfail")
    skip = dom.rows["cases/audit/deny.bpf.c::deny_only_its_file"][1]
    assert skip == ("6.1-debian", "skip", "kernel lacks bpf_audit_log_start (not in vmlinux BTF)", "skip")
    assert not dom.hidden_rows  # no filter asked for: every row shown


def test_headless_chromium_screenshot_is_not_blank(tmp_path):
    page = tmp_path / "matrix.html"
    page.write_text(mf.to_html(_report()))
    shot = tmp_path / "matrix.png"
    res = render(page, tmp_path, f"--screenshot={shot}", "--window-size=1100,700")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered table, not an empty page (a blank one is ~5 KB)


def _failing_report() -> mr.Report:
    """A failure (6.1 without the known-failures list) and a flaky case (6.12 with a rerun)."""
    first = mr.parse_junit((MATRIX_DATA / "6.12-series-serial-case-timeout-lost-vm.junit.xml").read_text())
    again = mr.parse_junit((MATRIX_DATA / "6.12-series-serial-rerun-passes.junit.xml").read_text())
    old61 = mr.parse_junit((MATRIX_DATA / "6.1-debian-kptr-task-fails-no-nodeids.junit.xml").read_text())
    flaky, _ = mr.judge("6.12-series", first, [again])
    cells61, _ = mr.judge("6.1-debian", old61)
    return mr.Report((mr.KernelRun("6.12-series", "series", "6.12.117", tuple(flaky)),
                      mr.KernelRun("6.1-debian", "prebuilt 6.1", "6.1.0-56-amd64", tuple(cells61))))


KPTR = "cases/verifier/kptr_store_task.bpf.c::kptr_store_task"


def test_failures_come_before_the_grid_and_a_filter_hides_rows(tmp_path):
    page = tmp_path / "matrix.html"
    page.write_text(mf.to_html(_failing_report()))
    res = render(page, tmp_path, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = Dom()
    dom.feed(res.stdout)
    assert dom.order == ["kernels", "problems", "grid", "matrix", "slowest"]  # failures and flaky first
    assert dom.entries == [("6.1-debian", KPTR, False), ("6.12-series", SERIAL, False)]
    assert len(dom.rows) == 86 and not dom.hidden_rows
    # The filter is kept in the URL's fragment: the script applies it when the page loads.
    res = render(page, tmp_path, "--dump-dom", fragment="#status=flaky")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = Dom()
    dom.feed(res.stdout)
    assert set(dom.rows) - dom.hidden_rows == {SERIAL}  # 85 rows hidden, the flaky one shown
    assert dom.entries == [("6.1-debian", KPTR, True), ("6.12-series", SERIAL, False)]
    res = render(page, tmp_path, "--dump-dom", fragment="#kernel=6.1-debian&status=problem")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = Dom()
    dom.feed(res.stdout)
    assert set(dom.rows) - dom.hidden_rows == {KPTR}
    assert dom.entries == [("6.1-debian", KPTR, False), ("6.12-series", SERIAL, True)]
