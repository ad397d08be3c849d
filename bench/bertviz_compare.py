"""BertViz 1.4.1's head view of the same input, drawn in the same Chromium: HTML size and time to draw.

BertViz's HTML loads require.js, d3 and jQuery from a CDN. The bench serves the npm copies
(bench/package.json; jQuery 2.0.0 is not on npm, 2.1.0 stands in) from the local HTTP server that serves the
HTML, and rewrites those three URLs in it; nothing else in BertViz's output is changed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

TIMEOUT_S = 120  # BertViz at 512 tokens may never finish drawing
NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
CDN = "https://cdnjs.cloudflare.com/ajax/libs/"
LIBS = {  # URL in BertViz's HTML → (its local replacement, the npm file served there)
    CDN + "require.js/2.3.6/require.min.js": ("/lib/require.js", "requirejs/require.js"),
    CDN + "d3/5.7.0/d3.min": ("/lib/d3.min", "d3/dist/d3.min.js"),  # require.js appends ".js"
    CDN + "jquery/2.0.0/jquery.min": ("/lib/jquery.min", "jquery/dist/jquery.min.js"),
}

# Its checkboxes (one rect per head) are the last thing renderVis draws, after every attention line.
DRAWN = """(heads) => {
  const svg = document.querySelector("#vis svg");
  const last = svg && svg.lastElementChild;
  return Boolean(last && last.querySelectorAll("rect").length >= heads);
}"""
NEXT_FRAME = (
    "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
)


def head_view_html(model, tokenizer, text: str) -> str:
    """What ``bertviz.head_view(..., html_action="return")`` produces for ``text`` under ``model``."""
    from bertviz import head_view

    inputs = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        attentions = model(**inputs, output_attentions=True).attentions
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    return head_view(list(attentions), tokens, html_action="return").data


def localize(html: str) -> str:
    """``html`` with the CDN URLs of its libraries pointing at the local server."""
    for url, (local, _) in LIBS.items():
        if url not in html:
            raise RuntimeError(f"BertViz's HTML no longer loads {url}; update bench/bertviz_compare.py")
        html = html.replace(url, local)
    return html


@contextmanager
def serve(html: str):
    """Serve ``html`` as /head_view.html, the libraries under /lib/, on a free local port; yields the URL."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "head_view.html").write_text(localize(html), encoding="utf-8")
        (root / "lib").mkdir()
        for _, npm_file in LIBS.values():
            shutil.copyfile(NODE_MODULES / npm_file, root / "lib" / Path(npm_file).name)

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=tmp))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/head_view.html"
        finally:
            server.shutdown()
            server.server_close()


def render_seconds(url: str, lines: int, heads: int) -> float:
    """Seconds from navigating to ``url`` until the head view has drawn all ``lines`` and painted a frame, on
    the page's clock. A Chromium of its own, closed afterwards even if the page is still busy.

    Raises:
        playwright's TimeoutError: not drawn within TIMEOUT_S.
    """
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url, wait_until="commit", timeout=TIMEOUT_S * 1000)
            page.wait_for_function(DRAWN, arg=heads, polling="raf", timeout=TIMEOUT_S * 1000)
            seconds = page.evaluate(NEXT_FRAME) / 1000
            drawn = page.evaluate("document.querySelectorAll('#vis svg line').length")
            if drawn < lines:
                raise RuntimeError(f"BertViz drew {drawn} attention lines, expected {lines}")
            if seconds > TIMEOUT_S:
                raise PlaywrightTimeout(f"drawn after {seconds:.0f} s")
            return seconds
        finally:
            browser.close()


def measure(model, tokenizer, text: str, heads: int) -> tuple[int, float | str]:
    """(size in bytes of BertViz's head-view HTML for ``text``, seconds to draw it or why it did not draw:
    "timeout", or "failed (…)" when the page crashed)."""
    html = head_view_html(model, tokenizer, text)
    size = len(html.encode("utf-8"))
    n = len(tokenizer(text)["input_ids"])
    with serve(html) as url:
        try:
            return size, render_seconds(url, heads * n * n, heads)
        except PlaywrightTimeout:
            return size, "timeout"
        except PlaywrightError as exc:  # e.g. the renderer running out of memory
            return size, f"failed ({str(exc).splitlines()[0]})"
