"""Analysis results as files, and files back as results (schema: docs/export-format.md).

Data formats: ``.npz`` (exact float32 arrays plus a JSON ``meta`` string) and ``.json`` (everything as
JSON); both load back with ``read`` (``visualizeai.saved``, re-exported here with ``loads_npz``). Views:
``.png`` / ``.svg`` figures of one head (``visualizeai.figures``) and a standalone interactive ``.html`` file
(``visualizeai.standalone``). Pure numpy: no torch, no web framework.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from visualizeai import derived
from visualizeai.analysis.result import AnalysisResult
from visualizeai.errors import InputError
from visualizeai.saved import FORMAT_NAME, SCHEMA_VERSION
from visualizeai.saved import NOT_AN_ANALYSIS as NOT_AN_ANALYSIS
from visualizeai.saved import REQUIRED_ARRAYS as REQUIRED_ARRAYS
from visualizeai.saved import TooLarge as TooLarge
from visualizeai.saved import loads_npz as loads_npz
from visualizeai.saved import read as read

FORMATS = ("npz", "json", "html", "png", "svg")
MEDIA_TYPES = {
    "npz": "application/zip",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}


def arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Everything numeric of a result, as the arrays stored in ``.npz``."""
    return {
        "attentions": result.attentions.astype(np.float32),  # [layers, heads, n, n]
        "tokens": np.array(result.tokens, dtype=np.str_),  # [n]
        "display_tokens": np.array(result.display_tokens, dtype=np.str_),  # [n]
        "special_mask": result.special_mask.astype(bool),  # [n]
        "offsets": result.offsets.astype(np.int32),  # [n, 2]
        "word_ids": result.word_ids.astype(np.int32),  # [n]
        **optional_arrays(result),
    }


def optional_arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """What the model saw, when the result knows it: vocabulary ids, readable forms, unknown-token flags."""
    out = {}
    if result.token_ids is not None:
        out["token_ids"] = result.token_ids.astype(np.int64)  # [n]
    if result.readable_tokens is not None:
        out["readable_tokens"] = np.array(result.readable_tokens, dtype=np.str_)  # [n]
    if result.unknown_mask is not None:
        out["unknown_mask"] = result.unknown_mask.astype(bool)  # [n]
    return out


def predictions(result: AnalysisResult) -> list[dict] | None:
    """The LM head's guesses as JSON-ready dicts (None when the analysis made none)."""
    if result.predictions is None:
        return None
    return [
        {
            "position": p.position,
            "kind": p.kind,
            "candidates": [
                {"token": c.token, "token_id": c.token_id, "score": c.score, "readable": c.readable}
                for c in p.candidates
            ],
        }
        for p in result.predictions
    ]


def summary(result: AnalysisResult) -> dict:
    """JSON-ready metadata of a result (no matrices)."""
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "model": result.model_id,
        "revision": result.revision,
        "kind": result.model_kind,
        "text": result.text,
        "shape": list(result.attention.shape),
        "tokens": result.tokens,
        "display_tokens": result.display_tokens,
        "special_mask": result.special_mask.tolist(),
        "offsets": result.offsets.tolist(),
        "word_ids": result.word_ids.tolist(),
        **{
            name: (a.tolist() if name != "readable_tokens" else result.readable_tokens)
            for name, a in optional_arrays(result).items()
        },
        "dropped_tokens": result.dropped_tokens,
        "max_length": result.max_length,
        "predictions": predictions(result),
        "predictions_note": result.predictions_note,
    }


# ---- bytes of each format --------------------------------------------------------------------------------


def npz_bytes(result: AnalysisResult) -> bytes:
    """The ``.npz`` file: ``arrays()``, one array per head statistic named after it, ``rollout``
    (attention rollout, float32 ``[layers, n, n]``) and ``meta`` (``summary()`` as JSON)."""
    in_arrays = {"tokens", "display_tokens", *optional_arrays(result)}
    meta = {k: v for k, v in summary(result).items() if k not in in_arrays}
    extra = dict(derived.head_stats(result))  # name → float32 [layers, heads]
    extra["rollout"] = derived.rollout(result)  # float32 [layers, n, n]; refused over its budget
    buffer = io.BytesIO()
    meta_json = np.array(json.dumps(meta, ensure_ascii=False))
    np.savez_compressed(buffer, **arrays(result), **extra, meta=meta_json)
    return buffer.getvalue()


def json_bytes(result: AnalysisResult) -> bytes:
    """The ``.json`` file: ``summary()``, ``statistics`` and ``attentions`` (nested lists, exact float32)."""
    stats = {name: values.tolist() for name, values in derived.head_stats(result).items()}
    doc = summary(result) | {"statistics": stats, "attentions": result.attentions.tolist()}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_bytes(
    result: AnalysisResult,
    fmt: str,
    *,
    layer: int = 0,
    head: int = 0,
    layers: list[int] | None = None,
    scale: str = "linear",
) -> bytes:
    """``result`` in format ``fmt`` (one of ``FORMATS``).

    ``layer``/``head``/``scale`` choose the figure of png and svg; ``layers`` the layers a standalone html
    file includes (None = all).
    """
    if fmt == "npz":
        return npz_bytes(result)
    if fmt == "json":
        return json_bytes(result)
    if fmt in ("png", "svg"):
        from visualizeai import figures

        check_layer_head(result, layer, head)
        try:
            return figures.render_result(result, layer, head, fmt=fmt, scale=scale)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if fmt == "html":
        from visualizeai import standalone

        return standalone.build(result, layers=layers, scale=scale, layer=layer, head=head).encode("utf-8")
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")


def check_layer_head(result: AnalysisResult, layer: int, head: int) -> None:
    """InputError naming the valid range when ``layer`` or ``head`` is out of range (the store's check)."""
    result.attention.check_layer(layer)
    result.attention.check_head(head)


def parse_layers(spec: str | None, count: int) -> list[int] | None:
    """``"0,2,5"`` or ``"0-3,7"`` -> sorted layer indices; None or "" -> None (all layers)."""
    if spec is None or not spec.strip():
        return None
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                chosen.update(range(lo, hi + 1))
            else:
                chosen.add(int(part))
        except ValueError:
            raise InputError(
                f"Layers {spec!r}: write layer numbers like 0,1,5 or a range like 0-3."
            ) from None
    bad = sorted(i for i in chosen if not 0 <= i < count)
    if bad or not chosen:
        raise InputError(f"Layers {spec!r}: this model has layers 0–{count - 1}.")
    return sorted(chosen)


def format_of(path: Path, fmt: str | None = None) -> str:
    """``fmt``, or the format the suffix of ``path`` names; InputError for anything else."""
    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"Unknown output format {Path(path).suffix!r}: use one of .{', .'.join(FORMATS)}.")
    return fmt


def write(result: AnalysisResult, path: Path, fmt: str | None = None, **options) -> None:
    """Write ``result`` to ``path`` in ``fmt`` (default: from the file suffix); options as in ``to_bytes``.
    No work budget: ``Service.write`` is the budgeted way (CLI, Python API)."""
    path = Path(path)
    path.write_bytes(to_bytes(result, format_of(path, fmt), **options))
