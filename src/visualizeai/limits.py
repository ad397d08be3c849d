"""Concurrency caps: at most N of a kind of work at once, and one more is refused at once, never queued.

A request over a cap gets ``Busy`` (503 with ``Retry-After``) instead of waiting in a worker thread, so heavy
work can never occupy the threadpool that cheap requests (the model list, pages, cached results) need too.
Starlette runs sync handlers and streamed iterators in anyio's threadpool of ``THREADPOOL_THREADS``; the caps
together must leave room in it (``check_caps``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from visualizeai.errors import VisualizeAIError

THREADPOOL_THREADS = 40  # anyio's default thread limiter, which Starlette's run_in_threadpool uses
CHEAP_THREADS = 8  # threads the caps leave free for cheap requests at the least
BUSY_ERROR = (
    "The server is busy: {size} {what} are already running, the most allowed at once ({setting}); try again "
    "in {retry} s."
)
CAPS_ERROR = (
    "{names} allow {total} threads at once, but the worker threadpool has {threads} and cheap requests need "
    "{cheap} of them: lower the caps."
)


class Busy(VisualizeAIError):
    """A cap is full; ``retry_after_s`` says when to try again (the ``Retry-After`` header)."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Slot:
    """One place under a cap, released once however many times ``release`` is called."""

    def __init__(self, limit: Limit):
        self._limit: Limit | None = limit
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            limit, self._limit = self._limit, None
        if limit is not None:
            limit._release()

    @property
    def held(self) -> bool:
        return self._limit is not None


class Limit:
    """A non-blocking semaphore: ``acquire`` returns a ``Slot`` or raises ``Busy`` naming the cap.

    Args:
        what: the work in plain words, plural ("heavy computations").
        size: how many may run at once (at least 1).
        setting: the environment variable that sets ``size``, named in the message.
        retry_after_s: the ``Retry-After`` a refusal carries.
    """

    def __init__(self, what: str, size: int, setting: str, retry_after_s: int):
        if size < 1:
            raise ValueError(f"{setting} must be at least 1; got {size}")
        self.what, self.size, self.setting, self.retry_after_s = what, size, setting, retry_after_s
        self._free = threading.Semaphore(size)
        self._lock = threading.Lock()
        self._in_use = 0

    def try_acquire(self) -> Slot | None:
        """A slot, or None when all ``size`` are taken; never waits."""
        if not self._free.acquire(blocking=False):
            return None
        with self._lock:
            self._in_use += 1
        return Slot(self)

    def acquire(self) -> Slot:
        """A slot, or ``Busy`` at once when all are taken."""
        slot = self.try_acquire()
        if slot is None:
            message = BUSY_ERROR.format(
                size=self.size, what=self.what, setting=self.setting, retry=self.retry_after_s
            )
            raise Busy(message, self.retry_after_s)
        return slot

    @contextmanager
    def hold(self) -> Iterator[Slot]:
        """A slot for the ``with`` block (``Busy`` when none is free)."""
        slot = self.acquire()
        try:
            yield slot
        finally:
            slot.release()

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._in_use

    def _release(self) -> None:
        with self._lock:
            self._in_use -= 1
        self._free.release()


class Held(Iterator):
    """``items`` iterated while ``slot`` is held: released when they end or fail, when closed, or when this
    object is dropped unstarted (a client that went away before the first item)."""

    def __init__(self, items: Iterable, slot: Slot):
        self._items = iter(items)
        self._slot = slot

    def __next__(self):
        try:
            return next(self._items)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
        finally:
            self._slot.release()

    def __del__(self) -> None:
        self._slot.release()


def check_caps(caps: dict[str, int], threads: int = THREADPOOL_THREADS, cheap: int = CHEAP_THREADS) -> None:
    """ValueError when the caps (setting name -> size) together leave fewer than ``cheap`` of ``threads``."""
    total = sum(caps.values())
    if total > threads - cheap:
        names = " + ".join(f"{name} ({size})" for name, size in caps.items())
        raise ValueError(CAPS_ERROR.format(names=names, total=total, threads=threads, cheap=cheap))
