"""The Head view of a long input (a window of tokens and each head's far keys): its figure keeps the far keys'
stubs, and its permalink restores the pinned token by position. The model is the tiny random Qwen2 with its
context widened, as in test_long_views_browser.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.models]

TIMEOUT = 90_000
WINDOW = 48  # views/headview.js
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def analysis(long_analysis):
    return long_analysis  # conftest: the widened tiny Qwen2's analysis of LONG_TEXT


def group(root, role: str):
    return next(g for g in root.iter(f"{SVG_NS}g") if g.get("data-role") == role)


def test_long_head_view_figure_and_pinned_token(live_server, page, analysis, tmp_path, screenshot):
    focus = 2000
    page.goto(f"{live_server}/analysis/{analysis['key']}?view=headview&layer=1&focus={focus}")
    page.wait_for_selector("#headview[data-state=ready][data-mode=window]", timeout=TIMEOUT)
    page.eval_on_selector(  # every far key's stub: its weight need not reach the default threshold
        "#headview-threshold",
        "(el) => { el.value = '0'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.wait_for_function("window.visualizeai.view.threshold === 0")
    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Export SVG").click()
    root = ET.parse(info.value.path()).getroot()
    lines = int(page.locator("#headview").get_attribute("data-lines"))
    assert len(list(group(root, "lines").iter(f"{SVG_NS}line"))) == lines
    stubs = list(group(root, "far-keys").iter(f"{SVG_NS}line"))
    assert len(stubs) > 1 and stubs[-1].get("stroke-dasharray") == "4 3"  # the stubs, then the divider
    title = root.find(f"{SVG_NS}title").text
    assert f"of {analysis['n']} and the top" in title

    # pin a query: the permalink names it by token position, and a reload pins it again
    q = WINDOW // 2 + 3  # the window starts WINDOW / 2 tokens before the focus
    page.keyboard.press("Escape")
    box = page.evaluate(f"window.visualizeai.view.tokenBox('q', {q})")
    page.mouse.click(box["x"], box["y"])
    page.wait_for_selector(f'#headview[data-focus="q:{q}"][data-pinned=true]')
    assert parse_qs(urlparse(page.url).query)["pin"] == [f"q:{focus + 3}"]
    page.reload()
    page.wait_for_selector(
        f'#headview[data-state=ready][data-focus="q:{q}"][data-pinned=true]', timeout=TIMEOUT
    )
    assert page.evaluate("window.visualizeai.view.pinned") == {"side": "q", "index": q}
    screenshot(page, "headview-long-pinned-restored")
    assert page.problems == []
