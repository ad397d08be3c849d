"""``visualizeai fill-mask`` and ``visualizeai generate``: JSON on stdout, clear errors with exit status 2."""

from __future__ import annotations

import json

import pytest

from visualizeai import cli

pytestmark = pytest.mark.models


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fill_mask_prints_one_list_per_mask(capsys, tiny_models):
    code, out, _ = run(
        capsys,
        "fill-mask",
        "--offline",
        "--model",
        str(tiny_models["roberta"]),
        "--top-k",
        "3",
        "The [MASK] sat on the [MASK].",
    )
    assert code == 0
    masks = json.loads(out)
    assert len(masks) == 2 and all(len(m) == 3 for m in masks)
    assert all(set(c) == {"token", "score"} and 0 < c["score"] < 1 for m in masks for c in m)
    assert all(m[0]["score"] >= m[1]["score"] >= m[2]["score"] for m in masks)


def test_fill_mask_single_mask_is_still_a_list_of_lists(capsys, tiny_models):
    code, out, _ = run(capsys, "fill-mask", "--offline", "--model", str(tiny_models["bert"]), "I [MASK] it.")
    masks = json.loads(out)
    assert code == 0 and len(masks) == 1 and len(masks[0]) == 10


def test_fill_mask_refuses_model_without_trained_head(capsys):
    code, out, err = run(capsys, "fill-mask", "--offline", "I think, therefore I [MASK].")
    assert code == 2 and out == ""
    assert err.startswith("error: all-MiniLM-L6-v2 cannot fill masks") and "random" in err


def test_generate_greedy(capsys, tiny_models):
    code, out, _ = run(
        capsys,
        "generate",
        "--offline",
        "--model",
        str(tiny_models["gpt2"]),
        "--max-new-tokens",
        "4",
        "--greedy",
        "She sells sea shells",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["mode"] == "greedy" and doc["seed"] is None and doc["finish_reason"] == "length"
    assert [t["step"] for t in doc["tokens"]] == [0, 1, 2, 3]
    assert doc["tokens"][0]["attention_shape"][:2] == [2, 4]
    prompt_len = doc["tokens"][0]["attention_shape"][2]
    assert [t["attention_shape"][2] for t in doc["tokens"]] == [prompt_len + i for i in range(4)]
    assert doc["generated_text"] == "".join(t["text"] for t in doc["tokens"])


def test_generate_seeded_sampling_repeats(capsys, tiny_models):
    argv = (
        "generate",
        "--offline",
        "--model",
        str(tiny_models["gpt2"]),
        "--max-new-tokens",
        "5",
        "--seed",
        "42",
        "I think",
    )
    first = json.loads(run(capsys, *argv)[1])
    again = json.loads(run(capsys, *argv)[1])
    assert first["mode"] == "sample" and first["seed"] == 42
    assert [t["token_id"] for t in first["tokens"]] == [t["token_id"] for t in again["tokens"]]


def test_generate_greedy_and_seed_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["generate", "--greedy", "--seed", "1", "hi"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_generate_refuses_masked_lm(capsys, tiny_models):
    code, _, err = run(capsys, "generate", "--offline", "--model", str(tiny_models["bert"]), "I think")
    assert code == 2 and "causal language model" in err
