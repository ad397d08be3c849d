"""The Rollout and Atlas views and the Compare page in Chromium: what a person sees and can click."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest

TEXT = "The quick brown fox jumps over the lazy dog, and therefore the dog sleeps."
TIMEOUT = 60_000


def open_view(page, live_server, view: str, ready: str, text: str = TEXT, **params) -> None:
    query = urlencode({"text": text, "view": view, **params})
    page.goto(f"{live_server}/analysis?{query}")
    page.wait_for_selector(ready, timeout=TIMEOUT)


def dataset(page, selector: str) -> dict:
    return page.evaluate(f"({{...document.querySelector('{selector}').dataset}})")


def coloured_pixels(page, selector: str) -> int:
    """How many pixels of a canvas are painted darker than near-white: it really drew something."""
    return page.evaluate(
        """(sel) => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] < 230) k++; return k; }""",
        selector,
    )


# ---- head atlas --------------------------------------------------------------------------------------------


def test_atlas_grid_sorting_and_opening_a_head(live_server, page, screenshot):
    open_view(page, live_server, "atlas", "#atlas-grid[data-state=ready]")
    stats = page.evaluate("window.visualizeai.view.stats")
    layers, heads = stats["layers"], stats["heads"]
    cells = page.locator("#atlas-grid button.atlas-cell")
    assert cells.count() == layers * heads == 72
    assert dataset(page, "#atlas-grid")["count"] == "72"
    assert page.locator(".atlas-row").all_inner_texts()[:2] == ["Layer 0", "Layer 1"]
    # the Statistic select, with each statistic's description as help
    assert page.get_by_label("Statistic", exact=True).input_value() == "previous_share"
    assert "token just before" in page.locator("#atlas-description").inner_text()
    page.get_by_label("Statistic", exact=True).select_option("entropy")
    page.wait_for_selector("#atlas-grid[data-stat=entropy]")
    cell = page.locator('#atlas-grid button.atlas-cell[data-layer="2"][data-head="5"]')
    assert float(cell.get_attribute("data-value")) == pytest.approx(
        stats["values"]["entropy"][2][5], rel=1e-6
    )
    assert "spread out" in page.locator("#atlas-description").inner_text()

    def table_order():
        return page.evaluate(
            "[...document.querySelectorAll('#atlas-table tbody tr')]"
            ".map(r => [+r.dataset.layer, +r.dataset.head])"
        )

    def by(name, descending):
        values = stats["values"][name]
        pairs = [(layer, head) for layer in range(layers) for head in range(heads)]
        return [
            list(p)
            for p in sorted(
                pairs, key=lambda p: (-values[p[0]][p[1]] if descending else values[p[0]][p[1]], p)
            )
        ]

    assert table_order() == by("entropy", True)  # choosing a statistic sorts by it, largest first
    page.locator("#atlas-table th button[data-sort=self_share]").click()
    assert (
        page.get_by_label("Statistic", exact=True).input_value() == "self_share"
    )  # sorting by a column chooses it
    assert dataset(page, "#atlas-table")["sort"] == "self_share:desc"
    assert table_order() == by("self_share", True)
    page.locator("#atlas-table th button[data-sort=self_share]").click()
    assert table_order() == by("self_share", False)
    assert page.locator("#atlas-table th[aria-sort=ascending]").inner_text().startswith("Self")
    screenshot(page, "aggregates-atlas")

    page.locator('#atlas-grid button.atlas-cell[data-layer="3"][data-head="7"]').click()
    page.wait_for_selector('#heatmap[data-state=ready][data-layer="3"][data-head="7"]', timeout=TIMEOUT)
    assert page.get_by_role("tab", name="Heatmap").get_attribute("aria-selected") == "true"
    assert "view=heatmap" in page.url and "layer=3" in page.url and "head=7" in page.url
    # and a row of the table opens its head too
    page.get_by_role("tab", name="Atlas").click()
    page.wait_for_selector("#atlas-grid[data-state=ready]")
    first = page.locator("#atlas-table tbody tr").first
    layer, head = first.get_attribute("data-layer"), first.get_attribute("data-head")
    first.click()
    page.wait_for_selector(f'#heatmap[data-state=ready][data-layer="{layer}"][data-head="{head}"]')
    assert page.problems == []


# ---- rollout -----------------------------------------------------------------------------------------------


def test_rollout_view_draws_heatmap_and_the_token_row(live_server, page, screenshot):
    open_view(page, live_server, "rollout", "#rollout[data-state=ready]")
    assert page.get_by_role("tab", name="Rollout").get_attribute("aria-selected") == "true"
    assert page.locator("[data-control=layer]").is_visible()
    assert not page.locator("[data-control=head]").is_visible()  # rollout averages the heads
    viz = page.evaluate(
        "(v => ({n: v.n, matrix: Array.from(v.matrix), meta: v.meta}))(window.visualizeai.view)"
    )
    n = viz["n"]
    matrix = np.array(viz["matrix"], dtype=np.float32).reshape(n, n)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=5e-3)  # rollout rows sum to 1
    assert coloured_pixels(page, "#rollout-canvas") > 1000
    # the [CLS] row over the text: one chip per token, textContent and weight
    chips = page.locator("#rollout-tokens .rollout-chip")
    assert chips.count() == n
    assert chips.nth(0).inner_text() == "[CLS]" and chips.nth(0).get_attribute("aria-current") == "true"
    assert [chips.nth(i).inner_text() for i in (1, 2)] == ["The", "quick"]
    weights = [float(chips.nth(i).get_attribute("data-weight")) for i in range(n)]
    np.testing.assert_allclose(weights, matrix[0], rtol=1e-6)
    assert "What reaches [CLS] (0) after layer 0" in page.locator("#rollout-row-title").inner_text()
    # the deepest layer: equal to numpy's rollout of the same analysis, as far as float16 goes
    page.get_by_label("Layer", exact=True).select_option("5")
    page.wait_for_selector('#rollout[data-state=ready][data-layer="5"]')
    deep = page.evaluate("Array.from(window.visualizeai.view.matrix)")
    deep = np.array(deep, dtype=np.float32).reshape(n, n)
    key = viz["meta"]["key"]
    response = page.request.get(f"{live_server}/api/v1/analyses/{key}/rollout")
    whole = np.frombuffer(response.body(), dtype="<f2").reshape(6, n, n)
    np.testing.assert_array_equal(deep, whole[5].astype(np.float32))
    # choosing another token (a chip) shows its row
    chips.nth(4).click()
    page.wait_for_selector("#rollout-tokens[data-source='4']")
    assert "What reaches fox (4) after layer 5" in page.locator("#rollout-row-title").inner_text()
    assert page.locator("#rollout-source").input_value() == "4"
    screenshot(page, "aggregates-rollout")
    # attention flow for this short text
    page.get_by_label("Attention flow").check()
    page.wait_for_selector('#rollout[data-state=ready][data-mode=flow][data-layer="5"]', timeout=TIMEOUT)
    assert page.locator("#rollout-message").is_hidden()
    assert page.locator("#rollout-caption").inner_text().startswith("Attention flow after layer 5")
    flow = np.array(page.evaluate("Array.from(window.visualizeai.view.matrix)"), dtype=np.float32)
    assert (flow >= 0).all() and (flow <= 1 + 1e-3).all()
    assert page.problems == []


def test_flow_above_the_bound_says_why_instead_of_waiting(live_server, page, screenshot):
    long = " ".join(["the quick brown fox jumps"] * 12)
    open_view(page, live_server, "rollout", "#rollout[data-state=ready]", text=long, layer="5")
    page.get_by_label("Attention flow").check()
    page.wait_for_selector("#rollout[data-state=ready][data-flow-refused=true]", timeout=5_000)
    message = page.locator("#rollout-message")
    assert message.is_visible()
    text = message.inner_text()
    assert "Attention flow is not shown" in text and "this text has 62 tokens" in text
    assert "at most" in text and "Rollout has no such bound" in text
    assert dataset(page, "#rollout")["mode"] == "rollout"  # rollout stays on screen
    screenshot(page, "aggregates-flow-refused")
    assert page.problems == []  # the page asked /flow-limits first: no failed request at all


# ---- compare page ------------------------------------------------------------------------------------------


def compare_url(live_server, **params) -> str:
    return f"{live_server}/compare?{urlencode(params)}"


def sides(page) -> dict:
    return page.evaluate(
        "({layer: window.visualizeai.layer, head: window.visualizeai.head, a: [window.visualizeai.a.layer, "
        "window.visualizeai.a.head], b: [window.visualizeai.b.layer, window.visualizeai.b.head]})"
    )


def test_compare_two_sentences_with_one_synchronised_control(live_server, page, screenshot):
    a, b = "The doctor asked the nurse to help her.", "The doctor asked the nurse to help him."
    page.goto(compare_url(live_server, mode="sentences", text_a=a, text_b=b))
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert page.locator("nav a[aria-current=page]").inner_text() == "Compare"
    assert dataset(page, "#compare")["mode"] == "sentences"
    for canvas in ("#compare-a", "#compare-b", "#compare-diff"):
        assert coloured_pixels(page, canvas) > 500
    data = page.evaluate(
        "({a: window.visualizeai.a.labels, b: window.visualizeai.b.labels, d: window.visualizeai.labels})"
    )
    assert "her" in data["a"] and "him" in data["b"]
    assert len(data["d"]) == len(data["a"]) - 1 and "her" not in data["d"]  # only the shared tokens
    assert "Only in A: her" in page.locator("#compare-unmatched").inner_text()
    # one Layer and one Head for both sides, kept in the URL
    page.get_by_label("Layer", exact=True).select_option("4")
    page.get_by_label("Head", exact=True).select_option("9")
    page.wait_for_selector('#compare[data-state=ready][data-layer="4"][data-head="9"]', timeout=TIMEOUT)
    assert sides(page) == {"layer": 4, "head": 9, "a": [4, 9], "b": [4, 9]}
    for canvas in ("#compare-a", "#compare-b", "#compare-diff"):
        assert dataset(page, canvas)["layer"] == "4" and dataset(page, canvas)["head"] == "9"
    query = parse_qs(urlparse(page.url).query)
    assert query["layer"] == ["4"] and query["head"] == ["9"]
    # the permalink names the two analyses by their keys; an old link's texts leave the address at once
    assert len(query["a"][0]) == len(query["b"][0]) == 32 and not {"text_a", "text_b", "model_a"} & set(query)
    screenshot(page, "aggregates-compare-sentences")
    # the permalink restores the same view
    page.goto(page.url)
    page.wait_for_selector('#compare[data-state=ready][data-layer="4"][data-head="9"]', timeout=TIMEOUT)
    assert page.get_by_label("Head", exact=True).input_value() == "9"
    assert page.problems == []


def test_compare_two_models_on_a_common_word_axis(live_server, page, tiny_models, screenshot):
    text = "The animal didn't cross the street because it was too tired."
    page.goto(
        compare_url(
            live_server,
            mode="models",
            model_a=str(tiny_models["bert"]),
            model_b=str(tiny_models["albert"]),
            text_a=text,
        )
    )
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert dataset(page, "#compare")["mode"] == "models"
    # heads of two models are not alike: the mean of each layer's heads comes first
    assert page.get_by_label("Head", exact=True).input_value() == "mean"
    labels = page.evaluate("(c => [c.a.labels, c.b.labels, c.labels])(window.visualizeai)")
    # WordPiece and SentencePiece both cut "didn't" at the apostrophe: the words are where both sides cut
    words = "The animal didn ' t cross the street because it was too tired .".split()
    assert labels == [words, words, words]
    for canvas in ("#compare-a", "#compare-b", "#compare-diff"):
        assert dataset(page, canvas)["n"] == str(len(words)) and coloured_pixels(page, canvas) > 500
    page.get_by_label("Layer", exact=True).select_option("1")
    page.get_by_label("Head", exact=True).select_option("3")
    page.wait_for_selector('#compare[data-state=ready][data-layer="1"][data-head="3"]', timeout=TIMEOUT)
    assert sides(page) == {"layer": 1, "head": 3, "a": [1, 3], "b": [1, 3]}
    assert "14 words" in page.locator("#compare-alignment").inner_text()
    # hovering the difference shows both values
    page.locator("#compare-diff").scroll_into_view_if_needed()
    box = page.locator("#compare-diff").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 20)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert "A − B" in tip.inner_text() and " · B " in tip.inner_text()
    screenshot(page, "aggregates-compare-models")
    assert page.problems == []


def test_compare_form_switches_modes_and_makes_a_permalink(live_server, page, tiny_models):
    page.goto(f"{live_server}/compare")
    assert page.locator("#compare").is_hidden()  # nothing asked yet
    assert page.get_by_label("Sentence B").is_visible() and page.locator("#model-b").is_hidden()
    page.get_by_label("Two models, one text").check()
    assert page.get_by_label("Sentence B").is_hidden() and page.get_by_label("Model B").is_visible()
    assert page.locator("#text-a-label").inner_text() == "Text"
    page.get_by_label("Text", exact=True).fill("I think, therefore I am.")
    # tiny models are not in the catalog: the permalink names them; the form keeps what it was given
    page.goto(
        compare_url(
            live_server,
            mode="models",
            model_a=str(tiny_models["bert"]),
            model_b=str(tiny_models["roberta"]),
            text_a="I think, therefore I am.",
        )
    )
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert page.get_by_label("Model A").input_value() == str(tiny_models["bert"])
    page.get_by_role("button", name="Compare").click()  # the form posts; the answer is the keyed page
    page.wait_for_url("**/compare?mode=models&a=*")
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    query = parse_qs(urlparse(page.url).query)
    assert query["mode"] == ["models"] and {"a", "b"} <= set(query)
    assert not {"text_a", "text_b", "model_a", "model_b"} & set(query)  # never the texts in the address
    assert page.get_by_label("Model B").input_value() == str(tiny_models["roberta"])
    assert page.get_by_label("Text", exact=True).input_value() == "I think, therefore I am."
    assert page.evaluate("window.visualizeai.labels") == ["I", "think", ",", "therefore", "I", "am", "."]
    assert page.problems == []


HOSTILE_TEXT = (
    'look <img src=x onerror=alert(1)> and <script>alert(1)</script> then "><svg onload=alert(1)> end'
)
INJECTED = """() => ({
  img: document.querySelectorAll('img').length,
  svg: document.querySelectorAll('svg').length,
  handlers: document.querySelectorAll('[onerror], [onload]').length,
})"""


def test_markup_in_the_text_stays_text(live_server, page, tiny_models):
    """Token chips, word labels, titles and the form show a text full of markup as text."""
    model = str(tiny_models["roberta"])
    open_view(page, live_server, "rollout", "#rollout[data-state=ready]", text=HOSTILE_TEXT, model=model)
    chips = page.locator("#rollout-tokens .rollout-chip").all_inner_texts()
    joined = "".join(chips)  # pieces of a word sit side by side
    assert "<img" in joined and "<script>alert(1)</script>" in joined and '"><svg' in joined
    assert page.evaluate(INJECTED) == {"img": 0, "svg": 0, "handlers": 0}
    page.get_by_role("tab", name="Atlas").click()
    page.wait_for_selector("#atlas-grid[data-state=ready]")
    params = {"mode": "models", "model_a": str(tiny_models["bert"]), "model_b": model, "text_a": HOSTILE_TEXT}
    page.goto(compare_url(live_server, **params))
    page.wait_for_selector("#compare[data-state=ready]", timeout=TIMEOUT)
    assert "<img" in page.evaluate("window.visualizeai.labels")
    assert page.get_by_label("Text", exact=True).input_value() == HOSTILE_TEXT
    assert page.evaluate(INJECTED) == {"img": 0, "svg": 0, "handlers": 0}
    assert page.problems == []
