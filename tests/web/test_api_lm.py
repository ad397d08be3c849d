"""Language-model endpoints through TestClient: predictions in the analysis, fill-mask, and the SSE stream."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from visualizeai.config import Settings
from visualizeai.web import create_app

pytestmark = pytest.mark.models

MASKED = "I think, therefore I [MASK]."


@pytest.fixture(scope="module")
def client(tiny_models):
    root = next(iter(tiny_models.values())).parent
    app = create_app(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))
    with TestClient(app) as c:
        yield c


def parse_sse(body: str) -> list[tuple[str, dict]]:
    """``event:``/``data:`` blocks separated by blank lines → [(event, json)]."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def decode_attention(payload: dict) -> np.ndarray:
    assert payload["dtype"] == "float16"
    return np.frombuffer(base64.b64decode(payload["data"]), dtype="<f2").reshape(payload["shape"])


def test_analyze_meta_has_mask_predictions(client, tiny_models):
    response = client.post("/api/v1/analyze", json={"text": MASKED, "model": str(tiny_models["roberta"])})
    assert response.status_code == 200, response.text
    meta = response.json()
    (prediction,) = meta["predictions"]
    assert prediction["kind"] == "mask" and meta["tokens"][prediction["position"]]["display"] == "[MASK]"
    assert meta["tokens"][prediction["position"]]["raw"] == "<mask>"
    assert len(prediction["candidates"]) == 10
    scores = [c["score"] for c in prediction["candidates"]]
    assert scores == sorted(scores, reverse=True) and set(prediction["candidates"][0]) == {
        "token",
        "token_id",
        "score",
        "readable",
    }
    # the focus summary: per layer, the strongest keys (head-averaged) of the mask's row
    result = client.app.state.service.result(meta["key"])
    row = result.attentions[:, :, prediction["position"]].mean(axis=1)
    assert len(prediction["focus"]) == meta["layers"]
    for layer, keys in enumerate(prediction["focus"]):
        assert keys[0]["index"] == int(np.argmax(row[layer]))
        assert keys[0]["weight"] == pytest.approx(float(row[layer].max()), abs=1e-6)
    assert meta["predictions_note"] is None


def test_analyze_meta_has_next_token_for_causal(client, tiny_models):
    meta = client.post("/api/v1/analyze", json={"text": "I think", "model": str(tiny_models["gpt2"])}).json()
    (prediction,) = meta["predictions"]
    assert prediction["kind"] == "next" and prediction["position"] == meta["n"] - 1


@pytest.mark.parametrize(
    ("family", "text"), [("roberta", MASKED), ("gpt2", "Tokyo 🙂 naïve café"), ("bert", MASKED)]
)
def test_metadata_by_key_equals_the_analysis_answer(client, tiny_models, family, text):
    """GET /analyses/{key} writes its token table without a model per token: the same document as the
    validated answer of POST /analyze, predictions and every token field included."""
    from visualizeai.web.schemas import AnalysisMeta

    answer = client.post("/api/v1/analyze", json={"text": text, "model": str(tiny_models[family])}).json()
    reopened = client.get(f"/api/v1/analyses/{answer['key']}")
    assert reopened.headers["content-type"] == "application/json"
    again = reopened.json()
    assert again.pop("cached") is True and again.pop("timings") == {"total_ms": 0.0}
    for name in ("cached", "timings"):
        answer.pop(name)
    # a directory outside the catalog is named by its path when reopened (the id a saved file could carry)
    assert again["model"].pop("display_name") == answer["model"]["id"]
    answer["model"].pop("display_name")
    assert again == answer and list(again) == list(answer)
    assert list(again["tokens"][0]) == list(
        AnalysisMeta.model_fields["tokens"].annotation.__args__[0].model_fields
    )
    AnalysisMeta.model_validate_json(reopened.content)


def test_no_predictions_without_mask_and_a_note_for_an_untrained_head(client):
    plain = client.post("/api/v1/analyze", json={"text": "I think."}).json()
    assert plain["predictions"] is None and plain["predictions_note"] is None
    masked = client.post("/api/v1/analyze", json={"text": MASKED}).json()
    assert (
        masked["predictions"] is None
        and "no trained masked-language-model head" in masked["predictions_note"]
    )


def test_fill_mask_endpoint(client, tiny_models):
    body = {"text": "The [MASK] sat on the [MASK].", "model": str(tiny_models["bert"]), "top_k": 3}
    response = client.post("/api/v1/fill-mask", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [len(p["candidates"]) for p in predictions] == [3, 3]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"text": MASKED}, 409, "no trained masked-language-model head"),
        ({"text": "No mask here.", "model": "BERT"}, 400, "no mask to fill"),
        ({"text": MASKED, "model": "GPT2"}, 409, "causal language model"),
        ({"text": MASKED, "top_k": 0}, 422, "top_k"),
        ({"text": MASKED, "extra": 1}, 422, "extra"),
    ],
)
def test_fill_mask_errors(client, tiny_models, body, status, fragment):
    body = {**body}
    if body.get("model") in ("BERT", "GPT2"):
        body["model"] = str(tiny_models[body["model"].lower()])
    response = client.post("/api/v1/fill-mask", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_generate_stream_events(client, tiny_models):
    service = client.app.state.service
    body = {"text": "She sells sea shells", "model": str(tiny_models["gpt2"]), "max_new_tokens": 6}
    response = client.post("/api/v1/generate", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names == ["start"] + ["token"] * 6 + ["done"]
    start = events[0][1]
    assert (start["layers"], start["heads"], start["mode"], start["seed"]) == (2, 4, "greedy", None)
    p = len(start["prompt_tokens"])
    assert "".join(t["display"] for t in start["prompt_tokens"]) == body["text"].replace(" ", "")
    expected = list(service.generate(body["text"], body["model"], 6).steps)
    for (_, token), step in zip(events[1:-1], expected, strict=True):
        assert token["step"] == step.index and token["position"] == p + step.index
        assert token["token_id"] == step.token_id and token["text"] == step.text
        attention = decode_attention(token["attention"])
        assert attention.shape == (2, 4, p + step.index)
        np.testing.assert_array_equal(attention, step.attention.astype(np.float16))
    done = events[-1][1]
    assert done["steps"] == 6 and done["finish_reason"] == "length"
    assert done["text"] == "".join(e["text"] for _, e in events[1:-1])


def test_generate_get_for_event_source_and_sampling(client, tiny_models):
    params = {
        "text": "I think",
        "model": str(tiny_models["gpt2"]),
        "max_new_tokens": 4,
        "mode": "sample",
        "seed": 5,
    }
    first = parse_sse(client.get("/api/v1/generate", params=params).text)
    again = parse_sse(client.post("/api/v1/generate", json=params).text)
    assert first[0][1]["mode"] == "sample" and first[0][1]["seed"] == 5
    ids = [e["token_id"] for name, e in first if name == "token"]
    assert len(ids) == 4 and ids == [e["token_id"] for name, e in again if name == "token"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"text": "I think", "model": "ROBERTA"}, 409, "causal language model"),
        ({"text": "I think"}, 409, "causal language model"),  # the default MiniLM is an encoder
        ({"text": "  ", "model": "GPT2"}, 400, "empty"),
        ({"text": "I think", "model": "GPT2", "max_new_tokens": 0}, 422, "max_new_tokens"),
        ({"text": "I think", "model": "GPT2", "mode": "beam"}, 422, "mode"),
        ({"text": "I think", "model": "bert-base-uncased"}, 503, "offline"),
    ],
)
def test_generate_errors_are_json_before_the_stream(client, tiny_models, body, status, fragment):
    body = {**body}
    if body.get("model") in ("ROBERTA", "GPT2"):
        body["model"] = str(tiny_models[body["model"].lower()])
    response = client.post("/api/v1/generate", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert fragment in response.json()["detail"]


def test_error_part_way_becomes_an_error_event(client, tiny_models, monkeypatch):
    from visualizeai.models import generate as generate_module

    def broken(logits, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(generate_module, "_choose", broken)
    body = {"text": "I think", "model": str(tiny_models["gpt2"]), "max_new_tokens": 3}
    events = parse_sse(client.post("/api/v1/generate", json=body).text)
    assert [name for name, _ in events] == ["start", "error"]
    assert "boom" in events[-1][1]["detail"]
    assert not client.app.state.service.model(body["model"]).lock.locked()


def test_openapi_documents_the_stream(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/generate"]["post"]
    assert "text/event-stream" in op["responses"]["200"]["content"] and "float16" in op["description"]
    assert "409" in spec["paths"]["/api/v1/fill-mask"]["post"]["responses"]
