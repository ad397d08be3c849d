"""What the model saw, token by token: vocabulary ids, the unknown token, and vocabulary forms decoded for
people (byte-level pieces of a character as <0xNN> escapes), through the analysis and the API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from transformers import AutoTokenizer

from visualizeai.config import Settings
from visualizeai.models.tokens import readable_token, token_scheme
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXT = "Tokyo 🙂 naïve café"


@pytest.mark.parametrize(
    ("raw", "scheme", "readable"),
    [
        ("Ã©", "byte-level", "é"),  # two bytes of one character
        ("ð", "byte-level", "<0xF0>"),  # the first byte of a four-byte character
        ("ĠðŁĻĤ", "byte-level", " 🙂"),
        ("Ġthe", "byte-level", " the"),
        ("<|endoftext|>", "byte-level", "<|endoftext|>"),  # an added token written as itself
        ("##ps", "wordpiece", "ps"),
        ("[UNK]", "wordpiece", "[UNK]"),
        ("▁the", "sentencepiece", " the"),
        ("<0xE2>", "sentencepiece", "<0xE2>"),
        ("##ps", "other", "##ps"),
    ],
)
def test_readable_token(raw, scheme, readable):
    assert readable_token(raw, scheme) == readable


def test_schemes_come_from_the_tokenizer(tiny_models, minilm_path):
    expected = {"bert": "wordpiece", "gpt2": "byte-level", "roberta": "byte-level", "albert": "sentencepiece"}
    for family, scheme in expected.items():
        assert token_scheme(AutoTokenizer.from_pretrained(tiny_models[family])) == scheme
    assert token_scheme(AutoTokenizer.from_pretrained(minilm_path)) == "wordpiece"


@pytest.fixture(scope="module")
def client(tiny_models):
    root = next(iter(tiny_models.values())).parent
    with TestClient(create_app(Settings(offline=True, allowed_roots=(root,)))) as c:
        yield c


def analyze(client, model=None):
    response = client.post("/api/v1/analyze", json={"text": TEXT, **({"model": str(model)} if model else {})})
    assert response.status_code == 200, response.text
    return response.json()


def test_minilm_tokens_say_what_the_model_saw(client, minilm_path):
    meta = analyze(client)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    ids = tokenizer(TEXT)["input_ids"]
    assert [t["id"] for t in meta["tokens"]] == ids
    assert [t["raw"] for t in meta["tokens"]] == tokenizer.convert_ids_to_tokens(ids)
    by_display = {t["display"]: t for t in meta["tokens"]}
    smiley = by_display["🙂"]
    assert smiley["unknown"] is True and smiley["readable"] == smiley["raw"] == "[UNK]"
    assert smiley["id"] == tokenizer.unk_token_id
    assert TEXT[smiley["start"] : smiley["end"]] == "🙂"
    # the uncased tokenizer lowercases and strips accents: the text says naïve, the model read "naive"
    assert [(t["display"], t["readable"]) for t in meta["tokens"][1:-1]] == [
        ("Tokyo", "tokyo"),
        ("🙂", "[UNK]"),
        ("naïve", "naive"),
        ("café", "cafe"),
    ]
    assert all(not t["unknown"] for t in meta["tokens"] if t["display"] != "🙂")


def test_byte_level_pieces_are_told_apart(client, tiny_models):
    meta = analyze(client, tiny_models["gpt2"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    raw = [t["raw"] for t in meta["tokens"]]
    assert [t["readable"] for t in meta["tokens"]] == [readable_token(r, "byte-level") for r in raw]
    readable = "".join(t["readable"] for t in meta["tokens"])
    assert "<0xF0>" in readable  # the emoji's bytes arrive split: escapes, not "�"
    assert tokenizer.decode(tokenizer(TEXT)["input_ids"]) == TEXT
    candidates = meta["predictions"][0]["candidates"]
    for c in candidates:
        assert c["readable"] == readable_token(tokenizer.convert_ids_to_tokens(c["token_id"]), "byte-level")
        assert c["token"] == tokenizer.decode([c["token_id"]])  # the pipeline's token_str, unchanged


def test_candidates_past_the_tokenizers_vocabulary(tiny_models):
    """A model's embedding may have more rows than its tokenizer has tokens: such ids are candidates with an
    empty form, not a crash."""
    import torch

    from visualizeai.models.predict import top_candidates

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["qwen2"])
    size = len(tokenizer)
    logits = torch.zeros((1, size + 8))
    logits[0, size + 3] = 9.0  # the best candidate has no token
    logits[0, 5] = 8.0
    (row,) = top_candidates(logits, 2, tokenizer)
    assert [c.token_id for c in row] == [size + 3, 5]
    assert (row[0].token, row[0].readable) == ("", "")
    assert row[1].readable == readable_token(tokenizer.convert_ids_to_tokens(5), "byte-level")
    assert row[0].score > row[1].score
