"""What was analysed under each result key: the model and the text, kept longer than the results themselves.

A result is large (its attention), so the result cache holds few; an input is small, so many more are kept.
When a result has been evicted, its page can still say what it was and offer to run it again. Bounded by count
and by bytes (``Settings.inputs_store_size`` / ``inputs_store_bytes``), least recently used first out.
"""

from __future__ import annotations

from dataclasses import dataclass

from visualizeai.cache import BoundedLRU

ENTRY_OVERHEAD = 256  # bytes counted per entry beside its text and model id (key, tuple, dict slot)


@dataclass(frozen=True)
class Inputs:
    """The input of one analysis: ``model`` is the catalog id it resolved to, ``text`` the text analysed."""

    model: str
    text: str


def _inputs_bytes(inputs: Inputs) -> int:
    return len(inputs.text.encode("utf-8")) + len(inputs.model.encode("utf-8")) + ENTRY_OVERHEAD


class InputsStore:
    """Result key → ``Inputs``, bounded by ``max_items`` and ``max_bytes``; thread-safe."""

    def __init__(self, max_items: int, max_bytes: int):
        self._entries: BoundedLRU[Inputs] = BoundedLRU(max_items, max_bytes, _inputs_bytes)

    def remember(self, key: str, model: str, text: str) -> None:
        self._entries.put(key, Inputs(model, text))

    def get(self, key: str) -> Inputs | None:
        return self._entries.get(key)

    def keys(self) -> list[str]:
        return self._entries.keys()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._entries.nbytes
