"""A standalone, offline HTML view of an analysis: one file, the deep-zoom heatmap and the all-heads overview.

The page needs no server and no network (it opens from ``file://`` and inside a notebook iframe). Its data
sits in two non-executable blocks: ``<script type="application/json" id="viz-meta">`` (tokens and shape, with
``<``, ``>`` and ``&`` escaped so no token can end the block) and ``<script type="application/octet-stream"
id="viz-attention">`` (base64 of little-endian float16, C order, ``[included layers, heads, n, n]``). The
script is the esbuild bundle ``web/static/dist/standalone.js`` (built by ``npm run build`` from
``web/static/js/standalone/entry.js`` and the same view modules as the web page); it and the app's stylesheet
are inlined, and a Content-Security-Policy allows exactly those (by hash) and no network at all.

Size: about ``2 · layers · heads · n² · 4/3`` bytes (float16 in base64) plus the page (``PAGE_BYTES``), so
choose the layers to include for long inputs (see docs/export-format.md for measured sizes).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

import numpy as np

from visualizeai import __version__
from visualizeai.analysis.result import AnalysisResult

STATIC = Path(__file__).parent / "web" / "static"
BUNDLE = STATIC / "dist" / "standalone.js"
STYLESHEETS = (STATIC / "css" / "app.css", STATIC / "js" / "standalone" / "viewer.css")
PAGE_BYTES = 150_000  # bundled script, stylesheets and markup, roughly

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="VisualizeAI {version}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1 data-text="title"></h1><p data-text="summary"></p></header>
<main>
<section class="card" aria-label="Input text"><p class="text" data-text="text"></p>
<ul class="predictions" id="predictions" hidden></ul></section>
<section class="card result" aria-label="Heatmap">
<div class="controls">
<div class="control"><label for="layer">Layer</label><select id="layer"></select></div>
<div class="control"><label for="head">Head</label><select id="head"></select></div>
</div>
<p class="hint">Values are stored as float16 (about three significant digits).</p>
<div class="view-panel heatmap-panel" id="panel-heatmap"></div>
</section>
<section class="card result" aria-label="All heads"><h2>All heads</h2>
<div class="view-panel overview-panel" id="panel-overview"></div></section>
</main>
<footer>Exported from VisualizeAI {version}. This file works offline.</footer>
<div id="tooltip" class="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="viz-meta">{meta}</script>
<script type="application/octet-stream" id="viz-attention">{data}</script>
<script type="module">{script}</script>
</body>
</html>
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def json_for_script(value) -> str:
    """JSON that is safe inside a ``<script type="application/json">`` block: nothing in it can close the
    block or open a comment, because ``<``, ``>`` and ``&`` are written as ``\\u`` escapes."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def estimate_bytes(layers: int, heads: int, n: int) -> int:
    """Approximate size of a standalone file: float16 attention in base64 plus the page itself."""
    return 4 * ((2 * layers * heads * n * n + 2) // 3) + PAGE_BYTES + 60 * n


def viewer_script() -> str:
    """The bundled viewer (``web/static/dist/standalone.js``); a clear error when it has not been built."""
    if not BUNDLE.is_file():
        raise RuntimeError(
            f"The standalone viewer bundle {BUNDLE} is missing: run `npm run build` (or `make setup`) to "
            "build the front end."
        )
    script = BUNDLE.read_text(encoding="utf-8")
    if "</script" in script.lower():
        raise RuntimeError(f"{BUNDLE} contains '</script', which would end the inline script early.")
    return script


def build(
    result: AnalysisResult,
    *,
    layers: list[int] | None = None,
    scale: str = "linear",
    title: str | None = None,
    layer: int | None = None,
    head: int | None = None,
) -> str:
    """The standalone HTML page of ``result`` with ``layers`` (model layer numbers; None = all), opening at
    ``layer`` and ``head`` (default: the first included layer, head 0)."""
    included = list(range(result.layers)) if layers is None else sorted(set(layers))
    if not included or not all(0 <= i < result.layers for i in included):
        raise ValueError(f"layers must be a non-empty subset of 0..{result.layers - 1}; got {layers!r}")
    opened_layer = layer if layer in included else included[0]
    opened_head = head if head is not None and 0 <= head < result.heads else 0
    # [included, heads, n, n], read from the attention store one layer at a time
    attention = np.stack([result.attention.layer_array(i).astype("<f2") for i in included])
    shown = ", ".join(map(str, included)) if len(included) < result.layers else "all"
    name = title or result.model_id
    meta = {
        "title": name,
        "summary": f"{result.n} tokens · {result.layers} layers × {result.heads} heads · layers: {shown}",
        "model": result.model_id,
        "revision": result.revision,
        "kind": result.model_kind,
        "text": result.text,
        "n": result.n,
        "layers": result.layers,
        "heads": result.heads,
        "included_layers": included,
        "layer": opened_layer,
        "head": opened_head,
        "scale": scale,
        "dropped_tokens": result.dropped_tokens,
        "max_length": result.max_length,
        "tokens": [
            {"raw": raw, "display": shown_token, "special": bool(special), "start": start, "end": end}
            for raw, shown_token, special, (start, end) in zip(
                result.tokens,
                result.display_tokens,
                result.special_mask.tolist(),
                result.offsets.tolist(),
                strict=True,
            )
        ],
        "predictions": None
        if result.predictions is None
        else [
            {
                "position": p.position,
                "kind": p.kind,
                "candidates": [{"token": c.token, "score": c.score} for c in p.candidates],
            }
            for p in result.predictions
        ],
    }
    script = viewer_script()
    css = "\n".join(path.read_text(encoding="utf-8") for path in STYLESHEETS)
    csp = (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(css)}; "
        "img-src data: blob:; base-uri 'none'; form-action 'none'"
    )
    text_preview = result.text if len(result.text) <= 60 else result.text[:59] + "…"
    return PAGE.format(
        csp=csp,
        version=__version__,
        title=html.escape(f"{name} · {text_preview} · VisualizeAI"),
        css=css,
        meta=json_for_script(meta),
        data=base64.b64encode(attention.tobytes()).decode("ascii"),
        script=script,
    )
