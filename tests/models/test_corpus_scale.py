"""The corpus job at scale (``make test-scale``): a real two-node Ray cluster, and a million-line corpus.

Both run the command line in a subprocess, as a person would. The cluster is two ``ray start`` raylets on
127.0.0.1 with token authentication and explicit ports (6391 and 10601–10769), stopped at the end by
killing every process that carries this test's tag in its environment (``ray stop`` would stop every Ray
on the machine).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.scale, pytest.mark.models]

HEAD_PORT = 6391
WORDS = "the cat sat on a mat , and the dog ran far away . why ? because it was tired !".split()
RAY = str(Path(sys.executable).parent / "ray")


def tagged_processes(tag: str, directory: str) -> list[int]:
    """Live processes (zombies aside) with VISUALIZEAI_TEST_TAG=tag in their environment or a file open
    under ``directory`` (a Ray process that renames itself may overwrite its environment's memory)."""
    needle = f"VISUALIZEAI_TEST_TAG={tag}".encode()
    directory = os.path.join(directory, "")
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or entry.name == str(os.getpid()):
                continue
            ours = needle in (entry / "environ").read_bytes().split(b"\0")
            ours = ours or any(os.readlink(fd).startswith(directory) for fd in (entry / "fd").iterdir())
            if ours and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def stop_tagged(tag: str, directory: str, deadline_s: float = 60) -> list[int]:
    """SIGTERM, then SIGKILL, every process of the cluster until none is left; returns those still alive."""
    end = time.monotonic() + deadline_s
    sig = signal.SIGTERM
    while (left := tagged_processes(tag, directory)) and time.monotonic() < end:
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        time.sleep(0.5)
        sig = signal.SIGKILL
    return tagged_processes(tag, directory)


def corpus_command(path: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "visualizeai.cli",
        "corpus",
        "--offline",
        "--no-progress",
        "--input",
        str(path),
        "--out",
        str(out),
        "--model",
        str(model),
        *extra,
    ]


def read_rows(out: Path):
    return pq.read_table(out / "texts").to_pandas().sort_values(["text_index", "window", "layer", "head"])


@pytest.fixture
def cluster():
    """A head and one worker node, separate raylets with one CPU each, token authentication on."""
    tag = secrets.token_hex(8)
    temp = tempfile.mkdtemp(prefix="vai-rc-")  # short: Ray's socket paths must fit 107 bytes
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "VISUALIZEAI_TEST_TAG": tag,
        "HF_HUB_OFFLINE": "1",
    }
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    head = [RAY, "start", "--head", "--port", str(HEAD_PORT), "--temp-dir", temp, *common]
    head += ["--include-dashboard", "false", "--dashboard-port", "10608"]
    head += ["--node-manager-port", "10601", "--object-manager-port", "10602"]
    head += ["--runtime-env-agent-port", "10603", "--dashboard-agent-grpc-port", "10604"]
    head += ["--dashboard-agent-listen-port", "10605", "--metrics-export-port", "10606"]
    head += ["--min-worker-port", "10610", "--max-worker-port", "10689"]
    worker = [RAY, "start", "--address", f"127.0.0.1:{HEAD_PORT}", *common]
    worker += ["--node-manager-port", "10621", "--object-manager-port", "10622"]
    worker += ["--runtime-env-agent-port", "10623", "--dashboard-agent-grpc-port", "10624"]
    worker += ["--dashboard-agent-listen-port", "10625", "--metrics-export-port", "10626"]
    worker += ["--min-worker-port", "10690", "--max-worker-port", "10769"]
    try:
        for command in (head, worker):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield env
    finally:
        left = stop_tagged(tag, temp)
        shutil.rmtree(temp, ignore_errors=True)
        assert left == [], f"cluster processes still alive: {left}"


NODES = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
print(json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


def test_two_node_cluster_runs_the_job_and_equals_a_local_run(cluster, tiny_models, tmp_path):
    """``--ray-address`` against a head and a worker node: both nodes compute blocks (the manifest says
    which node did each shard's texts), and the rows and summary equal a local run's exactly."""
    rng = random.Random(3)
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(600)]
    lines[10] = ""
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    model = tiny_models["bert"]
    started = time.monotonic()
    remote = subprocess.run(
        corpus_command(path, tmp_path / "remote", model, "--ray-address", f"127.0.0.1:{HEAD_PORT}")
        + ["--num-workers", "2", "--shard-size", "100", "--batch-size", "16", "--block", "25"],
        env=cluster,
        capture_output=True,
        text=True,
        timeout=600,
    )
    remote_s = time.monotonic() - started
    assert remote.returncode == 0, remote.stderr[-3000:]
    assert "ray nodes: 2" in remote.stdout and "core_worker" not in remote.stderr
    nodes = subprocess.run(
        [sys.executable, "-c", NODES, f"127.0.0.1:{HEAD_PORT}"],
        env=cluster,
        capture_output=True,
        text=True,
        timeout=180,
    )
    cluster_nodes = json.loads(nodes.stdout.strip().splitlines()[-1])
    manifest = json.loads((tmp_path / "remote" / "manifest.json").read_text())
    used: dict[str, int] = {}
    for entry in manifest["shards"].values():
        for node, texts in entry["nodes"].items():
            used[node] = used.get(node, 0) + texts
    assert len(cluster_nodes) == 2 and sorted(used) == cluster_nodes
    assert sum(used.values()) == 599 and min(used.values()) > 0

    env = {k: v for k, v in cluster.items() if not k.startswith("RAY_AUTH")}
    local = subprocess.run(
        corpus_command(path, tmp_path / "local", model, "--num-cpus", "2", "--num-workers", "2")
        + ["--shard-size", "100", "--batch-size", "16", "--block", "25"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert local.returncode == 0, local.stderr[-3000:]
    assert "core_worker" not in local.stderr and "Token authentication" not in local.stderr
    a, b = read_rows(tmp_path / "remote"), read_rows(tmp_path / "local")
    assert len(a) == 599 * 8 and a.text_index.nunique() == 599
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())  # bit for bit
    summary_a = pq.read_table(tmp_path / "remote" / "summary.parquet")
    summary_b = pq.read_table(tmp_path / "local" / "summary.parquet")
    assert summary_a.equals(summary_b)
    print(f"\ntwo-node run: {remote_s:.1f} s; texts per node: {used}")


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_a_million_lines_in_constant_driver_memory(tiny_models, tmp_path):
    """1,000,000 short lines through the tiny BERT: the driver's RSS, sampled through the run, stays within
    10 % once the first tenth of the shards is written, and every text has exactly one row per head."""
    count = 1_000_000
    rng = np.random.default_rng(0)
    vocabulary = np.array(WORDS)
    lengths = rng.integers(1, 7, size=count)
    words = vocabulary[rng.integers(0, len(WORDS), size=int(lengths.sum()))]
    ends = np.cumsum(lengths)
    path = tmp_path / "million.txt"
    with path.open("w") as f:
        for start, end in zip(np.concatenate([[0], ends[:-1]]), ends, strict=True):
            f.write(" ".join(words[start:end]) + "\n")
    out = tmp_path / "out"
    shard_size = 10_000  # the driver holds the shards its blocks in flight touch: a bounded working set
    shards = count // shard_size
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = corpus_command(path, out, tiny_models["bert"], "--shard-size", str(shard_size))
    command += ["--batch-size", "256", "--block", "1024", "--num-workers", "2", "--num-cpus", "2"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[int, int]] = []  # (shards written, driver RSS in KiB)
    try:
        while process.poll() is None:
            rss = rss_kib(process.pid)
            try:
                written = len(json.loads((out / "manifest.json").read_text())["shards"])
            except (OSError, ValueError, KeyError):
                written = 0
            if rss:
                samples.append((written, rss))
            time.sleep(0.5)
            assert time.monotonic() - started < 3600, "the run took more than an hour"
        stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
    elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr[-3000:]
    assert "core_worker" not in stderr and "Token authentication" not in stderr
    warm = [rss for written, rss in samples if written >= shards // 10]
    assert len(warm) >= 10, samples[-5:]
    spread = (max(warm) - min(warm)) / min(warm)
    per_text = np.zeros(count, dtype=np.int64)
    for shard in sorted((out / "texts").glob("shard-*.parquet")):
        index = pq.read_table(shard, columns=["text_index"])["text_index"].to_numpy()
        per_text += np.bincount(index, minlength=count)
    assert (per_text == 8).all()  # 2 layers × 4 heads, every line once
    print(
        f"\n{count:,} lines in {elapsed:.0f} s ({count / elapsed:,.0f} texts/s); driver RSS after warm-up "
        f"{min(warm) / 1024:.0f}–{max(warm) / 1024:.0f} MiB ({spread:.1%}) over {len(warm)} samples; "
        f"first sample {samples[0][1] / 1024:.0f} MiB"
    )
    assert spread <= 0.10
