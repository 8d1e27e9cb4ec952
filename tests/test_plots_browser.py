"""The `dvc plots show` page opened in headless Chromium with no network: every plot is drawn; and the reports'
pictures (metrics/cv/report.md, an example spectrogram) opened as a person opens them: every picture loads.

Needs Chromium, so it runs with `make test-browser` (which installs Debian's `chromium` if missing), not with
`make test`; without Chromium it fails rather than skips. The network is cut for the browser by a network
namespace where `unshare` allows one, and by proxy/resolver flags in any case; DVC's own page (vega from a
CDN) is rendered the same way as the control and must stay blank.
"""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.test_dvc_ui import _dvc, make_ui_repo

pytestmark = pytest.mark.browser

# the ids DVC gives the plot divs: dvc.yaml top-level plots, then the confusion matrix of metrics/predictions.csv
PLOTS = ("Loss", "Accuracy", "Learning_rate", "metrics_predictions_csv")
OFFLINE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000",
                 "--window-size=1400,1400"]


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail("no Chromium found: `make test-browser` installs Debian's chromium package (or set CHROMIUM)")


def _no_network_prefix() -> list[str]:
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


def _render(page, tmp_path, what: str) -> tuple[str, np.ndarray]:
    """The DOM after the page's scripts ran, and a screenshot, both offline."""
    base = [*_no_network_prefix(), _chromium(), *OFFLINE_FLAGS]
    url = page.resolve().as_uri()
    dom = subprocess.run([*base, f"--user-data-dir={tmp_path / (what + '-profile-dom')}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-3000:]
    shot = tmp_path / f"{what}.png"
    proc = subprocess.run([*base, f"--user-data-dir={tmp_path / (what + '-profile-shot')}", f"--screenshot={shot}",
                           url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-3000:]
    return dom.stdout, np.asarray(Image.open(shot).convert("RGB")).astype(int)


def _coloured_pixels(image: np.ndarray) -> int:
    """Pixels of plot marks: axes, text and the page are grey, the curves and the matrix cells are not."""
    return int(((image.max(axis=2) - image.min(axis=2)) > 60).sum())


def test_plots_page_draws_every_plot_offline(tmp_path):
    from dvc_render.html import PAGE_HTML

    repo = make_ui_repo(tmp_path / "repo")
    _dvc(repo, "plots", "show", "-o", "offline")
    dom, shot = _render(repo / "offline" / "index.html", tmp_path, "offline")
    if os.environ.get("PLOTS_SCREENSHOT"):  # for a person to look at: `make test-browser` keeps it
        shutil.copy(tmp_path / "offline.png", os.environ["PLOTS_SCREENSHOT"])
    # vega-embed fills each of DVC's plot divs with a drawn canvas (and an actions menu)
    drawn = {div: (int(w), int(h)) for div, w, h in re.findall(
        r'<div id="(\w+)" class="vega-embed[^"]*"><div class="chart-wrapper"[^>]*>'
        r'<canvas width="(\d+)" height="(\d+)" class="marks">', dom)}
    assert set(drawn) == set(PLOTS), dom[-3000:]
    assert all(w > 200 and h > 200 for w, h in drawn.values()), drawn
    assert _coloured_pixels(shot) > 5000

    # Control: DVC's own page loads vega from a CDN, so under the same conditions it must stay blank.
    (repo / "cdn_template.html").write_text(PAGE_HTML)
    _dvc(repo, "plots", "show", "-o", "cdn", "--html-template", str(repo / "cdn_template.html"))
    assert "cdn.jsdelivr.net" in (repo / "cdn" / "index.html").read_text()
    dom, shot = _render(repo / "cdn" / "index.html", tmp_path, "cdn")
    assert "<canvas" not in dom and _coloured_pixels(shot) == 0


REPORT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>report</title>
<style>img {{ max-width: 100%; }} body {{ font-family: sans-serif; }}</style></head><body>{body}
<script>window.addEventListener("load", () => {{ document.body.dataset.images = Array.from(document.images)
  .map(i => i.getAttribute("src") + "=" + i.naturalWidth + "x" + i.naturalHeight).join(" "); }});</script>
</body></html>"""


def test_report_pictures_open_in_the_browser_offline(tmp_path):
    """The cross-validation's report.md (of a fabricated run: tests/test_cv_pictures.py) with a labelled example
    spectrogram linked as evaluate's report links it, rendered to HTML as a Markdown viewer does: in headless
    Chromium with no network every picture it names is decoded (naturalWidth > 0), and the page is drawn."""
    from markdown_it import MarkdownIt

    from pipeline import cv_pictures, plotstyle, report
    from pipeline.features import preview_png
    from tests.test_cv_pictures import write_run
    from tests.test_report_examples import SETTINGS, native_png

    out = tmp_path / "cv"
    out.mkdir()
    write_run(out)
    (out / "examples").mkdir()
    (out / "examples" / "angry.png").write_bytes(preview_png(native_png()))
    plotstyle.save(report.spectrogram_figure(native_png(), SETTINGS, "angry: demo, a.wav"),
                   out / "examples" / "angry_labelled.png")
    markdown = (out / "report.md").read_text() + (
        "\n## Example spectrograms\n\n[![angry: demo, a.wav](examples/angry_labelled.png)](examples/angry.png)\n")
    page = out / "report.html"
    page.write_text(REPORT_PAGE.format(body=MarkdownIt("commonmark").enable("table").render(markdown)))
    dom, shot = _render(page, tmp_path, "report")
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, dom[-3000:]
    sizes = dict(item.split("=") for item in found.group(1).split())
    assert set(sizes) == {*cv_pictures.PICTURES.values(), "examples/angry_labelled.png"}, sizes
    for src, size in sizes.items():
        width, height = map(int, size.split("x"))
        assert width > 300 and height > 200, (src, size)  # decoded: a broken image has 0 x 0
    assert "<table>" in dom  # the numbers beside the pictures are tables, not text run together
    assert _coloured_pixels(shot) > 5000
