"""Export and reuse in Chromium: figure downloads, data downloads, opening a saved analysis, permalinks, the
standalone HTML file offline from file://, and the notebook view."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import pytest
from heatmap_probe import pixels, shown_matrix
from PIL import Image

from visualizeai import export

HOSTILE = "<img src=x onerror=alert(1)>"
TEXT = "I think, therefore I am."
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A MiniLM analysis of a text with a hostile-looking token, computed in-process."""
    from visualizeai.config import Settings
    from visualizeai.service import Service

    service = Service(Settings(offline=True))
    return service.analyze(f"The {HOSTILE} animal didn't cross the street because it was too tired.").result


@pytest.fixture
def offline(browser):
    """A page in a context where every request except file:// fails, recording problems like `page`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_())
    page = context.new_page()
    page.problems = []
    page.requests = []
    page.on("pageerror", lambda exc: page.problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda req: page.requests.append(req.url))
    yield page
    context.close()


def canvas_coloured_pixels(frame) -> int:
    return pixels(frame, "r < 200 && a > 0")


def test_standalone_html_works_offline_from_file(saved, offline, tmp_path, screenshot):
    path = tmp_path / "analysis.html"
    export.write(saved, path, layers=[0, 3])
    offline.goto(path.as_uri())
    offline.wait_for_selector("#heatmap[data-state=ready]")
    offline.wait_for_selector("body[data-overview=ready]")
    assert all(url.startswith("file:") for url in offline.requests), offline.requests
    assert canvas_coloured_pixels(offline) > 500
    # only the chosen layers, every head of each in the overview
    assert offline.locator("#layer option").all_inner_texts() == ["0", "3"]
    assert offline.locator(".thumb").count() == 2 * saved.heads
    # hover shows the stored (float16) value of the cell under the pointer
    tokens = saved.display_tokens
    q, k = tokens.index("<"), tokens.index("The")
    box = offline.evaluate(f"window.visualizeai.view.cellBox({q}, {k})")
    offline.mouse.move(box["x"], box["y"])
    tip = offline.locator("#tooltip")
    tip.wait_for(state="visible")
    assert (tip.get_attribute("data-q"), tip.get_attribute("data-k")) == (str(q), str(k))
    expected = float(saved.attentions[0, 0, q, k].astype(np.float16))
    assert float(tip.get_attribute("data-value")) == pytest.approx(expected, abs=1e-7)
    assert "< → The" in tip.inner_text()
    screenshot(offline, "standalone-offline")
    # picking a head in the overview shows it, and the hash keeps the view
    offline.locator('.thumb[data-layer="3"][data-head="5"]').click()
    offline.wait_for_selector('#heatmap[data-layer="3"][data-head="5"]')
    assert offline.locator("#layer").input_value() == "3" and "layer=3&head=5" in offline.url
    # tokens stayed text: the hostile token made no element and ran nothing
    assert offline.locator("main img").count() == 0
    assert HOSTILE in offline.locator("[data-text=text]").inner_text()
    assert offline.problems == []


def test_standalone_html_opens_at_the_exported_head_and_zooms(saved, offline, tmp_path, screenshot):
    path = tmp_path / "head.html"
    export.write(saved, path, layers=[2, 4], layer=4, head=7)
    offline.goto(path.as_uri())
    offline.wait_for_selector('#heatmap[data-state=ready][data-layer="4"][data-head="7"]')
    assert offline.locator("#layer").input_value() == "4" and offline.locator("#head").input_value() == "7"
    # the same deep-zoom view as the web page: zooming in shows fewer rows, exact values still
    offline.get_by_role("button", name="Zoom in").click()
    offline.wait_for_selector('#heatmap[data-state=ready]:not([data-zoom="1"])')
    matrix = shown_matrix(offline)
    np.testing.assert_allclose(matrix, saved.attentions[4, 7].astype(np.float16), atol=0)
    screenshot(offline, "standalone-opened-zoomed")
    assert offline.problems == []


def test_notebook_view_draws_offline(saved, offline, tmp_path, screenshot):
    from visualizeai.python_api import View

    html = View(saved, layers=[1])._repr_html_()  # the standalone page in an iframe
    assert html.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in html
    path = tmp_path / "notebook.html"
    path.write_text(
        f"<!doctype html><meta charset=utf-8><body><h1>Notebook</h1>{html}</body>", encoding="utf-8"
    )
    offline.goto(path.as_uri())
    frame = offline.frame_locator("iframe")
    frame.locator("#heatmap[data-state=ready]").wait_for()
    inner = next(f for f in offline.frames if f != offline.main_frame)
    assert canvas_coloured_pixels(inner) > 500
    assert inner.locator(".thumb").count() == saved.heads
    screenshot(offline, "notebook-view")
    assert offline.problems == []


def analysis_url(base, text=TEXT, **params) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"{base}/analysis?text={quote(text)}{extra}"


def test_permalink_restores_the_view(live_server, page, screenshot):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(analysis_url(live_server))
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    page.get_by_label("Layer", exact=True).select_option("2")
    page.get_by_label("Head", exact=True).select_option("5")
    page.get_by_label("Colour scale").select_option("log")
    page.get_by_label("Hide special tokens").check()
    page.wait_for_selector('#heatmap[data-state=ready][data-layer="2"][data-head="5"]')
    query = parse_qs(urlparse(page.url).query)
    assert query["layer"] == ["2"] and query["head"] == ["5"]
    assert query["scale"] == ["log"] and query["hide_special"] == ["1"]
    shown = shown_matrix(page)

    page.get_by_text("Export", exact=True).click()
    page.get_by_role("button", name="Copy link").click()
    page.wait_for_selector("#export-status:has-text('Link copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.url

    page.goto(copied)  # a fresh load of the shared link
    page.wait_for_selector('#heatmap[data-state=ready][data-layer="2"][data-head="5"]', timeout=60_000)
    assert page.get_by_label("Layer", exact=True).input_value() == "2"
    assert page.get_by_label("Head", exact=True).input_value() == "5"
    assert page.get_by_label("Colour scale").input_value() == "log"
    assert page.get_by_label("Hide special tokens").is_checked()
    assert page.locator("#legend").get_attribute("data-mode") == "log"
    np.testing.assert_array_equal(shown_matrix(page), shown)
    screenshot(page, "permalink-restored")
    assert page.problems == []


def test_figure_and_data_downloads(live_server, page, tmp_path, screenshot):
    page.goto(analysis_url(live_server, layer=1, head=3))
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    meta = page.evaluate("window.visualizeai.view.meta")
    labels = page.evaluate("window.visualizeai.view.labels")
    page.get_by_text("Export", exact=True).click()
    screenshot(page, "export-menu")

    with page.expect_download() as info:
        page.get_by_role("button", name="Export PNG").click()
    png = tmp_path / info.value.suggested_filename
    info.value.save_as(png)
    assert png.name == "visualizeai-all-MiniLM-L6-v2-layer-1-head-3.png"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 300

    with page.expect_download() as info:
        page.get_by_role("button", name="Export SVG").click()
    svg = tmp_path / info.value.suggested_filename
    info.value.save_as(svg)
    root = ET.parse(svg).getroot()
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    for label in labels:
        assert texts.count(label) >= 2, label  # on both axes
    assert root.find(f"{SVG_NS}title").text.startswith("all-MiniLM-L6-v2 · Layer 1 · head 3")
    assert len(list(root.iter(f"{SVG_NS}rect"))) > 10 and not list(root.iter(f"{SVG_NS}image"))

    with page.expect_download() as info:
        page.get_by_role("link", name="Download .npz").click()
    npz = tmp_path / "saved.npz"
    info.value.save_as(npz)
    result = export.read(npz)
    assert result.display_tokens == [t["display"] for t in meta["tokens"]]
    assert result.attentions.shape == (meta["layers"], meta["heads"], meta["n"], meta["n"])

    with page.expect_download() as info:
        page.get_by_role("link", name="Download .json").click()
    doc = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert doc["format"] == "visualizeai-analysis" and doc["text"] == TEXT

    with page.expect_download() as info:
        page.get_by_role("link", name="Download offline page (.html)").click()
    assert Path(info.value.path()).read_text(encoding="utf-8").startswith("<!doctype html>")
    assert page.evaluate("document.getElementById('export-menu').open")  # downloads keep the menu open
    page.mouse.click(5, 300)  # a click elsewhere closes it
    assert not page.evaluate("document.getElementById('export-menu').open")
    assert page.problems == []


def test_open_a_saved_analysis(live_server, page, saved, tmp_path, screenshot):
    path = tmp_path / "saved.npz"
    export.write(saved, path)
    page.goto(live_server + "/")
    page.get_by_label("Saved analysis (.npz)").set_input_files(str(path))
    screenshot(page, "open-saved")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url("**/analysis/*?opened=file*")
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)
    assert page.locator("#summary-text").inner_text() == saved.text
    assert "opened from a saved file" in page.locator("#summary-model").inner_text()
    assert page.evaluate("window.visualizeai.view.meta.n") == saved.n
    matrix = shown_matrix(page)
    assert matrix.shape == (saved.n, saved.n)
    np.testing.assert_allclose(matrix, saved.attentions[0, 0], atol=1e-3)  # float16 on the wire
    assert page.locator("img").count() == 0
    screenshot(page, "opened-saved-analysis")
    # the opened analysis keeps its view in the URL too
    page.get_by_label("Head", exact=True).select_option("4")
    page.wait_for_selector('#heatmap[data-state=ready][data-head="4"]')
    page.reload()
    page.wait_for_selector('#heatmap[data-state=ready][data-head="4"]', timeout=60_000)
    assert page.problems == []


def test_open_a_broken_file_says_why(live_server, page, tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip at all")
    page.goto(live_server + "/")
    page.get_by_label("Saved analysis (.npz)").set_input_files(str(path))
    page.get_by_role("button", name="Open").click()
    alert = page.locator("#open-error")
    alert.wait_for(state="visible")
    assert "not an .npz (zip) archive" in alert.inner_text()
    page.problems = [p for p in page.problems if "400" not in p]  # the failed upload's console line
    assert page.problems == []


def test_other_views_export_their_own_figure(live_server, page, tmp_path):
    # every view's figure in detail: test_view_figures_browser.py
    page.goto(analysis_url(live_server, layer=0, head=2, view="overview"))
    page.wait_for_selector("#overview-grid[data-state=ready]", timeout=60_000)
    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Export SVG").click()
    assert info.value.suggested_filename.endswith("-all-heads.svg")
    root = ET.parse(info.value.path()).getroot()
    assert root.find(f"{SVG_NS}title").text.startswith("all-MiniLM-L6-v2 · All 72 heads")
    assert page.problems == []
