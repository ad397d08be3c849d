"""Crafted saved analyses sent to POST /api/v1/analyses each get a clear 4xx, never a 5xx; a file saved by
this version opens and every view of it works.

``CRAFTED`` is the list of crafted files, each made from a real saved analysis (MiniLM, 6 layers × 12 heads,
9 tokens) by a function of its bytes, with the response it must get;
``python tests/web/test_upload_hardening.py`` prints it as a table with the actual responses.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from visualizeai import export, saved
from visualizeai.config import Settings
from visualizeai.errors import InputError
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
MAX_TOKENS = 64  # a small cap, so that a file over it is small too
LIMITS = saved.Limits.of(MAX_TOKENS, None)
TEXT_LIMIT = LIMITS.max_text_chars  # 8 characters per token: 512
UPLOAD = "/api/v1/analyses"


# ---- crafting: arrays and meta ---------------------------------------------------------------------------


def parts_of(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def npz_of(parts: dict, compressed: bool = True) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **parts)
    return buffer.getvalue()


def arrays(**changes) -> Callable[[bytes], bytes]:
    """Replace arrays: each value is an array, None (remove it) or a function of all the arrays."""

    def craft(data: bytes) -> bytes:
        parts = parts_of(data)
        for name, value in changes.items():
            if value is None:
                del parts[name]
            else:
                parts[name] = value(parts) if callable(value) else value
        return npz_of(parts)

    return craft


def meta(**changes) -> Callable[[bytes], bytes]:
    """Replace keys of the meta JSON (values as in ``arrays``)."""

    def edit(parts):
        doc = json.loads(str(parts["meta"]))
        for key, value in changes.items():
            doc[key] = value(doc) if callable(value) else value
        return np.array(json.dumps(doc))

    return arrays(meta=edit)


def raw_meta(text: str) -> Callable[[bytes], bytes]:
    return arrays(meta=np.array(text))


def attention(edit: Callable[[np.ndarray], None]) -> Callable[[bytes], bytes]:
    """Change the attention weights in place (a float32 copy of ``[6, 12, 9, 9]``)."""

    def change(parts):
        weights = parts["attentions"].copy()
        edit(weights)
        return weights

    return arrays(attentions=change)


def first_tokens(k: int, **changes) -> Callable[[bytes], bytes]:
    """The analysis cut to its first ``k`` tokens (rows renormalised), then arrays replaced by ``changes``
    (functions of nothing, called when crafting)."""

    def craft(data: bytes) -> bytes:
        parts = parts_of(data)
        weights = parts["attentions"][:, :, :k, :k].astype(np.float64)
        parts["attentions"] = (weights / weights.sum(-1, keepdims=True)).astype(np.float32)
        per_token = ("tokens", "display_tokens", "special_mask", "offsets", "word_ids")
        per_token += tuple(saved.OPTIONAL_ARRAYS)
        for name in per_token:
            if name in parts:
                parts[name] = parts[name][:k]
        parts.update({name: make() for name, make in changes.items()})
        return npz_of(parts)

    return craft


def predictions(*candidates: dict, position: int = 1, count: int = 1) -> Callable[[bytes], bytes]:
    """Meta with ``count`` mask predictions at ``position``, each with ``candidates``."""
    entry = {"position": position, "kind": "mask", "candidates": list(candidates)}
    return meta(predictions=[entry] * count)


def candidate(score=0.5, token="a", token_id=7) -> dict:
    return {"token": token, "token_id": token_id, "score": score}


def invalid_code_point(name: str, index: int, code: int) -> Callable[[bytes], bytes]:
    """A str array whose entry ``index`` starts with code point ``code`` (numpy stores any 32-bit value)."""

    def edit(parts):
        strings = parts[name].reshape(-1).copy()  # a 0-d array (meta) cannot be viewed as another dtype
        codes = strings.view(np.uint32).reshape(strings.size, -1)
        codes[index, 0] = code
        return strings.reshape(parts[name].shape)

    return arrays(**{name: edit})


# ---- crafting: zip bytes ---------------------------------------------------------------------------------


def info(data: bytes, member: str) -> zipfile.ZipInfo:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.getinfo(member)


def central(data: bytes, member: str) -> int:
    """Offset of ``member``'s central directory header."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == member.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 1)
    raise KeyError(member)


def patch(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def flag_bits(member: str, bits: int) -> Callable[[bytes], bytes]:
    """Set general-purpose flag bits in the local and the central header (0x1: encrypted)."""

    def craft(data: bytes) -> bytes:
        member_info = info(data, member)
        local, flags = member_info.header_offset, member_info.flag_bits | bits
        return patch(patch(data, local + 6, "<H", flags), central(data, member) + 8, "<H", flags)

    return craft


def method(member: str, number: int) -> Callable[[bytes], bytes]:
    """Set the compression method in the local and the central header."""

    def craft(data: bytes) -> bytes:
        local = info(data, member).header_offset
        return patch(patch(data, local + 8, "<H", number), central(data, member) + 10, "<H", number)

    return craft


def flip(member: str, at: int, length: int) -> Callable[[bytes], bytes]:
    """Invert ``length`` bytes of ``member``'s compressed data from ``at``."""

    def craft(data: bytes) -> bytes:
        local = info(data, member).header_offset
        name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
        start = local + 30 + name_length + extra_length + at
        out = bytearray(data)
        out[start : start + length] = bytes(b ^ 0xFF for b in out[start : start + length])
        return bytes(out)

    return craft


def declared(member: str, *, file_size: int | None = None, compress_size: int | None = None, stored=False):
    """Patch the sizes the central directory declares for ``member`` (zip64-forced local headers carry
    0xFFFFFFFF there; zipfile reads the central ones)."""

    def craft(data: bytes) -> bytes:
        if stored:
            data = npz_of(parts_of(data), compressed=False)
        at = central(data, member)
        if file_size is not None:
            data = patch(data, at + 24, "<I", file_size)
        if compress_size is not None:
            data = patch(data, at + 20, "<I", compress_size)
        return data

    return craft


def extra_member(name: str, payload: bytes, count: int = 1) -> Callable[[bytes], bytes]:
    def craft(data: bytes) -> bytes:
        out = io.BytesIO(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
            with zipfile.ZipFile(out, "a") as archive:
                for i in range(count):
                    archive.writestr(name.format(i=i), payload)
        return out.getvalue()

    return craft


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


# ---- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One crafted file: ``craft`` turns the bytes of a good saved analysis into it."""

    what: str
    craft: Callable[[bytes], bytes]
    status: int
    fragment: str


def uniform(n: int, layers: int = 1, heads: int = 1) -> np.ndarray:
    return np.full((layers, heads, n, n), 1 / n, np.float32)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def row(layer: int, head: int, query: int, values) -> Callable[[np.ndarray], None]:
    def edit(weights):
        weights[layer, head, query] = values

    return edit


def cell(index: tuple, value: float) -> Callable[[np.ndarray], None]:
    def edit(weights):
        weights[index] = value

    return edit


def long_tokens() -> np.ndarray:
    return np.array(["[CLS]", "x" * 5_000_000])  # 40 MB as numpy str: made when the row is crafted


A = "attentions.npy"
F32 = np.float32
# fmt: off
CRAFTED = [
    # -- the archive -----------------------------------------------------------------------------------------
    Bad("not a zip", lambda d: b"<script>alert(1)</script>", 400, "it is not an .npz (zip) archive"),
    Bad("zip cut in half", lambda d: d[: len(d) // 2], 400, "it is not an .npz (zip) archive"),
    Bad("encrypted member (flag bit 0x1)", flag_bits(A, 0x1), 400, "attentions.npy is encrypted"),
    Bad("encrypted meta", flag_bits("meta.npy", 0x1), 400, "meta.npy is encrypted"),
    Bad("strong encryption (flag bit 0x40)", flag_bits(A, 0x40), 400, "attentions.npy is encrypted"),
    Bad("patched data (flag bit 0x20)", flag_bits(A, 0x20), 400, "uses a zip feature that is not supported"),
    Bad("compression method 99", method(A, 99), 400, "compression method 99; a saved analysis uses stored"),
    Bad("compression method bzip2", method(A, 12), 400, "compression method 12"),
    Bad("corrupt deflate stream", flip(A, 2, 4), 400, "the compressed data of attentions.npy is corrupt"),
    Bad("corrupt deflate data, later", flip(A, 200, 16), 400, "attentions.npy"),
    Bad("corrupt tokens", flip("tokens.npy", 20, 8), 400, "tokens.npy is damaged (Bad CRC-32"),
    Bad("declared size smaller than data", declared(A, file_size=1000), 400, "attentions.npy is damaged"),
    Bad("declared compressed size smaller", declared(A, compress_size=1000), 400,
        "attentions.npy is damaged"),
    Bad("declared size smaller (meta)", declared("meta.npy", file_size=200), 400, "meta.npy is damaged"),
    Bad("declared size smaller (stored)", declared(A, file_size=1000, stored=True), 400, "attentions.npy"),
    Bad("member twice", extra_member("tokens.npy", npy(np.array(["x"] * 9))), 400,
        "the archive has tokens.npy twice"),
    Bad("member that is not .npy", extra_member("readme.txt", b"hello"), 400,
        "unexpected member 'readme.txt'"),
    Bad("member in a folder", extra_member("x/attentions.npy", b"x"), 400,
        "unexpected member 'x/attentions.npy'"),
    Bad("member not an array", extra_member("junk.npy", b"\x93NUMPY but not"), 400, "junk.npy is not a .npy"),
    Bad("65 extra members", extra_member("extra{i}.npy", npy(np.zeros(1)), count=65), 400,
        "members; a saved analysis has at most 64"),
    Bad("object array (pickle)", arrays(tokens=lambda p: p["tokens"].astype(object)), 400,
        "tokens.npy holds Python objects, which are never loaded"),
    Bad("pickled extra member", extra_member("evil.npy", npy(np.array([{"a": 1}], dtype=object))), 400,
        "evil.npy holds Python objects"),
    Bad("no word_ids", arrays(word_ids=None), 400, "it has no word_ids array"),
    # -- meta ------------------------------------------------------------------------------------------------
    Bad("meta nested 200,000 deep", raw_meta(deep(200_000)), 400, "meta is nested 200,000 deep"),
    Bad("meta nested 65 deep", meta(extra=json.loads(deep(64))), 400, "meta is nested 65 deep"),
    Bad("meta over its size limit", raw_meta(" " * (LIMITS.max_meta_chars + 1)), 400,
        f"its metadata is {LIMITS.max_meta_chars + 1:,} characters of JSON"),
    Bad("meta not JSON", raw_meta("{nope"), 400, "meta is not JSON"),
    Bad("meta with a 5,000-digit integer", raw_meta('{"n": ' + "9" * 5000 + "}"), 400,
        "meta is not JSON (Exceeds the limit (4300 digits)"),
    Bad("meta a list", raw_meta("[1, 2]"), 400, "meta is not a JSON object"),
    Bad("meta two strings", arrays(meta=np.array(["{}", "{}"])), 400, "meta must be one JSON string"),
    Bad("meta holds U+110000", invalid_code_point("meta", 0, 0x110000), 400, "meta holds U+110000"),
    Bad("schema version 2", meta(schema_version=2), 400, "schema_version is 2; this version reads 1"),
    Bad("other format", meta(format="x" * 10_000), 400, "its format is 'xxxxxxxx"),
    Bad("text over the limit", meta(text="x" * (TEXT_LIMIT + 1)), 400,
        f"its text has {TEXT_LIMIT + 1:,} characters; the limit here is {TEXT_LIMIT:,}"),
    Bad("text not a string", meta(text=["a"]), 400, "text must be text"),
    Bad("model id of 5,000 characters", meta(model="m" * 5000), 400, "model is 5,000 characters long"),
    Bad("unknown kind", meta(kind="oracle"), 400, "model_kind must be one of"),
    Bad("negative dropped_tokens", meta(dropped_tokens=-1), 400, "dropped_tokens must be a whole number"),
    Bad("max_length 10**40", meta(max_length=10**40), 400, "max_length must be a whole number"),
    Bad("max_length below n", meta(max_length=3), 400, "1 <= n <= max_length"),
    Bad("note of 5,000 characters", meta(predictions_note="n" * 5000), 400, "predictions_note is 5,000"),
    # -- predictions -----------------------------------------------------------------------------------------
    Bad("NaN score", predictions(candidate(float("nan"))), 400, "prediction 0, candidate 0 has score NaN"),
    Bad("infinite score", predictions(candidate(0.5), candidate(float("inf"))), 400,
        "prediction 0, candidate 1 has score inf"),
    Bad("score 1.5", predictions(candidate(1.5)), 400, "has score 1.5; a score is a probability"),
    Bad("negative score", predictions(candidate(-0.1)), 400, "has score -0.1"),
    Bad("score as text", predictions(candidate("0.5")), 400, "has score '0.5'"),
    Bad("101 candidates", predictions(*[candidate()] * 101), 400, "at most 100 candidates"),
    Bad("more predictions than tokens", predictions(candidate(), count=10), 400, "at most one per token (9)"),
    Bad("prediction past the end", predictions(candidate(), position=9), 400, "0 <= position < n = 9"),
    Bad("candidate token of 5,000 characters", predictions(candidate(token="t" * 5000)), 400,
        "candidate token is 5,000 characters long"),
    Bad("negative token id", predictions(candidate(token_id=-3)), 400, "candidate token_id must be a whole"),
    Bad("predictions malformed", meta(predictions=[{"position": 1}]), 400, "predictions are malformed"),
    # -- attention -------------------------------------------------------------------------------------------
    Bad("negative weight", attention(cell((0, 0, 1, 2), -0.5)), 400, "attentions[0, 0, 1, 2] is -0.5"),
    Bad("weight 1e30", attention(cell((2, 3, 4, 5), 1e30)), 400, "attentions[2, 3, 4, 5] is 1e+30"),
    Bad("NaN weight", attention(cell((5, 11, 8, 8), np.nan)), 400, "attentions[5, 11, 8, 8] is NaN"),
    Bad("infinite weight", attention(cell((1, 0, 0, 0), -np.inf)), 400, "attentions[1, 0, 0, 0] is -inf"),
    Bad("all-zero row", attention(row(1, 2, 3, 0.0)), 400,
        "row 3 of attentions at layer 1, head 2 is all zero"),
    Bad("row summing to 2", attention(row(4, 5, 6, 2 / 9)), 400,
        "row 6 of attentions at layer 4, head 5 sums to 2; a row of attention weights sums to 1"),
    Bad("zero layers", arrays(attentions=np.zeros((0, 12, 9, 9), F32)), 400, "got shape (0, 12, 9, 9)"),
    Bad("zero heads", arrays(attentions=np.zeros((6, 0, 9, 9), F32)), 400, "got shape (6, 0, 9, 9)"),
    Bad("zero tokens", arrays(attentions=np.zeros((6, 12, 0, 0), F32)), 400, "got shape (6, 12, 0, 0)"),
    Bad("not square", arrays(attentions=lambda p: p["attentions"][..., :8]), 400, "got shape (6, 12, 9, 8)"),
    Bad("3-d attentions", arrays(attentions=lambda p: p["attentions"][0]), 400,
        "shape [layers, heads, n, n]"),
    Bad("integer attentions", arrays(attentions=np.ones((1, 1, 9, 9), np.int64)), 400,
        "attentions must be float16, float32 or float64, not int64"),
    Bad("complex attentions", arrays(attentions=lambda p: p["attentions"].astype(np.complex64)), 400,
        "not complex64"),
    Bad("more tokens than the cap", arrays(attentions=uniform(MAX_TOKENS + 1)), 400,
        f"it has {MAX_TOKENS + 1} tokens; at most {MAX_TOKENS} are analysed here"),
    # -- tokens ----------------------------------------------------------------------------------------------
    Bad("token of 5,000,000 characters", first_tokens(2, tokens=long_tokens), 400,
        "tokens[1] is 5,000,000 characters long; a token has at most 1,000"),
    Bad("display token of 5,000,000 characters", first_tokens(2, display_tokens=long_tokens), 400,
        "display_tokens[1] is 5,000,000 characters long; a display token has at most 1,000, or as many"),
    Bad("readable token of 5,000,000 characters", first_tokens(2, readable_tokens=long_tokens), 400,
        "readable_tokens[1] is 5,000,000 characters long; a token has at most 1,000"),
    Bad("fewer readable tokens than n", arrays(readable_tokens=lambda p: p["readable_tokens"][:8]), 400,
        "readable_tokens has 8 entries but attentions cover n = 9 tokens"),
    Bad("token ids as floats", arrays(token_ids=np.zeros(9)), 400,
        "token_ids must be a 1-d array of integers"),
    Bad("token ids 2-d", arrays(token_ids=np.zeros((3, 3), dtype=np.int64)), 400,
        "token_ids must be a 1-d array of integers"),
    Bad("unknown flags as strings", arrays(unknown_mask=np.array(["no"] * 9)), 400,
        "unknown_mask must be a 1-d array of booleans"),
    Bad("fewer unknown flags than n", arrays(unknown_mask=np.zeros(8, dtype=bool)), 400, "unknown_mask"),
    Bad("fewer tokens than n", arrays(tokens=lambda p: p["tokens"][:8]), 400,
        "tokens has 8 entries but attentions cover n = 9 tokens"),
    Bad("tokens 2-d", arrays(tokens=lambda p: p["tokens"].reshape(3, 3)), 400, "tokens must be a 1-d array"),
    Bad("tokens as numbers", arrays(tokens=np.arange(9)), 400, "tokens must be a 1-d array of strings"),
    Bad("token holds U+110000", invalid_code_point("tokens", 2, 0x110000), 400, "tokens[2] holds U+110000"),
    Bad("token holds a lone surrogate", invalid_code_point("display_tokens", 4, 0xD800), 400,
        "display_tokens[4] holds U+D800"),
    Bad("offsets past the text", arrays(offsets=lambda p: p["offsets"] + 100), 400,
        "offsets must satisfy 0 <= start <= end <= len(text)"),
    Bad("offsets of the wrong shape", arrays(offsets=lambda p: p["offsets"][:, :1]), 400,
        "offsets must have shape [9, 2]"),
    Bad("special mask as integers", arrays(special_mask=lambda p: p["special_mask"].astype(np.int8)), 400,
        "special_mask must be a boolean mask"),
    Bad("word id -2", arrays(word_ids=lambda p: np.full_like(p["word_ids"], -2)), 400,
        "word_ids must be >= -1"),
]
# fmt: on


@pytest.fixture(scope="module")
def client():
    app = create_app(Settings(offline=True, max_tokens=MAX_TOKENS))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def good(client, meta) -> bytes:
    """The saved ``.npz`` of ``TEXT`` (MiniLM), as the export endpoint sends it."""
    response = client.get(f"/api/v1/analyses/{meta['key']}/export", params={"format": "npz"})
    assert response.status_code == 200
    return response.content


def upload(client, data: bytes):
    return client.post(UPLOAD, files={"file": ("saved.npz", data, "application/octet-stream")})


@pytest.mark.parametrize("bad", CRAFTED, ids=[b.what for b in CRAFTED])
def test_crafted_file_gets_a_clear_4xx(client, good, bad):
    response = upload(client, bad.craft(good))
    assert response.status_code < 500, response.text[:500]
    assert response.status_code == bad.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert bad.fragment in detail, detail[:500]
    assert len(detail) < 1000, detail[:500]  # nothing from the file is echoed at length
    assert "Traceback" not in detail and "ZipInfo" not in detail


def test_the_crafted_files_differ_from_the_good_one(good):
    """Each craft changes the file (a table row that sends the good file would test nothing)."""
    assert all(bad.craft(good) != good for bad in CRAFTED)


def test_good_file_passes(client, good):
    """The table's base file opens: each row fails because of its change alone."""
    assert upload(client, good).status_code == 200


# ---- files saved by this version ---------------------------------------------------------------------------


def test_saved_file_opens_and_every_view_works(client, meta, good):
    opened = upload(client, good)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["tokens"] == meta["tokens"] and (body["layers"], body["heads"], body["n"]) == (6, 12, 9)
    key = body["key"]
    views = [
        ("attention", {"layer": 2, "head": 3}),
        ("attention", {"agg": "mean_heads", "layer": 1, "hide_special": "true"}),
        ("tile", {"layer": 0, "head": 0, "rows": "0:5", "cols": "2:9"}),
        ("thumbnails", {"size": 16}),
        ("rollout", {"layer": 5}),
        ("flow", {"layer": 1}),
        ("flow-limits", {}),
        ("head-stats", {}),
        ("export", {"format": "png", "layer": 5, "head": 11}),
        ("export", {"format": "html", "layers": "0,5"}),
        ("export", {"format": "json"}),
        ("export", {"format": "npz"}),
    ]
    for view, params in views:
        response = client.get(f"{UPLOAD}/{key}/{view}", params=params)
        assert response.status_code == 200, (view, params, response.text[:300])
    compare = client.get(
        "/api/v1/compare", params={"mode": "sentences", "key_a": meta["key"], "key_b": key, "layer": 5}
    )
    assert compare.status_code == 200, compare.text[:300]
    original = client.get(f"{UPLOAD}/{meta['key']}/attention", params={"layer": 4}).content
    assert client.get(f"{UPLOAD}/{key}/attention", params={"layer": 4}).content == original
    # saved again from the opened analysis, it opens again as the same analysis
    again = client.get(f"{UPLOAD}/{key}/export", params={"format": "npz"}).content
    assert upload(client, again).json()["tokens"] == meta["tokens"]


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_rounded_or_wider_weights_open(client, good, dtype):
    """float16-rounded weights (rows off 1 by rounding) and float64 weights open as float32."""
    data = arrays(attentions=lambda p: p["attentions"].astype(dtype))(good)
    response = upload(client, data)
    assert response.status_code == 200, response.text[:300]
    key = response.json()["key"]
    assert client.get(f"{UPLOAD}/{key}/attention", params={"layer": 0, "head": 0}).status_code == 200


def test_brackets_in_the_text_are_not_nesting(client):
    """A text of 200 brackets gives meta JSON with 200 brackets inside a string: it opens."""
    text = "[" * 100 + "{" * 100 + ' "\\'
    analysed = client.post("/api/v1/analyze", json={"text": text})
    assert analysed.status_code == 200, analysed.text[:300]
    data = client.get(f"{UPLOAD}/{analysed.json()['key']}/export", params={"format": "npz"}).content
    response = upload(client, data)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["text"] == text


def test_derived_arrays_are_never_read(client, good):
    """Statistics and rollout are recomputed: a file whose stored ones are NaN opens, with finite ones."""
    data = arrays(rollout=lambda p: np.full_like(p["rollout"], np.nan), entropy=lambda p: -p["entropy"])(good)
    response = upload(client, data)
    assert response.status_code == 200, response.text[:300]
    stats = client.get(f"{UPLOAD}/{response.json()['key']}/head-stats").json()
    assert (np.array(stats["values"]["entropy"]) >= 0).all()


# ---- the checks, directly ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, [2, {"b": []}]]}', 5),
        ('["[[[[", "]]]]]]]]", "{{"]', 1),
        ('["\\"[[[", "\\\\", [[]]]', 3),  # an escaped quote stays in the string; "\\\\" ends one
        ('["\\\\\\"[[["]', 1),  # three backslashes then a quote: still inside
        ('"\\\\"[[', 2),  # two backslashes: the quote closes the string
        ("", 0),
        (deep(500), 500),
    ],
)
def test_json_depth(text, depth, monkeypatch):
    assert saved.json_depth(text) == depth
    monkeypatch.setattr(saved, "CHUNK", 3)  # strings, escapes and depth carried across chunk boundaries
    assert saved.json_depth(text) == depth


def test_json_recursion_is_caught_even_without_the_depth_check(good, monkeypatch):
    monkeypatch.setattr(saved, "MAX_JSON_DEPTH", 10**9)
    with pytest.raises(InputError, match="meta is not JSON"):
        saved.loads_npz(raw_meta(deep(200_000))(good), max_tokens=MAX_TOKENS)


def test_checks_find_the_same_first_problem_in_small_chunks(monkeypatch):
    weights = np.full((2, 3, 5, 5), 0.2, np.float32)
    weights[1, 2, 4, 1] = -1
    weights[0, 1, 3] = 0.3
    with pytest.raises(InputError, match=r"row 3 of attentions at layer 0, head 1 sums to 1.5"):
        saved.check_weights(np.where(weights < 0, 0.2, weights))
    for chunk in (saved.CHUNK, 7, 1):
        monkeypatch.setattr(saved, "CHUNK", chunk)
        with pytest.raises(InputError, match=r"attentions\[1, 2, 4, 1\] is -1"):
            saved.check_weights(weights)
    fortran = np.asfortranarray(np.full((2, 3, 5, 5), 0.2, np.float64))
    checked = saved.check_weights(fortran)
    assert checked.dtype == np.float32 and checked.flags.c_contiguous


def _bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even), back as float32."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("n", [9, 512, 30_000])
def test_row_sum_tolerance_covers_rounding(n):
    """Softmax rows (uniform, mixed, peaked, one-hot-like) rounded to float16 or bfloat16 sum to 1 within
    the tolerance; at n = 30,000 uniform float16 weights are subnormal (3.3e-5 < 6.1e-5)."""
    rng = np.random.default_rng(n)
    logits = np.stack([np.zeros(n), rng.normal(0, 1, n), rng.normal(0, 8, n), np.r_[20.0, np.zeros(n - 1)]])
    rows = np.exp(logits - logits.max(-1, keepdims=True))
    rows = (rows / rows.sum(-1, keepdims=True)).astype(np.float32)
    for rounded in (rows, rows.astype(np.float16), _bfloat16(rows)):
        totals = rounded.sum(-1, dtype=np.float64)
        assert (np.abs(totals - 1) <= saved.row_sum_tolerance(n)).all(), (rounded.dtype, totals - 1)
    assert saved.row_sum_tolerance(32_768) < 6e-3


def test_a_row_just_over_the_tolerance_is_refused():
    n = 512
    tolerance = saved.row_sum_tolerance(n)
    weights = np.full((1, 2, n, n), 1 / n, np.float64)
    weights[0, 1, 7] *= 1 + tolerance / 2
    saved.check_weights(weights)
    weights[0, 1, 7] *= 1 + tolerance
    with pytest.raises(InputError, match="row 7 of attentions at layer 0, head 1 sums to 1.00"):
        saved.check_weights(weights)


def test_rows_may_sum_to_less_than_one():
    """A model with sink logits (gpt-oss) drops the sink's share from every row."""
    saved.check_weights(np.full((1, 1, 4, 4), 0.05, np.float32))


def test_read_checks_json_files_too(tmp_path, good):
    result = saved.loads_npz(good, max_tokens=MAX_TOKENS)
    doc = json.loads(export.json_bytes(result))
    doc["attentions"][0][0][1][2] = -0.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"attentions\[0, 0, 1, 2\] is -0.5"):
        export.read(path)
    path.write_text(deep(100_000))
    with pytest.raises(InputError, match="the file is nested 100,000 deep"):
        export.read(path)


def test_limits_default_to_the_settings(monkeypatch):
    monkeypatch.setenv("VISUALIZEAI_MAX_TOKENS", "100")
    assert saved.Limits.of(None, None) == saved.Limits(100, 800)
    assert saved.Limits.of(10, None) == saved.Limits(10, 80)
    assert saved.Limits.of(10, 7) == saved.Limits(10, 7)


# ---- the closing table -------------------------------------------------------------------------------------


def main() -> None:  # pragma: no cover (a report for people: python tests/web/test_upload_hardening.py)
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    app = create_app(Settings(offline=True, max_tokens=MAX_TOKENS))
    with TestClient(app, raise_server_exceptions=False) as c:
        key = c.post("/api/v1/analyze", json={"text": TEXT}).json()["key"]
        data = c.get(f"{UPLOAD}/{key}/export", params={"format": "npz"}).content
        print("| crafted file | status | detail |\n|---|---|---|")
        for bad in CRAFTED:
            response = upload(c, bad.craft(data))
            detail = response.json().get("detail", "").replace("|", "/")
            print(f"| {bad.what} | {response.status_code} | {detail} |")


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
