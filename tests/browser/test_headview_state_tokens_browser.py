"""The Head view's permalink (selected heads, threshold, top-k, pinned token), and what token tooltips and
token lists say the model saw: the raw token, its id, its characters, a flag when the shown form differs."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlparse

TEXT = "The quick brown fox jumps over the lazy dog because it was bored."
HONEST = "Tokyo 🙂 naïve café"
READY = "#headview[data-state=ready]"


def open_page(page, base, text, **params):
    page.goto(f"{base}/analysis?{urlencode({'text': text, **params})}")


def hover_token(page, side: str, index: int) -> str:
    """Hover token `index` of the Head view's column `side` ("q" or "k"); the tooltip's text."""
    page.mouse.move(0, 0)
    box = page.evaluate(f"window.visualizeai.view.tokenBox('{side}', {index})")
    page.mouse.move(box["x"], box["y"])
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    return tip.inner_text()


def test_head_view_permalink_restores_heads_threshold_and_pinned_token(live_server, page, screenshot):
    open_page(page, live_server, TEXT, view="headview", layer=2)
    page.wait_for_selector(READY, timeout=60_000)
    page.locator("#headview-none").click()
    page.locator("#headview-head-1").check()
    page.locator("#headview-head-4").check()
    page.eval_on_selector(
        "#headview-threshold",
        "(el) => { el.value = '0.2'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.locator("#headview-topk").fill("5")
    page.locator("#headview-topk").press("Enter")
    page.locator("#headview-topk").blur()
    box = page.evaluate("window.visualizeai.view.tokenBox('k', 3)")
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector('#headview[data-focus="k:3"][data-pinned=true]')
    query = parse_qs(urlparse(page.url).query)
    assert query["view"] == ["headview"] and query["layer"] == ["2"]
    assert query["heads"] == ["1,4"] and query["threshold"] == ["0.2"] and query["topk"] == ["5"]
    assert query["pin"] == ["k:3"] and "focus" not in query  # the heatmap's focus is its own
    canvas = page.locator("#headview")
    before = {name: canvas.get_attribute(f"data-{name}") for name in ("lines", "heads", "focus")}
    status = page.locator("#headview-status").inner_text()
    assert "pinned" in status and "above 0.20" in status

    page.reload()
    page.wait_for_selector(f'{READY}[data-focus="k:3"][data-pinned=true]', timeout=60_000)
    after = {name: canvas.get_attribute(f"data-{name}") for name in ("lines", "heads", "focus")}
    assert after == before and after["heads"] == "1,4"
    view = page.evaluate(
        "(({heads, threshold, topk, pinned, layer}) => ({heads, threshold, topk, pinned, layer}))"
        "(window.visualizeai.view)"
    )
    pinned = {"side": "k", "index": 3}
    assert view == {"heads": [1, 4], "threshold": 0.2, "topk": 5, "pinned": pinned, "layer": 2}
    assert page.locator("#headview-head-1").is_checked() and page.locator("#headview-head-4").is_checked()
    assert not page.locator("#headview-head-0").is_checked()
    assert page.locator("#headview-threshold").input_value() == "0.2"
    assert page.locator("#headview-topk").input_value() == "5"
    assert page.locator("#headview-status").inner_text() == status
    assert page.evaluate("window.visualizeai.store.get().headviewHeads") == "1,4"
    screenshot(page, "headview-permalink-restored")

    # unpinning and every head again: the permalink drops them (defaults are left out)
    page.locator("#headview-all").click()
    page.mouse.click(box["x"], box["y"])  # the pinned token again: unpinned
    page.mouse.move(1, 1)
    page.wait_for_selector('#headview[data-focus=""][data-pinned=false]')
    query = parse_qs(urlparse(page.url).query)
    assert "heads" not in query and "pin" not in query
    assert query["threshold"] == ["0.2"]
    assert page.problems == []


def test_tooltips_and_lists_name_the_unknown_token(live_server, page, screenshot):
    open_page(page, live_server, HONEST, view="headview")
    page.wait_for_selector(READY, timeout=60_000)
    tokens = page.evaluate("window.visualizeai.view.meta.tokens")
    smiley = next(t for t in tokens if t["display"] == "🙂")
    text = hover_token(page, "q", smiley["index"])
    assert 'raw "[UNK]"' in text and "id 100" in text and "unknown token" in text
    assert f"chars {smiley['start']}–{smiley['end']}" in text
    naive = next(t for t in tokens if t["display"] == "naïve")
    assert 'model read "naive"' in hover_token(page, "k", naive["index"])
    screenshot(page, "headview-unknown-token-tooltip")

    # token lists flag the tokens whose shown form differs: Rollout's chips and its token picker
    page.locator("#tab-rollout").click()
    page.wait_for_selector("#rollout[data-state=ready]", timeout=60_000)
    badges = page.locator("#rollout-tokens .tok-badge")
    assert page.locator("#rollout-tokens .tok-badge[data-badge=unknown]").all_inner_texts() == ["[UNK]"]
    assert badges.count() == 4  # 🙂 unknown; Tokyo, naïve and café read lower-cased / without accents
    assert 'raw "[UNK]" · id 100' in page.locator(".tok-badge[data-badge=unknown]").get_attribute("title")
    options = page.locator("#rollout-source option").all_inner_texts()
    assert any(o.startswith("🙂 [UNK]") for o in options)
    screenshot(page, "rollout-token-badges")

    # the Neuron view names its query token's facts, and a key's in its tooltip
    page.goto(page.url.replace("view=rollout", "view=neuron") + f"&focus={smiley['index']}")
    page.wait_for_selector(f"#neuron[data-state=drawn][data-query='{smiley['index']}']", timeout=60_000)
    assert 'raw "[UNK]" · id 100' in page.locator(".neuron-token").inner_text()
    assert page.locator(".neuron-token .tok-badge[data-badge=unknown]").count() == 1
    keys = page.evaluate("window.visualizeai.view.keys")
    row = keys.index(naive["index"])
    box = page.evaluate(f"window.visualizeai.view.cellBox({row}, 0, 'label')")
    page.mouse.move(box["x"], box["y"])
    page.locator("#tooltip").wait_for(state="visible")
    assert 'raw "naive"' in page.locator("#tooltip").inner_text()
    assert page.problems == []


def test_byte_level_piece_tooltip_shows_raw_and_readable_forms(live_server, page, tiny_models, screenshot):
    open_page(page, live_server, HONEST, model=str(tiny_models["gpt2"]), view="headview")
    page.wait_for_selector(READY, timeout=60_000)
    tokens = page.evaluate("window.visualizeai.view.meta.tokens")
    piece = next(t for t in tokens if "<0xF0>" in (t["readable"] or ""))
    text = hover_token(page, "q", piece["index"])
    assert f"raw {json.dumps(piece['raw'], ensure_ascii=False)}" in text
    assert f"id {piece['id']}" in text
    assert f"model read {json.dumps(piece['readable'], ensure_ascii=False)}" in text and "<0xF0>" in text
    screenshot(page, "headview-byte-piece-tooltip")

    # the Query–key map's tooltip says the same
    page.locator("#tab-qkmap").click()
    page.wait_for_selector("#qk-map[data-state=drawn]", timeout=60_000)
    m = page.evaluate("window.visualizeai.view.map.positions.length")
    at = page.evaluate(f"window.visualizeai.view.map.positions.indexOf({piece['index']})")
    assert at >= 0
    page.mouse.move(0, 0)
    page.locator("#qk-canvas").scroll_into_view_if_needed()
    point = page.evaluate(f"window.visualizeai.view.pointBox({at})")
    page.mouse.move(point["x"], point["y"])
    page.wait_for_selector("#qk-canvas[data-hover]:not([data-hover=''])")
    hovered = int(page.locator("#qk-canvas").get_attribute("data-hover"))
    position = page.evaluate(f"window.visualizeai.view.map.positions[{hovered % m}]")
    facts = next(t for t in tokens if t["index"] == position)
    tip = page.locator("#tooltip").inner_text()
    assert f"raw {json.dumps(facts['raw'], ensure_ascii=False)}" in tip and f"id {facts['id']}" in tip
    assert page.problems == []
