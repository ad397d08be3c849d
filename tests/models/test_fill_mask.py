"""Fill-mask against ``pipeline("fill-mask")``, the [MASK] alias, and refusing untrained heads."""

from __future__ import annotations

import pytest
import torch
from transformers import pipeline

from visualizeai.config import Settings
from visualizeai.errors import InputError, TaskUnsupported
from visualizeai.service import Service

pytestmark = pytest.mark.models

SCORE_TOLERANCE = 1e-5
TOP_K = 8
# (text with the universal alias, and the same text in the model's own mask token)
ONE_MASK = "I think, therefore I [MASK]."
TWO_MASKS = "The [MASK] sat on the mat, and the dog sat on the [MASK]."
NATIVE_MASK = {"bert": "[MASK]", "albert": "[MASK]", "roberta": "<mask>"}


@pytest.fixture(scope="module")
def service(tiny_models, minilm_path):
    root = next(iter(tiny_models.values())).parent
    return Service(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))


@pytest.fixture(scope="module")
def reference(tiny_models):
    """``reference(family, text)``: the fill-mask pipeline's answer as one list per mask."""
    pipes = {}

    def run(family: str, text: str) -> list[list[dict]]:
        if family not in pipes:
            pipes[family] = pipeline("fill-mask", model=str(tiny_models[family]), top_k=TOP_K)
        out = pipes[family](text)
        return [out] if isinstance(out[0], dict) else out  # the pipeline flattens a single mask

    return run


def assert_same_predictions(predictions, expected):
    assert len(predictions) == len(expected)
    for prediction, ranked in zip(predictions, expected, strict=True):
        assert prediction.kind == "mask"
        assert [c.token_id for c in prediction.candidates] == [r["token"] for r in ranked]
        assert [c.token for c in prediction.candidates] == [r["token_str"] for r in ranked]
        diff = max(abs(c.score - r["score"]) for c, r in zip(prediction.candidates, ranked, strict=True))
        assert diff < SCORE_TOLERANCE


@pytest.mark.parametrize("family", ["bert", "albert", "roberta"])
@pytest.mark.parametrize("text", [ONE_MASK, TWO_MASKS])
def test_alias_equals_pipeline(service, tiny_models, reference, family, text):
    result = service.fill_mask(text, str(tiny_models[family]), TOP_K).result
    native = text.replace("[MASK]", NATIVE_MASK[family])
    assert_same_predictions(result.predictions, reference(family, native))
    # positions are those of the mask token, and its characters are the "[MASK]" of the text as typed
    for prediction in result.predictions:
        start, end = result.offsets[prediction.position].tolist()
        assert text[start:end].strip() == "[MASK]"
        assert result.display_tokens[prediction.position] == "[MASK]"
    assert result.text == text


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_native_mask_token_equals_pipeline(service, tiny_models, reference, family):
    native = TWO_MASKS.replace("[MASK]", NATIVE_MASK[family])
    result = service.fill_mask(native, str(tiny_models[family]), TOP_K).result
    assert_same_predictions(result.predictions, reference(family, native))


def test_scores_are_the_softmax_over_the_vocabulary(service, tiny_models):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = tiny_models["roberta"]
    result = service.fill_mask(ONE_MASK, str(path), 5).result
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path, attn_implementation="eager").eval()
    enc = tok(ONE_MASK.replace("[MASK]", "<mask>"), return_tensors="pt")
    with torch.no_grad():
        probs = model(**enc).logits[0].softmax(-1)
    (prediction,) = result.predictions
    top = probs[prediction.position].topk(5)
    assert [c.token_id for c in prediction.candidates] == top.indices.tolist()
    assert (
        max(abs(c.score - s) for c, s in zip(prediction.candidates, top.values.tolist(), strict=True)) < 1e-6
    )


def test_predictions_come_from_the_analysis_forward_pass(service, tiny_models):
    """One forward pass gives attention and predictions; no prediction means the LM head never runs."""
    loaded = service.model(str(tiny_models["bert"]))
    calls = {"model": 0, "encoder": 0}
    hooks = [
        loaded.model.register_forward_hook(lambda *a: calls.__setitem__("model", calls["model"] + 1)),
        loaded.encoder.register_forward_hook(lambda *a: calls.__setitem__("encoder", calls["encoder"] + 1)),
    ]
    try:
        masked = service.analyze("A bank can hold [MASK].", str(tiny_models["bert"])).result
        assert calls == {"model": 1, "encoder": 1} and len(masked.predictions) == 1
        plain = service.analyze("A bank can hold money.", str(tiny_models["bert"])).result
        assert calls == {"model": 1, "encoder": 2} and plain.predictions is None
    finally:
        for hook in hooks:
            hook.remove()


def test_result_shape_does_not_change_with_mask_count(service, tiny_models):
    one = service.fill_mask(ONE_MASK, str(tiny_models["bert"]), 3).result.predictions
    two = service.fill_mask(TWO_MASKS, str(tiny_models["bert"]), 3).result.predictions
    assert isinstance(one, tuple) and isinstance(two, tuple) and (len(one), len(two)) == (1, 2)
    assert all(len(p.candidates) == 3 for p in one + two)
    assert two[0].position < two[1].position


@pytest.mark.parametrize("which", ["minilm", "bert_encoder"])
def test_model_without_trained_head_is_refused(service, tiny_models, which):
    model = None if which == "minilm" else str(tiny_models[which])
    with pytest.raises(TaskUnsupported, match="no trained masked-language-model head.*random"):
        service.fill_mask(ONE_MASK, model)
    # the analysis still runs, shows attention, and says why there are no guesses
    result = service.analyze(ONE_MASK, model).result
    assert result.predictions is None
    assert "no trained masked-language-model head" in result.predictions_note


def test_causal_model_is_refused(service, tiny_models):
    with pytest.raises(TaskUnsupported, match="causal language model"):
        service.fill_mask(ONE_MASK, str(tiny_models["gpt2"]))


def test_text_without_mask_is_refused(service, tiny_models):
    with pytest.raises(InputError, match=r"no mask to fill.*\[MASK\] or <mask>"):
        service.fill_mask("I think, therefore I am.", str(tiny_models["roberta"]))


def test_top_k_is_checked(service, tiny_models):
    with pytest.raises(InputError, match="top_k"):
        service.fill_mask(ONE_MASK, str(tiny_models["bert"]), 0)
