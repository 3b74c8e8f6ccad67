"""The HTML report (`planner plan --report`): self-contained, carries the plan's numbers and the frontier, and
renders in a real browser (headless Chromium, slow test)."""
from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.report_html import frontier_svg, report_html

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chat-70b.toml"
REQUEST = dict(model="llama-3.1-70b", isl=1000, osl=300, gpus="h100-sxm,h200", ttft_ms=1000, rate_rps=2.0,
               min_tokens_per_s_user=33.3, time_limit_s=20)


@pytest.fixture(scope="module")
def plan_and_frontier():
    plan = api.plan(**REQUEST).to_dict()
    req = {k: v for k, v in REQUEST.items() if k != "min_tokens_per_s_user"}
    return plan, api.frontier(speeds=(10.0, 20.0, 33.3, 50.0, 80.0), **req)


def _self_contained(text: str) -> list[str]:
    bad = []
    for pattern in (r"<script", r"<link\b", r"<img\b", r"<iframe", r"@import", r"url\(", r"\bsrc\s*=",
                    r"href\s*=\s*[\"']https?:"):
        if re.search(pattern, text, re.I):
            bad.append(pattern)
    return bad


def test_report_is_self_contained_and_has_the_numbers(plan_and_frontier):
    plan, front = plan_and_frontier
    page = report_html(plan, front)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert _self_contained(page) == []
    assert page.count("<svg") == 3  # memory, latency, frontier
    assert plan["gpu"] in page and f"{plan['metrics']['ttft_s'] * 1000:.1f} ms" in page
    for p in front["points"]:
        assert f"TP{p['tp']}PP{p['pp']} b{p['batch']}" in page
    assert "this plan" in page


def test_report_without_frontier_leaves_the_plot_out(plan_and_frontier):
    page = report_html(plan_and_frontier[0])
    assert page.count("<svg") == 2 and "Cost against speed" not in page


def test_frontier_svg_handles_no_points():
    assert "<svg" not in frontier_svg({"points": []})


def test_cli_plan_report(tmp_path):
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["plan", str(EXAMPLE), "--json", "--report", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert _self_contained(page) == [] and page.count("<svg") == 3
    assert res.stderr == ""  # the frontier's progress line only goes to a terminal


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw scanlines of an 8-bit RGB/RGBA PNG (filter bytes included), without Pillow."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return width, height, zlib.decompress(idat)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(plan_and_frontier, tmp_path):
    """Install with `apt-get install -y chromium` (Debian) to run; skipped where no Chromium is found."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    page.write_text(report_html(*plan_and_frontier), encoding="utf-8")
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1800",
           f"--screenshot={shot}", page.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 0, res.stderr[-2000:]
    width, height, raw = _png_pixels(shot)
    assert (width, height) == (900, 1800)
    # non-blank: a white page decompresses to a few distinct byte values; text, bars and the plot give many
    assert len(set(raw)) > 50
    try:
        from PIL import Image
    except ImportError:
        return
    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20
    blue = sum(n for n, (r, g, b) in colors if b > 180 and r < 80)  # the weights bar and the frontier line
    assert blue > 1000


def test_axis_ticks_and_numbers_by_hand():
    from planner.report_html import _fmt, _lin_ticks, _log_ticks

    assert _log_ticks(3, 250) == [5, 10, 20, 50, 100, 200]  # 1-2-5 per decade within the range
    assert _log_ticks(3, 4) == [3, 4]  # no 1-2-5 value inside: the ends
    # 100 / 6 → step 10, then the first of 1, 2, 5, 10 steps giving at most 6 intervals: 20
    assert _lin_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert _lin_ticks(0.5, 3.5, 6) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert (_fmt(0), _fmt(0.005), _fmt(12.5)) == ("0", "5.0e-03", "12.5")
