"""Our front end in Chromium: bytes and time until the first heatmap is interactive, head switches and the
all-heads overview. Times come from the page's own clock (performance.now, event timestamps), so the
round trips of the Playwright driver are not counted."""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from urllib.parse import urlencode

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 900}
SWITCHES = 10  # head switches timed per kind (cold, prefetched)
READY = "#heatmap[data-state=ready]"

# Before any page script: note (page clock) when #heatmap first turns ready.
READY_PROBE = """
window.__bench = {readyAt: null};
new MutationObserver((records, observer) => {
  const el = document.getElementById("heatmap");
  if (el && el.dataset.state === "ready") {
    window.__bench.readyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
"""

# Arm a timer: from the next keydown or click (its event timestamp) until `selector` reports ready with the
# wanted attributes. The promise is left in window.__bench.timer.
ARM_TIMER = """([selector, wanted]) => {
  window.__bench.timer = new Promise((resolve, reject) => {
    let start = null;
    const begin = (event) => { start = event.timeStamp; };
    document.addEventListener("keydown", begin, {capture: true, once: true});
    document.addEventListener("click", begin, {capture: true, once: true});
    const done = () => {
      const el = document.querySelector(selector);
      if (start === null || !el || el.dataset.state !== "ready") return false;
      if (Object.entries(wanted).some(([k, v]) => el.dataset[k] !== v)) return false;
      observer.disconnect();
      resolve({ms: performance.now() - start, drawMs: el.dataset.drawMs ?? null});
      return true;
    };
    const observer = new MutationObserver(done);
    observer.observe(document.body, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
    setTimeout(() => reject(new Error(`${selector} did not become ready`)), 60000);
  });
}"""


@contextmanager
def chromium():
    """Debian Chromium, as the browser tests drive it."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def timed(page, action, selector: str, **wanted: str) -> dict:
    """Run ``action`` (a key press or click) and return {"ms", "drawMs"} until ``selector`` is ready."""
    page.evaluate(ARM_TIMER, [selector, wanted])
    action()
    return page.evaluate("window.__bench.timer")


def first_heatmap(browser, base: str, text: str) -> tuple[dict, object]:
    """Submit ``text`` on the start page in a fresh profile (only what the start page loaded is cached)
    and count what crossed the network from the submit until the first heatmap is ready, over both documents
    (the form posts the text, then the page opens /analysis/{key}; heatmap_browser.first_heatmap records
    them), then what arrives after it (the neighbouring heads, fetched ahead). Returns (figures, the page)."""
    import heatmap_browser  # it imports this module: imported here, not at the top

    first, page = heatmap_browser.first_heatmap(browser, base, None, text)
    page.wait_for_timeout(1000)  # the neighbouring heads are fetched ahead after the first draw
    log = page.evaluate("JSON.parse(sessionStorage.getItem('bench') || '[]')")
    ready = next(e["ready"] for e in log if "ready" in e)
    after = [e for e in log if "name" in e and e["end"] > ready]
    figures = {
        "ms": first["time_to_first_heatmap_ms"],
        "analyze_ms": first["heatmap_analysis_ms"],
        "bytes": first["bytes_to_first_heatmap"],
        "requests": first["requests_to_first_heatmap"],
        "after_bytes": sum(e["bytes"] for e in after),
        "after_requests": len(after),
    }
    return figures, page


def press(page, key: str, layer: int, head: int) -> float:
    """Milliseconds from pressing ``key`` until the heatmap shows (layer, head)."""
    return timed(page, lambda: page.keyboard.press(key), "#heatmap", layer=str(layer), head=str(head))["ms"]


def block_head(cdp, layer: int, head: int) -> None:
    """Make the browser refuse the tile requests of (layer, head): its prefetch fails and is forgotten."""
    cdp.send("Network.setBlockedURLs", {"urls": [f"*/tile?layer={layer}&head={head}&*"]})


def head_switches(browser, base: str, text: str) -> tuple[list[float], list[float]]:
    """Milliseconds from ArrowRight/ArrowLeft to the new head's heatmap being ready: cold (the head was not
    prefetched: its fetch starts at the key press) and prefetched (the neighbour prefetch had finished)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.add_init_script(READY_PROBE)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    block_head(cdp, 0, 1)
    page.goto(f"{base}/analysis?{urlencode({'text': text})}")
    page.wait_for_selector(f'{READY}[data-layer="0"][data-head="0"]', timeout=120_000)
    cold = []
    for head in range(1, SWITCHES + 1):  # layer 0, heads 1..SWITCHES, each refused when it was prefetched
        block_head(cdp, 0, head + 1)  # the prefetch that this switch's draw starts
        page.wait_for_timeout(100)
        cold.append(press(page, "ArrowRight", 0, head))
    cdp.send("Network.setBlockedURLs", {"urls": []})
    press(page, "ArrowDown", 1, SWITCHES)
    warm = []
    for head in range(SWITCHES - 1, -1, -1):  # layer 1, back to head 0; each one was prefetched
        page.wait_for_timeout(300)
        warm.append(press(page, "ArrowLeft", 1, head))
    context.close()
    return cold, warm


def overview(page) -> dict | None:
    """Click the "All heads" tab and time it until the overview grid is ready; None without such a tab."""
    tab = page.locator("#view-tabs [role=tab]", has_text="All heads")
    if tab.count() == 0:
        return None
    return timed(page, tab.first.click, "#overview-grid")


def measure(browser, base: str, text: str, n: int) -> dict[str, object]:
    """Every browser figure for one text of ``n`` tokens, as ``name → value``."""
    first, page = first_heatmap(browser, base, text)
    shown = overview(page)
    page.context.close()
    cold, warm = head_switches(browser, base, text)
    out = {
        f"time_to_first_heatmap_ms_{n}": first["ms"],
        f"analyze_request_in_page_ms_{n}": first["analyze_ms"],
        f"bytes_to_first_heatmap_{n}": first["bytes"],
        f"requests_to_first_heatmap_{n}": first["requests"],
        f"bytes_after_first_heatmap_{n}": first["after_bytes"],
        f"requests_after_first_heatmap_{n}": first["after_requests"],
        f"head_switch_ms_{n}": statistics.median(cold),
        f"head_switch_prefetched_ms_{n}": statistics.median(warm),
    }
    if shown is None:
        out[f"overview_ms_{n}"] = 'n/a (no "All heads" tab yet)'
    else:
        out[f"overview_ms_{n}"] = shown["ms"]
        if shown["drawMs"] is not None:
            out[f"overview_draw_ms_{n}"] = float(shown["drawMs"])
    return out
