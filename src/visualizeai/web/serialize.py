"""The one place where results turn into wire payloads (JSON models and binary buffers)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator

import numpy as np

from visualizeai import service
from visualizeai.analysis.display import DisplayMatrix
from visualizeai.analysis.focus import row_focus_from_store
from visualizeai.analysis.result import AnalysisResult
from visualizeai.analysis.transforms import quantize_thumbnails, to_float16_bytes
from visualizeai.derived import Comparison, Side
from visualizeai.errors import VisualizeAIError
from visualizeai.models.generate import Generation
from visualizeai.service import Analysis, ModelStatus, Tile
from visualizeai.web.schemas import (
    AnalysisBrief,
    AnalysisMeta,
    CandidateInfo,
    CompareResponse,
    CompareSide,
    Float16Array,
    FocusKey,
    HeadStats,
    KeyWeight,
    ModelInfo,
    ModelRef,
    PredictionInfo,
    Timings,
    TokenInfo,
    TopKeys,
    Truncation,
)

log = logging.getLogger(__name__)
FOCUS_KEYS = 4  # strongest keys per layer in a prediction's focus summary


def model_info(status: ModelStatus) -> ModelInfo:
    spec = status.spec
    return ModelInfo(
        id=spec.id,
        display_name=spec.label,
        kind=spec.kind,
        source=spec.source,
        availability=status.availability,
        reason=status.reason,
        notes=spec.notes,
        attention_mode=status.attention_mode,
        attention_reason=status.attention_reason,
    )


def token_rows(result: AnalysisResult) -> list[dict]:
    """The token table as ``TokenInfo``-shaped dicts (fields in its order), built from whole columns."""
    n = result.n
    starts, ends = result.offsets[:n, 0].tolist(), result.offsets[:n, 1].tolist()
    special, words = result.special_mask[:n].tolist(), result.word_ids[:n].tolist()
    ids = [None] * n if result.token_ids is None else result.token_ids[:n].tolist()
    readable = [None] * n if result.readable_tokens is None else list(result.readable_tokens)
    unknown = [False] * n if result.unknown_mask is None else result.unknown_mask[:n].tolist()
    return [
        {
            "index": i,
            "raw": result.tokens[i],
            "display": result.display_tokens[i],
            "special": bool(special[i]),
            "start": int(starts[i]),
            "end": int(ends[i]),
            "word_id": None if words[i] < 0 else int(words[i]),
            "id": None if ids[i] is None else int(ids[i]),
            "readable": readable[i],
            "unknown": bool(unknown[i]),
        }
        for i in range(n)
    ]


def _meta_with(analysis: Analysis, display_name: str, tokens: list[TokenInfo]) -> AnalysisMeta:
    r = analysis.result
    return AnalysisMeta(
        **dict(analysis_brief(analysis, display_name)),
        text=r.text,
        tokens=tokens,
        predictions=predictions(r),
        predictions_note=r.predictions_note,
    )


def analysis_meta(analysis: Analysis, display_name: str) -> AnalysisMeta:
    """``analysis_brief`` with the text, the token table and the LM head's predictions."""
    return _meta_with(analysis, display_name, [TokenInfo(**row) for row in token_rows(analysis.result)])


def analysis_meta_json(analysis: Analysis, display_name: str) -> bytes:
    """``analysis_meta`` as JSON bytes, its token table written from plain dicts rather than a validated model
    per token (what the page that opens an analysis by key waits for: 2.6 MB at 16k tokens)."""
    shell = _meta_with(analysis, display_name, []).model_dump(mode="json")
    shell["tokens"] = token_rows(analysis.result)  # in its place: the keys keep AnalysisMeta's order
    return json.dumps(shell, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def analysis_brief(analysis: Analysis, display_name: str) -> AnalysisBrief:
    """``analysis_meta`` without the token table, text and predictions (``POST /analyze?brief=true``)."""
    r = analysis.result
    return AnalysisBrief(
        key=analysis.key,
        model=ModelRef(id=r.model_id, revision=r.revision, kind=r.model_kind, display_name=display_name),
        n=r.n,
        layers=r.layers,
        heads=r.heads,
        truncation=Truncation(dropped_tokens=r.dropped_tokens, max_length=r.max_length),
        cached=analysis.cached,
        timings=Timings(total_ms=round(analysis.total_ms, 3)),
        attention_mode=r.attention.mode,
        attention_bytes=int(r.attention.nbytes),
        device_bytes=int(r.attention.device_bytes),
    )


def float16_payload(matrix: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Little-endian float16 bytes, C order, and the headers that repeat the shape."""
    shape = ",".join(map(str, np.shape(matrix)))
    return to_float16_bytes(matrix), {"X-Shape": shape, "X-Dtype": "float16"}


def token_groups(groups: list[list[int]]) -> str:
    """The ``X-Tokens`` header: per displayed row, its token positions as ranges ("4" or "1-3"; pieces that
    are not contiguous are joined with "+"), rows separated by commas."""
    out = []
    for group in groups:
        runs: list[list[int]] = []
        for i in sorted(group):
            if runs and i == runs[-1][1] + 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        out.append("+".join(str(a) if a == b else f"{a}-{b}" for a, b in runs))
    return ",".join(out)


def display_payload(view: DisplayMatrix) -> tuple[bytes, dict[str, str]]:
    """A displayed matrix as float16 bytes, with ``X-Tokens`` naming the token positions of its rows."""
    data, headers = float16_payload(view.matrix)
    headers["X-Tokens"] = token_groups(view.groups)
    headers["X-Renormalized"] = "true" if view.renormalized else "false"
    return data, headers


def tile_payload(tile: Tile) -> tuple[bytes, dict[str, str]]:
    """A tile as float16 bytes, with ``X-Exact``, ``X-Pool`` and the ranges it covers."""
    data, headers = float16_payload(tile.matrix)
    headers["X-Exact"] = "true" if tile.exact else "false"
    headers["X-Pool"] = tile.pool
    headers["X-Rows"] = f"{tile.rows[0]}:{tile.rows[1]}"
    headers["X-Cols"] = f"{tile.cols[0]}:{tile.cols[1]}"
    return data, headers


def top_keys(found: service.TopKeys) -> TopKeys:
    """``Service.top_keys``'s answer as JSON."""
    return TopKeys(
        rows=found.rows,
        layer=found.layer,
        head=found.head,
        n=found.n,
        keys=[KeyWeight(index=i, weight=w) for i, w in found.keys],
    )


def thumbnails_payload(pictures: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Pooled pictures ``[layers, heads, s, s]``, or one layer's ``[heads, s, s]`` (``Service.thumbnails``),
    as uint8, each scaled to its own maximum by ``quantize_thumbnails`` (already ``s × s``, so it only
    scales); the shape is kept. ``X-Maxima`` gives each picture's maximum (float32, C order), so a client can
    put thumbnails on a shared scale (a layer's, or absolute)."""
    s = pictures.shape[-1]
    whole = pictures if pictures.ndim == 4 else pictures[None]
    thumbs = quantize_thumbnails(whole, s).reshape(pictures.shape)  # uint8, one maximum per head
    peaks = np.asarray(pictures, dtype=np.float32).max(axis=(-2, -1)).reshape(-1)  # what 255 stands for
    headers = {
        "X-Shape": ",".join(map(str, thumbs.shape)),
        "X-Dtype": "uint8",
        "X-Maxima": ",".join(f"{float(v):.9g}" for v in peaks),
    }
    return thumbs.tobytes(), headers


def predictions(result: AnalysisResult) -> list[PredictionInfo] | None:
    """The LM head's top-k per predicted position, with what that position attends to in each layer."""
    if result.predictions is None:
        return None
    out = []
    for p in result.predictions:
        focus = row_focus_from_store(result.attention, p.position, k=min(FOCUS_KEYS, result.n))
        out.append(
            PredictionInfo(
                position=p.position,
                kind=p.kind,
                candidates=[
                    CandidateInfo(token=c.token, token_id=c.token_id, score=c.score, readable=c.readable)
                    for c in p.candidates
                ],
                focus=[
                    [FocusKey(index=int(i), weight=float(w)) for i, w in zip(idx, wts, strict=True)]
                    for idx, wts in zip(focus.indices, focus.weights, strict=True)
                ],
            )
        )
    return out


def float16_base64(array: np.ndarray) -> dict:
    """An array as ``{"shape", "dtype": "float16", "data"}``: base64 of little-endian float16, C order."""
    encoded = base64.b64encode(to_float16_bytes(array)).decode("ascii")
    return {"shape": list(np.shape(array)), "dtype": "float16", "data": encoded}


def sse(event: str, payload: dict) -> str:
    """One server-sent event: a name and one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def generation_events(generation: Generation, display_name: str) -> Iterator[str]:
    """The SSE stream of a generation (see docs/wire-format.md): ``start``, one ``token`` per generated token,
    then ``done``, or ``error`` if the model fails part-way (the HTTP status is already 200 by then)."""
    started = time.perf_counter()
    prompt_n = len(generation.prompt_ids)
    yield sse(
        "start",
        {
            "model": {
                "id": generation.model_id,
                "revision": generation.revision,
                "display_name": display_name,
            },
            "prompt": generation.prompt,
            "prompt_tokens": [
                {"index": i, "token_id": t, "raw": raw, "display": shown}
                for i, (t, raw, shown) in enumerate(
                    zip(
                        generation.prompt_ids,
                        generation.prompt_tokens,
                        generation.prompt_display,
                        strict=True,
                    )
                )
            ],
            "layers": generation.layers,
            "heads": generation.heads,
            "max_new_tokens": generation.max_new_tokens,
            "mode": "greedy" if generation.greedy else "sample",
            "seed": generation.seed,
        },
    )
    text = []
    count = 0
    try:
        for step in generation.steps:
            count += 1
            text.append(step.text)
            yield sse(
                "token",
                {
                    "step": step.index,
                    "position": prompt_n + step.index,
                    "token_id": step.token_id,
                    "token": step.token,
                    "display": step.display,
                    "text": step.text,
                    "attention": float16_base64(step.attention),
                },
            )
    except VisualizeAIError as exc:
        yield sse("error", {"detail": str(exc)})
        return
    except Exception as exc:  # the status line is sent: the client learns of a failure only from an event
        log.exception("generation failed")
        yield sse("error", {"detail": f"Generation failed after {count} tokens: {exc}"})
        return
    yield sse(
        "done",
        {
            "steps": count,
            "finish_reason": generation.finish_reason,
            "text": "".join(text),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )


def head_stats(stats: dict[str, np.ndarray], descriptions: dict[str, str]) -> HeadStats:
    """Per-head statistics ({name: [layers, heads]}) as JSON, in the order of ``stats``, as exact floats."""
    first = next(iter(stats.values()))
    return HeadStats(
        layers=int(first.shape[0]),
        heads=int(first.shape[1]),
        names=list(stats),
        descriptions={name: descriptions[name] for name in stats},
        values={name: np.asarray(values, dtype=np.float32).tolist() for name, values in stats.items()},
    )


def _compare_side(side: Side, key: str) -> CompareSide:
    return CompareSide(
        key=key,
        model=side.model,
        layer=side.layer,
        head=side.head,
        labels=side.labels,
        special=side.special,
        tokens=side.tokens,
        matrix=Float16Array(**float16_base64(side.matrix)),
    )


def comparison(c: Comparison, key_a: str, key_b: str) -> CompareResponse:
    """A comparison as JSON; its three matrices as base64 float16 (see docs/wire-format.md)."""
    return CompareResponse(
        mode=c.mode,
        a=_compare_side(c.a, key_a),
        b=_compare_side(c.b, key_b),
        labels=c.labels,
        pairs=c.pairs,
        difference=Float16Array(**float16_base64(c.difference)),
    )
