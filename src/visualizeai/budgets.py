"""Work budgets: what each derived computation costs, written once, and the check that refuses it before any
work starts.

A cost counts elementary operations ("elements"): a multiply-add, or one pass over one attention cell (reading
it from the attention store, pooling it). Work that is much slower per element than vectorised arithmetic
(Python-level max-flow steps, matplotlib drawing, zlib, JSON text, difflib) counts a weight per element,
measured on a 2-core CPU machine and rounded to a power of two where no older limit fixed it. The service
compares each cost with ``Settings.work_budget`` (``VISUALIZEAI_WORK_BUDGET``, 4e9 by default) before it takes
a heavy slot or reads any attention; over it, the request gets ``WorkTooLarge`` (an ``InputError``: 400) or,
for files, ``ExportTooLarge`` (413), naming the figure, its cost and the budget.

What the default 4e9 admits (``admitted()``; tokens unless said): for 12 layers × 12 heads (bert-base)
rollout 689, flow of every token 28, head statistics 1,863, thumbnails 5,270, npz 562, html 833, json 185
(5,000,000 values); for 24 × 16 (bert-large) rollout 545, head statistics 1,141, thumbnails 3,227; for 32 × 32
(an 8B decoder) rollout 489, thumbnails 1,976; any model: a one-head tile 63,245² cells, a PNG 5,590, an SVG
988, a comparison of two sentences 3,937. On a 2-core CPU these take up to a few seconds at the limit, except
pooled pictures (tiles, thumbnails: 5-10 ns per cell there, so tens of seconds at 4e9 cells); on a GPU,
reading attention is far cheaper, so raise the budget there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from visualizeai.config import Settings
from visualizeai.errors import InputError

SETTING = "VISUALIZEAI_WORK_BUDGET"
DEFAULT_WORK_BUDGET: int = Settings.work_budget  # the dataclass field's default

# Elements per unit of work that is slower than vectorised arithmetic (what each weighs, measured):
FLOW_STEP = 512  # a step of the Python max-flow search, 0.3-0.4 µs; the default admits FLOW_MAX_TOKENS = 28
HEAD_STATS_CELL = 8  # head statistics make about 8 passes over each cell (log, 2 einsums, 2 matvecs, copies)
PNG_CELL = 128  # a figure cell: float64 RGBA colour lookup and Agg resampling, ~0.15 µs beyond ~1 s fixed
SVG_CELL = 4096  # a vector rectangle per run of equal colour: up to ~8 µs per cell on a noisy head
HTML_VALUE = 40  # float16 + base64 in the page and its decoding in the browser: 1e8 values ≈ a 270 MB page
JSON_VALUE = 800  # a float as JSON text, 0.77 µs: the default admits 5,000,000 values (~120 MB), as before
NPZ_VALUE = 32  # zlib over 4 bytes (0.13 µs): 32 lets the default export bert-base at 512 tokens
ALIGN_PAIR = 256  # difflib's token alignment is up to ~0.25 µs per (a, b) token pair on repetitive text
WORD_POOL_CELL = 4  # hiding specials, renormalising and pooling a matrix to words: a few passes per cell

EXPORT_FORMATS = ("npz", "json", "html", "png", "svg")
WORK_ERROR = (
    "{what} costs {cost} operations ({detail}), over the work budget of {limit} ({setting}). {advice}"
)
FLOW_ERROR = (
    "Attention flow would take too long here: {sources:,} source token(s) × {n:,} tokens through {layers} "
    "layers cost {cost} operations (about sources · n³ · layers max-flow steps of {step} each), over the "
    "work budget of {limit} ({setting}). The limit is about {tokens} tokens when flow is computed for every "
    "token of a {ref}-layer model; choose fewer source tokens or a shorter text, or use attention rollout, "
    "which is fast at any length."
)


class WorkTooLarge(InputError):
    """A derived computation whose cost is over the work budget; refused before any work starts."""


class RolloutTooLarge(WorkTooLarge):
    """A rollout over the work budget."""


class ExportTooLarge(WorkTooLarge):
    """An export (file) over the work budget: answered 413, like the other files that would be too large."""


def sci(value: float) -> str:
    """A count as a person reads it: ``950``, ``12,000``, ``1.2e11``, ``4e9``."""
    if value < 1e6:
        return f"{int(value):,}"
    exponent = int(math.floor(math.log10(value)))
    mantissa = round(value / 10**exponent, 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    text = f"{mantissa:.1f}".rstrip("0").rstrip(".")
    return f"{text}e{exponent}"


def refusal(what: str, cost: int, limit: int, detail: str, advice: str) -> str | None:
    """The message of a refusal when ``cost`` is over ``limit``, else None."""
    if cost <= limit:
        return None
    return WORK_ERROR.format(
        what=what, cost=sci(cost), detail=detail, limit=sci(limit), setting=SETTING, advice=advice
    )


def largest_value_bytes(limit: int) -> int:
    """The most bytes a value computed within ``limit`` can hold: no computation yields more float32 values
    than it costs (rollout ``layers · n²`` of ``layers · n³``, thumbnails at most one value per cell read)."""
    return 4 * limit


def check(
    what: str, cost: int, limit: int, detail: str, advice: str, error: type[WorkTooLarge] = WorkTooLarge
) -> None:
    """Raise ``error`` naming ``what``, its cost and the budget when ``cost`` is over ``limit``."""
    message = refusal(what, cost, limit, detail, advice)
    if message is not None:
        raise error(message)


# ---- the cost of each computation (elements) --------------------------------------------------------------


def cost_rollout(layers: int, heads: int, n: int) -> int:
    """Rollout: every layer's head mean read (``heads · n²`` cells) and one ``n × n`` matrix product
    (``n³`` multiply-adds) per layer."""
    return layers * n * n * (heads + n)


def flow_steps(sources: int, n: int, layers: int) -> int:
    """Max-flow steps of attention flow from ``sources`` tokens through ``layers`` layers: Dinic's algorithm
    touches each of the ``layers · n²`` edges about once per (source, sink) pair (``analysis.rollout``)."""
    return sources * n**3 * layers


def flow_max_steps(limit: int) -> int:
    """The most max-flow steps a budget of ``limit`` elements admits."""
    return limit // FLOW_STEP


def cost_flow(sources: int, n: int, layers: int) -> int:
    """Flow: ``FLOW_STEP`` per max-flow step (reading ``layers`` head means is negligible beside them)."""
    return FLOW_STEP * flow_steps(sources, n, layers)


def flow_max_tokens(layers: int, limit: int) -> int:
    """Most tokens for which flow of every token through ``layers`` layers is within ``limit``."""
    return tokens_for_steps(layers, flow_max_steps(limit))


def tokens_for_steps(layers: int, steps: int) -> int:
    """Most tokens for which flow of every token through ``layers`` layers takes at most ``steps`` steps."""
    n = int((steps / layers) ** 0.25)
    while flow_steps(n + 1, n + 1, layers) <= steps:
        n += 1
    while n > 0 and flow_steps(n, n, layers) > steps:
        n -= 1
    return n


def flow_refusal(sources: int, n: int, layers: int, limit: int, reference_layers: int) -> str | None:
    """Why flow of ``sources`` tokens through ``layers`` layers would be refused, or None."""
    cost = cost_flow(sources, n, layers)
    if cost <= limit:
        return None
    return FLOW_ERROR.format(
        sources=sources,
        n=n,
        layers=layers,
        cost=sci(cost),
        step=FLOW_STEP,
        limit=sci(limit),
        setting=SETTING,
        tokens=flow_max_tokens(reference_layers, limit),
        ref=reference_layers,
    )


def cost_head_stats(layers: int, heads: int, n: int) -> int:
    """Head statistics: ``HEAD_STATS_CELL`` passes over every cell of every head."""
    return HEAD_STATS_CELL * layers * heads * n * n


def cost_cells(matrices: int, rows: int, cols: int) -> int:
    """Reading (and pooling) ``rows × cols`` cells of ``matrices`` heads: one element each (tiles,
    thumbnails, the matrices of a comparison)."""
    return matrices * rows * cols


def cost_thumbnails(layers: int, heads: int, n: int) -> int:
    """All-heads thumbnails: every cell of every head read and pooled once."""
    return cost_cells(layers * heads, n, n)


def cost_compare(mode: str, cells_a: int, cells_b: int, n_a: int, n_b: int) -> int:
    """A comparison: both sides' cells read, then ``sentences`` aligns the token sequences (difflib, up to
    ``ALIGN_PAIR`` per token pair) and ``models`` pools both matrices to words."""
    if mode == "sentences":
        return cells_a + cells_b + ALIGN_PAIR * n_a * n_b
    return cells_a + cells_b + WORD_POOL_CELL * (n_a * n_a + n_b * n_b)


def cost_export(fmt: str, layers: int, heads: int, n: int, included_layers: int | None = None) -> int:
    """An export in ``fmt``: png/svg draw one head (``n²`` cells); html encodes the heads of
    ``included_layers`` (None: all); json writes every value as text plus the head statistics; npz
    compresses every value and adds rollout and head statistics."""
    values = layers * heads * n * n
    if fmt == "png":
        return PNG_CELL * n * n
    if fmt == "svg":
        return SVG_CELL * n * n
    if fmt == "html":
        return HTML_VALUE * (layers if included_layers is None else included_layers) * heads * n * n
    if fmt == "json":
        return JSON_VALUE * values + cost_head_stats(layers, heads, n)
    if fmt == "npz":
        return NPZ_VALUE * values + cost_rollout(layers, heads, n) + cost_head_stats(layers, heads, n)
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}.")


# ---- checks with their messages, one per computation -------------------------------------------------------


def _shape(layers: int, heads: int, n: int) -> str:
    return f"{layers} layers × {heads} heads × {n:,}² tokens"


def check_rollout(layers: int, heads: int, n: int, limit: int) -> None:
    check(
        "Rollout of this analysis",
        cost_rollout(layers, heads, n),
        limit,
        f"{layers} layers × {n:,}² tokens × ({heads} heads + {n:,} tokens)",
        "Use a shorter text, or look at single layers' attention instead.",
        RolloutTooLarge,
    )


def check_head_stats(layers: int, heads: int, n: int, limit: int) -> None:
    check(
        "Head statistics of this analysis",
        cost_head_stats(layers, heads, n),
        limit,
        f"{HEAD_STATS_CELL} passes over {_shape(layers, heads, n)}",
        "Use a shorter text, or look at single heads' attention instead.",
    )


def check_thumbnails(layers: int, heads: int, n: int, limit: int) -> None:
    check(
        "The all-heads thumbnails of this analysis",
        cost_thumbnails(layers, heads, n),
        limit,
        f"every cell of {_shape(layers, heads, n)} pooled",
        "Use a shorter text, or look at single heads (GET /tile pools one head at any size).",
    )


def check_tile(matrices: int, rows: int, cols: int, limit: int) -> None:
    check(
        f"A tile of {rows:,} × {cols:,} cells",
        cost_cells(matrices, rows, cols),
        limit,
        f"{matrices:,} head(s) averaged × {rows:,} × {cols:,} cells read",
        "Ask for a smaller range of rows and columns, or one head instead of a mean.",
    )


def check_compare(mode: str, cells_a: int, cells_b: int, n_a: int, n_b: int, limit: int) -> None:
    how = f"{n_a:,} × {n_b:,} token pairs aligned" if mode == "sentences" else "both pooled to words"
    check(
        f"Comparing these analyses ({mode})",
        cost_compare(mode, cells_a, cells_b, n_a, n_b),
        limit,
        f"{cells_a + cells_b:,} attention cells read, {how}",
        "Compare shorter texts, or single heads instead of layer means.",
    )


EXPORT_ADVICE = {
    "png": "Export a shorter text, or use the npz download and plot the head yourself.",
    "svg": "Export a PNG instead (SVG draws every cell as a vector shape), or a shorter text.",
    "html": "Choose fewer layers (e.g. layers=0,1), or a shorter text.",
    "json": "Download the .npz instead.",
    "npz": "Export a shorter text, or single heads as figures.",
}
EXPORT_DETAIL = {
    "png": "{n:,}² cells drawn, {w} each",
    "svg": "{n:,}² cells drawn as vector shapes, {w} each",
    "html": "{values:,} attention values in the page, {w} each",
    "json": "{values:,} attention values as JSON text, {w} each, and the head statistics",
    "npz": "{values:,} attention values compressed, {w} each, with rollout and head statistics",
}
EXPORT_WEIGHT = {"png": PNG_CELL, "svg": SVG_CELL, "html": HTML_VALUE, "json": JSON_VALUE, "npz": NPZ_VALUE}


def check_export(
    fmt: str, layers: int, heads: int, n: int, limit: int, included_layers: Sequence[int] | None = None
) -> None:
    """``ExportTooLarge`` (413) when exporting in ``fmt`` is over ``limit``; ``included_layers`` are the
    layers an html page holds (None: all)."""
    shown = None if included_layers is None else len(included_layers)
    values = (layers if shown is None or fmt != "html" else shown) * heads * n * n
    detail = EXPORT_DETAIL.get(fmt, "").format(n=n, values=values, w=EXPORT_WEIGHT.get(fmt))
    check(
        f"The {fmt.upper()} export of this analysis",
        cost_export(fmt, layers, heads, n, shown),
        limit,
        detail,
        EXPORT_ADVICE.get(fmt, ""),
        ExportTooLarge,
    )


# ---- what a budget admits ----------------------------------------------------------------------------------


def largest(fits) -> int:
    """The largest ``n >= 0`` for which ``fits(n)`` holds (``fits`` true up to some n, false after)."""
    low, high = 0, 1
    while fits(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def admitted(limit: int, layers: int, heads: int) -> dict[str, int]:
    """The most tokens each computation admits under ``limit`` for a model of ``layers × heads`` (README)."""
    return {
        "rollout": largest(lambda n: cost_rollout(layers, heads, n) <= limit),
        "flow": flow_max_tokens(layers, limit),
        "head_stats": largest(lambda n: cost_head_stats(layers, heads, n) <= limit),
        "thumbnails": largest(lambda n: cost_thumbnails(layers, heads, n) <= limit),
        "tile": largest(lambda n: cost_cells(1, n, n) <= limit),
        "compare": largest(lambda n: cost_compare("sentences", n * n, n * n, n, n) <= limit),
        **{
            fmt: largest(lambda n, f=fmt: cost_export(f, layers, heads, n) <= limit) for fmt in EXPORT_FORMATS
        },
    }
