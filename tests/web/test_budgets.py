"""Work budgets and concurrency caps through the API (and the service, which the CLI and Python API share).

Over its work budget every derived computation is refused with a 4xx naming the figure and the budget before
any attention is read; a value larger than the aggregate cache is computed once; over a concurrency cap a
request gets a 503 with Retry-After while cheap requests go on. Slow work is simulated with events, never
with sleeps: a test waits until the blocked request is inside its computation, then asserts outcomes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from visualizeai import budgets, derived, export, limits
from visualizeai.config import Settings
from visualizeai.errors import InputError
from visualizeai.web import create_app, serialize
from visualizeai.web.app import STATUS

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
OTHER = "I think, therefore I was."
BUDGET = 50  # elements: below the cost of everything derived from a 2-layer, 4-head, 9-token analysis
RETRY = 7
WAIT_S = 30  # the longest a test waits for an event that must happen; a failure, never a pause


def settings_for(tiny_models, **overrides) -> Settings:
    root = next(iter(tiny_models.values())).parent
    return Settings(allowed_roots=(root,), offline=True, model_cache_size=8, retry_after_s=RETRY, **overrides)


def analyze(client, tiny_models, text=TEXT, family="bert") -> str:
    response = client.post("/api/v1/analyze", json={"text": text, "model": str(tiny_models[family])})
    assert response.status_code == 200, response.text
    return response.json()["key"]


# ---- over the work budget: refused at once, nothing read --------------------------------------------------


@pytest.fixture(scope="module")
def small(tiny_models):
    """A client whose work budget (50 elements) is below every derived computation of a tiny analysis."""
    with TestClient(create_app(settings_for(tiny_models, work_budget=BUDGET))) as client:
        client.keys = (analyze(client, tiny_models), analyze(client, tiny_models, OTHER))
        yield client


def forbid_work(monkeypatch, service, keys):
    """Make every computation, and every read of the analyses' attention, fail the test."""

    def fail(*args, **kwargs):
        raise AssertionError("work started although the request was over the work budget")

    for name in ("rollout", "flow", "head_stats", "compare", "_head_means"):
        monkeypatch.setattr(derived, name, fail)
    monkeypatch.setattr(export, "to_bytes", fail)
    for key in keys:
        store = service.result(key).attention
        for name in ("_chunks", "dense", "layer_array", "pooled_heads", "pooled"):
            monkeypatch.setattr(store, name, fail)


A = "/api/v1/analyses/{a}"
OVER_BUDGET = [
    # (figure, path, params, status, fragment naming the figure)
    ("rollout", A + "/rollout", {}, 400, "Rollout of this analysis costs 2,106 operations"),
    ("rollout of a layer", A + "/rollout", {"layer": 1}, 400, "Rollout of this analysis costs"),
    ("flow", A + "/flow", {"layer": 1}, 400, "Attention flow would take too long here"),
    ("head statistics", A + "/head-stats", {}, 400, "Head statistics of this analysis costs 5,184"),
    ("thumbnails", A + "/thumbnails", {}, 400, "The all-heads thumbnails of this analysis costs 648"),
    ("tile", A + "/tile", {"layer": 0, "head": 0}, 400, "A tile of 9 × 9 cells costs 81 operations"),
    ("comparison", "/api/v1/compare", {"mode": "sentences", "key_a": "{a}", "key_b": "{b}", "head": 0}, 400,
     "Comparing these analyses (sentences) costs"),
    ("png", A + "/export", {"format": "png"}, 413, "The PNG export of this analysis costs 10,368 operations"),
    ("svg", A + "/export", {"format": "svg"}, 413, "The SVG export of this analysis costs"),
    ("html", A + "/export", {"format": "html", "layers": "0"}, 413, "The HTML export of this analysis costs"),
    ("json", A + "/export", {"format": "json"}, 413, "The JSON export of this analysis costs"),
    ("npz", A + "/export", {"format": "npz"}, 413, "The NPZ export of this analysis costs"),
]  # fmt: skip


@pytest.mark.parametrize(("figure", "path", "params", "status", "fragment"), OVER_BUDGET, ids=lambda v: v)
def test_over_the_work_budget_is_refused_before_any_work(small, monkeypatch, figure, path, params, status,
                                                          fragment):  # fmt: skip
    a, b = small.keys
    service = small.app.state.service
    forbid_work(monkeypatch, service, small.keys)
    params = {k: v.format(a=a, b=b) if isinstance(v, str) else v for k, v in params.items()}
    response = small.get(path.format(a=a, b=b), params=params)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert fragment in detail
    assert f"work budget of {BUDGET} (VISUALIZEAI_WORK_BUDGET)" in detail
    assert service.heavy.in_use == 0 and len(service.aggregates) == 0


def test_budget_refusals_are_input_errors_and_exports_are_413():
    assert issubclass(budgets.WorkTooLarge, InputError)
    assert STATUS[budgets.ExportTooLarge] == 413 and budgets.WorkTooLarge not in STATUS  # InputError: 400
    assert issubclass(derived.RolloutTooLarge, budgets.WorkTooLarge)
    assert issubclass(derived.FlowTooLarge, budgets.WorkTooLarge)


def test_the_service_refuses_the_same_for_the_cli_and_the_python_api(small, monkeypatch):
    a, b = small.keys
    service = small.app.state.service
    forbid_work(monkeypatch, service, small.keys)
    result = service.result(a)
    with pytest.raises(budgets.ExportTooLarge, match="The PNG export"):
        service.export_bytes(result, "png")
    with pytest.raises(derived.RolloutTooLarge):
        service.rollout(a)
    with pytest.raises(budgets.WorkTooLarge, match="Head statistics"):
        service.head_stats(a)
    with pytest.raises(budgets.WorkTooLarge, match="Comparing"):
        service.compare("models", a, b, layer=0, head=None)


def test_a_bad_head_is_still_a_400_naming_the_range(small):
    a, _ = small.keys
    response = small.get(f"/api/v1/analyses/{a}/export", params={"format": "png", "head": 9})
    assert response.status_code == 400 and "Head 9 is out of range" in response.json()["detail"]


def test_flow_limits_follow_the_configured_budget(small):
    a, _ = small.keys
    limits_ = small.get(f"/api/v1/analyses/{a}/flow-limits").json()
    assert limits_["max_tokens"] == budgets.flow_max_tokens(12, BUDGET) == 0
    assert [entry["allowed"] for entry in limits_["layers"]] == [False, False]


# ---- a value larger than the cache is computed once -------------------------------------------------------


def test_a_rollout_larger_than_the_cache_is_computed_once(tiny_models, monkeypatch):
    with TestClient(create_app(settings_for(tiny_models))) as client:
        key = analyze(client, tiny_models)
        service = client.app.state.service
        service.aggregates = derived.AggregateCache(max_items=8, max_bytes=100)  # rollout: 648 bytes
        calls = []
        real = derived.rollout
        monkeypatch.setattr(derived, "rollout", lambda result: calls.append(1) or real(result))
        first = client.get(f"/api/v1/analyses/{key}/rollout")
        second = client.get(f"/api/v1/analyses/{key}/rollout")
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and int(first.headers["content-length"]) > 100
        assert calls == [1]
        assert service.aggregates.peek(key, "rollout").nbytes > 100


# ---- concurrency caps ------------------------------------------------------------------------------------


class Gate:
    """Blocks whoever calls ``wait_here`` until ``release``; ``entered`` is set once someone is waiting."""

    def __init__(self):
        self.entered = threading.Event()
        self._release = threading.Event()

    def wait_here(self):
        self.entered.set()
        assert self._release.wait(WAIT_S), "the test never released the blocked request"

    def release(self):
        self._release.set()


def assert_busy(response, setting: str, name: str = ""):
    assert response.status_code == 503, (name, response.text)
    assert response.headers["retry-after"] == str(RETRY)
    detail = response.json()["detail"]
    assert "busy" in detail and setting in detail and f"try again in {RETRY} s" in detail


def assert_cheap_requests_answer(client):
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/").status_code == 200


def test_heavy_computations_over_the_cap_get_503_while_cheap_requests_go_on(tiny_models, monkeypatch):
    with TestClient(create_app(settings_for(tiny_models, max_heavy=1))) as client:
        key = analyze(client, tiny_models)
        other = analyze(client, tiny_models, OTHER)
        service = client.app.state.service
        cached = client.get(f"/api/v1/analyses/{key}/rollout")  # computed before the cap fills
        assert cached.status_code == 200
        gate = Gate()
        real = derived.head_stats
        monkeypatch.setattr(derived, "head_stats", lambda result: gate.wait_here() or real(result))
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(client.get, f"/api/v1/analyses/{key}/head-stats")
            try:
                assert gate.entered.wait(WAIT_S), "the heavy request never started"
                assert service.heavy.in_use == 1
                heavy = {
                    "flow": client.get(f"/api/v1/analyses/{key}/flow"),
                    "thumbnails": client.get(f"/api/v1/analyses/{key}/thumbnails"),
                    "export": client.get(f"/api/v1/analyses/{key}/export", params={"format": "png"}),
                    "compare": client.get(
                        "/api/v1/compare", params={"mode": "sentences", "key_a": key, "key_b": other}
                    ),
                    "rollout of another analysis": client.get(f"/api/v1/analyses/{other}/rollout"),
                }
                for name, response in heavy.items():
                    assert_busy(response, "VISUALIZEAI_MAX_HEAVY", name)
                assert_cheap_requests_answer(client)
                again = client.get(f"/api/v1/analyses/{key}/rollout")  # cached: needs no slot
                assert again.status_code == 200 and again.content == cached.content
                assert client.get(f"/api/v1/analyses/{key}").status_code == 200
                assert not slow.done()
            finally:
                gate.release()
            assert slow.result(timeout=WAIT_S).status_code == 200
        assert service.heavy.in_use == 0
        assert client.get(f"/api/v1/analyses/{key}/thumbnails").status_code == 200


def test_generation_streams_hold_a_slot_for_their_whole_life(tiny_models, monkeypatch):
    with TestClient(create_app(settings_for(tiny_models, max_generations=1))) as client:
        service = client.app.state.service
        body = {"text": TEXT, "model": str(tiny_models["gpt2"]), "max_new_tokens": 3}
        gate = Gate()
        real = serialize.generation_events

        def slow_events(generation, label):
            for i, event in enumerate(real(generation, label)):
                yield event
                if i == 0:  # the stream has started: hold it open
                    gate.wait_here()

        monkeypatch.setattr(serialize, "generation_events", slow_events)
        with ThreadPoolExecutor(max_workers=1) as pool:
            streaming = pool.submit(client.post, "/api/v1/generate", json=body)
            try:
                assert gate.entered.wait(WAIT_S), "the stream never started"
                assert service.generations.in_use == 1
                assert_busy(client.post("/api/v1/generate", json=body), "VISUALIZEAI_MAX_GENERATIONS")
                assert_busy(client.get("/api/v1/generate", params=body), "VISUALIZEAI_MAX_GENERATIONS")
                assert_cheap_requests_answer(client)
                assert analyze(client, tiny_models)  # analyses are not generations
            finally:
                gate.release()
            response = streaming.result(timeout=WAIT_S)
        assert response.status_code == 200 and "event: done" in response.text
        assert service.generations.in_use == 0
        monkeypatch.setattr(serialize, "generation_events", real)
        assert client.post("/api/v1/generate", json=body).status_code == 200
        assert service.generations.in_use == 0


def test_a_refused_generation_gives_its_slot_back(tiny_models):
    with TestClient(create_app(settings_for(tiny_models, max_generations=1))) as client:
        service = client.app.state.service
        encoder = {"text": TEXT, "model": str(tiny_models["bert_encoder"])}
        assert client.post("/api/v1/generate", json=encoder).status_code == 409
        assert service.generations.in_use == 0


def test_uploads_over_the_cap_get_503(tiny_models, monkeypatch):
    with TestClient(create_app(settings_for(tiny_models, max_uploads=1))) as client:
        key = analyze(client, tiny_models)
        saved = client.get(f"/api/v1/analyses/{key}/export", params={"format": "npz"}).content
        service = client.app.state.service
        gate = Gate()
        real = service.adopt
        monkeypatch.setattr(service, "adopt", lambda *args: gate.wait_here() or real(*args))
        files = {"file": ("saved.npz", saved, "application/octet-stream")}
        with ThreadPoolExecutor(max_workers=1) as pool:
            uploading = pool.submit(client.post, "/api/v1/analyses", files=files)
            try:
                assert gate.entered.wait(WAIT_S), "the upload never started"
                assert service.uploads.in_use == 1
                assert_busy(client.post("/api/v1/analyses", files=files), "VISUALIZEAI_MAX_UPLOADS")
                assert_cheap_requests_answer(client)
                assert client.get(f"/api/v1/analyses/{key}/rollout").status_code == 200  # not an upload
            finally:
                gate.release()
            assert uploading.result(timeout=WAIT_S).status_code == 200
        assert service.uploads.in_use == 0
        assert client.post("/api/v1/analyses", files=files).status_code == 200


# ---- the semaphore itself --------------------------------------------------------------------------------


def test_a_limit_refuses_at_once_and_releases_once():
    limit = limits.Limit("things", 2, "VISUALIZEAI_MAX_THINGS", 3)
    first, second = limit.acquire(), limit.acquire()
    assert limit.try_acquire() is None
    with pytest.raises(limits.Busy, match=r"2 things are already running.*VISUALIZEAI_MAX_THINGS") as info:
        limit.acquire()
    assert info.value.retry_after_s == 3
    first.release()
    first.release()  # a second release gives nothing back twice
    assert limit.in_use == 1
    with limit.hold():
        assert limit.in_use == 2
    assert limit.in_use == 1
    second.release()
    assert limit.in_use == 0


@pytest.mark.parametrize("how", ["exhausted", "failed", "closed", "dropped unstarted"])
def test_a_held_stream_gives_its_slot_back_however_it_ends(how):
    limit = limits.Limit("streams", 1, "VISUALIZEAI_MAX_GENERATIONS", 1)

    def items():
        yield 1
        if how == "failed":
            raise RuntimeError("model failed")
        yield 2

    held = limits.Held(items(), limit.acquire())
    if how == "exhausted":
        assert list(held) == [1, 2]
    elif how == "failed":
        with pytest.raises(RuntimeError):
            list(held)
    elif how == "closed":
        assert next(held) == 1
        held.close()
    else:
        del held
    assert limit.in_use == 0


def test_caps_leave_room_in_the_threadpool(tiny_models):
    limits.check_caps({"A": 16, "B": 16})
    with pytest.raises(ValueError, match=r"A \(30\) \+ B \(3\) allow 33 threads"):
        limits.check_caps({"A": 30, "B": 3})
    with pytest.raises(ValueError, match="VISUALIZEAI_MAX_HEAVY"):
        create_app(settings_for(tiny_models, max_heavy=40))


def test_npz_export_of_the_default_budget_includes_bert_base_at_512_tokens():
    """The upload limit is sized for bert-base at 512 tokens; its export must be within the default budget."""
    budgets.check_export("npz", 12, 12, 512, budgets.DEFAULT_WORK_BUDGET)
    budgets.check_export("html", 12, 12, 512, budgets.DEFAULT_WORK_BUDGET)
    with pytest.raises(budgets.ExportTooLarge, match="Download the .npz instead"):
        budgets.check_export("json", 12, 12, 512, budgets.DEFAULT_WORK_BUDGET)
