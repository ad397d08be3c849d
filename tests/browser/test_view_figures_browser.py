"""Figure export of every view that draws one (All heads, Head view, Rollout, Atlas, Query–key map, Neuron
view and the heatmap): SVG and PNG downloads of what the view shows, titles whole (wrapped, never cut)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

SVG_NS = "{http://www.w3.org/2000/svg}"
TEXT = "The quick brown fox jumps over the lazy dog because it was bored."
MODEL = "all-MiniLM-L6-v2"
LAYERS, HEADS = 6, 12  # MiniLM

# view → (what says the view has drawn, the file name's end)
READY = {
    "overview": ("#overview-grid[data-state=ready]", "all-heads"),
    "headview": ("#headview[data-state=ready]", "layer-1-head-view"),
    "rollout": ("#rollout[data-state=ready]", "layer-1-rollout"),
    "atlas": ("#atlas-grid[data-state=ready]", "atlas-previous-share"),
    "qkmap": ("#qk-map[data-state=drawn]", "layer-1-head-2-qk-map"),
    "neuron": ("#neuron[data-state=drawn]", "layer-1-head-2-neuron-"),
    "heatmap": ("#heatmap[data-state=ready]", ""),
}


def url(base, view, **params) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"{base}/analysis?text={quote(TEXT)}&view={view}&layer=1&head=2{extra}"


def download(page, button: str, tmp_path: Path) -> Path:
    if not page.evaluate("document.getElementById('export-menu').open"):
        page.get_by_text("Export", exact=True).click()
    with page.expect_download() as info:
        page.get_by_role("button", name=button).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


def header(root) -> tuple[str, list[str]]:
    """The SVG's <title> and the lines its visible title was wrapped onto."""
    lines = [t.text for t in root.iter(f"{SVG_NS}text") if t.get("data-role") == "title"]
    return root.find(f"{SVG_NS}title").text, lines


def group(root, role: str):
    found = [g for g in root.iter(f"{SVG_NS}g") if g.get("data-role") == role]
    assert len(found) == 1, role
    return found[0]


def count(node, tag: str) -> int:
    return len(list(node.iter(f"{SVG_NS}{tag}")))


def export_both(page, tmp_path, name):
    """Export the view as SVG and PNG; check the files and the title; return the parsed SVG and the PNG."""
    svg = download(page, "Export SVG", tmp_path)
    assert svg.name.startswith(f"visualizeai-{MODEL}-{name}") and svg.suffix == ".svg", svg.name
    root = ET.parse(svg).getroot()
    title, lines = header(root)
    assert title.startswith(f"{MODEL} · ")
    assert " ".join(lines) == title  # the whole title is drawn, on as many lines as it needs
    width = float(root.get("width"))
    png = download(page, "Export PNG", tmp_path)
    assert png.suffix == ".png" and png.stem == svg.stem
    with Image.open(png) as image:
        assert image.format == "PNG"
        # the same plan at twice the size
        assert image.size == (round(2 * width), round(2 * float(root.get("height"))))
        assert image.width >= 2 * 420 and image.height >= 2 * 150
        # the title's ink is in the top band, and the picture is not blank
        gray = image.convert("L")
        assert gray.crop((0, 0, image.width, 40)).getextrema()[0] < 100
        assert gray.crop((0, 80, image.width, image.height)).getextrema()[0] < 200
    return root, png


@pytest.mark.parametrize("view", ["overview", "headview", "rollout", "atlas", "qkmap", "neuron"])
def test_every_view_exports_its_own_figure(live_server, page, tmp_path, view, screenshot):
    page.goto(url(live_server, view))
    page.wait_for_selector(READY[view][0], timeout=60_000)
    root, png = export_both(page, tmp_path, READY[view][1])
    title = root.find(f"{SVG_NS}title").text
    debug = page.evaluate("window.visualizeai.view")
    if view == "overview":
        assert count(group(root, "thumbnails"), "image") == LAYERS * HEADS
        assert title.startswith(f"{MODEL} · All {LAYERS * HEADS} heads")
    elif view == "headview":
        lines = int(page.locator("#headview").get_attribute("data-lines"))
        assert lines > 0 and count(group(root, "lines"), "line") == lines
        labels = [t.text for t in group(root, "labels").iter(f"{SVG_NS}text")]
        assert labels[:2] == ["Queries", "Keys"] and labels[2 : 2 + debug["n"]] == debug["labels"]
        assert count(group(root, "legend"), "rect") == HEADS
        assert title.startswith(f"{MODEL} · Head view · Layer 1")
    elif view == "rollout":
        n = debug["n"]
        assert count(group(root, "row-labels"), "text") == n
        assert title == f"{MODEL} · Attention rollout after layer 1 · {n} tokens"
    elif view == "atlas":
        assert count(group(root, "cells"), "rect") == LAYERS * HEADS
        assert title.endswith(" · statistic: Previous")
    elif view == "qkmap":
        points = int(page.locator("#qk-map").get_attribute("data-points"))
        assert count(group(root, "queries"), "circle") == points
        assert count(group(root, "keys"), "circle") == points
        assert title.startswith(f"{MODEL} · Query–key map · layer 1, head 2")
    elif view == "neuron":
        d = len(debug["data"]["query"])
        keys = len(debug["keys"])
        assert count(group(root, "vectors"), "rect") == 2 * d * (keys + 1)
        assert title.startswith(f"{MODEL} · Neuron view · layer 1, head 2, query ")
    # a person looks at the figure: the SVG and the PNG side by side in a page
    look = page.context.new_page()
    look.set_content(
        f'<body style="margin:0;background:#ddd"><img src="data:image/svg+xml;base64,{b64(root)}">'
        f'<img style="width:{float(root.get("width"))}px" src="data:image/png;base64,{b64file(png)}"></body>'
    )
    screenshot(look, f"figure-{view}")
    look.close()
    assert page.problems == []


def b64(root) -> str:
    return base64.b64encode(ET.tostring(root)).decode()


def b64file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_heatmap_title_with_hidden_tokens_is_never_cut(live_server, page, tmp_path, screenshot):
    page.goto(url(live_server, "heatmap", hide_special=1, merge_words=1, mean_heads=1))
    page.wait_for_selector(READY["heatmap"][0], timeout=60_000)
    root, png = export_both(page, tmp_path, "layer-1-mean-of-heads-no-special-words")
    title, lines = header(root)
    assert "rows renormalised" in title and title.endswith(lines[-1])
    look = page.context.new_page()
    look.set_content(
        f'<body style="margin:0;background:#ddd"><img src="data:image/png;base64,{b64file(png)}"></body>'
    )
    screenshot(look, "figure-heatmap-hidden-tokens")
    look.close()
    assert page.problems == []


def test_a_long_title_wraps_onto_lines_that_fit(live_server, page):
    page.goto(url(live_server, "rollout"))
    page.wait_for_selector(READY["rollout"][0], timeout=60_000)
    long_title = "A very long figure title " * 12 + "that ends here: rows renormalised"
    out = page.evaluate(
        """async (title) => {
          const f = await import("/static/js/lib/figure.js");
          const plan = f.scenePlan({title, subtitle: "sub " + title, width: 300, height: 100,
            items: [{type: "rect", x: 0, y: 0, w: 300, h: 100, fill: "#ccc"}]});
          const svg = f.buildSceneSvg(plan);
          document.body.append(svg);
          const titles = [...svg.querySelectorAll("text[data-role=title]")];
          const widest = Math.max(...titles.map((t) => t.getBBox().x + t.getBBox().width));
          const bottom = Math.max(...titles.map((t) => t.getBBox().y + t.getBBox().height));
          // the matrix figure (heatmap, rollout) wraps the same way
          const {makeColorScale} = await import("/static/js/lib/color.js");
          const matrix = new Float32Array([0.5, 0.5, 0.2, 0.8]);
          const mplan = f.figurePlan({labels: ["a", "b"], special: [false, false], title,
            subtitle: "sub", colorScale: makeColorScale(1)}, {format: "svg"});
          const msvg = f.buildSvg(matrix, mplan);
          document.body.append(msvg);
          const mtitles = [...msvg.querySelectorAll("text[data-role=title]")];
          const mwidest = Math.max(...mtitles.map((t) => t.getBBox().x + t.getBBox().width));
          const mbottom = Math.max(...mtitles.map((t) => t.getBBox().y + t.getBBox().height));
          return {lines: titles.map((t) => t.textContent), widest, width: plan.width,
                  bodyTop: plan.dy, lastTitleY: bottom,
                  matrix: {lines: mtitles.map((t) => t.textContent), widest: mwidest, width: mplan.width,
                           bottom: mbottom, top: mplan.top - mplan.margin}};
        }""",
        long_title,
    )
    assert len(out["lines"]) > 2
    matrix = out["matrix"]
    assert len(matrix["lines"]) > 2 and " ".join(matrix["lines"]) == long_title.strip()
    assert matrix["widest"] <= matrix["width"] and matrix["bottom"] <= matrix["top"]
    assert " ".join(out["lines"]) == long_title.strip()
    assert out["widest"] <= out["width"]  # every line fits inside the figure
    assert out["lastTitleY"] <= out["bodyTop"]  # and the header is above the body
    assert page.problems == []
