"""Publication figures of one attention head: PNG and SVG rendered with matplotlib (Agg), no torch, no web.

The figure shows the ``[n, n]`` matrix (rows = query tokens on the left axis, columns = key tokens on the
top axis), a colour bar and a title. Colours follow the web page: a 256-step "Blues" table indexed by the
value mapped to [0, 1] linearly, by square root, or logarithmically over three decades below the maximum.

SVG output is vector throughout: token labels stay ``<text>`` (``svg.fonttype = "none"``) and the cells are
filled rectangles, with equal-coloured neighbours in a row merged into one rectangle, so a 512-token head
stays a few MB. PNG output draws the same colours as an image and thins out labels when they would overlap.
"""

from __future__ import annotations

import io
import threading
import unicodedata
import warnings
from collections.abc import Sequence

import numpy as np

SCALES = ("linear", "sqrt", "log")
FORMATS = ("png", "svg")
LOG_DECADES = 3
LUT_SIZE = 256
CMAP = "Blues"
SPECIAL_COLOR = "#94a3b8"
TEXT_COLOR = "#1e293b"
MAX_LABEL_CHARS = 40

MATRIX_ERROR = "matrix must have shape [n, n] with one label per row; got shape {shape} and {count} labels"
SCALE_ERROR = "scale must be one of {scales}; got {scale!r}"
FORMAT_ERROR = "format must be one of {formats}; got {fmt!r}"

# rcParams are process-global: figures are drawn one at a time so a concurrent figure never sees
# another's settings.
_LOCK = threading.Lock()


def token_label(display: str) -> str:
    """A token as an axis label: blank tokens made visible, control characters replaced, long ones cut.

    Control characters are not allowed in XML text, so they would make an SVG unreadable.
    """
    text = "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cs", "Cn") else c for c in display)
    if not text.strip():
        return "␣" * min(len(text), 3) if text else "∅"
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def unit_values(matrix: np.ndarray, scale: str = "linear", top: float | None = None) -> np.ndarray:
    """``[..., n, n] -> [..., n, n]`` in [0, 1]: the position of each value on the colour bar.

    Same mapping as the web page's colour scale: ``v / max``, ``sqrt(v / max)`` or
    ``log10(v / max) / 3 + 1``; NaN and negative values map to 0.
    """
    if scale not in SCALES:
        raise ValueError(SCALE_ERROR.format(scales=SCALES, scale=scale))
    values = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(values.max()) if top is None else float(top)
    if not peak > 0:
        peak = 1.0
    ratio = np.clip(values / peak, 0.0, 1.0)
    if scale == "sqrt":
        return np.sqrt(ratio)
    if scale == "log":
        with np.errstate(divide="ignore"):
            return np.clip(np.log10(ratio) / LOG_DECADES + 1.0, 0.0, 1.0)
    return ratio


def color_indices(matrix: np.ndarray, scale: str = "linear") -> np.ndarray:
    """int ``[n, n]`` in 0..255: each cell's entry in the colour table."""
    return np.rint(unit_values(matrix, scale) * (LUT_SIZE - 1)).astype(np.int16)


def row_runs(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal colour along each row of ``indices [n, m]``: ``(row, start, length, colour)`` arrays.

    Every cell lies in exactly one run; a row of one colour is a single run.
    """
    indices = np.asarray(indices)
    rows, cols = indices.shape
    change = np.ones((rows, cols), dtype=bool)
    change[:, 1:] = indices[:, 1:] != indices[:, :-1]
    row, start = np.nonzero(change)  # row-major order: runs of a row are consecutive
    ends = np.empty_like(start)
    ends[:-1] = np.where(row[1:] == row[:-1], start[1:], cols)
    if ends.size:
        ends[-1] = cols
    return row, start, ends - start, indices[row, start]


def _norm(scale: str, top: float):
    from matplotlib.colors import LogNorm, Normalize, PowerNorm

    if scale == "sqrt":
        return PowerNorm(0.5, vmin=0.0, vmax=top)
    if scale == "log":
        return LogNorm(vmin=top / 10**LOG_DECADES, vmax=top)
    return Normalize(vmin=0.0, vmax=top)


def _layout(n: int, fmt: str) -> tuple[float, float, int]:
    """Cell size in inches, label font size in points and the label step (1 = every token labelled).

    SVG labels every token (it is vector: zoom in to read); PNG keeps the grid within about 10 inches
    and labels every ``step``-th token when the labels would otherwise overlap.
    """
    if fmt == "svg":
        cell = min(0.4, max(0.11, 8.0 / n))
    else:
        cell = min(0.4, 10.0 / n)
    font = float(np.clip(cell * 72 * 0.62, 5.0, 10.0))
    step = max(1, int(np.ceil((font + 1.5) / (cell * 72))))
    return cell, font, step


def _draw_cells_vector(ax, indices: np.ndarray, cmap) -> None:
    """Cells as filled rectangles: one compound path per colour, runs of equal colour merged."""
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path

    n = indices.shape[0]
    background = int(np.bincount(indices.ravel(), minlength=LUT_SIZE).argmax())
    ax.add_patch(Rectangle((0, 0), n, n, facecolor=cmap(background), edgecolor="none", linewidth=0))
    row, start, length, colour = row_runs(indices)
    keep = colour != background
    row, start, length, colour = row[keep], start[keep], length[keep], colour[keep]
    # Overlap neighbours by a hair so anti-aliased edges leave no light seams between cells.
    eps = 0.02
    x0, y0 = start.astype(np.float64), row.astype(np.float64)
    x1 = np.minimum(x0 + length + eps, n)
    y1 = np.minimum(y0 + 1 + eps, n)
    codes_one = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
    for value in np.unique(colour):
        sel = colour == value
        a, b, c, d = x0[sel], y0[sel], x1[sel], y1[sel]
        verts = np.stack(
            [
                np.stack([a, b], -1),
                np.stack([c, b], -1),
                np.stack([c, d], -1),
                np.stack([a, d], -1),
                np.stack([a, b], -1),
            ],
            axis=1,
        ).reshape(-1, 2)
        codes = np.tile(codes_one, int(sel.sum()))
        # add_artist, not add_patch: the limits are set by hand, and add_patch walks every vertex for them
        ax.add_artist(
            PathPatch(Path(verts, codes), facecolor=cmap(int(value)), edgecolor="none", linewidth=0)
        )


def render_heatmap(
    matrix,
    labels: Sequence[str],
    *,
    title: str = "",
    special: Sequence[bool] | None = None,
    scale: str = "linear",
    fmt: str = "png",
    dpi: int = 150,
) -> bytes:
    """One ``[n, n]`` attention matrix as a PNG or SVG figure (bytes).

    Args:
        matrix: float ``[n, n]``, rows are queries, columns keys.
        labels: the ``n`` token strings, shown as text on both axes (see ``token_label``).
        title: drawn above the figure (model, layer, head).
        special: optional bool ``[n]``; special tokens are labelled in grey.
        scale: "linear", "sqrt" or "log" (three decades), as on the web page.
        fmt: "png" or "svg".
        dpi: resolution of PNG output.
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    if (
        matrix.ndim != 2
        or matrix.shape[0] != matrix.shape[1]
        or matrix.shape[0] != len(labels)
        or not len(labels)
    ):
        raise ValueError(MATRIX_ERROR.format(shape=matrix.shape, count=len(labels)))
    if scale not in SCALES:
        raise ValueError(SCALE_ERROR.format(scales=SCALES, scale=scale))
    if fmt not in FORMATS:
        raise ValueError(FORMAT_ERROR.format(formats=FORMATS, fmt=fmt))
    n = matrix.shape[0]
    special = np.zeros(n, dtype=bool) if special is None else np.asarray(special, dtype=bool)
    finite = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(finite.max()) if float(finite.max()) > 0 else 1.0
    indices = color_indices(finite, scale)
    shown = [token_label(t) for t in labels]

    import matplotlib

    matrix_rc = {
        "svg.fonttype": "none",  # text stays <text>, searchable and editable
        "font.family": ["DejaVu Sans"],
        "font.size": 9,
        "axes.linewidth": 0.6,
        "svg.hashsalt": "visualizeai",  # stable ids: the same input gives the same SVG
    }
    with _LOCK, matplotlib.rc_context(matrix_rc), warnings.catch_warnings():
        # Tokens in scripts DejaVu lacks draw as boxes in PNG; that is no reason to fail.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        return _draw(finite, indices, top, shown, special, title, scale, fmt, dpi)


def _draw(matrix, indices, top, labels, special, title, scale, fmt, dpi) -> bytes:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    n = matrix.shape[0]
    cell, font, step = _layout(n, fmt)
    grid = cell * n
    cmap = colormaps[CMAP].resampled(LUT_SIZE)
    margin = 2.2  # inches for labels; savefig's tight bounding box trims what is not needed
    fig = Figure(figsize=(grid + margin + 1.3, grid + margin + 0.6))
    FigureCanvasAgg(fig)
    width, height = fig.get_size_inches()
    ax = fig.add_axes((margin / width, 0.3 / height, grid / width, grid / height))
    if fmt == "svg":
        _draw_cells_vector(ax, indices, cmap)
    else:
        ax.imshow(cmap(indices), interpolation="nearest", extent=(0, n, n, 0), aspect="equal")
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.set_aspect("equal")

    ticks = np.arange(0, n, step)
    centres = ticks + 0.5
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xticks(centres, [labels[i] for i in ticks], rotation=90, fontsize=font, parse_math=False)
    ax.set_yticks(centres, [labels[i] for i in ticks], fontsize=font, parse_math=False)
    for axis_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for i, text in zip(ticks, axis_labels, strict=True):
            text.set_color(SPECIAL_COLOR if special[i] else TEXT_COLOR)
    ax.tick_params(length=2 if step > 1 else 0, width=0.5, pad=2)
    ax.set_xlabel("key", fontsize=9, labelpad=6)
    ax.set_ylabel("query", fontsize=9, labelpad=6)

    bar_height = min(grid, 4.0)
    bar_ax = fig.add_axes(
        (
            (margin + grid + 0.25) / width,
            (0.3 + grid - bar_height) / height,
            0.18 / width,
            bar_height / height,
        )
    )
    bar = fig.colorbar(ScalarMappable(norm=_norm(scale, top), cmap=cmap), cax=bar_ax)
    if bar.solids is not None:
        bar.solids.set_rasterized(False)  # matplotlib rasterizes long colour bars; keep the SVG all vector
    bar.set_label("attention weight" + ("" if scale == "linear" else f" ({scale} scale)"), fontsize=8)
    bar.ax.tick_params(labelsize=7)
    if title:
        # Just above the column labels, however long they turned out to be.
        box = ax.get_tightbbox(fig.canvas.get_renderer())
        x = (box.x0 + box.x1) / 2 / fig.dpi / width
        y = (box.y1 / fig.dpi + 0.1) / height
        fig.text(x, y, title, ha="center", va="bottom", fontsize=10, parse_math=False)

    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": "VisualizeAI (matplotlib)"}
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.12, metadata=metadata)
    return buffer.getvalue()


def render_result(
    result, layer: int, head: int, *, fmt: str = "png", scale: str = "linear", dpi: int = 150
) -> bytes:
    """The figure of head ``head`` of ``layer`` with the result's tokens and a title naming them."""
    matrix = result.attention.layer_dense(layer, head)  # float32 [n, n], read from the attention store
    title = f"{result.model_id} · layer {layer} · head {head}"
    return render_heatmap(
        matrix, result.display_tokens, title=title, special=result.special_mask, scale=scale, fmt=fmt, dpi=dpi
    )
