"""The Compare page for two models of different depth (MiniLM's 6 layers against a tiny 2-layer BERT): layers
matched by index or by relative depth (layer i of A with round(i · (LB − 1) / (LA − 1)) of B), what the server
compared equals the pairing shown, and the layer and head keys."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

TIMEOUT = 60_000
TEXT = "The animal didn't cross the street because it was too tired."


def compare_url(live_server, **params) -> str:
    return f"{live_server}/compare?{urlencode(params)}"


def ready(page, **attrs) -> None:
    extra = "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attrs.items())
    page.wait_for_selector(f"#compare[data-state=ready]{extra}", timeout=TIMEOUT)


def shown(page) -> dict:
    return page.evaluate(
        "(c => ({layer: c.layer, layerB: c.layerB, match: c.match, head: c.head,"
        " a: [c.a.layer, c.a.head], b: [c.b.layer, c.b.head]}))(window.visualizeai)"
    )


def default_model(page, live_server) -> str:
    response = page.request.post(f"{live_server}/api/v1/analyze", data={"text": TEXT})
    assert response.ok
    return response.json()["model"]["id"]


def test_layers_of_two_depths_match_by_index_or_by_relative_depth(live_server, page, tiny_models, screenshot):
    minilm = default_model(page, live_server)
    tiny = str(tiny_models["bert"])
    page.goto(compare_url(live_server, mode="models", model_a=minilm, model_b=tiny, text_a=TEXT, head="0"))
    ready(page)
    match = page.get_by_label("Match layers")
    assert match.is_visible() and match.input_value() == "index"
    layer = page.get_by_label("Layer", exact=True)
    assert layer.locator("option").all_inner_texts() == ["0", "1"]  # by index: the layers both have
    assert shown(page) == {"layer": 0, "layerB": 0, "match": "index", "head": 0, "a": [0, 0], "b": [0, 0]}

    match.select_option("depth")
    ready(page, match="depth")
    # by relative depth every layer of A (6) has a partner in B (2): round(i · 1 / 5)
    options = layer.locator("option").all_inner_texts()
    assert options == ["0", "1 ↔ B 0", "2 ↔ B 0", "3 ↔ B 1", "4 ↔ B 1", "5 ↔ B 1"]
    assert "relative depth" in page.locator("#compare-sync-note").inner_text()
    for a, b in [(3, 1), (5, 1), (2, 0)]:
        layer.select_option(str(a))
        ready(page, layer=a, layer_b=b)
        assert shown(page) == {"layer": a, "layerB": b, "match": "depth", "head": 0, "a": [a, 0], "b": [b, 0]}
        assert page.locator("#compare-b").get_attribute("data-layer") == str(b)
        assert f"layer {b}, head 0" in page.locator("#compare-b-title").inner_text()
    # what is drawn is what the server compares for that pair of layers (the same inputs give the same keys)
    a_meta = page.request.post(f"{live_server}/api/v1/analyze", data={"text": TEXT, "model": minilm}).json()
    b_meta = page.request.post(f"{live_server}/api/v1/analyze", data={"text": TEXT, "model": tiny}).json()
    expected = page.request.get(
        f"{live_server}/api/v1/compare",
        params={
            "mode": "models",
            "key_a": a_meta["key"],
            "key_b": b_meta["key"],
            "layer": 2,
            "head": 0,
            "layer_b": 0,
        },
    ).json()
    assert expected["b"]["layer"] == 0 and expected["a"]["layer"] == 2
    assert page.evaluate("window.visualizeai.labels") == expected["labels"]
    drawn_b = page.evaluate("Array.from(window.visualizeai.b.matrix)")
    wire_b = page.evaluate(
        """m => { const b = Uint8Array.from(atob(m.data), c => c.charCodeAt(0));
        const h = new Uint16Array(b.buffer); return Array.from(h, x => {
          const s = x & 0x8000 ? -1 : 1, e = (x >> 10) & 31, f = x & 1023;
          return s * (e ? Math.pow(2, e - 15) * (1 + f / 1024) : Math.pow(2, -14) * (f / 1024)); }); }""",
        expected["b"]["matrix"],
    )
    assert drawn_b == wire_b
    screenshot(page, "compare-depth")

    # the permalink keeps the matching
    query = parse_qs(urlparse(page.url).query)
    assert query["match"] == ["depth"] and query["layer"] == ["2"]
    page.goto(page.url)
    ready(page, match="depth", layer=2, layer_b=0)
    assert page.get_by_label("Match layers").input_value() == "depth"

    # back to index: the layer is kept where both models have it
    page.get_by_label("Match layers").select_option("index")
    ready(page, match="index", layer=1, layer_b=1)
    assert "match" not in parse_qs(urlparse(page.url).query)
    assert page.problems == []


def test_equal_depths_need_no_matching(live_server, page):
    page.goto(compare_url(live_server, mode="sentences", text_a="The cat sat.", text_b="The dog sat."))
    ready(page)
    assert page.locator("#compare-match-control").is_hidden()
    assert page.problems == []


def test_compare_keys_move_layer_and_head(live_server, page):
    page.goto(compare_url(live_server, mode="sentences", text_a="The cat sat.", text_b="The dog sat."))
    ready(page, layer=0, head=0)
    assert "layer" in page.locator("#compare-keys").inner_text()
    page.locator("#compare-a").click()  # focus on the page, outside the form fields
    page.keyboard.press("ArrowDown")
    ready(page, layer=1, head=0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    ready(page, layer=1, head=2)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    ready(page, layer=1, head="mean")  # the first choice of Head is the mean of the heads
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")  # stops at the first layer
    ready(page, layer=0, head="mean")
    assert "layer=0" in page.url and "head=mean" in page.url
    # in a form field the arrows belong to the field
    page.get_by_label("Sentence A").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#compare").get_attribute("data-layer") == "0"
    assert page.problems == []
