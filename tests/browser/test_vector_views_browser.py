"""The query–key map and the neuron view as tabs of the analysis page: what they show equals the API's
answer, hovering a point shows its token and strongest keys, clicking focuses the token in the heatmap, and an
analysis that holds weights only says why instead of drawing."""

from __future__ import annotations

import pytest

TEXT = "The cat sat on the mat because it was tired."
TIMEOUT = 60_000
LAYER, HEAD = 1, 2


def analyse(page, live_server, text: str = TEXT) -> dict:
    response = page.request.post(f"{live_server}/api/v1/analyze", data={"text": text})
    assert response.ok, response.text()
    return response.json()


def api(page, live_server, path: str, **params) -> dict:
    response = page.request.get(f"{live_server}/api/v1{path}", params=params)
    assert response.ok, response.text()
    return response.json()


def formatter(page):
    """A value as the page writes it: four significant digits, by the browser's own toPrecision(4)."""
    return lambda value: page.evaluate("v => v.toPrecision(4)", value)


def test_qk_map_shows_the_api_map_hover_and_click(live_server, page, screenshot):
    meta = analyse(page, live_server)
    # with words merged and heads averaged, a click still opens this head over plain tokens
    page.goto(
        f"{live_server}/analysis/{meta['key']}?view=qkmap&layer={LAYER}&head={HEAD}&merge_words=1&mean_heads=1"
    )
    page.wait_for_selector(
        f'#qk-map[data-state=drawn][data-layer="{LAYER}"][data-head="{HEAD}"]', timeout=TIMEOUT
    )
    assert page.get_by_role("tab", name="Query–key map").get_attribute("aria-selected") == "true"
    expected = api(page, live_server, f"/analyses/{meta['key']}/qk-map", layer=LAYER, head=HEAD)
    shown = page.evaluate("window.visualizeai.view.map")
    assert shown["positions"] == expected["positions"] == list(range(meta["n"]))
    assert shown["queries"] == expected["queries"] and shown["keys"] == expected["keys"]
    assert page.locator("#qk-map").get_attribute("data-points") == str(meta["n"])
    caption = page.locator("#qk-caption").inner_text()
    assert f"Layer {LAYER}, head {HEAD}" in caption
    assert f"{round(expected['explained'][0] * 100)}%" in caption

    # hover the query of "sat": its token and its five strongest keys, as the API ranks them
    sat = next(t["index"] for t in meta["tokens"] if t["display"] == "sat")
    box = page.evaluate(f"window.visualizeai.view.pointBox({sat})")
    page.mouse.move(box["x"], box["y"])
    top = api(
        page,
        live_server,
        f"/analyses/{meta['key']}/top-keys",
        layer=LAYER,
        head=HEAD,
        rows=f"{sat}:{sat + 1}",
        k=5,
    )
    wanted = ",".join(str(k["index"]) for k in top["keys"])
    page.wait_for_selector(f'#qk-canvas[data-hover-keys="{wanted}"]')
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible()
    lines = tooltip.inner_text().split("\n")
    assert lines[0] == f"query sat #{sat}"
    listed = lines[lines.index("strongest keys:") + 1 :][:5]
    fmt = formatter(page)
    for line, key in zip(listed, top["keys"], strict=True):
        assert line.startswith(fmt(key["weight"]) + " ") and line.endswith(f"#{key['index']}")
    screenshot(page, "qkmap-hover")

    # a key point (hollow) names itself as a key
    m = len(expected["positions"])
    box_key = page.evaluate(f"window.visualizeai.view.pointBox({m + sat})")
    page.mouse.move(box_key["x"], box_key["y"])
    page.wait_for_selector(f'#qk-canvas[data-hover="{m + sat}"]')
    assert page.locator("#tooltip").inner_text().startswith(f"key sat #{sat}")

    # click the query: the heatmap opens at the same head with that token's row focused
    page.mouse.move(box["x"], box["y"])
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector(
        f'#heatmap[data-state=ready][data-layer="{LAYER}"][data-head="{HEAD}"]', timeout=TIMEOUT
    )
    assert page.locator("#heatmap").get_attribute("data-focus") == f"row:{sat}"
    assert page.locator("#heatmap").get_attribute("data-n") == str(meta["n"])
    assert page.evaluate("window.visualizeai.view.agg") == "none"
    assert "merge_words" not in page.url and "mean_heads" not in page.url
    assert page.get_by_role("tab", name="Heatmap").get_attribute("aria-selected") == "true"
    assert f"focus={sat}" in page.url
    assert page.problems == []


def test_qk_map_colours_by_token_type(live_server, page):
    meta = analyse(page, live_server)
    page.goto(f"{live_server}/analysis/{meta['key']}?view=qkmap")
    page.wait_for_selector("#qk-map[data-state=drawn]", timeout=TIMEOUT)
    assert "position 0" in page.locator("#qk-legend").inner_text()
    page.get_by_label("Colour by").select_option("type")
    legend = page.locator("#qk-legend").inner_text()
    assert "special" in legend and "word start" in legend and "punctuation" in legend
    assert page.evaluate("window.visualizeai.view.colorBy") == "type"
    assert page.problems == []


def test_neuron_view_explains_each_weight(live_server, page, screenshot):
    meta = analyse(page, live_server)
    query = next(t["index"] for t in meta["tokens"] if t["display"] == "on")
    page.goto(f"{live_server}/analysis/{meta['key']}?view=neuron&layer={LAYER}&head={HEAD}&focus={query}")
    page.wait_for_selector(f'#neuron[data-state=drawn][data-query="{query}"]', timeout=TIMEOUT)
    expected = api(page, live_server, f"/analyses/{meta['key']}/neuron", layer=LAYER, head=HEAD, query=query)
    shown = page.evaluate("window.visualizeai.view.data")
    assert shown == expected
    assert page.locator("#neuron").get_attribute("data-keys") == str(len(expected["keys"]))
    # each weight is the softmax of the logits, each logit the products' sum times the scale
    assert abs(sum(k["weight"] for k in expected["keys"]) - 1) < 1e-4  # a short text: every key listed
    for k in expected["keys"]:
        assert k["logit"] == pytest.approx(sum(k["products"]) * expected["scaling"], rel=1e-4, abs=1e-4)

    # hover dimension 3 of key row 2's product: q × k = product, the logit and the weight, as the API says
    row, dim = 2, 3
    fmt = formatter(page)
    key = expected["keys"][row]
    box = page.evaluate(f"window.visualizeai.view.cellBox({row}, {dim}, 'p')")
    page.mouse.move(box["x"], box["y"])
    tooltip = page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert f"#{key['index']}" in text
    product = f"q {fmt(expected['query'][dim])} × k {fmt(key['vector'][dim])} = {fmt(key['products'][dim])}"
    assert f"dimension {dim}: {product}" in text
    assert f"logit {fmt(key['logit'])}" in text and f"weight {fmt(key['weight'])}" in text
    screenshot(page, "neuron-hover")

    # click a key row: it becomes the query (and the permalink's focus)
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector(f'#neuron[data-state=drawn][data-query="{key["index"]}"]', timeout=TIMEOUT)
    assert f"focus={key['index']}" in page.url
    # with the picture focused, ↓ moves the query, not the layer
    page.locator("#neuron-canvas").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(f'#neuron[data-state=drawn][data-query="{key["index"] + 1}"]', timeout=TIMEOUT)
    assert page.locator("#layer").input_value() == str(LAYER)
    assert page.problems == []


def test_weights_only_analysis_says_why(live_server, page, screenshot):
    meta = analyse(page, live_server)
    saved = page.request.get(f"{live_server}/api/v1/analyses/{meta['key']}/export", params={"format": "npz"})
    assert saved.ok
    opened = page.request.post(
        f"{live_server}/api/v1/analyses",
        multipart={"file": {"name": "saved.npz", "mimeType": "application/zip", "buffer": saved.body()}},
    )
    assert opened.ok, opened.text()
    key = opened.json()["key"]
    refusal = page.request.get(f"{live_server}/api/v1/analyses/{key}/qk-map", params={"layer": 0, "head": 0})
    assert refusal.status == 409
    detail = refusal.json()["detail"]
    for view, box, notice in (("qkmap", "#qk-map", "#qk-notice"), ("neuron", "#neuron", "#neuron-notice")):
        page.goto(f"{live_server}/analysis/{key}?view={view}")
        page.wait_for_selector(f"{box}[data-state=refused]", state="attached", timeout=TIMEOUT)
        assert page.locator(notice).is_visible() and page.locator(notice).inner_text() == detail
        assert page.locator(box).is_hidden()
        assert page.locator("#error").is_hidden()  # the page's error line stays for failures
        screenshot(page, f"{view}-weights-only")
    # the browser reports each refused request on its console; nothing else may go wrong
    refused = "console: Failed to load resource: the server responded with a status of 409 (Conflict)"
    assert [p for p in page.problems if p != refused] == []
    assert refused in page.problems


@pytest.mark.parametrize("width", [800, 1400, 1920])
def test_vector_views_fit_the_window(live_server, page, screenshot, width):
    meta = analyse(page, live_server, " ".join(["Researchers read attention maps of long texts."] * 40))
    page.set_viewport_size({"width": width, "height": 900})
    for view, box, canvas in (("qkmap", "#qk-map", "#qk-canvas"), ("neuron", "#neuron", "#neuron-canvas")):
        page.goto(f"{live_server}/analysis/{meta['key']}?view={view}&layer=2&head=3")
        page.wait_for_selector(f"{box}[data-state=drawn]", timeout=TIMEOUT)
        drawn = page.locator(canvas).bounding_box()
        assert drawn["x"] >= 0 and drawn["x"] + drawn["width"] <= width, (view, drawn)
        assert page.evaluate(
            f"document.querySelector('{box}').scrollWidth <= document.querySelector('{box}').clientWidth"
        )
        tabs = page.locator("#view-tabs").bounding_box()
        assert tabs["y"] + tabs["height"] <= drawn["y"]
        screenshot(page, f"{view}-{width}")
    assert page.problems == []
