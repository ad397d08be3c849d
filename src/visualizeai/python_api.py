"""The Python API: analyse text, save and load analyses, draw figures, embed the offline view.

    >>> import visualizeai
    >>> a = visualizeai.analyze("The animal didn't cross the street because it was too tired.")
    >>> a.attentions.shape            # numpy float32 [layers, heads, n, n]
    >>> visualizeai.show(a)           # in a notebook: the widget (visualizeai.notebook, the `notebook` extra)
    >>> visualizeai.offline_view(a)   # anywhere HTML renders: the self-contained page in an iframe, no server
    >>> visualizeai.save(a, "a.npz"); b = visualizeai.load("a.npz")

A default ``Service`` (models, result cache) is created on first use from ``VISUALIZEAI_*`` settings;
``configure(...)`` replaces it with one built from explicit settings.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

from visualizeai.analysis.result import AnalysisResult

_service = None
_service_lock = threading.Lock()


def configure(**settings) -> None:
    """Use a service built from these settings (``visualizeai.config.Settings`` fields) from now on."""
    from visualizeai.config import Settings
    from visualizeai.service import Service

    global _service
    with _service_lock:
        _service = Service(Settings.from_env(**settings))


def service():
    """The module's default ``Service``, created on first use."""
    global _service
    with _service_lock:
        if _service is None:
            from visualizeai.config import Settings
            from visualizeai.service import Service

            _service = Service(Settings.from_env())
        return _service


def analyze(text: str, model: str | None = None) -> AnalysisResult:
    """Run ``text`` through ``model`` (catalog id, hub id or allowed local directory; None = the embedded
    default) and return the result: tokens and float32 attentions ``[layers, heads, n, n]`` as numpy."""
    return service().analyze(text, model).result


def save(result: AnalysisResult, path: str | Path, **options) -> Path:
    """Write ``result`` to ``path``; the format follows the suffix (.npz, .json, .html, .png, .svg).

    Options: ``layer``, ``head``, ``scale`` for figures, ``layers`` for html (see ``export.to_bytes``).
    """
    path = Path(path)
    service().write(result, path, **options)
    return path


def load(path: str | Path) -> AnalysisResult:
    """Read a saved ``.npz`` or ``.json`` analysis back."""
    from visualizeai import export

    return export.read(Path(path))


def figure(
    result: AnalysisResult, layer: int = 0, head: int = 0, *, fmt: str = "png", scale: str = "linear"
) -> bytes:
    """PNG or SVG bytes of one head's heatmap (see ``visualizeai.figures``), within the work budget."""
    return service().export_bytes(result, fmt, layer=layer, head=head, scale=scale)


class View:
    """The interactive view of an analysis for notebooks: Jupyter, VS Code and others call ``_repr_html_``.

    The HTML is the standalone export (``visualizeai.standalone``) in a sandboxed ``<iframe srcdoc>``: the
    viewer's script runs in its own frame, with no network and no access to the notebook page.
    """

    def __init__(self, result: AnalysisResult, layers: list[int] | None = None, height: int = 900):
        self.result = result
        self.layers = layers
        self.height = height

    def html(self) -> str:
        """The standalone page itself."""
        from visualizeai import standalone

        return standalone.build(self.result, layers=self.layers)

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {int(self.height)}px; border: 0" '
            f'title="VisualizeAI attention view"></iframe>'
        )

    def __repr__(self) -> str:
        r = self.result
        return f"<VisualizeAI view of {r.model_id}: {r.n} tokens, {r.layers} layers × {r.heads} heads>"


def offline_view(result: AnalysisResult, layers: list[int] | None = None, height: int = 900) -> View:
    """The self-contained page of ``result`` (heatmap and all-heads overview, its weights inside;
    ``layers``: which to include, None = all) as an object that renders as a sandboxed iframe wherever HTML
    is shown, with no server, kernel messages or network: for notebook front ends without widget support and
    for static exports. ``visualizeai.show`` is the live notebook widget."""
    return View(result, layers=layers, height=height)
