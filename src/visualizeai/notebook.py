"""The notebook widget: ``visualizeai.show(analysis)`` returns an anywidget ``AnyWidget`` with the heatmap
(layer and head controls, averages), the all-heads overview and the token tooltip, for JupyterLab, Notebook 7,
VS Code and Colab.

The widget's front end is the bundle ``static/dist/widget.js`` (``npm run build``), made from the same view
modules as the web page. Small metadata travels as traitlets (``info``: the analysis' tokens and shape, as
``GET /api/v1/analyses/{key}`` sends it; ``layer``, ``head``, ``pool``). Matrices never travel as JSON: the
front end asks for what it draws with custom messages (``{"type": "tile", ...}``) and ``MessageHandler``
answers each with the same binary buffers as the web endpoints (float16 tiles, uint8 thumbnails), computed by
the ``Service`` from the attention store. Messages rather than ``Bytes`` traitlets because a view asks for
many blocks at changing zooms and sizes (a long input is read at screen resolution, pooled): one
request/response pair per block, and nothing kept in the widget state (so nothing saved into the ``.ipynb``).

``anywidget`` is imported only when a widget is made (``extras.require``), so ``import visualizeai`` never
loads it; without it ``show`` says ``pip install 'visualizeai[notebook]'``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visualizeai import extras
from visualizeai.errors import InputError, ResultExpired, VisualizeAIError

if TYPE_CHECKING:
    from visualizeai.analysis.result import AnalysisResult

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
BUNDLE = STATIC / "dist" / "widget.js"
# the shared heatmap view's own styles, then the widget's (the page-wide look scoped under .vai-widget)
STYLESHEETS = (STATIC / "css" / "heatmap.css", STATIC / "css" / "widget.css")
BUNDLE_MISSING = (
    "The notebook widget's script {path} is missing: build the front end with `npm ci && npm run build` in "
    "the source checkout (an installed wheel ships it built)."
)
THUMB_SIZES = (4, 128)  # the thumbnails endpoint's bounds on the side of a head's picture
MESSAGE_ERROR = "Unknown widget request type {kind!r}; expected one of {known}."


class MessageHandler:
    """Answers the widget front end's data requests for one analysis, through a ``Service``.

    Each request is a dict ``{"type": ..., "id": ..., ...}``; the reply is ``(content, buffers)`` with the
    same ``id``:

    - ``{"type": "tile", "id", "rows", "cols", "shape", "pooled", "pool", "dtype": "float16"}`` with one
      buffer of little-endian float16 (the tile endpoint's bytes);
    - ``{"type": "thumbnails", "id", "layer", "heads", "size"}`` with one uint8 buffer ``[heads, s, s]`` (the
      thumbnails endpoint's quantisation);
    - ``{"type": "row", "id", "layer", "head", "row", "dtype": "float32"}`` with the exact float32 weights
      of one query row (``Service.row``);
    - ``{"type": "topKeys", "id", "rows", "layer", "head", "keys": [{"index", "weight"}]}``, no buffers: the
      ``k`` keys rows ``a:b`` attend to most (``Service.top_keys``);
    - ``{"type": "attention", "id", "shape", "groups", "renormalized", "dtype": "float16"}`` with one float16
      buffer: a whole matrix as displayed, special tokens hidden or words merged (``Service.attention_view``,
      the ``/attention`` endpoint; refused above its size limit);
    - ``{"type": "error", "id", "message"}`` (a message a person can read) and no buffers.
    """

    def __init__(self, result: AnalysisResult, service=None):
        from visualizeai import python_api

        self.result = result
        self.service = service if service is not None else python_api.service()
        self._key: str | None = None

    # The service reads attention by result key: the widget's result is kept in its cache under a key of its
    # own (``Service.adopt``; a result still held by the cache cannot share its ``id`` with another object).
    def _adopt(self) -> str:
        self._key = self.service.adopt(self.result, f"notebook:{id(self.result)}").key
        return self._key

    def _with_key(self, call):
        try:
            return call(self._key or self._adopt())
        except ResultExpired:  # evicted from the cache since: put it back once
            return call(self._adopt())

    def info(self) -> dict[str, Any]:
        """The analysis' metadata as ``GET /api/v1/analyses/{key}`` sends it (tokens, n, layers, heads,
        model)."""
        from visualizeai.service import Analysis
        from visualizeai.web import serialize

        label = self.result.model_id
        try:
            label = self.service.resolve(self.result.model_id).label
        except VisualizeAIError:  # a saved analysis of a model this service does not know
            pass
        meta = serialize.analysis_meta(Analysis(self._key or "", self.result, True, 0.0), label)
        return meta.model_dump(mode="json")

    def handle(self, content: dict) -> tuple[dict, list[bytes]]:
        """The reply to one request (see the class docstring); errors become an ``error`` reply."""
        kind = content.get("type") if isinstance(content, dict) else None
        rid = content.get("id") if isinstance(content, dict) else None
        handlers = {
            "tile": self._tile,
            "thumbnails": self._thumbnails,
            "row": self._row,
            "topKeys": self._top_keys,
            "attention": self._attention,
        }
        try:
            if kind not in handlers:
                raise InputError(MESSAGE_ERROR.format(kind=kind, known=", ".join(handlers)))
            reply, buffers = handlers[kind](content)
        except (VisualizeAIError, ValueError, TypeError) as exc:
            return {"type": "error", "id": rid, "message": str(exc)}, []
        return {"type": kind, "id": rid, **reply}, buffers

    # -- requests ------------------------------------------------------------------------------------------
    def _tile(self, req: dict) -> tuple[dict, list[bytes]]:
        from visualizeai.service import TILE_SIZE
        from visualizeai.web import serialize

        layer, head = _index(req, "layer"), _index(req, "head")
        rows, cols = _span(req, "rows"), _span(req, "cols")
        size, pool = _int(req.get("size", TILE_SIZE), "size"), str(req.get("pool", "mean"))
        tile = self._with_key(lambda key: self.service.tile(key, layer, head, rows, cols, size, pool))
        data, _ = serialize.tile_payload(tile)
        reply = {
            "rows": list(tile.rows),
            "cols": list(tile.cols),
            "shape": list(tile.matrix.shape),
            "pooled": not tile.exact,
            "pool": tile.pool,
            "dtype": "float16",
        }
        return reply, [data]

    def _thumbnails(self, req: dict) -> tuple[dict, list[bytes]]:
        from visualizeai.web import serialize

        layer = _index(req, "layer")
        if layer is None:
            raise InputError("thumbnails need a layer.")
        size, pool = _int(req.get("size", 48), "size"), str(req.get("pool", "mean"))
        if not THUMB_SIZES[0] <= size <= THUMB_SIZES[1]:
            raise InputError(f"size must be between {THUMB_SIZES[0]} and {THUMB_SIZES[1]}; got {size}.")
        # float32 [heads, s, s], computed once per analysis, layer, size and pooling
        pictures = self._with_key(lambda key: self.service.thumbnails(key, size, pool, layer=layer))
        data, headers = serialize.thumbnails_payload(pictures)
        reply = {"layer": layer, "heads": int(pictures.shape[0]), "size": int(pictures.shape[-1])}
        return {**reply, "maxima": [float(v) for v in headers["X-Maxima"].split(",")]}, [data]

    def _row(self, req: dict) -> tuple[dict, list[bytes]]:
        layer, head, row = _index(req, "layer"), _index(req, "head"), _index(req, "row")
        if row is None:
            raise InputError("row needs a query position.")
        values = self._with_key(lambda key: self.service.row(key, layer, head, row))
        import numpy as np

        data = np.ascontiguousarray(values, dtype="<f4").tobytes()  # exact: float32, as the store has it
        return {"layer": layer, "head": head, "row": row, "dtype": "float32"}, [data]

    def _top_keys(self, req: dict) -> tuple[dict, list[bytes]]:
        layer, head, k = _index(req, "layer"), _index(req, "head"), _int(req.get("k", 16), "k")
        found = self._with_key(lambda key: self.service.top_keys(key, layer, head, _span(req, "rows"), k))
        keys = [{"index": i, "weight": w} for i, w in found.keys]
        return {"rows": list(found.rows), "layer": layer, "head": head, "keys": keys}, []

    def _attention(self, req: dict) -> tuple[dict, list[bytes]]:
        from visualizeai.web import serialize

        layer, head, agg = _index(req, "layer"), _index(req, "head"), str(req.get("agg", "none"))
        hide, merge = bool(req.get("hideSpecial")), bool(req.get("mergeWords"))
        view = self._with_key(
            lambda key: self.service.attention_view(
                key, layer=layer, head=head, agg=agg, hide_special=hide, merge_words=merge
            )
        )
        data, _ = serialize.display_payload(view)
        reply = {
            "shape": list(view.matrix.shape),
            "groups": view.groups,
            "renormalized": view.renormalized,
            "dtype": "float16",
        }
        return reply, [data]


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError(f"{name} must be an integer; got {value!r}.")
    return int(value)


def _index(req: dict, name: str) -> int | None:
    value = req.get(name)
    return None if value is None else _int(value, name)


def _span(req: dict, name: str) -> tuple[int, int] | None:
    value = req.get(name)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"{name} must be a pair [a, b] of token positions; got {value!r}.")
    return _int(value[0], name), _int(value[1], name)


def _read_bundle() -> str:
    if not BUNDLE.is_file():
        raise FileNotFoundError(BUNDLE_MISSING.format(path=BUNDLE))
    return BUNDLE.read_text(encoding="utf-8")


@functools.cache
def widget_class() -> type:
    """The ``AnyWidget`` subclass (made on first use, so anywidget is imported only then)."""
    anywidget = extras.require("anywidget")
    traitlets = extras.require("traitlets")

    class Widget(anywidget.AnyWidget):
        """One analysis in a notebook: heatmap with layer/head controls, all-heads overview, token tooltip.

        ``layer`` and ``head`` (None: averaged) follow the controls and can be set from Python.
        """

        _esm = traitlets.Unicode().tag(sync=True)
        _css = traitlets.Unicode().tag(sync=True)
        info = traitlets.Dict().tag(sync=True)
        layer = traitlets.Int(0, allow_none=True).tag(sync=True)
        head = traitlets.Int(0, allow_none=True).tag(sync=True)
        pool = traitlets.Unicode("max").tag(sync=True)

        def __init__(self, handler: MessageHandler, **kwargs):
            self.handler = handler
            css = "\n".join(path.read_text(encoding="utf-8") for path in STYLESHEETS)
            super().__init__(_esm=_read_bundle(), _css=css, info=handler.info(), **kwargs)
            self.on_msg(self._on_request)

        @traitlets.validate("layer")
        def _check_layer(self, proposal):
            self.handler.result.attention.check_layer(proposal["value"])
            return proposal["value"]

        @traitlets.validate("head")
        def _check_head(self, proposal):
            self.handler.result.attention.check_head(proposal["value"])
            return proposal["value"]

        @traitlets.validate("pool")
        def _check_pool(self, proposal):
            if proposal["value"] not in ("mean", "max"):
                raise InputError(f"pool must be 'mean' or 'max'; got {proposal['value']!r}.")
            return proposal["value"]

        def _on_request(self, _widget, content, _buffers) -> None:
            reply, buffers = self.handler.handle(content)
            if reply["type"] == "error":
                log.info("widget request %r refused: %s", content, reply["message"])
            self.send(reply, buffers=buffers)

        @property
        def result(self) -> AnalysisResult:
            return self.handler.result

        def __repr__(self) -> str:
            r = self.result
            return f"<VisualizeAI widget of {r.model_id}: {r.n} tokens, {r.layers} layers × {r.heads} heads>"

    return Widget


def show(analysis, layer: int | None = 0, head: int | None = 0, *, pool: str = "max", service=None):
    """An anywidget widget of ``analysis`` (an ``AnalysisResult`` from ``visualizeai.analyze`` or ``load``)
    that notebooks display inline: the heatmap of ``layer``/``head`` (None: averaged) with controls, the
    all-heads overview and the token tooltip. Data is read on demand through ``service`` (default: the Python
    API's)."""
    from visualizeai.analysis.result import AnalysisResult

    result = getattr(analysis, "result", analysis)  # a service ``Analysis`` holds its result
    if not isinstance(result, AnalysisResult):
        raise TypeError(f"show() takes an analysis (visualizeai.analyze(...)); got {type(analysis).__name__}")
    return widget_class()(MessageHandler(result, service), layer=layer, head=head, pool=pool)
