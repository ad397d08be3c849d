"""LMs in Chromium: click-to-mask re-runs with predictions; generation streams and the timeline scrubs."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
from heatmap_probe import pixels

MARK_RGB = (124, 58, 237)  # heatmap outline of a masked row (#7c3aed)


def open_analysis(page, base, model, text, **extra):
    page.goto(f"{base}/analysis?{urlencode({'model': model, 'text': text, **extra})}")


def wait_heatmap(page):
    page.wait_for_selector("#heatmap[data-state=ready]", timeout=60_000)


def shown_text(page) -> str:
    """The analysed text as the page shows it; the URL addresses the analysis by key and never carries it."""
    assert "text" not in parse_qs(urlparse(page.url).query)
    return page.locator("#summary-text").inner_text()


def wait_new_analysis(page, before: str):
    """Wait until the page shows another analysis than the one at `before` (a /analysis/{key} URL)."""
    key = urlparse(before).path
    page.wait_for_url(lambda url: urlparse(url).path.startswith("/analysis/") and urlparse(url).path != key)


def mark_pixels(page) -> int:
    r, g, b = MARK_RGB
    return pixels(page, f"Math.abs(r - {r}) < 6 && Math.abs(g - {g}) < 6 && Math.abs(b - {b}) < 6")


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_click_to_mask_reruns_and_shows_predictions(live_server, page, screenshot, tiny_models):
    model = str(tiny_models["bert"])
    open_analysis(page, live_server, model, "The cat sat on the mat.")
    wait_heatmap(page)
    section = page.locator("#predictions")
    assert section.is_visible() and "Mask a token" in section.inner_text()
    assert page.locator(".pred-card").count() == 0
    assert page.locator("#tab-generate").is_hidden()  # generation is for causal LMs only
    assert mark_pixels(page) == 0

    # click "mat" in the token strip: the text is re-run with [MASK] in its place
    before = page.url
    page.locator("#token-strip").get_by_role("button", name="mat", exact=True).click()
    wait_new_analysis(page, before)
    wait_heatmap(page)
    assert shown_text(page) == "The cat sat on the [MASK]."
    cards = page.locator(".pred-card")
    assert cards.count() == 1
    position = int(cards.first.get_attribute("data-position"))
    assert page.evaluate("window.visualizeai.view.meta.tokens")[position]["display"] == "[MASK]"
    shown = [
        (int(li.get_attribute("data-token-id")), float(li.get_attribute("data-score")))
        for li in cards.first.locator(".pred-list li").all()
    ]
    expected = page.request.post(
        f"{live_server}/api/v1/fill-mask", data={"text": "The cat sat on the [MASK].", "model": model}
    ).json()["predictions"][0]["candidates"]
    assert [i for i, _ in shown] == [c["token_id"] for c in expected]
    np.testing.assert_allclose([s for _, s in shown], [c["score"] for c in expected], atol=1e-9)
    assert cards.first.locator(".pred-focus-table tbody tr").count() == 2  # one row per layer
    assert "%" in cards.first.locator(".pred-score").first.inner_text()
    assert mark_pixels(page) > 50  # the masked row is outlined in the heatmap
    assert page.locator("#token-strip .token-chip.mask").count() == 1
    screenshot(page, "lm-mask-one")

    # a layer name in the focus summary switches the views to that layer
    cards.first.get_by_role("button", name="Layer 1").click()
    page.wait_for_selector("#heatmap[data-state=ready][data-layer='1']")

    # double-click the heatmap's row label of "cat": both masks now
    tokens = page.evaluate("window.visualizeai.view.meta.tokens")
    cat = next(i for i, t in enumerate(tokens) if t["display"] == "cat")
    page.evaluate(f"window.scrollBy(0, window.visualizeai.view.labelBox('row', {cat}).y - innerHeight / 2)")
    box = page.evaluate(f"window.visualizeai.view.labelBox('row', {cat})")
    before = page.url
    page.mouse.dblclick(box["x"], box["y"])
    wait_new_analysis(page, before)
    wait_heatmap(page)
    assert shown_text(page) == "The [MASK] sat on the [MASK]."
    assert parse_qs(urlparse(page.url).query)["layer"] == ["1"]  # what was looked at is kept
    assert page.locator(".pred-card").count() == 2
    screenshot(page, "lm-mask-two")
    assert page.problems == []


def test_model_without_trained_head_explains_why(live_server, page):
    open_analysis(page, live_server, "all-MiniLM-L6-v2", "I think, therefore I [MASK].")
    wait_heatmap(page)
    note = page.locator("#predictions-note")
    assert note.is_visible() and "no trained masked-language-model head" in note.inner_text()
    assert page.locator(".pred-card").count() == 0 and page.locator("#token-strip").count() == 0
    assert page.problems == []


def test_generation_streams_and_timeline_scrubs(live_server, page, screenshot, tiny_models):
    model = str(tiny_models["gpt2"])
    prompt = "She sells sea shells"
    open_analysis(page, live_server, model, prompt, view="generate")
    page.wait_for_selector("#gen")
    # the next-token prediction of the analysis is shown above the views
    assert page.locator(".pred-card[data-kind=next]").count() == 1

    assert page.get_by_label("Greedy").is_checked()
    seed = page.get_by_label("Seed")
    assert seed.is_disabled()
    page.get_by_label("Max new tokens").fill("10")
    events = []
    page.on("requestfinished", lambda r: events.append(r.url) if r.url.endswith("/api/v1/generate") else None)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#gen[data-state=done]", timeout=60_000)
    assert events, "the page streamed from /api/v1/generate"
    tokens = page.locator("#gen-output .gen-token")
    assert tokens.count() == 10
    assert "Generated 10 tokens" in page.locator("#gen-status").inner_text()

    reference = sse_events(
        page.request.post(
            f"{live_server}/api/v1/generate", data={"text": prompt, "model": model, "max_new_tokens": 10}
        ).text()
    )
    steps = [e for name, e in reference if name == "token"]
    p = len(reference[0][1]["prompt_tokens"])
    generated = "".join(s["text"] for s in steps)
    assert page.locator("#gen-output").inner_text() == prompt + generated

    # the scrubber follows the newest step; Home / ArrowRight move through the steps
    slider = page.get_by_role("slider", name="Step")
    assert slider.get_attribute("max") == "9" and slider.input_value() == "9"
    strip = page.locator("#gen-strip")
    assert strip.get_attribute("data-step") == "9" and strip.get_attribute("data-t") == str(p + 9)
    slider.focus()
    page.keyboard.press("Home")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert strip.get_attribute("data-step") == "3" and strip.get_attribute("data-t") == str(p + 3)
    assert page.locator("#gen-output .gen-token.selected").get_attribute("data-step") == "3"

    def shown_row():
        return np.array(page.evaluate("window.visualizeai.view.values"))

    def sent_row(step, layer, head):
        raw = base64.b64decode(steps[step]["attention"]["data"])
        return np.frombuffer(raw, dtype="<f2").reshape(steps[step]["attention"]["shape"])[layer, head]

    np.testing.assert_array_equal(shown_row(), sent_row(3, 0, 0).astype(np.float32))
    assert abs(shown_row().sum() - 1) < 5e-3
    page.get_by_label("Head", exact=True).select_option("2")
    page.get_by_label("Layer", exact=True).select_option("1")
    page.wait_for_selector("#gen-strip[data-head='2'][data-layer='1']")
    np.testing.assert_array_equal(shown_row(), sent_row(3, 1, 2).astype(np.float32))
    assert "layer 1, head 2" in page.locator("#gen-step-text").inner_text()

    # clicking a generated token selects its step; the strip is really drawn
    tokens.nth(6).click()
    assert slider.input_value() == "6" and strip.get_attribute("data-t") == str(p + 6)
    drawn = page.evaluate("""() => { const c = document.querySelector('#gen-strip');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > d[i] + 40 && d[i + 3] > 0) blue++;
        return blue; }""")
    assert drawn > 1000
    screenshot(page, "lm-generate")

    # seeded sampling: the same seed gives the same text as the API
    page.get_by_label("Sampled").check()
    assert seed.is_enabled()
    seed.fill("7")
    sampled = sse_events(
        page.request.post(
            f"{live_server}/api/v1/generate",
            data={"text": prompt, "model": model, "max_new_tokens": 10, "mode": "sample", "seed": 7},
        ).text()
    )
    expected = prompt + sampled[-1][1]["text"]
    assert expected != prompt + generated, "seed 7 samples a different text than greedy decoding"
    page.get_by_role("button", name="Generate", exact=True).click()
    # wait for the outcome of this run (its text, finished), not for the transient streaming state
    page.wait_for_function(
        """(expected) => document.querySelector('#gen').dataset.state === 'done'
            && document.querySelector('#gen-output').innerText === expected""",
        arg=expected,
        timeout=60_000,
    )

    # switching views and back keeps the run
    page.locator("#tab-heatmap").click()
    wait_heatmap(page)
    page.locator("#tab-generate").click()
    page.wait_for_selector("#gen-strip[data-state=ready]")
    assert page.locator("#gen-output .gen-token").count() == 10
    assert page.problems == []
