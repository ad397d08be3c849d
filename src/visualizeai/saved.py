"""Saved analyses back as results: ``.npz`` and ``.json`` files read and checked like a fresh analysis.

Everything in a saved file is untrusted. ``loads_npz`` checks the zip archive and every member's ``.npy``
header before it reads any data, loads arrays with ``allow_pickle=False`` and then refuses whatever a fresh
analysis could not hold: impossible attention, more tokens or characters than this process analyses, strings
and JSON nesting beyond their bounds. Each refusal is an ``InputError`` naming the array, the index, the value
and the limit (rules: docs/export-format.md). Pure numpy: no torch, no web framework.
"""

from __future__ import annotations

import io
import json
import math
import reprlib
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from visualizeai.analysis.result import AnalysisResult, Candidate, Prediction
from visualizeai.config import CHARS_PER_TOKEN, Settings
from visualizeai.errors import InputError
from visualizeai.validation import MAX_MODEL_ID_CHARS

SCHEMA_VERSION = 1
FORMAT_NAME = "visualizeai-analysis"
# Arrays every saved analysis has; anything else in an .npz (statistics, rollout) is derived and never read.
REQUIRED_ARRAYS = ("attentions", "tokens", "display_tokens", "special_mask", "offsets", "word_ids", "meta")
# What the model saw, written by versions that know it; [n] each: int ids, strings, bools.
OPTIONAL_ARRAYS = {"token_ids": "i", "readable_tokens": "U", "unknown_mask": "b"}

NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}  # what np.savez writes
ZIP_ENCRYPTED = 0x1 | 0x40  # general-purpose flag bits: traditional and strong encryption
MAX_MEMBERS = 64  # a saved analysis has 16 (7 arrays, 8 statistics, rollout)
ATTENTION_DTYPES = ("float16", "float32", "float64")

MAX_TOKEN_CHARS = 1_000  # a vocabulary string; the longest in common vocabularies are a few hundred
MAX_CANDIDATES = 100  # models.predict.MAX_TOP_K (not imported: it pulls in torch)
MAX_NOTE_CHARS = 4_096  # predictions_note: a sentence that may name the model (ids up to 1,024 characters)
MAX_INT = 2**31 - 1  # positions, token ids, max_length, dropped_tokens
MAX_JSON_DEPTH = (
    64  # a saved analysis nests 5 deep (meta → predictions → prediction → candidates → candidate)
)
# Room in meta's JSON: the text (at most 6 characters per character, "\uXXXX"), 64 characters per token for
# the per-token lists (offsets, word ids and special mask take about 35 at the longest) and 8,000,000
# characters for predictions (about 100,000 candidates: 1,000 masks at top_k 100).
JSON_CHARS_PER_CHAR = 6
META_CHARS_PER_TOKEN = 64
META_PREDICTION_CHARS = 8_000_000
# Elements checked at once: the checks' temporaries stay a few MB whatever the size of the file.
CHUNK = 1 << 20

NOT_AN_ANALYSIS = "This is not a saved VisualizeAI analysis: {reason}"
OVER_LIMIT = "This saved analysis cannot be opened here: {reason}"
ATTENTION_DTYPE_ERROR = "attentions must be float16, float32 or float64, not {dtype}."
ATTENTION_SHAPE_ERROR = (
    "attentions must have shape [layers, heads, n, n] with every dimension at least 1; got shape {shape}."
)
TOKEN_LIMIT_ERROR = "it has {n:,} tokens; at most {limit:,} are analysed here (VISUALIZEAI_MAX_TOKENS)."
TEXT_LIMIT_ERROR = (
    "its text has {length:,} characters; the limit here is {limit:,} (VISUALIZEAI_MAX_TEXT_CHARS)."
)
META_LIMIT_ERROR = (
    "its metadata is {length:,} characters of JSON; the limit for {tokens:,} tokens and {chars:,} characters "
    "of text is {limit:,}."
)
WEIGHT_ERROR = (
    "attentions[{layer}, {head}, {query}, {key}] is {value}; attention weights are finite and between 0 "
    "and 1."
)
ZERO_ROW_ERROR = (
    "row {query} of attentions at layer {layer}, head {head} is all zero; every query attends to some key."
)
ROW_SUM_ERROR = (
    "row {query} of attentions at layer {layer}, head {head} sums to {total:.6g}; a row of attention weights "
    "sums to 1 (at most 1 + {tolerance:.1e} after rounding)."
)
CODE_POINT_ERROR = "{where} holds U+{code:04X}, which is not a Unicode character."
TOKEN_LENGTH_ERROR = "{name}[{index}] is {length:,} characters long; a token has at most {limit:,}."
DISPLAY_LENGTH_ERROR = (
    "display_tokens[{index}] is {length:,} characters long; a display token has at most {limit:,}, or as "
    "many as the text it covers ({span:,})."
)
SCORE_ERROR = (
    "prediction {index}, candidate {rank} has score {score}; a score is a probability, finite and between 0 "
    "and 1."
)
_REPR = reprlib.Repr()  # values echoed in messages, shortened
_REPR.maxstring = _REPR.maxother = 60
_short = _REPR.repr


def _number(value: float) -> str:
    """A number for a message: 6 significant digits, "NaN" for NaN."""
    return "NaN" if math.isnan(value) else f"{float(value):.6g}"


RESULT_BYTES_ERROR = (
    "The saved analysis needs {need:,} bytes in memory, more than the result cache holds ({limit:,}); "
    "raise VISUALIZEAI_RESULT_CACHE_BYTES."
)


class TooLarge(InputError):
    """A saved analysis would unpack to more bytes than allowed."""


@dataclass(frozen=True)
class Limits:
    """What a saved analysis may hold here: the caps a fresh analysis obeys."""

    max_tokens: int
    max_text_chars: int
    max_result_bytes: int | None = None  # what the opened result may hold (the result cache's bound)

    @classmethod
    def of(cls, max_tokens: int | None, max_text_chars: int | None) -> Limits:
        """The given caps; a missing one from ``VISUALIZEAI_*`` settings (text: 8 characters per token)."""
        if max_tokens is None:
            settings = Settings.from_env()
            max_tokens, max_text_chars = settings.max_tokens, max_text_chars or settings.max_text_chars
        return cls(max_tokens, max_text_chars or CHARS_PER_TOKEN * max_tokens)

    @property
    def max_meta_chars(self) -> int:
        return (
            JSON_CHARS_PER_CHAR * self.max_text_chars
            + META_CHARS_PER_TOKEN * self.max_tokens
            + META_PREDICTION_CHARS
        )


def read(path: Path, *, max_tokens: int | None = None, max_text_chars: int | None = None) -> AnalysisResult:
    """Load a saved ``.npz`` or ``.json`` analysis; raises InputError saying what is wrong with the file.

    ``max_tokens`` and ``max_text_chars`` default to this process's settings (``VISUALIZEAI_*``).
    """
    path = Path(path)
    limits = Limits.of(max_tokens, max_text_chars)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None
    if path.suffix.lower() == ".json":
        try:
            doc = _parse_json(data.decode("utf-8"), "the file")
        except UnicodeDecodeError as exc:
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"the JSON is not UTF-8 ({exc}).")) from None
        if not isinstance(doc, dict):
            raise InputError(NOT_AN_ANALYSIS.format(reason="the JSON is not an object."))
        return _from_parts(doc, {**doc, "attentions": _float_array(doc.get("attentions"))}, limits)
    return loads_npz(data, max_tokens=limits.max_tokens, max_text_chars=limits.max_text_chars)


def loads_npz(
    data: bytes,
    *,
    max_unpacked_bytes: int | None = None,
    max_tokens: int | None = None,
    max_text_chars: int | None = None,
    max_result_bytes: int | None = None,
) -> AnalysisResult:
    """A result from the bytes of a saved ``.npz``, without ever unpickling anything.

    The archive is checked before any array is read: at most ``MAX_MEMBERS`` uniquely named ``.npy``
    members, unencrypted, stored or deflated, whose headers declare no object dtype, no more bytes than they
    hold and at most ``max_unpacked_bytes`` in all (``TooLarge``: a guard against compressed archives that
    unpack to gigabytes), and attention of at most ``max_tokens`` tokens whose float32 weights fit in
    ``max_result_bytes`` (told from the header, before anything is read). A damaged archive (corrupt deflate
    data, bad CRC, sizes that lie) is an InputError too. The arrays are then checked like a fresh analysis.
    """
    limits = replace(Limits.of(max_tokens, max_text_chars), max_result_bytes=max_result_bytes)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except ARCHIVE_ERRORS:
        raise InputError(NOT_AN_ANALYSIS.format(reason="it is not an .npz (zip) archive.")) from None
    with archive:
        headers = _check_members(archive, max_unpacked_bytes)
    _check_headers(headers, limits)
    loaded = {}
    with _archive_errors("the archive"):
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    with npz:
        for name in (*REQUIRED_ARRAYS, *(a for a in OPTIONAL_ARRAYS if a in headers)):
            with _archive_errors(f"{name}.npy"):
                loaded[name] = npz[name]
    meta_text = str(_check_code_points(loaded.pop("meta"), "meta").reshape(()))
    meta = _parse_json(meta_text, "meta")
    if not isinstance(meta, dict):
        raise InputError(NOT_AN_ANALYSIS.format(reason="meta is not a JSON object."))
    for name in ("tokens", "display_tokens", "readable_tokens"):
        if name in loaded:
            loaded[name] = _check_code_points(loaded[name], name).tolist()
    return _from_parts(meta, loaded, limits)


# ---- the archive -----------------------------------------------------------------------------------------

# What reading a damaged archive raises: zipfile's errors (bad CRC, bad headers), zlib's for corrupt deflate
# data, EOFError for a stream cut short, NotImplementedError for compression methods and flags zipfile lacks,
# RuntimeError for encryption, ValueError/OSError/struct.error for numbers in headers that make no sense.
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
    KeyError,
    struct.error,
)


@contextmanager
def _archive_errors(member: str) -> Iterator[None]:
    """Turn an error of reading ``member`` into an InputError that says what is wrong with the file."""
    try:
        yield
    except InputError:
        raise
    except ARCHIVE_ERRORS as exc:
        if isinstance(exc, zlib.error):
            reason = f"the compressed data of {member} is corrupt ({exc})."
        elif isinstance(exc, NotImplementedError):
            reason = f"{member} uses a zip feature that is not supported ({exc})."
        elif isinstance(exc, RuntimeError) and "encrypted" in str(exc):
            reason = f"{member} is encrypted."
        elif isinstance(exc, EOFError):
            reason = f"{member} ends early ({exc})."
        elif isinstance(exc, zipfile.BadZipFile):
            reason = f"{member} is damaged ({exc})."
        else:
            reason = f"{member} cannot be read ({exc})."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason)) from None


def _check_members(archive: zipfile.ZipFile, max_unpacked_bytes: int | None) -> dict:
    """``{name: (shape, dtype)}`` from each member's ``.npy`` header, every member checked; no data read."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        reason = f"the archive has {len(members):,} members; a saved analysis has at most {MAX_MEMBERS}."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    for info in members:
        name = info.filename
        if not name.endswith(".npy") or "/" in name or "\\" in name:
            raise InputError(
                NOT_AN_ANALYSIS.format(reason=f"unexpected member {_short(name)} in the archive.")
            )
        if name[:-4] in headers:
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"the archive has {name} twice."))
        if info.flag_bits & ZIP_ENCRYPTED:
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} is encrypted."))
        if info.compress_type not in ZIP_METHODS:
            reason = (
                f"{name} uses compression method {info.compress_type}; a saved analysis uses "
                f"{' or '.join(ZIP_METHODS.values())}."
            )
            raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
        total += info.file_size
        if max_unpacked_bytes is not None and total > max_unpacked_bytes:
            raise TooLarge(
                f"The saved analysis unpacks to more than {max_unpacked_bytes:,} bytes, the limit here."
            )
        with _archive_errors(name), archive.open(info) as member:
            try:
                version = np.lib.format.read_magic(member)
                if version not in NPY_HEADER_READERS:
                    raise ValueError(f"unsupported .npy version {version}")
                shape, _, dtype = NPY_HEADER_READERS[version](member)
            except (ValueError, OSError, EOFError) as exc:
                raise InputError(
                    NOT_AN_ANALYSIS.format(reason=f"{name} is not a .npy array ({exc}).")
                ) from None
            header = member.tell()
        if dtype.hasobject:
            raise InputError(
                NOT_AN_ANALYSIS.format(reason=f"{name} holds Python objects, which are never loaded.")
            )
        if math.prod(shape) * dtype.itemsize > info.file_size - header:
            raise InputError(
                NOT_AN_ANALYSIS.format(reason=f"{name} is shorter than its header says (shape {shape}).")
            )
        headers[name[:-4]] = (shape, dtype)
    missing = [name for name in REQUIRED_ARRAYS if name not in headers]
    if missing:
        reason = f"it has no {', '.join(missing)} array{'s' if len(missing) > 1 else ''}."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return headers


def _check_headers(headers: dict, limits: Limits) -> None:
    """Shapes, dtypes and sizes from the ``.npy`` headers, before any array is read."""
    _check_attention_shape(*headers["attentions"], limits)
    for name in ("tokens", "display_tokens"):
        shape, dtype = headers[name]
        if len(shape) != 1 or dtype.kind != "U":
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be a 1-d array of strings."))
    for name, kind in OPTIONAL_ARRAYS.items():  # their lengths are checked with the tokens'
        if name in headers and (len(headers[name][0]) != 1 or headers[name][1].kind != kind):
            what = {"i": "integers", "U": "strings", "b": "booleans"}[kind]
            raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be a 1-d array of {what}."))
    shape, dtype = headers["meta"]
    if shape != () or dtype.kind != "U":
        raise InputError(NOT_AN_ANALYSIS.format(reason="meta must be one JSON string."))
    length = dtype.itemsize // 4  # numpy stores str as UCS-4: the width is the string's length
    if length > limits.max_meta_chars:
        reason = META_LIMIT_ERROR.format(
            length=length, tokens=limits.max_tokens, chars=limits.max_text_chars, limit=limits.max_meta_chars
        )
        raise InputError(OVER_LIMIT.format(reason=reason))


# ---- arrays ----------------------------------------------------------------------------------------------


def _check_attention_shape(shape: tuple[int, ...], dtype: np.dtype, limits: Limits) -> None:
    if dtype.kind != "f" or dtype.name not in ATTENTION_DTYPES:
        raise InputError(NOT_AN_ANALYSIS.format(reason=ATTENTION_DTYPE_ERROR.format(dtype=dtype)))
    if len(shape) != 4 or min(shape) < 1 or shape[2] != shape[3]:
        raise InputError(NOT_AN_ANALYSIS.format(reason=ATTENTION_SHAPE_ERROR.format(shape=tuple(shape))))
    if shape[3] > limits.max_tokens:
        reason = TOKEN_LIMIT_ERROR.format(n=shape[3], limit=limits.max_tokens)
        raise InputError(OVER_LIMIT.format(reason=reason))
    need = 4 * int(np.prod(shape, dtype=np.int64)) + 64 * shape[3]  # as the result cache counts it
    if limits.max_result_bytes is not None and need > limits.max_result_bytes:
        raise InputError(RESULT_BYTES_ERROR.format(need=need, limit=limits.max_result_bytes))


def row_sum_tolerance(n: int) -> float:
    """How far above 1 a row of ``n`` saved attention weights may sum.

    2⁻⁸ (3.9e-3) covers weights rounded to bfloat16 (8 significant bits: each weight off by at most 2⁻⁸ of
    itself, so a row's sum by at most 2⁻⁸), as a model run in bfloat16 in dense mode returns them; float16
    (2⁻¹¹) lies within. n·2⁻²⁴ covers float32 summation in the model's softmax (about one float32 ulp per
    term) and float16 subnormals (weights below 6.1e-5 are multiples of 2⁻²⁴). At 32,768 tokens: 5.9e-3.
    """
    return 2**-8 + n * 2**-24


def check_weights(attentions: np.ndarray) -> np.ndarray:
    """``attentions`` ``[layers, heads, n, n]`` as C-ordered float32, if it can be attention; else an
    InputError naming the first impossible weight or row.

    Every weight must be finite and in [0, 1]; no row may be all zero or sum to more than
    ``1 + row_sum_tolerance(n)``. Rows may sum to less than 1: a model with attention-sink logits (gpt-oss)
    gives the sink a share of every softmax and drops it. Checked ``CHUNK`` elements at a time.
    """
    weights = np.ascontiguousarray(attentions)  # [layers, heads, n, n]; a copy only for Fortran order
    n = weights.shape[-1]
    index = _first_bad(weights.reshape(-1), lambda block: ~((block >= 0) & (block <= 1)), CHUNK)
    if index is not None:
        layer, head, query, key = np.unravel_index(index, weights.shape)
        value = _number(weights.reshape(-1)[index])
        reason = WEIGHT_ERROR.format(layer=layer, head=head, query=query, key=key, value=value)
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    tolerance = row_sum_tolerance(n)
    rows = weights.reshape(-1, n)  # [layers · heads · n, n]

    def bad_rows(block: np.ndarray) -> np.ndarray:
        totals = block.sum(axis=1, dtype=np.float64)
        return (totals <= 0) | (totals > 1 + tolerance)

    index = _first_bad(rows, bad_rows, max(1, CHUNK // n))
    if index is not None:
        layer, head, query = np.unravel_index(index, weights.shape[:3])
        total = float(rows[index].sum(dtype=np.float64))
        where = {"layer": layer, "head": head, "query": query}
        reason = (
            ZERO_ROW_ERROR.format(**where)
            if total <= 0
            else ROW_SUM_ERROR.format(**where, total=total, tolerance=tolerance)
        )
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return weights.astype(np.float32, copy=False)


def _first_bad(array: np.ndarray, is_bad: Callable[[np.ndarray], np.ndarray], step: int) -> int | None:
    """Index along the first axis of the first entry ``is_bad`` flags, ``step`` entries at a time."""
    for start in range(0, len(array), step):
        hits = np.flatnonzero(is_bad(array[start : start + step]))
        if hits.size:
            return start + int(hits[0])
    return None


def _check_code_points(strings: np.ndarray, name: str) -> np.ndarray:
    """``strings`` (a numpy str array) unchanged if every character is Unicode: no code point above
    U+10FFFF (numpy stores any 32-bit value) and no lone surrogate."""
    width = strings.dtype.itemsize // 4
    if width == 0 or strings.size == 0:
        return strings
    flat = np.ascontiguousarray(strings).reshape(-1)
    codes = flat.view(np.dtype(np.uint32).newbyteorder(flat.dtype.byteorder))  # [size · width]
    index = _first_bad(codes, lambda c: (c > 0x10FFFF) | ((c >= 0xD800) & (c <= 0xDFFF)), CHUNK)
    if index is not None:
        where = name if strings.ndim == 0 else f"{name}[{index // width}]"
        reason = CODE_POINT_ERROR.format(where=where, code=int(codes[index]))
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return strings


def _float_array(values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(NOT_AN_ANALYSIS.format(reason="attentions must be numbers.")) from None


# ---- JSON ------------------------------------------------------------------------------------------------


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in the JSON ``text``, brackets inside strings not counted.

    Scans the characters ``CHUNK`` at a time without parsing (so without recursion): a quote opens or closes
    a string unless an odd number of backslashes precede it. Exact for valid JSON; for invalid JSON at least
    the depth ``json.loads`` reaches before it gives up.
    """
    deepest = depth = 0
    inside = False  # within a string where the chunk starts
    run = 0  # backslashes just before the chunk
    for start in range(0, len(text), CHUNK):
        c = np.frombuffer(text[start : start + CHUNK].encode("utf-32-le", "surrogatepass"), "<u4")
        at = np.arange(c.size, dtype=np.int32)
        last_other = np.maximum.accumulate(np.where(c == ord("\\"), np.int32(-1), at))  # non-backslash
        before = np.empty(c.size, np.int32)  # backslashes just before each character
        before[0] = run
        before[1:] = np.where(last_other[:-1] >= 0, at[:-1] - last_other[:-1], at[1:] + run)
        toggles = np.cumsum((c == ord('"')) & (before % 2 == 0), dtype=np.int32)
        in_string = (toggles % 2 == 1) ^ inside
        opens = ((c == ord("[")) | (c == ord("{"))) & ~in_string
        closes = ((c == ord("]")) | (c == ord("}"))) & ~in_string
        levels = np.cumsum(opens.astype(np.int8) - closes.astype(np.int8), dtype=np.int32)  # from depth
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
        inside ^= bool(toggles[-1] % 2)
        run = c.size - 1 - int(last_other[-1]) if last_other[-1] >= 0 else c.size + run
    return deepest


def _parse_json(text: str, what: str):
    """``text`` parsed, if it is JSON nested at most ``MAX_JSON_DEPTH`` deep (checked before parsing)."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        reason = f"{what} is nested {depth:,} deep; a saved analysis nests at most {MAX_JSON_DEPTH}."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; integers of over 4,300 digits
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{what} is not JSON ({exc}).")) from None


# ---- the result ------------------------------------------------------------------------------------------


def _from_parts(meta: dict, parts: dict, limits: Limits) -> AnalysisResult:
    """Build (and so validate) a result from the JSON metadata and the arrays."""
    if meta.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"its format is {_short(meta.get('format'))}."))
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            NOT_AN_ANALYSIS.format(
                reason=f"schema_version is {_short(version)}; this version reads {SCHEMA_VERSION}."
            )
        )
    attentions = parts["attentions"]
    _check_attention_shape(attentions.shape, attentions.dtype, limits)
    attentions = check_weights(attentions)
    text = _text(meta.get("text"), "text", None)  # limited below, as a setting
    if len(text) > limits.max_text_chars:
        reason = TEXT_LIMIT_ERROR.format(length=len(text), limit=limits.max_text_chars)
        raise InputError(OVER_LIMIT.format(reason=reason))
    try:
        tokens = _tokens(parts["tokens"], "tokens", MAX_TOKEN_CHARS)
        display = _tokens(parts["display_tokens"], "display_tokens", None)  # see _check_display_lengths
        result = AnalysisResult(
            model_id=_text(meta.get("model"), "model", MAX_MODEL_ID_CHARS),
            revision=None
            if meta.get("revision") is None
            else _text(meta.get("revision"), "revision", MAX_MODEL_ID_CHARS),
            model_kind=_text(meta.get("kind"), "kind", MAX_TOKEN_CHARS),
            text=text,
            tokens=tokens,
            display_tokens=display,
            special_mask=np.asarray(parts["special_mask"]),
            offsets=np.asarray(parts["offsets"]),
            word_ids=np.asarray(parts["word_ids"]),
            attention=attentions,
            dropped_tokens=_int(meta.get("dropped_tokens"), "dropped_tokens"),
            max_length=_int(meta.get("max_length"), "max_length"),
            predictions=_predictions(meta.get("predictions"), attentions.shape[-1]),
            predictions_note=None
            if meta.get("predictions_note") is None
            else _text(meta["predictions_note"], "predictions_note", MAX_NOTE_CHARS),
            token_ids=parts.get("token_ids"),
            readable_tokens=None
            if parts.get("readable_tokens") is None
            else _tokens(parts["readable_tokens"], "readable_tokens", MAX_TOKEN_CHARS),
            unknown_mask=parts.get("unknown_mask"),
        )
    except InputError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(NOT_AN_ANALYSIS.format(reason=str(exc))) from None
    _check_display_lengths(result)
    return result


def _tokens(values, name: str, limit: int | None) -> list[str]:
    """``values`` as a list of valid strings, of at most ``limit`` characters each when one is given."""
    if isinstance(values, str | bytes) or not isinstance(values, list | tuple):
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be a list of strings."))
    tokens = [_text(t, name, None) for t in values]
    if limit is None:
        return tokens
    lengths = np.fromiter(map(len, tokens), np.int64, count=len(tokens))
    over = np.flatnonzero(lengths > limit)
    if over.size:
        i = int(over[0])
        reason = TOKEN_LENGTH_ERROR.format(name=name, index=i, length=int(lengths[i]), limit=limit)
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return tokens


def _check_display_lengths(result: AnalysisResult) -> None:
    """A display token is the text it covers (``models.tokens.display_tokens``) or a vocabulary string."""
    lengths = np.fromiter(map(len, result.display_tokens), np.int64, count=result.n)
    spans = (result.offsets[:, 1] - result.offsets[:, 0]).astype(np.int64)
    over = np.flatnonzero(lengths > np.maximum(spans, MAX_TOKEN_CHARS))
    if over.size:
        i = int(over[0])
        reason = DISPLAY_LENGTH_ERROR.format(
            index=i, length=int(lengths[i]), span=int(spans[i]), limit=MAX_TOKEN_CHARS
        )
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))


def _text(value, name: str, limit: int | None) -> str:
    if not isinstance(value, str):
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} must be text."))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(NOT_AN_ANALYSIS.format(reason=f"{name} is not valid Unicode text.")) from None
    if limit is not None and len(value) > limit:
        reason = f"{name} is {len(value):,} characters long; at most {limit:,} are allowed."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return value


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        reason = f"{name} must be a whole number from 0 to {MAX_INT:,}; got {_short(value)}."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return value


def _score(value, index: int, rank: int) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
    if not ok:  # NaN fails the comparison
        shown = _number(value) if isinstance(value, float) else _short(value)
        reason = SCORE_ERROR.format(index=index, rank=rank, score=shown)
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    return float(value)


def _predictions(value, n: int) -> tuple[Prediction, ...] | None:
    """At most one prediction per token, each with at most ``MAX_CANDIDATES`` scored candidates."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > n:
        got = f"{len(value):,}" if isinstance(value, list) else type(value).__name__
        reason = f"predictions must be a list of at most one per token ({n:,}); got {got}."
        raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
    try:
        out = []
        for index, p in enumerate(value):
            candidates = p["candidates"]
            if not isinstance(candidates, list) or len(candidates) > MAX_CANDIDATES:
                reason = f"prediction {index} must have a list of at most {MAX_CANDIDATES} candidates."
                raise InputError(NOT_AN_ANALYSIS.format(reason=reason))
            out.append(
                Prediction(
                    position=_int(p["position"], "prediction position"),
                    kind=_text(p["kind"], "prediction kind", MAX_TOKEN_CHARS),
                    candidates=tuple(
                        Candidate(
                            token=_text(c["token"], "candidate token", MAX_TOKEN_CHARS),
                            token_id=_int(c["token_id"], "candidate token_id"),
                            score=_score(c["score"], index, rank),
                            readable=_text(c.get("readable", ""), "candidate readable", MAX_TOKEN_CHARS),
                        )
                        for rank, c in enumerate(candidates)
                    ),
                )
            )
        return tuple(out)
    except (TypeError, KeyError):
        raise InputError(NOT_AN_ANALYSIS.format(reason="predictions are malformed.")) from None
