"""Analysis results as files, and files back as results (schema: docs/export-format.md).

Data formats: ``.npz`` (exact float32 arrays plus a JSON ``meta`` string; loads back with ``read``) and
``.json`` (everything as JSON). Views: ``.png`` / ``.svg`` figures of one head (``visualizeai.figures``) and a
standalone interactive ``.html`` file (``visualizeai.standalone``). Pure numpy: no torch, no web framework.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from visualizeai import aggregates
from visualizeai.analysis.result import AnalysisResult, Candidate, Prediction
from visualizeai.errors import InputError

SCHEMA_VERSION = 1
FORMAT_NAME = "visualizeai-analysis"
FORMATS = ("npz", "json", "html", "png", "svg")
MEDIA_TYPES = {
    "npz": "application/zip",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}
# Arrays every saved analysis has; anything else in an .npz (statistics) is derived and ignored on reading.
REQUIRED_ARRAYS = ("attentions", "tokens", "display_tokens", "special_mask", "offsets", "word_ids", "meta")

NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}

NOT_AN_ANALYSIS = "This is not a saved VisualizeAI analysis: {reason}"


class TooLarge(InputError):
    """A saved analysis would unpack to more bytes than allowed."""


def arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Everything numeric of a result, as the arrays stored in ``.npz``."""
    return {
        "attentions": result.attentions.astype(np.float32),  # [layers, heads, n, n]
        "tokens": np.array(result.tokens, dtype=np.str_),  # [n]
        "display_tokens": np.array(result.display_tokens, dtype=np.str_),  # [n]
        "special_mask": result.special_mask.astype(bool),  # [n]
        "offsets": result.offsets.astype(np.int32),  # [n, 2]
        "word_ids": result.word_ids.astype(np.int32),  # [n]
    }


def predictions(result: AnalysisResult) -> list[dict] | None:
    """The LM head's guesses as JSON-ready dicts (None when the analysis made none)."""
    if result.predictions is None:
        return None
    return [
        {
            "position": p.position,
            "kind": p.kind,
            "candidates": [
                {"token": c.token, "token_id": c.token_id, "score": c.score} for c in p.candidates
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
        "dropped_tokens": result.dropped_tokens,
        "max_length": result.max_length,
        "predictions": predictions(result),
        "predictions_note": result.predictions_note,
    }


# ---- bytes of each format --------------------------------------------------------------------------------


def npz_bytes(result: AnalysisResult) -> bytes:
    """The ``.npz`` file: ``arrays()``, one array per head statistic named after it, ``rollout``
    (attention rollout, float32 ``[layers, n, n]``) and ``meta`` (``summary()`` as JSON)."""
    meta = {k: v for k, v in summary(result).items() if k not in {"tokens", "display_tokens"}}
    derived = dict(aggregates.head_stats(result))  # name → float32 [layers, heads]
    derived["rollout"] = aggregates.rollout(result)  # float32 [layers, n, n]; refused over its budget
    buffer = io.BytesIO()
    meta_json = np.array(json.dumps(meta, ensure_ascii=False))
    np.savez_compressed(buffer, **arrays(result), **derived, meta=meta_json)
    return buffer.getvalue()


def json_bytes(result: AnalysisResult) -> bytes:
    """The ``.json`` file: ``summary()``, ``statistics`` and ``attentions`` (nested lists, exact float32)."""
    stats = {name: values.tolist() for name, values in aggregates.head_stats(result).items()}
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

        return standalone.build(result, layers=layers, scale=scale).encode("utf-8")
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")


def check_layer_head(result: AnalysisResult, layer: int, head: int) -> None:
    if not 0 <= layer < result.layers:
        raise InputError(f"Layer {layer} is out of range: this model has layers 0–{result.layers - 1}.")
    if not 0 <= head < result.heads:
        raise InputError(f"Head {head} is out of range: this model has heads 0–{result.heads - 1}.")


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


def write(result: AnalysisResult, path: Path, fmt: str | None = None, **options) -> None:
    """Write ``result`` to ``path`` in ``fmt`` (default: from the file suffix); options as in ``to_bytes``."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"Unknown output format {path.suffix!r}: use one of .{', .'.join(FORMATS)}.")
    path.write_bytes(to_bytes(result, fmt, **options))


# ---- reading ---------------------------------------------------------------------------------------------


def read(path: Path) -> AnalysisResult:
    """Load a saved ``.npz`` or ``.json`` analysis; raises InputError saying what is wrong with the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"the JSON does not parse ({exc}).")) from None
        if not isinstance(doc, dict):
            raise InputError(NOT_AN_ANALYSIS.format(reason="the JSON is not an object."))
        return _from_parts(doc, {**doc, "attentions": _float_array(doc.get("attentions"))})
    return loads_npz(data)


def loads_npz(data: bytes, *, max_unpacked_bytes: int | None = None) -> AnalysisResult:
    """A result from the bytes of a saved ``.npz``, without ever unpickling anything.

    The archive is checked before any array is read: members must be ``.npy`` files whose headers promise
    no more bytes than they hold, with no object dtype, and at most ``max_unpacked_bytes`` in all (a guard
    against compressed archives that unpack to gigabytes).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(NOT_AN_ANALYSIS.format(reason="it is not an .npz (zip) archive.")) from None
    with archive:
        _check_members(archive, max_unpacked_bytes)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                missing = [name for name in REQUIRED_ARRAYS if name not in npz.files]
                if missing:
                    reason = f"it has no {', '.join(missing)} array{'s' if len(missing) > 1 else ''}."
                    raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
                loaded = {name: npz[name] for name in REQUIRED_ARRAYS}
        except InputError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"an array cannot be read ({exc}).")) from None
    meta_array = loaded.pop("meta")
    if meta_array.shape != () or meta_array.dtype.kind != "U":
        raise InputError(NOT_AN_ANALYSIS.format(reason="meta must be one JSON string."))
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as exc:
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"meta is not JSON ({exc}).")) from None
    if not isinstance(meta, dict):
        raise InputError(NOT_AN_ANALYSIS.format(reason="meta is not a JSON object."))
    for name in ("tokens", "display_tokens"):
        if loaded[name].ndim != 1 or loaded[name].dtype.kind != "U":
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be a 1-d array of strings."))
        loaded[name] = loaded[name].tolist()
    return _from_parts(meta, loaded)


def _check_members(archive: zipfile.ZipFile, max_unpacked_bytes: int | None) -> None:
    total = 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or "/" in info.filename or "\\" in info.filename:
            raise InputError(
                NOT_AN_ANALYSIS.format(reason=f"unexpected member {info.filename!r} in the archive.")
            )
        total += info.file_size
        if max_unpacked_bytes is not None and total > max_unpacked_bytes:
            raise TooLarge(
                f"The saved analysis unpacks to more than {max_unpacked_bytes:,} bytes, the limit here."
            )
        with archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                if version not in NPY_HEADER_READERS:
                    raise ValueError(f"unsupported .npy version {version}")
                shape, _, dtype = NPY_HEADER_READERS[version](member)
            except (ValueError, OSError, EOFError) as exc:
                raise InputError(
                    NOT_AN_ANALYSIS.format(reason=f"{info.filename} is not a .npy array ({exc}).")
                ) from None
            header = member.tell()
        if dtype.hasobject:
            raise InputError(
                NOT_AN_ANALYSIS.format(
                    reason=f"{info.filename} holds Python objects, which are never loaded."
                )
            )
        if math.prod(shape) * dtype.itemsize > info.file_size - header:
            raise InputError(
                NOT_AN_ANALYSIS.format(
                    reason=f"{info.filename} is shorter than its header says (shape {shape})."
                )
            )


def _float_array(values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(NOT_AN_ANALYSIS.format(reason="attentions must be numbers.")) from None
    return array


def _from_parts(meta: dict, parts: dict) -> AnalysisResult:
    """Build (and so validate) a result from the JSON metadata and the arrays."""
    if meta.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"its format is {meta.get('format')!r}."))
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            NOT_AN_ANALYSIS.format(
                reason=f"schema_version is {version!r}; this version reads {SCHEMA_VERSION}."
            )
        )
    attentions = parts["attentions"]
    if attentions.dtype.kind != "f":
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"attentions must be floats, not {attentions.dtype}."))
    if not np.isfinite(attentions).all():
        raise InputError(NOT_AN_ANALYSIS.format(reason="attentions contain NaN or infinite values."))
    try:
        tokens = [_text(t, "tokens") for t in parts["tokens"]]
        display = [_text(t, "display_tokens") for t in parts["display_tokens"]]
        return AnalysisResult(
            model_id=_text(meta.get("model"), "model"),
            revision=None if meta.get("revision") is None else _text(meta.get("revision"), "revision"),
            model_kind=_text(meta.get("kind"), "kind"),
            text=_text(meta.get("text"), "text"),
            tokens=tokens,
            display_tokens=display,
            special_mask=np.asarray(parts["special_mask"]),
            offsets=np.asarray(parts["offsets"]),
            word_ids=np.asarray(parts["word_ids"]),
            attention=attentions,
            dropped_tokens=_int(meta.get("dropped_tokens"), "dropped_tokens"),
            max_length=_int(meta.get("max_length"), "max_length"),
            predictions=_predictions(meta.get("predictions")),
            predictions_note=None
            if meta.get("predictions_note") is None
            else _text(meta["predictions_note"], "predictions_note"),
        )
    except InputError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(NOT_AN_ANALYSIS.format(reason=str(exc))) from None


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be text."))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} is not valid Unicode text.")) from None
    return value


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be an integer."))
    return value


def _predictions(value) -> tuple[Prediction, ...] | None:
    if value is None:
        return None
    try:
        return tuple(
            Prediction(
                position=_int(p["position"], "prediction position"),
                kind=_text(p["kind"], "prediction kind"),
                candidates=tuple(
                    Candidate(
                        token=_text(c["token"], "candidate token"),
                        token_id=_int(c["token_id"], "candidate token_id"),
                        score=float(c["score"]),
                    )
                    for c in p["candidates"]
                ),
            )
            for p in value
        )
    except (TypeError, KeyError):
        raise InputError(NOT_AN_ANALYSIS.format(reason="predictions are malformed.")) from None
