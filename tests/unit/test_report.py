# SPDX-License-Identifier: GPL-2.0
"""`bpf-audit-harness report`: the recorded benchmark history (benchmarks/results/*.json) drawn as a PNG with a
row of panels per section (times, headline ratio against its target), and an HTML page around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import report
from harness.errors import UsageError

RECORDED = report.DEFAULT_RESULTS


def test_results_load_in_history_order_and_older_files_lack_sections():
    results = report.load(RECORDED)
    assert len(results) == len(list(RECORDED.glob("*.json"))) >= 6
    dates = [r.date for r in results]
    assert dates == sorted(dates)
    same_day = [r.commit for r in results if r.date == "2026-11-23"]
    assert same_day == ["b7e7d1a", "0298d1d", "41010e0", "2dab14e", "b50594f"]  # the repository's commit order
    assert any("build" not in r.sections for r in results) and any("devloop" in r.sections for r in results)


def test_figure_has_a_times_and_a_ratio_panel_per_section():
    results = report.load(RECORDED)
    fig = report.figure(results)
    titles = [ax.get_title() for ax in fig.axes]
    for name in ("build", "boot", "suite", "devloop", "cache", "roundtrip"):
        assert f"{name}: times (s)" in titles, titles
    assert "audit: rates (per second)" in titles  # its section measures throughput, not time
    assert "boot: harness boot to SSH / plain vng" in titles
    assert "devloop: harness / make incremental build" in titles
    assert "suite: -n auto vs -n 1 (speed-up)" in titles
    boot_ratio = next(ax for ax in fig.axes if ax.get_title() == "boot: harness boot to SSH / plain vng")
    (line,) = [ln for ln in boot_ratio.get_lines() if ln.get_linestyle() == "-"]
    assert list(line.get_ydata()) == [1.506, 1.331, 1.3, 1.371]  # four runs measured boot
    (target,) = [ln for ln in boot_ratio.get_lines() if ln.get_linestyle() == "--"]
    assert list(target.get_ydata()) == [1.3, 1.3]
    assert [t.get_text() for t in boot_ratio.get_xticklabels()] == [r.label for r in results]


def test_png_is_drawn_and_not_blank(tmp_path):
    from matplotlib.image import imread

    paths = report.write(RECORDED, tmp_path / "out")
    png = imread(paths["png"])
    height, width = png.shape[:2]
    assert width > 1000 and height > 1500
    rgb = png[..., :3].reshape(-1, 3)
    white = (rgb > 0.98).all(axis=1).mean()
    assert 0.5 < white < 0.99, white  # mostly background, but far from empty
    colours = {tuple((px * 255).astype(int)) for px in rgb[:: 97]}
    assert len(colours) > 50  # lines, markers, text: not a blank or one-colour image
    page = paths["html"].read_text()
    assert '<img src="benchmark-history.png"' in page and "<td><code>bc007af</code></td>" in page
    assert 'class="met">1.26</td>' in page  # devloop's ratio meets its <= 1.3x target


def test_bad_results_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no benchmark results"):
        report.load(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps({"date": "2026-01-01", "commit": "abc"}))
    with pytest.raises(UsageError, match="no 'sections' object"):
        report.load(tmp_path)
    with pytest.raises(UsageError, match="no benchmark results directory"):
        report.load(tmp_path / "nope")


def test_target_and_ratio_aliases():
    assert report.target({"target": "lean <= 0.5x default"}) == ("<=", 0.5)
    assert report.target({"target": ">= 1.6x"}) == (">=", 1.6)
    assert report.target({"target": "<= 1.3x; tree bytes copied: 0"}) == ("<=", 1.3)
    assert report.target({}) is None
    cache = next(s for s in report.SECTIONS if s.name == "cache")
    assert report.ratio(cache, {"ratio_incremental_vs_cold": 0.163}) == 0.163  # the key's older name
    assert report.times({"a_s": 1, "b_s": True, "c": 2, "log": "x"}) == {"a_s": 1.0}


def test_only_known_sections_are_drawn(tmp_path: Path):
    (tmp_path / "r.json").write_text(json.dumps({"date": "2026-01-01", "commit": "abc", "sections": {
        "boot": {"harness_boot_to_ssh_s": 10.0, "ratio_harness_vs_vng": 1.2, "target": "<= 1.3x"},
        "mystery": {"x_s": 1.0}}}))
    fig = report.figure(report.load(tmp_path))
    assert [ax.get_title() for ax in fig.axes] == ["boot: times (s)", "boot: harness boot to SSH / plain vng"]
