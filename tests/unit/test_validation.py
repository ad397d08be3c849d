"""Input checks (validation.py) and the model-id rules of the catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from huggingface_hub.utils import HFValidationError, validate_repo_id
from hypothesis import given, settings
from hypothesis import strategies as st

from visualizeai import validation
from visualizeai.errors import InputError, ModelNotFound
from visualizeai.models.catalog import Catalog, ModelSpec

# ---- texts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Text is empty"),
        (" \t\n\r ", "Text is empty"),
        ("x" * 11, "11 characters long; the limit is 10"),
        ("ab\x00c", "U+0000 (NUL) at position 3 of 4"),
        ("\x07bell", "U+0007 at position 1 of 5"),
        ("esc\x1b[31m", "U+001B at position 4"),
        ("form\x0cfeed", "U+000C at position 5"),
        ("lone \ud800", "unpaired surrogate U+D800 (not valid Unicode) at position 6"),
        (12, "must be a string, not int"),
        (None, "must be a string, not NoneType"),
    ],
)
def test_bad_texts_are_refused_with_what_and_where(text, fragment):
    with pytest.raises(InputError) as info:
        validation.check_text(text, max_chars=10)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text", ["tab\there", "new\nline", "cr\r\nlf", "ünïcödé ✓ 注意", "del\x7f", "x" * 20]
)
def test_allowed_texts_pass_unchanged(text):
    assert validation.check_text(text, max_chars=20) is text


def test_text_limit_counts_characters_not_bytes():
    assert validation.check_text("é" * 10, max_chars=10)  # 20 bytes in UTF-8, 10 characters


# ---- model ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("a" * 1025, "1,025 characters long"),
        ("bert\x00x", "U+0000 (NUL) at position 5"),
        ("bert\nbase", "U+000A at position 5"),
    ],
)
def test_bad_model_ids(name, fragment):
    with pytest.raises(InputError) as info:
        validation.check_model_id(name)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "gpt2",
        "bert-base-uncased",
        "google-bert/bert-base-uncased",
        "sentence-transformers/all-MiniLM-L6-v2",
        "_private",
        "a.b_c-d",
        "x" * 96,
        f"{'n' * 96}/{'m' * 96}",
    ],
)
def test_valid_hub_ids(name):
    assert validation.is_hub_id(name)
    validate_repo_id(name)  # the hub client agrees


@pytest.mark.parametrize(
    "name",
    [
        "-lead",
        "trail-",
        ".hidden",
        "trail.",
        "a--b",
        "a..b",
        "repo.git",
        "x" * 97,
        "a/b/c",
        "/abs",
        "org/",
        "/name",
        "sp ace",
        "naïve",  # the hub's \w would take it; the hub itself only has ASCII names
        "a:b",
    ],
)
def test_invalid_hub_ids(name):
    assert not validation.is_hub_id(name)


HUB_ALPHABET = st.sampled_from(list("aZ09_.-/") + ["é"])


@settings(max_examples=400, deadline=None)
@given(st.text(HUB_ALPHABET, min_size=1, max_size=12) | st.from_regex(validation.HUB_ID_RE, fullmatch=True))
def test_hub_grammar_matches_huggingface_hub(name):
    """Ours accepts exactly what huggingface_hub.validate_repo_id accepts, among ASCII names."""
    try:
        validate_repo_id(name)
        hub_accepts = True
    except HFValidationError:
        hub_accepts = False
    if name.isascii():
        assert validation.is_hub_id(name) == hub_accepts, name
    else:
        assert not validation.is_hub_id(name)


@pytest.mark.parametrize(
    "name",
    [
        "https://evil.example/model",
        "http://x/y",
        "file:///etc/passwd",
        "file:/etc",
        "hf://org/model",
        "javascript:alert(1)",
        "C:model",
    ],
)
def test_urls_are_recognised(name):
    assert validation.looks_like_url(name)


# ---- the catalog's model-id rules: refused before anything is read -----------------------------------------


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """root/ (the allowed root, and the working directory) and outside/ with a model directory in each."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    _model_dir(root / "models" / "tiny")
    _model_dir(outside / "secret")
    monkeypatch.chdir(root)
    return root, outside


@pytest.fixture
def reads(monkeypatch):
    """Every path whose contents or listing the code under test reads."""
    seen: list[Path] = []
    for method in ("read_text", "read_bytes", "open", "iterdir"):
        original = getattr(Path, method)

        def spy(self, *args, _original=original, **kwargs):
            seen.append(Path(os.path.abspath(self)))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Path, method, spy)
    return seen


def _catalog(*roots: Path) -> Catalog:
    return Catalog([ModelSpec(id="tiny-catalog", source="local", location="/nowhere")], roots)


@pytest.mark.parametrize(
    "name",
    [
        "../outside/secret",
        "models/../../outside/secret",
        "./../outside/secret",
        "{outside}/secret",
        "~",
        "~/",
        "models/escape",  # a symlink inside the root to a directory outside it
        "models/escape/",
    ],
)
def test_paths_out_of_the_roots_are_refused_unread(tree, reads, name):
    root, outside = tree
    (root / "models" / "escape").symlink_to(outside / "secret", target_is_directory=True)
    with pytest.raises(InputError, match="outside the allowed model directories"):
        _catalog(root).resolve(name.format(outside=outside))
    assert not [p for p in reads if p.is_relative_to(outside)]


def test_a_file_linked_out_of_the_roots_is_refused_unread(tree, reads):
    root, outside = tree
    model = _model_dir(root / "models" / "linked")
    (model / "config.json").unlink()
    (model / "config.json").symlink_to(outside / "secret" / "config.json")
    with pytest.raises(InputError, match="config.json is a link to a file outside"):
        _catalog(root).resolve("models/linked")
    assert not [p for p in reads if p.is_relative_to(outside)]


def test_links_within_the_roots_are_fine(tree):
    root, _ = tree
    (root / "models" / "alias").symlink_to(root / "models" / "tiny", target_is_directory=True)
    spec = _catalog(root).resolve("models/alias")
    assert spec.source == "local" and spec.location == str(root / "models" / "tiny")


@pytest.mark.parametrize(
    "name",
    ["https://evil.example/model", "file:///etc/passwd", "file:/etc", "hf://org/model", "javascript:x"],
)
def test_urls_are_refused_unread(tree, reads, name):
    with pytest.raises(InputError, match="URLs are not accepted"):
        _catalog(tree[0]).resolve(name)
    assert reads == []


def test_hub_looking_id_that_is_a_relative_directory_is_a_path(tree, tmp_path):
    """'models/tiny' exists under the working directory: it is that directory, checked against the roots,
    not the hub repository 'models/tiny'."""
    root, _ = tree
    spec = _catalog(root).resolve("models/tiny")
    assert (spec.source, spec.location, spec.kind) == ("local", str(root / "models" / "tiny"), "masked-lm")
    with pytest.raises(InputError, match="outside the allowed model directories"):
        _catalog(tmp_path / "elsewhere").resolve("models/tiny")


def test_hub_ids_and_catalog_ids(tree):
    catalog = _catalog(tree[0])
    assert catalog.resolve("tiny-catalog").location == "/nowhere"
    assert catalog.resolve(" org/some-model ").source == "hub"
    with pytest.raises(ModelNotFound, match="neither in the catalog, nor a valid hub id"):
        catalog.resolve("no such model!")
    with pytest.raises(ModelNotFound, match="neither"):
        catalog.resolve("trailing-")


@pytest.mark.parametrize("name", ["a" * 300, "a" * 300 + "/b", "./" + "a" * 300, "~nosuchuser12345/x"])
def test_unusable_directory_names_are_input_errors(tree, name):
    with pytest.raises(InputError):
        _catalog(tree[0]).resolve(name)


def test_symlink_loop_is_an_input_error(tree):
    root, _ = tree
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(InputError):
        _catalog(root).resolve("./loop")


def test_no_trust_remote_code_anywhere():
    """Remote code is never enabled: every mention in the sources is an explicit False."""
    src = Path(__file__).resolve().parents[2] / "src"
    mentions = [
        (path.name, line.strip())
        for path in src.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if "trust_remote_code" in line
    ]
    assert mentions, "loading should pass trust_remote_code=False explicitly"
    assert all("trust_remote_code=False" in line for _, line in mentions), mentions
