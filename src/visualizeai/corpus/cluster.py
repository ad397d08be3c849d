"""The corpus job's Ray: connect to a cluster, or start a quiet local one that never outlives the driver.

``ray_session`` is the one entry point. A local cluster gets a fresh temporary directory, no dashboard, a
token of its own (``RAY_AUTH_MODE=token`` with a random ``RAY_AUTH_TOKEN`` for this process, unless the
person set ``RAY_AUTH_MODE`` themselves: Ray then neither warns nor writes ``~/.ray/auth_token``) and a
watchdog (``corpus.watchdog``) that kills every process of the cluster once the driver is gone, however it
went.
While Ray runs, the driver's standard error (file descriptor 2, where Ray's Python and C++ logging write)
goes to a log file in the output directory; the progress bar writes to the real terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from visualizeai.corpus.watchdog import MARKER_VARIABLE
from visualizeai.errors import InputError
from visualizeai.extras import require

AUTH_HINT = (
    " If the cluster uses token authentication (Ray's default from 2.52), give the driver its token: "
    "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=… (or RAY_AUTH_TOKEN_PATH=file) in the environment."
)


@dataclass
class Session:
    """A Ray the job is connected to: ``started`` when this process started it (then it is stopped at the
    end), and the stream the progress bar should write to."""

    started: bool
    terminal: io.TextIOBase
    temp_dir: str | None = None


@contextlib.contextmanager
def stderr_to(path: Path | None) -> Iterator[io.TextIOBase]:
    """Send file descriptor 2 to ``path`` (appending) inside the block; yields a stream on the real one."""
    if path is None:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    try:
        yield terminal
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        terminal.close()


def _start_watchdog(marker: str, temp_dir: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != MARKER_VARIABLE}
    return subprocess.Popen(
        [sys.executable, "-m", "visualizeai.corpus.watchdog", marker, str(os.getpid()), temp_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the terminal's process group: a Ctrl-C does not stop it
        env=env,
    )


def use_own_token() -> None:
    """Give local clusters of this process a token of their own, unless the person chose a mode.

    Ray reads the mode and token when it is first imported and keeps them, so they are set once, before
    that, and left in place for the life of the process (every local cluster it starts uses them). If Ray
    was imported earlier with no mode set, Ray's own default applies (a token in ``~/.ray/auth_token``).
    """
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` inside the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None, log_path: Path | None) -> Iterator[Session]:
    """Connect to ``address``, or start a local cluster with ``num_cpus`` CPUs (default all), for the block.

    A Ray already initialised in this process is used as it is (and left running). Ray's own output goes to
    ``log_path`` while the block runs.
    """
    if not address:
        use_own_token()
    ray = require("ray")
    if ray.is_initialized():
        yield Session(False, sys.stderr)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report (and no network) by default
    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    with stderr_to(log_path) as terminal:
        if address:
            try:
                ray.init(address=address, **common)
            except Exception as exc:  # connection, authentication and version errors alike
                raise InputError(
                    f"Cannot connect to the Ray cluster at {address!r}: {exc}.{AUTH_HINT}"
                ) from None
            try:
                yield Session(True, terminal)
            finally:
                ray.shutdown()
            return
        temp_dir = tempfile.mkdtemp(prefix="vai-ray-")  # short: Ray's socket paths must fit 107 bytes
        marker = secrets.token_hex(8)
        watchdog = _start_watchdog(marker, temp_dir)
        try:
            with _environment({MARKER_VARIABLE: marker}):
                # "local" always starts a new cluster, never one a `ray start` left on this machine
                ray.init(
                    address="local", num_cpus=num_cpus or os.cpu_count() or 1, _temp_dir=temp_dir, **common
                )
            try:
                yield Session(True, terminal, temp_dir)
            finally:
                ray.shutdown()
        finally:
            watchdog.stdin.close()  # the watchdog now stops whatever is left, and removes temp_dir
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=30)


def start_ray(address: str | None = None, num_cpus: int | None = None) -> contextlib.ExitStack:
    """A Ray session held open until the returned stack is closed (tests and benchmarks share one)."""
    stack = contextlib.ExitStack()
    stack.enter_context(ray_session(address, num_cpus, None))
    return stack
