"""Checks of what people send (texts, model ids), each failing with an InputError a person can act on.

Used by the service, the catalog and the web layer alike, so the CLI and the API refuse the same inputs with
the same words.
"""

from __future__ import annotations

import re

from visualizeai.errors import InputError

EMPTY_TEXT = "Text is empty: type or paste something to analyse."
MAX_MODEL_ID_CHARS = 1024  # longer than any hub id (2 × 96 + 1) and than most model directory paths

# C0 control characters other than tab, newline and carriage return (NUL included), and lone UTF-16
# surrogates, which JSON "\ud800" escapes can produce but which are not Unicode text.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_FORBIDDEN_IN_IDS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # ids have no business with any control

# The Hugging Face hub's repository-id grammar (huggingface_hub.utils.validate_repo_id): an optional
# namespace and a name, each 1–96 of [A-Za-z0-9_.-], starting and ending with [A-Za-z0-9_], without "--" or
# "..", not ending in ".git". (The hub's own regex uses \w, which in Python also matches non-ASCII letters;
# the hub itself only accepts ASCII names.)
_HUB_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
HUB_ID_RE = re.compile(rf"^(?:{_HUB_PART}/)?{_HUB_PART}$")
# "https://…", "file:/etc", "javascript:…": a scheme in front of a colon.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"an unpaired surrogate {code} (not valid Unicode)"
    return f"the control character {code}" + (" (NUL)" if char == "\x00" else "")


def find_forbidden(text: str, pattern: re.Pattern = _FORBIDDEN) -> tuple[int, str] | None:
    """(index, character) of the first character of ``text`` that ``pattern`` forbids, or None."""
    match = pattern.search(text)
    return (match.start(), match.group()) if match else None


def check_text(text: object, max_chars: int, *, what: str = "Text") -> str:
    """``text`` unchanged if it can be analysed; else an InputError saying what is wrong and where.

    Refused: anything but a string, empty or whitespace-only text, more than ``max_chars`` characters, C0
    control characters other than tab, newline and carriage return (NUL included), and unpaired surrogates.
    """
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, not {type(text).__name__}.")
    if not text.strip():
        raise InputError(EMPTY_TEXT if what == "Text" else f"{what} is empty.")
    if len(text) > max_chars:
        raise InputError(f"{what} is {len(text):,} characters long; the limit is {max_chars:,}.")
    if (found := find_forbidden(text)) is not None:
        index, char = found
        where = f"at position {index + 1:,} of {len(text):,}"
        if char >= "\ud800":  # a surrogate
            raise InputError(f"{what} contains {_describe(char)} {where}; remove it.")
        raise InputError(
            f"{what} contains {_describe(char)} {where}; remove it (tab, newline and carriage return are the "
            "only control characters allowed)."
        )
    return text


def check_model_id(name: object) -> str:
    """``name`` stripped of surrounding whitespace, if it may name a model at all (catalog id, hub id or
    directory); refuses non-strings, empty or overlong names and control characters."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("Model id is empty.")
    name = name.strip()
    if len(name) > MAX_MODEL_ID_CHARS:
        raise InputError(
            f"Model id is {len(name):,} characters long; a catalog id, hub id or directory has at most "
            f"{MAX_MODEL_ID_CHARS:,}."
        )
    if (found := find_forbidden(name, _FORBIDDEN_IN_IDS)) is not None:
        index, char = found
        raise InputError(f"Model id contains {_describe(char)} at position {index + 1:,}; remove it.")
    return name


def looks_like_url(name: str) -> bool:
    """True for "scheme:…" names (https://, file:, javascript:, hf:…), which are never loaded."""
    return "://" in name or bool(_URL_RE.match(name))


def is_hub_id(name: str) -> bool:
    """True if ``name`` follows the hub's repository-id grammar (see ``HUB_ID_RE``)."""
    return bool(HUB_ID_RE.match(name)) and ".." not in name and "--" not in name and not name.endswith(".git")
