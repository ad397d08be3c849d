"""The model catalog: a data table of ModelSpec rows, extendable by a user file or ``--model``."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from visualizeai import validation
from visualizeai.errors import InputError, ModelNotFound
from visualizeai.validation import HUB_ID_RE  # noqa: F401  (the hub's id grammar; re-exported)

KINDS = ("masked-lm", "causal-lm", "encoder")
SOURCES = ("embedded", "hub", "local")

# Which kind a checkpoint is, from the architecture class names saved in its config.json.
ARCHITECTURE_SUFFIX_KIND = (
    ("ForMaskedLM", "masked-lm"),
    ("ForPreTraining", "masked-lm"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
)


@dataclass(frozen=True)
class ModelSpec:
    """One catalog row.

    Attributes:
        id: what users type and what results are keyed by.
        source: "embedded" (a Python package ships the files), "hub" (a Hugging Face repo id) or "local".
        location: package name, hub repo id or directory, by source.
        kind: "masked-lm", "causal-lm" or "encoder"; None until read from the checkpoint's config.
    """

    id: str
    source: str
    location: str
    kind: str | None = None
    display_name: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(
                f"catalog entry {self.id!r}: source must be one of {SOURCES}, got {self.source!r}"
            )
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"catalog entry {self.id!r}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def label(self) -> str:
        return self.display_name or self.id


def embedded_path(package: str) -> Path:
    """Directory holding the HF-format files of an embedded model package."""
    module = importlib.import_module(package)
    return Path(module.get_model_path())


def kind_from_config(config: dict) -> str:
    """Model kind read from a config.json dict (architectures list), defaulting to encoder."""
    for arch in config.get("architectures") or ():
        for suffix, kind in ARCHITECTURE_SUFFIX_KIND:
            if arch.endswith(suffix):
                return kind
    return "encoder"


def _spec_from_row(row: dict, origin: str) -> ModelSpec:
    try:
        return ModelSpec(
            id=str(row["id"]),
            source=str(row.get("source", "hub")),
            location=str(row.get("location", row["id"])),
            kind=row.get("kind"),
            display_name=str(row.get("display_name", "")),
            notes=str(row.get("notes", "")),
        )
    except KeyError as exc:
        raise ValueError(f"{origin}: catalog entry without {exc.args[0]!r}: {row!r}") from None


def load_rows(path: Path | None = None) -> list[ModelSpec]:
    """Built-in catalog rows, then those of ``path`` (a JSON list of objects) overriding by id."""
    text = resources.files("visualizeai.models").joinpath("catalog.json").read_text(encoding="utf-8")
    specs = {row["id"]: _spec_from_row(row, "built-in catalog") for row in json.loads(text)}
    if path is not None:
        try:
            rows = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read catalog file {path}: {exc}") from None
        if not isinstance(rows, list):
            raise ValueError(f"catalog file {path} must hold a JSON list of model entries")
        for row in rows:
            spec = _spec_from_row(row, str(path))
            specs[spec.id] = spec
    return list(specs.values())


class Catalog:
    """Resolves what a user typed (catalog id, hub id or local directory) to a ModelSpec."""

    def __init__(self, specs: list[ModelSpec], allowed_roots: tuple[Path, ...] = ()):
        self._specs = {spec.id: spec for spec in specs}
        self._roots = tuple(Path(root).resolve() for root in allowed_roots)

    def __iter__(self):
        return iter(self._specs.values())

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._specs

    def add(self, spec: ModelSpec) -> None:
        self._specs[spec.id] = spec

    def resolve(self, name: str) -> ModelSpec:
        """The spec for ``name``; raises ModelNotFound / InputError with a message naming it."""
        name = validation.check_model_id(name)  # a string, not too long, no control characters
        if name in self._specs:
            return self._specs[name]
        if validation.looks_like_url(name):
            raise InputError(f"Model {name!r}: URLs are not accepted; give a hub id or a local directory.")
        looks_like_path = name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
        try:
            candidate = Path(name).expanduser()
            # a relative directory that exists wins over the hub id it looks like (and is checked as a path)
            if looks_like_path or candidate.is_dir():
                return self._local_spec(candidate, name)
        except (OSError, RuntimeError) as exc:  # too long for the file system, symlink loop, unknown ~user
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise InputError(f"Model {name!r} cannot be used as a model directory ({reason}).") from None
        if validation.is_hub_id(name):
            return ModelSpec(id=name, source="hub", location=name)
        raise ModelNotFound(
            f"Model {name!r} is neither in the catalog, nor a valid hub id, nor a model directory."
        )

    def _local_spec(self, candidate: Path, name: str) -> ModelSpec:
        resolved = candidate.resolve()  # follows symlinks, so a link out of the roots is caught below
        if not self._inside_roots(resolved):
            raise InputError(
                f"Model directory {name!r} is outside the allowed model directories; "
                "add its parent with --allowed-root or VISUALIZEAI_ALLOWED_ROOTS."
            )
        self._check_links(resolved, name)
        if not (resolved / "config.json").is_file():
            raise ModelNotFound(
                f"Model directory {name!r} has no config.json (not a Hugging Face model folder)."
            )
        try:
            config = json.loads((resolved / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelNotFound(f"Model directory {name!r}: config.json is unreadable ({exc}).") from None
        return ModelSpec(
            id=str(resolved),
            source="local",
            location=str(resolved),
            kind=kind_from_config(config),
            display_name=resolved.name,
        )

    def _inside_roots(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self._roots)

    def _check_links(self, directory: Path, name: str) -> None:
        """Refuse a model directory holding a symlink that leads out of the allowed roots (a config.json or
        weights file pointing elsewhere), before any file in it is read."""
        if not directory.is_dir():
            return
        for entry in directory.iterdir():
            if entry.is_symlink() and not self._inside_roots(entry.resolve()):
                raise InputError(
                    f"Model directory {name!r}: {entry.name} is a link to a file outside the allowed model "
                    "directories; copy the file in, or add its directory with --allowed-root."
                )
