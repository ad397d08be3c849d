"""The corpus pipeline: read, shard, run on Ray Data, write shards atomically, summarise; resumable.

Output directory layout::

    DIR/manifest.json              fingerprint of the run's arguments, and the finished shards
    DIR/texts/shard-00000.parquet  per-text rows of texts 0 … shard_size-1 (schema.TEXT_ROWS_SCHEMA)
    DIR/summary.parquet            per-(layer, head, statistic) mean, std, count (schema.SUMMARY_SCHEMA)

Shard k holds the texts whose index lies in ``[k · shard_size, (k + 1) · shard_size)``. A shard file is
written to a temporary name and renamed when complete, then recorded in the manifest, so a killed run leaves
only whole shards; a restart with the same arguments skips them and the summary is computed from the shard
files at the end, so no text is lost or counted twice. The fingerprint covers what changes the numbers
(model id and revision, the input's size and SHA-256, text field, shard size, dtype, statistic names), not
batch size or workers: those may change between a run and its restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.config import Settings
from visualizeai.corpus.batching import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH_BYTES
from visualizeai.corpus.reader import DEFAULT_TEXT_FIELD, Corpus, file_identity, read_corpus
from visualizeai.corpus.schema import TEXT_ROWS_SCHEMA
from visualizeai.corpus.summary import Moments, summary_table, table_moments
from visualizeai.errors import InputError, ModelUnavailable
from visualizeai.models.catalog import Catalog, ModelSpec, load_rows

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUMMARY = "summary.parquet"
TEXTS_DIR = "texts"
LOCK = ".lock"
MANIFEST_FORMAT = "visualizeai-corpus-run"
MANIFEST_VERSION = 1
DEFAULT_SHARD_SIZE = 2048
WINDOW_BATCHES = 8  # texts per Ray task = this many batches: sorted by length within it


@dataclass(frozen=True)
class CorpusOptions:
    """Arguments of one corpus run (``visualizeai corpus``).

    Attributes:
        input: .txt / .jsonl / .parquet file; out: the output directory.
        model: catalog id, hub id or local directory (None: the settings' default model).
        batch_size: texts per forward pass (fewer when long texts would exceed ``max_batch_bytes``).
        shard_size: texts per output shard, the unit of resumption.
        window: texts per Ray Data task, sorted by length inside (default ``WINDOW_BATCHES`` batches).
        num_workers: model replicas (Ray actors); default one per GPU, or one on CPU.
        ray_address: an existing Ray cluster; None starts a local one in-process.
        num_cpus: CPUs of the local Ray (default: all).
    """

    input: Path
    out: Path
    model: str | None = None
    text_field: str = DEFAULT_TEXT_FIELD
    batch_size: int = DEFAULT_BATCH_SIZE
    shard_size: int = DEFAULT_SHARD_SIZE
    window: int | None = None
    num_workers: int | None = None
    ray_address: str | None = None
    num_cpus: int | None = None
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "shard_size", "window", "num_workers", "num_cpus"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")


@dataclass
class CorpusReport:
    """What a run did, and how long its parts took (seconds)."""

    out: Path
    summary_path: Path
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
    ray_start_s: float = 0.0
    first_result_s: float = 0.0  # from submitting the dataset to the first rows (workers start, load)
    process_s: float = 0.0  # from submitting the dataset to the last rows
    total_s: float = 0.0
    windows: int = 0

    @property
    def texts_per_s(self) -> float:
        """Rate of this run's texts, worker start-up included."""
        return self.texts_run / self.process_s if self.process_s > 0 else math.nan


@dataclass
class _Shard:
    index: int
    positions: np.ndarray  # positions into Corpus.texts
    rows: int = 0
    parts: list[pa.Table] = field(default_factory=list)


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


def _shard_done(out: Path, manifest: dict, shard: _Shard, per_text: int) -> bool:
    entry = manifest["shards"].get(str(shard.index))
    path = shard_path(out, shard.index)
    if entry is None or not path.exists():
        return False
    try:
        rows = pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError):
        return False
    return rows == shard.positions.size * per_text == entry.get("rows")


# ---- Ray ---------------------------------------------------------------------------------------------------


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address`` or start a quiet local Ray; False when Ray was already running here."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report (and no network) by default
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"Cannot connect to the Ray cluster at {address!r}: {exc}") from None
    else:
        # "local" always starts a new in-process cluster, never one a `ray start` left on this machine
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **common)
    return True


def _quiet_ray_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours is the one progress bar
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def _worker_resources(settings: Settings, num_workers: int | None) -> tuple[int, int, float]:
    """(workers, CPUs per worker, GPUs per worker) for the Ray cluster we are connected to."""
    import ray

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


def _windows(corpus: Corpus, shards: list[_Shard], size: int) -> list[pa.Table]:
    out = []
    for shard in shards:
        for start in range(0, shard.positions.size, size):
            positions = shard.positions[start : start + size]
            out.append(
                pa.table(
                    {
                        "text_index": corpus.indices[positions],
                        "text": pa.array([corpus.texts[p] for p in positions], pa.large_string()),
                    }
                )
            )
    return out


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
    settings = settings or Settings.from_env()
    corpus = read_corpus(options.input, options.text_field)
    spec, directory = resolve_model(settings, options.model)
    from visualizeai.models.hub import revision_of

    revision = revision_of(spec, directory)
    layers, heads = model_grid(directory)
    per_text = layers * heads
    inputs = {
        "model": spec.id,
        "revision": revision,
        "input_size": (identity := file_identity(options.input))["size"],
        "input_sha256": identity["sha256"],
        "text_field": options.text_field,
        "shard_size": options.shard_size,
        "dtype": settings.dtype,
        "statistics": list(STAT_NAMES),
    }
    fingerprint = fingerprint_of(inputs)
    out = Path(options.out)
    manifest, lock = _open_out(out, fingerprint, inputs)
    try:
        manifest["input"] = {"path": identity["path"], "mtime_ns": identity["mtime_ns"]}
        shard_count = max(1, math.ceil(corpus.records / options.shard_size))
        shard_of = corpus.indices // options.shard_size
        bounds = np.searchsorted(shard_of, np.arange(shard_count + 1))
        shards = [_Shard(k, np.arange(bounds[k], bounds[k + 1])) for k in range(shard_count)]
        pending = [s for s in shards if not _shard_done(out, manifest, s, per_text)]
        report = CorpusReport(
            out=out,
            summary_path=out / SUMMARY,
            model=spec.id,
            revision=revision,
            layers=layers,
            heads=heads,
            texts=len(corpus),
            skipped=corpus.skipped,
            truncated_texts=0,
            shards=shard_count,
            shards_run=len(pending),
            texts_run=int(sum(s.positions.size for s in pending)),
        )

        def finish(shard: _Shard) -> None:
            table = pa.concat_tables(shard.parts) if shard.parts else TEXT_ROWS_SCHEMA.empty_table()
            table = table.sort_by(
                [("text_index", "ascending"), ("layer", "ascending"), ("head", "ascending")]
            )
            path = shard_path(out, shard.index)
            _write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
            shard.parts = []
            manifest["shards"][str(shard.index)] = {
                "file": str(path.relative_to(out)),
                "rows": table.num_rows,
                "texts": int(shard.positions.size),
            }
            _write_json(out / MANIFEST, manifest)
            if on_shard_done is not None:
                on_shard_done(shard.index)

        for shard in [s for s in pending if s.positions.size == 0]:
            finish(shard)
        work = [s for s in pending if s.positions.size]
        if work:
            _run_ray(options, settings, spec, corpus, work, per_text, report, finish)
        _summarise(out, manifest, shards, layers, heads, report)
    finally:
        lock.close()
    report.total_s = time.perf_counter() - started
    return report


def _run_ray(
    options: CorpusOptions,
    settings: Settings,
    spec: ModelSpec,
    corpus: Corpus,
    work: list[_Shard],
    per_text: int,
    report: CorpusReport,
    finish: Callable[[_Shard], None],
) -> None:
    import ray
    import ray.data
    from tqdm import tqdm

    from visualizeai.corpus.worker import CorpusWorker

    t0 = time.perf_counter()
    started_here = start_ray(options.ray_address, options.num_cpus)
    report.ray_start_s = time.perf_counter() - t0
    try:
        _quiet_ray_data()
        workers, cpus, gpus = _worker_resources(settings, options.num_workers)
        window = options.window or min(options.shard_size, WINDOW_BATCHES * options.batch_size)
        blocks = _windows(corpus, work, window)
        report.windows = len(blocks)
        load_options = {
            "device": "cuda" if gpus else "cpu",
            "dtype": settings.dtype,
            "offline": settings.offline,
            "allow_pickle": settings.allow_pickle,
        }
        dataset = ray.data.from_arrow(blocks).map_batches(
            CorpusWorker,
            batch_size=None,
            batch_format="pyarrow",
            zero_copy_batch=True,
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={
                "spec": spec,
                "load_options": load_options,
                "batch_size": options.batch_size,
                "max_batch_bytes": options.max_batch_bytes,
                "threads": cpus,
            },
            num_cpus=cpus,
            num_gpus=gpus,
        )
        by_index = {s.index: s for s in work}
        total_rows = 0
        bar = tqdm(
            total=report.texts_run,
            unit="text",
            desc="corpus",
            disable=not options.progress,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        t1 = time.perf_counter()
        blocks_out = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))
        with bar, contextlib.closing(blocks_out):  # closing stops the Ray Data execution on an early exit
            for block in blocks_out:
                if block.num_rows == 0:
                    continue
                if total_rows == 0:
                    report.first_result_s = time.perf_counter() - t1
                shard_ids = block["text_index"].to_numpy() // options.shard_size
                for k in np.unique(shard_ids):
                    shard = by_index[int(k)]
                    part = block.filter(pa.array(shard_ids == k))
                    shard.parts.append(part)
                    shard.rows += part.num_rows
                    if shard.rows == shard.positions.size * per_text:
                        finish(shard)
                    elif shard.rows > shard.positions.size * per_text:
                        raise RuntimeError(f"shard {shard.index} received more rows than it has texts")
                total_rows += block.num_rows
                bar.update(total_rows // per_text - bar.n)
        report.process_s = time.perf_counter() - t1
    finally:
        if started_here:
            ray.shutdown()


def _summarise(
    out: Path, manifest: dict, shards: list[_Shard], layers: int, heads: int, report: CorpusReport
) -> None:
    """Check every shard is on disk, then write the summary from the shard files."""
    per_text = layers * heads
    missing = [s.index for s in shards if not _shard_done(out, manifest, s, per_text)]
    if missing:
        raise RuntimeError(f"shards {missing[:10]} were not completed; run the same command again to resume")
    moments = Moments.empty(layers, heads)
    truncated = 0
    for shard in shards:
        table = pq.read_table(shard_path(out, shard.index))
        moments = moments.merge(table_moments(table, layers, heads))
        first = table.filter(pa.array((table["layer"].to_numpy() == 0) & (table["head"].to_numpy() == 0)))
        truncated += int((first["dropped_tokens"].to_numpy() > 0).sum())
    report.truncated_texts = truncated
    meta = {
        "model": report.model,
        "revision": report.revision,
        "texts": report.texts,
        "skipped": report.skipped,
        "truncated_texts": truncated,
    }
    table = summary_table(moments, meta)
    _write_atomic(out / SUMMARY, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    manifest.update(
        complete=True,
        layers=layers,
        heads=heads,
        texts=report.texts,
        skipped=report.skipped,
        truncated_texts=truncated,
    )
    _write_json(out / MANIFEST, manifest)
