"""The wheel is self-contained: built from a fresh clone of HEAD (its build hook runs npm), installed into a
bare directory, `python -m visualizeai serve` serves every page and every asset the pages reach.

Builds with pip's build isolation, as a user would: the build backend (hatchling) comes from the package
index, as it does for the Makefile's editable install. Only committed files are tested (the clone is of HEAD).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from ports import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAGES = (
    "/",
    "/analysis?text=The+cat+sat+on+the+mat.",
    "/compare",
    "/compare?mode=models",
    "/corpus",
    "/docs",
)
TEXT = "The cat sat on the mat because it was tired."

# content types by suffix; anything else must at least say what it is
TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".mjs": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".svg": ("image/svg+xml",),
    ".png": ("image/png",),
    ".ico": ("image/vnd.microsoft.icon", "image/x-icon"),
    ".html": ("text/html",),
    ".json": ("application/json",),
    ".woff2": ("font/woff2",),
    ".map": ("application/json",),
}

# ES module specifiers: static imports and re-exports, side-effect imports, dynamic imports of a literal
JS_IMPORT = re.compile(
    r"""\bimport\s*(?:[\w$*{},\s]+?\s*from\s*)?["']([^"'\n]+)["']"""
    r"""|\bexport\s*(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*["']([^"'\n]+)["']"""
    r"""|\bimport\(\s*["']([^"'\n]+)["']\s*\)"""
)
# any absolute path of a static file written as a whole string in a script (module maps, workers)
STATIC_LITERAL = re.compile(r"""["'`](/static/[^"'`\s?#]*\.\w+)["'`]""")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']""")


class _Refs(HTMLParser):
    """Every attribute value that names a static file, and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: set[str] = set()
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (
                value
                and (name in ("src", "href") or name.startswith("data-"))
                and value.startswith("/static/")
            ):
                self.refs.add(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _local(base: str, spec: str) -> str | None:
    """The same-origin path `spec` resolves to from `base`, or None for bare, remote or data specifiers."""
    if not spec.startswith(("/", "./", "../")) or spec.startswith("//"):
        return None
    return urlsplit(urljoin("http://app" + base, spec)).path


def _js_refs(path: str, source: str) -> set[str]:
    found = set()
    for match in JS_IMPORT.finditer(source):
        spec = next(g for g in match.groups() if g)
        if (target := _local(path, spec)) is not None:
            found.add(target)
    found.update(STATIC_LITERAL.findall(source))
    return found


def _css_refs(path: str, source: str) -> set[str]:
    found = set()
    for match in CSS_URL.finditer(source):
        spec = next(g for g in match.groups() if g).strip()
        if (target := _local(path, spec)) is not None:
            found.add(target)
    return found


def _check_type(path: str, response: httpx.Response) -> None:
    ctype = response.headers.get("content-type", "").split(";")[0].strip()
    expected = TYPES.get(Path(path).suffix)
    assert ctype, f"{path}: no content type"
    if expected:
        assert ctype in expected, f"{path}: content type {ctype!r}, expected one of {expected}"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert run.returncode == 0, f"{cmd[:4]} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("npm") is None or shutil.which("git") is None:
        pytest.fail("building the wheel needs git and npm on PATH")
    tmp = tmp_path_factory.mktemp("wheel")
    clone = tmp / "clone"
    _run(["git", "clone", "--quiet", str(REPO), str(clone)], timeout=120)
    assert not (clone / "src/visualizeai/web/static/vendor").exists()  # the build makes it, not the clone
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("VISUALIZEAI_SKIP_NPM", None)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(clone)],
        timeout=600,
        env=env,
    )
    (wheel,) = (tmp / "dist").glob("visualizeai-*.whl")
    site = tmp / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)])
    return {"clone": clone, "wheel": wheel, "site": site, "tmp": tmp}


def test_wheel_holds_the_package_and_the_built_front_end_only(built: dict) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    dist_info = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert len(dist_info) == 1
    outside = {n for n in names if not n.startswith(("visualizeai/", *dist_info))}
    assert not outside, outside
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "node_modules" in n]
    # every committed file of the package is in it
    tracked = _run(["git", "ls-files", "src/visualizeai"], cwd=built["clone"]).stdout.split()
    missing = {p.removeprefix("src/") for p in tracked} - names
    assert not missing, missing
    # and everything the build wrote: vendored libraries and esbuild bundles
    static = built["clone"] / "src/visualizeai/web/static"
    made = [
        p for d in ("vendor", "dist") if (static / d).is_dir() for p in (static / d).rglob("*") if p.is_file()
    ]
    assert "d3.min.js" in {p.name for p in made}
    missing = {
        "visualizeai/" + p.relative_to(built["clone"] / "src/visualizeai").as_posix() for p in made
    } - names
    assert not missing, missing
    meta = zipfile.ZipFile(built["wheel"]).read(f"{dist_info.pop()}/METADATA").decode()
    requires = [
        line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")
    ]
    pinned = [r for r in requires if "==" in r.split(";")[0]]  # a marker says `extra == 'corpus'`
    assert requires and not pinned, pinned
    assert any(r.startswith("torch>=") for r in requires)
    assert {"corpus", "notebook"} <= {
        line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Provides-Extra:")
    }


def test_installed_wheel_serves_every_page_and_asset(built: dict) -> None:
    site, tmp = built["site"], built["tmp"]
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # the installed copy, not the checkout's src/, is what runs
    where = _run([sys.executable, "-c", "import visualizeai; print(visualizeai.__file__)"], cwd=tmp, env=env)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    assert "visualizeai" in _run([str(site / "bin" / "visualizeai"), "--help"], cwd=tmp, env=env).stdout

    port = free_port()
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "visualizeai", "serve", "--offline", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 120  # start-up guard, not a speed check
            while True:
                assert server.poll() is None, (tmp / "serve.log").read_text()[-3000:]
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server never answered"
                    time.sleep(0.2)
            _check_pages_and_assets(client, site)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _check_pages_and_assets(client: httpx.Client, site: Path) -> None:
    pages = list(PAGES)
    meta = client.post("/api/v1/analyze", json={"text": TEXT})
    assert meta.status_code == 200, meta.text
    key = meta.json()["key"]
    page = client.get(f"/analysis/{key}")
    if not (page.status_code == 404 and page.headers["content-type"].startswith("application/json")):
        pages.append(f"/analysis/{key}")  # the page of one analysis, where the server has the route
    for fmt, ctype in (("html", "text/html"), ("png", "image/png")):
        download = client.get(f"/api/v1/analyses/{key}/export", params={"format": fmt})
        assert download.status_code == 200, (fmt, download.text[:300])
        assert download.headers["content-type"].startswith(ctype)
        assert len(download.content) > 1000

    todo: set[str] = set()
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        refs = _Refs()
        refs.feed(response.text)
        todo |= refs.refs
        for script in refs.scripts:
            todo |= _js_refs(urlsplit(path).path, script)
    assert any(p.endswith(".js") for p in todo), todo

    seen: dict[str, int] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.status_code
        assert response.status_code == 200, f"{path}: {response.status_code}"
        _check_type(path, response)
        if path.endswith((".js", ".mjs")):
            todo |= _js_refs(path, response.text) - seen.keys()
        elif path.endswith(".css"):
            todo |= _css_refs(path, response.text) - seen.keys()
    assert "/static/vendor/d3.min.js" in seen

    # every file installed under static/ is served too
    static = site / "visualizeai" / "web" / "static"
    for file in static.rglob("*"):
        if file.is_file() and (path := "/static/" + file.relative_to(static).as_posix()) not in seen:
            response = client.get(path)
            assert response.status_code == 200, f"{path}: {response.status_code}"
            assert response.content == file.read_bytes(), path
            _check_type(path, response)
