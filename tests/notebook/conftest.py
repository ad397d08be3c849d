"""The notebook tests: the browser tier's fixtures, and a widget bundle built from the current sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from browser.conftest import page, screenshot  # noqa: F401  (tests/ is on sys.path)

from visualizeai import notebook

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "src" / "visualizeai" / "web" / "static" / "js"


@pytest.fixture(scope="session", autouse=True)
def widget_bundle() -> Path:
    """static/dist/widget.js, rebuilt (``npm run build``) when it is missing or older than a module it
    bundles, so the tests never exercise a stale bundle."""
    sources = [p for folder in ("widget", "lib", "views") for p in (JS / folder).rglob("*.js")]
    bundle = notebook.BUNDLE
    if not bundle.is_file() or bundle.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"{bundle} is missing or stale and npm is not installed to build it")
        subprocess.run([npm, "run", "build"], cwd=ROOT, check=True, capture_output=True)
    return bundle
