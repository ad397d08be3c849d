"""The corpus pipeline: scan the input, stream it to Ray actors, write shards as they finish; resumable.

Output directory layout::

    DIR/manifest.json              fingerprint of the run's arguments, the input files, the finished shards
    DIR/texts/shard-00000.parquet  per-text rows of texts 0 … shard_size-1 (schema.text_rows_schema())
    DIR/summary.parquet            per-(layer, head, statistic) mean, std, count (schema.summary_schema())
    DIR/extremes.parquet           per (statistic, layer, head) the texts with the highest and lowest value
    DIR/qk_sample.npz              a uniform sample of the corpus's tokens with their queries and keys
    DIR/qk_map.parquet             every head's query–key map of that sample (qk_sample module docstring)
    DIR/ray.log                    what Ray printed while the job ran

Shard k holds the texts whose index lies in ``[k · shard_size, (k + 1) · shard_size)``. The driver streams
the input (``reader.iter_texts``) into blocks of texts, keeps at most ``in_flight`` blocks per worker
submitted, writes each shard when its last block is back (to a temporary name, renamed when complete, then
recorded in the manifest) and merges its moments into the summary in shard order. So the driver's memory
is bounded by the blocks in flight and the shards they touch, whatever the corpus size; a killed run leaves
only whole shards, and a restart with the same arguments skips them (their moments are read back from the
files), so no text is lost or counted twice. The fingerprint covers what changes the numbers (model id and
revision, the input files' sizes and SHA-256, text field, shard size, dtype, statistics, long-text
handling), not batch size, workers or the cluster: those may change between a run and its restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.config import Settings
from visualizeai.corpus import qk_sample as qk_tokens
from visualizeai.corpus import reader
from visualizeai.corpus.batching import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH_BYTES, LONG_TEXTS
from visualizeai.corpus.cluster import ray_session, use_own_token
from visualizeai.corpus.extremes import Extremes, extremes_table, window_texts
from visualizeai.corpus.summary import Moments, summary_table, table_moments
from visualizeai.errors import InputError, ModelUnavailable
from visualizeai.extras import require
from visualizeai.models.catalog import Catalog, ModelSpec, load_rows

MANIFEST = "manifest.json"
SUMMARY = "summary.parquet"
EXTREMES = "extremes.parquet"
QK_SAMPLE = "qk_sample.npz"
QK_MAP = "qk_map.parquet"
TEXTS_DIR = "texts"
RAY_LOG = "ray.log"
LOCK = ".lock"
MANIFEST_FORMAT = "visualizeai-corpus-run"
MANIFEST_VERSION = 2
DEFAULT_SHARD_SIZE = 2048
BLOCK_BATCHES = 8  # texts per Ray task = this many batches: sorted by length within it
IN_FLIGHT_PER_WORKER = 2  # blocks submitted to each worker at once: one running, one waiting


@dataclass(frozen=True)
class CorpusOptions:
    """Arguments of one corpus run (``visualizeai corpus``).

    Attributes:
        input: a .txt / .jsonl / .parquet file, a directory of them, a glob, or a datasets Parquet layout.
        out: the output directory.
        model: catalog id, hub id or local directory (None: the settings' default model).
        split: the split of a datasets layout.
        batch_size: texts per forward pass (fewer when long texts would exceed ``max_batch_bytes``).
        shard_size: texts per output shard, the unit of resumption.
        block: texts per Ray task, sorted by length inside (default ``BLOCK_BATCHES`` batches).
        num_workers: model replicas (Ray actors); default one per GPU, or one on CPU.
        ray_address: an existing Ray cluster; None starts a local one.
        num_cpus: CPUs of the local Ray (default: all).
        long_texts: "truncate" (from the end) or "window" (split into windows of the model's maximum).
        window_overlap: tokens consecutive windows share.
        in_flight: blocks submitted to each worker at once.
        qk_sample: tokens sampled for the query–key maps (fewer for models whose vectors would take more
            than ``qk_sample.MAX_SAMPLE_BYTES``); 0 for none.
    """

    input: Path | str
    out: Path
    model: str | None = None
    text_field: str = reader.DEFAULT_TEXT_FIELD
    split: str = reader.DEFAULT_SPLIT
    batch_size: int = DEFAULT_BATCH_SIZE
    shard_size: int = DEFAULT_SHARD_SIZE
    block: int | None = None
    num_workers: int | None = None
    ray_address: str | None = None
    num_cpus: int | None = None
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    long_texts: str = "truncate"
    window_overlap: int = 0
    in_flight: int = IN_FLIGHT_PER_WORKER
    qk_sample: int = qk_tokens.DEFAULT_SAMPLE
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "shard_size", "block", "num_workers", "num_cpus", "in_flight"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
        if self.long_texts not in LONG_TEXTS:
            raise InputError(f"--long-texts must be one of {', '.join(LONG_TEXTS)}, got {self.long_texts!r}.")
        if self.qk_sample < 0:
            raise InputError(f"--qk-sample must be at least 0, got {self.qk_sample}.")
        if self.window_overlap < 0:
            raise InputError(f"--window-overlap must be at least 0, got {self.window_overlap}.")
        if self.window_overlap and self.long_texts != "window":
            raise InputError("--window-overlap needs --long-texts window.")


@dataclass
class CorpusReport:
    """What a run did, and how long its parts took (seconds)."""

    out: Path
    summary_path: Path
    extremes_path: Path
    model: str
    revision: str
    layers: int
    heads: int
    texts: int  # non-empty texts in the input
    skipped: int  # empty records
    truncated_texts: int
    shards: int
    shards_run: int  # shards computed by this run (the rest were already done)
    texts_run: int
    windows: int = 0  # rows per (layer, head) in the output: texts, or windows of long texts
    ray_start_s: float = 0.0
    worker_start_s: float = 0.0  # from creating the actors to every model loaded
    first_result_s: float = 0.0  # from the first block submitted to the first rows back
    process_s: float = 0.0  # from the first block submitted to the last rows
    total_s: float = 0.0
    blocks: int = 0
    nodes: dict[str, int] = field(default_factory=dict)  # Ray node id -> texts it computed in this run

    @property
    def texts_per_s(self) -> float:
        """Rate of this run's texts, worker start-up excluded."""
        return self.texts_run / self.process_s if self.process_s > 0 else math.nan


# ---- model and fingerprint --------------------------------------------------------------------------------


def resolve_model(settings: Settings, model: str | None) -> tuple[ModelSpec, Path]:
    """The model's catalog entry and a local directory with its files (downloading it when online)."""
    from visualizeai.models.hub import files_dir, is_offline
    from visualizeai.models.loading import load_model

    catalog = Catalog(load_rows(settings.catalog_file), settings.allowed_roots)
    for extra in settings.extra_models:
        catalog.add(catalog.resolve(extra))
    spec = catalog.resolve(model or settings.default_model)
    try:
        directory = files_dir(spec)
    except ImportError as exc:
        raise ModelUnavailable(
            f"Model {spec.id!r}: package {spec.location!r} is not installed ({exc})."
        ) from None
    if directory is None:
        if is_offline(settings.offline):
            raise ModelUnavailable(
                f"Model {spec.id!r} is not in the local Hugging Face cache and the hub cannot be reached "
                "(offline). Download it once while online, or pass a local model directory with --model."
            )
        load_model(spec, device="cpu", offline=False, allow_pickle=settings.allow_pickle)  # downloads it
        directory = files_dir(spec)
    return spec, directory


def model_grid(directory: Path) -> tuple[int, int]:
    """(layers, heads) from the checkpoint's config, read without loading weights."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(directory, trust_remote_code=False, local_files_only=True)
    return int(config.num_hidden_layers), int(config.num_attention_heads)


def fingerprint_of(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


# ---- output directory -------------------------------------------------------------------------------------


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True), "utf-8"))


def _describe_difference(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    parts = [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(parts) or "format"


def _open_out(out: Path, fingerprint: str, inputs: dict) -> tuple[dict, object]:
    """Lock ``out`` for this run and return its manifest (new, or the one a matching earlier run left)."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    if not manifest_path.exists() and any(p.name != LOCK for p in out.iterdir()):
        raise InputError(
            f"{out} is not empty and holds no corpus run; choose a new or empty --out directory."
        )
    lock = (out / LOCK).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InputError(
            f"Another corpus run is writing to {out}; wait for it or choose another --out."
        ) from None
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            lock.close()
            raise InputError(
                f"{manifest_path} is unreadable ({exc}); choose another --out directory."
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            lock.close()
            raise InputError(f"{manifest_path} is not a corpus run manifest; choose another --out directory.")
        if manifest.get("fingerprint") != fingerprint:
            lock.close()
            difference = _describe_difference(manifest.get("inputs", {}), inputs)
            raise InputError(
                f"{out} holds a corpus run with different arguments ({difference}). "
                "Restart with the same arguments to resume it, or choose another --out directory."
            )
    else:
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "fingerprint": fingerprint,
            "inputs": inputs,
            "shards": {},
            "complete": False,
        }
        _write_json(manifest_path, manifest)
    (out / TEXTS_DIR).mkdir(exist_ok=True)
    for stale in (out / TEXTS_DIR).glob(".*.tmp"):
        stale.unlink()
    return manifest, lock


def shard_path(out: Path, shard: int) -> Path:
    return out / TEXTS_DIR / f"shard-{shard:05d}.parquet"


def _shard_done(out: Path, manifest: dict, shard: int) -> bool:
    pq = require("pyarrow.parquet")
    entry = manifest["shards"].get(str(shard))
    path = shard_path(out, shard)
    if entry is None or not path.exists():
        return False
    try:
        return pq.read_metadata(path).num_rows == entry.get("rows")
    except (OSError, ValueError, require("pyarrow").ArrowException):
        return False


class _OrderedMoments:
    """Merges shard moments and extremes in shard order (so the summary does not depend on which shard
    finished first), holding only those that finished ahead of a slower one."""

    def __init__(self, out: Path, layers: int, heads: int, done_before: set[int]):
        self.out, self.layers, self.heads, self.done_before = out, layers, heads, done_before
        self.total = Moments.empty(layers, heads)
        self.extremes = Extremes.empty(layers, heads)
        self.waiting: dict[int, tuple[Moments, Extremes]] = {}
        self.next = 0

    def parts(self, table) -> tuple[Moments, Extremes]:
        """What one shard's rows add to the summary and the extremes."""
        return table_moments(table, self.layers, self.heads), Extremes.of_rows(table, self.layers, self.heads)

    def add(self, shard: int, parts: tuple[Moments, Extremes] | None, shards: int) -> None:
        if parts is not None:
            self.waiting[shard] = parts
        while self.next < shards:
            if self.next in self.waiting:
                moments, extremes = self.waiting.pop(self.next)
            elif self.next in self.done_before:
                pq = require("pyarrow.parquet")
                moments, extremes = self.parts(pq.read_table(shard_path(self.out, self.next)))
            else:
                return
            self.total = self.total.merge(moments)
            self.extremes = self.extremes.merge(extremes)
            self.next += 1


class _QKSample:
    """The run's token sample: merged as blocks return, saved with every finished shard (so a restart merges
    into it; tokens of blocks computed twice count once), drawn as every head's query–key map at the end."""

    def __init__(self, out: Path, requested: int):
        self.path, self.requested = out / QK_SAMPLE, requested
        self.sample: qk_tokens.TokenSample | None = None
        self.k = 0
        if requested and self.path.exists():
            self.sample = qk_tokens.TokenSample.load(self.path)
            self.k = max(self.k, len(self.sample))

    def below(self) -> int:
        """The hash a token must be under to enter the sample (no limit until it is full)."""
        if self.sample is None or not self.k:
            return int(qk_tokens.NO_LIMIT)
        return self.sample.largest_kept(self.k)

    def add(self, part: qk_tokens.TokenSample | None) -> None:
        if part is None:
            return
        m, layers, heads, dim = part.queries.shape
        self.k = qk_tokens.sample_size(self.requested, layers, heads, part.keys.shape[2], dim)
        self.sample = part.merge(self.sample, self.k)

    def save(self) -> None:
        if self.sample is not None:
            _write_atomic(self.path, self.sample.save)

    def write_map(self, out: Path, metadata: dict) -> None:
        if self.sample is None or len(self.sample) < 2:
            return
        pq = require("pyarrow.parquet")
        table = qk_tokens.qk_map_table(self.sample, metadata)
        _write_atomic(out / QK_MAP, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


@dataclass
class _Shard:
    """A shard being computed: its texts still out, and the rows back so far."""

    texts_left: int
    parts: list = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)


def _blocks(plan: reader.Plan, pending: set[int], size: int) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """``(shard, indices, texts)`` blocks of at most ``size`` texts of the pending shards, in input order,
    never spanning two shards; read lazily, so only the block being filled is in memory."""
    if not pending:
        return
    start = min(pending) * plan.shard_size
    indices: list[int] = []
    texts: list[str] = []
    current = -1
    for index, text in reader.iter_texts(plan, start):
        shard = index // plan.shard_size
        if shard != current or len(texts) == size:
            if texts:
                yield current, np.asarray(indices, dtype=np.int64), texts
            indices, texts, current = [], [], shard
        if shard in pending:
            indices.append(index)
            texts.append(text)
    if texts:
        yield current, np.asarray(indices, dtype=np.int64), texts


# ---- Ray ---------------------------------------------------------------------------------------------------


def _worker_resources(settings: Settings, num_workers: int | None) -> tuple[int, int, float]:
    """(workers, CPUs per worker, GPUs per worker) for the Ray cluster we are connected to."""
    ray = require("ray")
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    use_gpu = settings.device != "cpu" and gpus > 0
    if settings.device.startswith("cuda") and not use_gpu:
        raise ModelUnavailable(f"Device {settings.device!r} was requested but the Ray cluster has no GPU.")
    workers = num_workers or (gpus if use_gpu else 1)
    node_cpus = [n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    biggest = int(max(node_cpus, default=resources.get("CPU", 1)))
    cpus = max(1, min(biggest, int(resources.get("CPU", 1)) // workers))
    return workers, cpus, 1.0 if use_gpu else 0.0


# Workers kept for later runs of this process while a Ray it did not start for the run stays up (tests and
# benchmarks share one Ray): one set, for one model and share of the cluster.
_KEPT: dict[tuple, list] = {}


def release_workers() -> None:
    """Stop the workers kept for later runs (so that their CPUs are free for other work)."""
    ray = require("ray")
    for actors in _KEPT.values():
        for actor in actors:
            with contextlib.suppress(Exception):  # an actor of a Ray that has since shut down
                ray.kill(actor)
    _KEPT.clear()


def _workers(ray, worker_class, arguments: tuple, count: int, cpus: int, gpus: float, keep: bool) -> list:
    """``count`` actors of ``worker_class(*arguments)``, spread over the nodes; with ``keep``, the set kept
    from an earlier run with the same arguments, or a new set that replaces it."""
    key = (ray.get_runtime_context().get_job_id(), count, cpus, gpus, repr(arguments))
    if keep and key in _KEPT:
        return _KEPT[key]
    if keep:
        release_workers()  # their resources would keep the new set from being placed
    actor_class = ray.remote(worker_class).options(
        num_cpus=cpus, num_gpus=gpus, scheduling_strategy="SPREAD", max_restarts=1, max_task_retries=1
    )
    actors = [actor_class.remote(*arguments) for _ in range(count)]
    if keep:
        _KEPT[key] = actors
    return actors


# ---- the run ----------------------------------------------------------------------------------------------


def run_corpus(
    options: CorpusOptions,
    settings: Settings | None = None,
    on_shard_done: Callable[[int], None] | None = None,
) -> CorpusReport:
    """Compute every head statistic for every text of ``options.input`` and write ``options.out``.

    ``on_shard_done(shard)`` is called after each shard is safely on disk (tests use it to interrupt a run).
    """
    started = time.perf_counter()
    if not options.ray_address:
        use_own_token()  # before Ray is first imported, which reads it
    require("ray")  # the optional extra: a one-line install message before anything else
    require("pyarrow")
    settings = settings or Settings.from_env()
    plan = reader.scan(options.input, options.text_field, options.shard_size, options.split)
    spec, directory = resolve_model(settings, options.model)
    from visualizeai.models.hub import revision_of

    revision = revision_of(spec, directory)
    layers, heads = model_grid(directory)
    inputs = {
        "model": spec.id,
        "revision": revision,
        **plan.identity(),
        "text_field": options.text_field,
        "shard_size": options.shard_size,
        "dtype": settings.dtype,
        "statistics": list(STAT_NAMES),
        "long_texts": options.long_texts,
        "window_overlap": options.window_overlap,
        "qk_sample": options.qk_sample,
    }
    out = Path(options.out)
    manifest, lock = _open_out(out, fingerprint_of(inputs), inputs)
    try:
        manifest["input"] = [
            {"path": str(f.path.resolve()), "records": f.records, "first_index": f.first_index}
            for f in plan.files
        ]
        done_before = {k for k in range(plan.shards) if _shard_done(out, manifest, k)}
        pending = [k for k in range(plan.shards) if k not in done_before]
        report = CorpusReport(
            out=out,
            summary_path=out / SUMMARY,
            extremes_path=out / EXTREMES,
            model=spec.id,
            revision=revision,
            layers=layers,
            heads=heads,
            texts=plan.texts,
            skipped=plan.skipped,
            truncated_texts=0,
            shards=plan.shards,
            shards_run=len(pending),
            texts_run=sum(plan.shard_texts[k] for k in pending) if plan.shard_texts else 0,
        )
        moments = _OrderedMoments(out, layers, heads, done_before)
        moments.add(0, None, plan.shards)
        qk = _QKSample(out, options.qk_sample)

        def finish(index: int, shard: _Shard) -> None:
            pa = require("pyarrow")
            pq = require("pyarrow.parquet")
            from visualizeai.corpus.schema import text_rows_schema

            table = pa.concat_tables(shard.parts) if shard.parts else text_rows_schema().empty_table()
            table = table.sort_by([(c, "ascending") for c in ("text_index", "window", "layer", "head")])
            path = shard_path(out, index)
            _write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
            shard.parts = []
            first = np.flatnonzero(
                (table["layer"].to_numpy() == 0)
                & (table["head"].to_numpy() == 0)
                & (table["window"].to_numpy() == 0)
            )
            manifest["shards"][str(index)] = {
                "file": str(path.relative_to(out)),
                "rows": table.num_rows,
                "texts": plan.shard_texts[index] if plan.shard_texts else 0,
                "windows": table.num_rows // (layers * heads),
                "truncated": int((table["dropped_tokens"].to_numpy()[first] > 0).sum()),
                "nodes": dict(sorted(shard.nodes.items())),
            }
            qk.save()
            _write_json(out / MANIFEST, manifest)
            moments.add(index, moments.parts(table), plan.shards)
            if on_shard_done is not None:
                on_shard_done(index)

        for index in [k for k in pending if not plan.shard_texts or plan.shard_texts[k] == 0]:
            finish(index, _Shard(0))
        work = [k for k in pending if plan.shard_texts and plan.shard_texts[k] > 0]
        if work:
            shards = {k: _Shard(plan.shard_texts[k]) for k in work}
            _run_ray(options, settings, spec, plan, shards, report, finish, qk)
        _summarise(out, manifest, plan, moments, report)
        qk.write_map(out, {"model": report.model, "revision": report.revision})
    finally:
        lock.close()
    report.total_s = time.perf_counter() - started
    return report


def _run_ray(
    options: CorpusOptions,
    settings: Settings,
    spec: ModelSpec,
    plan: reader.Plan,
    shards: dict[int, _Shard],
    report: CorpusReport,
    finish: Callable[[int, _Shard], None],
    qk: _QKSample,
) -> None:
    ray = require("ray")
    from tqdm import tqdm

    from visualizeai.corpus.worker import CorpusWorker

    t0 = time.perf_counter()
    with ray_session(options.ray_address, options.num_cpus, Path(options.out) / RAY_LOG) as session:
        report.ray_start_s = time.perf_counter() - t0
        workers, cpus, gpus = _worker_resources(settings, options.num_workers)
        load_options = {
            "device": "cuda" if gpus else "cpu",
            "dtype": settings.dtype,
            "offline": settings.offline,
            "allow_pickle": settings.allow_pickle,
        }
        block_options = {
            "batch_size": options.batch_size,
            "max_batch_bytes": options.max_batch_bytes,
            "long_texts": options.long_texts,
            "overlap": options.window_overlap,
            "qk_sample": options.qk_sample,
        }
        t1 = time.perf_counter()
        arguments = (spec, load_options, cpus)
        actors = _workers(ray, CorpusWorker, arguments, workers, cpus, gpus, keep=not session.started)
        ray.get([a.ready.remote() for a in actors])
        report.worker_start_s = time.perf_counter() - t1
        size = options.block or min(options.shard_size, BLOCK_BATCHES * options.batch_size)
        bar = tqdm(
            total=report.texts_run,
            unit="text",
            desc="corpus",
            disable=not options.progress,
            dynamic_ncols=True,
            smoothing=0.1,
            file=session.terminal,
        )
        in_flight: dict = {}  # ObjectRef -> (actor, shard, texts)
        load = [0] * workers
        t2 = time.perf_counter()

        def collect() -> None:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                actor, index, count = in_flight.pop(ref)
                load[actor] -= 1
                _, node, rows, sample = ray.get(ref)
                qk.add(sample)
                if not report.first_result_s:
                    report.first_result_s = time.perf_counter() - t2
                shard = shards[index]
                shard.parts.append(rows)
                shard.nodes[node] = shard.nodes.get(node, 0) + count
                report.nodes[node] = report.nodes.get(node, 0) + count
                shard.texts_left -= count
                bar.update(count)
                if shard.texts_left == 0:
                    finish(index, shards.pop(index))

        with bar:
            for task, (index, indices, texts) in enumerate(_blocks(plan, set(shards), size)):
                while min(load) >= options.in_flight:
                    collect()
                actor = load.index(min(load))
                options_now = {**block_options, "qk_below": qk.below()}  # the sample's bar, as it is now
                ref = actors[actor].process.remote(task, indices, texts, options_now)
                in_flight[ref] = (actor, index, len(texts))
                load[actor] += 1
                report.blocks += 1
            while in_flight:
                collect()
        report.process_s = time.perf_counter() - t2
        if shards:
            raise RuntimeError(f"shards {sorted(shards)[:10]} did not receive all their texts")


def _summarise(
    out: Path, manifest: dict, plan: reader.Plan, moments: _OrderedMoments, report: CorpusReport
) -> None:
    """Check every shard is on disk, then write the summary from the merged moments."""
    pq = require("pyarrow.parquet")
    missing = [k for k in range(plan.shards) if not _shard_done(out, manifest, k)]
    if missing or moments.next != plan.shards:
        raise RuntimeError(f"shards {missing[:10]} were not completed; run the same command again to resume")
    entries = [manifest["shards"][str(k)] for k in range(plan.shards)]
    truncated = sum(e.get("truncated", 0) for e in entries)
    report.truncated_texts = truncated
    report.windows = sum(e.get("windows", 0) for e in entries)
    meta = {
        "model": report.model,
        "revision": report.revision,
        "texts": report.texts,
        "skipped": report.skipped,
        "truncated_texts": truncated,
        "windows": report.windows,
    }
    table = summary_table(moments.total, meta)
    _write_atomic(out / SUMMARY, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    texts = window_texts(moments.extremes, reader.iter_texts(plan, min(moments.extremes.wanted(), default=0)))
    extremes = extremes_table(moments.extremes, texts, {"model": report.model, "revision": report.revision})
    _write_atomic(out / EXTREMES, lambda tmp: pq.write_table(extremes, tmp, compression="zstd"))
    manifest.update(
        complete=True,
        layers=report.layers,
        heads=report.heads,
        texts=report.texts,
        skipped=report.skipped,
        truncated_texts=truncated,
        windows=report.windows,
    )
    _write_json(out / MANIFEST, manifest)
