"""The other views at length (about 3,000 tokens, past the head view's whole-layer limit of 1,024): All
heads streams max-pooled thumbnails one layer at a time and they equal the API's; the head view shows a window
around the focused token plus each head's strongest far keys, with the API's exact values; Rollout and Atlas
either work or show the server's refusal word for word; the generation timeline draws a long prompt.

The model is the tiny random Qwen2 with its context widened (RoPE has no learned positions)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

pytestmark = [pytest.mark.models]

TIMEOUT = 90_000
WINDOW, FAR_K = 48, 4  # views/headview.js


@pytest.fixture(scope="module")
def analysis(long_analysis):
    return long_analysis  # conftest: the widened tiny Qwen2's analysis of LONG_TEXT


def api(page, live_server, meta, path: str, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return page.request.get(f"{live_server}/api/v1/analyses/{meta['key']}/{path}?{query}")


def halves(body: bytes) -> np.ndarray:
    return np.frombuffer(body, dtype="<f2").astype(np.float32)


def test_all_heads_streams_max_pooled_thumbnails(live_server, page, analysis, screenshot):
    page.goto(f"{live_server}/analysis/{analysis['key']}?view=overview&layer=1")
    page.wait_for_selector("#overview-grid[data-state=ready]", timeout=TIMEOUT)
    grid = page.evaluate("({...document.querySelector('#overview-grid').dataset})")
    layers, heads = analysis["layers"], analysis["heads"]
    assert grid["pool"] == "max" and grid["count"] == str(layers * heads) and grid["loaded"] == str(layers)
    assert page.locator("#overview-grid button.thumb[data-state=ready]").count() == layers * heads
    assert page.locator("#overview-progress").inner_text() == ""  # done: the progress line is cleared
    size = int(grid["size"])
    for layer in range(layers):
        shown = page.evaluate(f"Array.from(window.visualizeai.view.thumbnails[{layer}])")
        sent = api(page, live_server, analysis, "thumbnails", layer=layer, size=size, pool="max")
        assert sent.headers["x-shape"] == f"{heads},{size},{size}"
        assert shown == list(sent.body())
    screenshot(page, "long-views-overview")
    page.locator('#overview-grid button.thumb[data-layer="1"][data-head="2"]').click()
    page.wait_for_selector('#heatmap[data-state=ready][data-layer="1"][data-head="2"]', timeout=TIMEOUT)
    assert page.problems == []


def test_head_view_window_and_far_keys(live_server, page, analysis, screenshot):
    focus = 2000
    page.goto(f"{live_server}/analysis/{analysis['key']}?view=headview&layer=1&focus={focus}")
    page.wait_for_selector("#headview[data-state=ready][data-mode=window]", timeout=TIMEOUT)
    a, b = focus - WINDOW // 2, focus + WINDOW // 2
    assert page.get_attribute("#headview", "data-window") == f"{a}:{b}"
    view = page.evaluate(
        "(v => ({n: v.n, keys: v.keys, far: v.far, keyTokens: v.keyTokens, matrix: Array.from(v.matrix)}))"
        "(window.visualizeai.view)"
    )
    heads = analysis["heads"]
    # the far keys: each head's strongest keys (mean over the window's rows) outside the window
    far = set()
    for head in range(heads):
        keys = api(
            page, live_server, analysis, "top-keys", layer=1, head=head, rows=f"{a}:{b}", k=WINDOW + FAR_K
        )
        outside = [key["index"] for key in keys.json()["keys"] if not a <= key["index"] < b]
        far |= set(outside[:FAR_K])
    assert view["far"] == sorted(far) and len(far) > 0
    assert view["keyTokens"] == list(range(a, b)) + sorted(far)
    assert view["n"] == WINDOW and view["keys"] == WINDOW + len(far)
    # the window's lines come from the exact weights of the block
    matrix = np.array(view["matrix"], dtype=np.float32).reshape(heads, WINDOW, view["keys"])
    block = api(
        page, live_server, analysis, "tile", layer=1, head=3, rows=f"{a}:{b}", cols=f"{a}:{b}", size=WINDOW
    )
    assert block.headers["x-exact"] == "true"
    np.testing.assert_array_equal(matrix[3, :, :WINDOW], halves(block.body()).reshape(WINDOW, WINDOW))
    screenshot(page, "long-views-headview")

    # pin the focused query: its exact rows reach the far keys
    q = focus - a
    page.locator("#headview").focus()
    box = page.evaluate(f"window.visualizeai.view.tokenBox('q', {q})")
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector(f'#headview[data-focus="q:{q}"][data-pinned=true]')
    row = halves(api(page, live_server, analysis, "row", layer=1, head=3, row=focus).body())
    page.wait_for_function(
        "([h, q, k, w]) => (v => v.matrix[(h * v.n + q) * v.keys + k] === w)(window.visualizeai.view)",
        arg=[3, q, WINDOW, float(row[sorted(far)[0]])],
    )
    assert f"of {analysis['n']}" in page.locator("#headview-status").inner_text()
    screenshot(page, "long-views-headview-pinned")
    assert page.problems == []


@pytest.mark.parametrize(
    ("tab", "root", "endpoint", "what"),
    [
        ("Rollout", "#rollout", "rollout", "attention rollout"),
        ("Atlas", "#atlas-grid", "head-stats", "head statistics"),
    ],
)
def test_rollout_and_atlas_work_or_refuse(live_server, page, analysis, tab, root, endpoint, what, screenshot):
    page.goto(f"{live_server}/analysis/{analysis['key']}?view=heatmap")
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=TIMEOUT)
    sent = api(page, live_server, analysis, endpoint, **({"layer": 1} if endpoint == "rollout" else {}))
    page.get_by_role("tab", name=tab).click()
    if sent.ok:
        page.wait_for_selector(f"{root}[data-state=ready]", timeout=TIMEOUT)
    else:
        assert sent.status in (400, 413)
        page.wait_for_selector(f"{root}[data-state=refused]", timeout=TIMEOUT)
        message = page.locator(".view-refusal:visible, #rollout-message:visible").first.inner_text()
        assert f"The server will not compute {what}" in message and sent.json()["detail"] in message
        # the refused request's own console line
        page.problems = [p for p in page.problems if f"status of {sent.status}" not in p]
    screenshot(page, f"long-views-{endpoint}")
    assert page.problems == []


def test_generation_timeline_for_a_long_prompt(live_server, page, analysis, long_qwen2, screenshot):
    page.goto(f"{live_server}/analysis/{analysis['key']}?view=generate")
    page.wait_for_selector("#gen", timeout=TIMEOUT)
    page.get_by_label("Max new tokens").fill("2")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#gen[data-state=done]", timeout=TIMEOUT)
    strip = page.locator("#gen-strip")
    assert strip.get_attribute("data-state") == "ready"
    assert strip.get_attribute("data-t") == str(analysis["n"] + 1)
    body = page.request.post(
        f"{live_server}/api/v1/generate",
        data={"text": analysis["text"], "model": str(long_qwen2), "max_new_tokens": 2},
        timeout=TIMEOUT,
    ).text()
    steps = [
        json.loads(b.split("data: ", 1)[1])
        for b in body.strip().split("\n\n")
        if b.startswith("event: token")
    ]
    sent = steps[1]["attention"]
    row = np.frombuffer(base64.b64decode(sent["data"]), dtype="<f2").reshape(sent["shape"])[0, 0]
    shown = np.array(page.evaluate("window.visualizeai.view.values"), dtype=np.float32)
    np.testing.assert_array_equal(shown, row.astype(np.float32))
    # more positions than pixels: each pixel column holds its positions' largest weight, so bars are drawn
    drawn = page.evaluate("""() => { const c = document.querySelector('#gen-strip');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > d[i] + 40 && d[i + 3] > 0) blue++;
        return blue; }""")
    assert drawn > 1000
    screenshot(page, "long-views-generate")
    assert page.problems == []
