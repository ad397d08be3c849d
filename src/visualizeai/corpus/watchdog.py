"""Stops every process of a local Ray cluster once the corpus driver that started it is gone.

Run as ``python -m visualizeai.corpus.watchdog MARKER DRIVER_PID TEMP_DIR`` in its own session, with its
stdin a pipe whose only writer is the driver. Reading stdin returns when the driver closes the pipe or dies
in any way (SIGKILL included), because the kernel closes a dead process's files. The watchdog then kills
every process whose environment holds ``VISUALIZEAI_CORPUS_RUN=MARKER`` (the cluster's GCS, raylet,
agents and workers inherit it from the driver) or that has a file open under TEMP_DIR (their logs), waits
until none is left or ``DEADLINE_S`` has passed, and removes the cluster's temporary directory. Linux only
(it reads ``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

MARKER_VARIABLE = "VISUALIZEAI_CORPUS_RUN"
DEADLINE_S = 20.0


def _state(entry: Path) -> str:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]


def _uses(entry: Path, directory: str) -> bool:
    """The process has a file under ``directory`` open (Ray's processes keep their logs there)."""
    for fd in (entry / "fd").iterdir():
        try:
            if os.readlink(fd).startswith(directory):
                return True
        except OSError:
            continue
    return False


def marked_processes(marker: str, exclude: set[int] = frozenset(), directory: str = "") -> list[int]:
    """Live processes (zombies aside) of the cluster: ``MARKER_VARIABLE=marker`` in their environment, or
    a file under ``directory`` open. Both are needed: a process that renames itself (``setproctitle``, as
    Ray's agents and workers do) may overwrite the memory its environment is read from."""
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    directory = os.path.join(directory, "") if directory else ""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            ours = needle in (entry / "environ").read_bytes().split(b"\0")
            ours = ours or (bool(directory) and _uses(entry, directory))
            if ours and _state(entry) not in ("Z", "X"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return found


def stop_marked(
    marker: str, exclude: set[int], directory: str = "", deadline_s: float = DEADLINE_S
) -> list[int]:
    """SIGKILL every process of the cluster until none is left; returns those still alive at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        left = marked_processes(marker, exclude, directory)
        if not left or time.monotonic() > end:
            return left
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    marker, driver, temp_dir = argv[0], int(argv[1]), argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the driver must not stop the cleanup
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except OSError:
        pass
    if Path("/proc").is_dir():
        stop_marked(marker, {os.getpid(), driver}, temp_dir)
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
