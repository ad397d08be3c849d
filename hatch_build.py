"""Build hook: the wheel and the sdist carry the built front end (vendored npm libraries, esbuild bundles).

``npm ci`` and ``npm run build`` (scripts/build.mjs) write them into the git-ignored folders
``src/visualizeai/web/static/vendor`` and ``static/dist``; the ``artifacts`` setting in pyproject.toml puts
them in the archives although git ignores them. Rules:

- editable installs (``pip install -e .``, used by the Makefile, which runs npm itself) never run npm;
- from a source tree the assets are always rebuilt, so a wheel never ships stale bundles; ``npm ci`` runs only
  when ``node_modules`` is missing or older than ``package-lock.json``;
- from an unpacked sdist that already holds the assets, npm is not needed;
- without npm, assets already present are used (with a warning); none present is a clear error.

``VISUALIZEAI_SKIP_NPM=1`` uses the assets as they are (they must exist).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STATIC = Path("src", "visualizeai", "web", "static")
# a file every build writes (scripts/vendor.mjs): its presence means the assets were built
MARKER = STATIC / "vendor" / "d3.min.js"


class FrontEndBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if version == "editable":
            return
        root = Path(self.root)
        built = (root / MARKER).is_file()
        from_sdist = (root / "PKG-INFO").is_file()
        if os.environ.get("VISUALIZEAI_SKIP_NPM") == "1" or (from_sdist and built):
            if not built:
                raise RuntimeError(
                    f"VISUALIZEAI_SKIP_NPM=1 but the front end is not built ({MARKER} is missing)"
                )
            return
        npm = shutil.which("npm")
        if npm is None:
            if built:
                self.app.display_warning(
                    "npm not found: packaging the front-end assets already built in "
                    f"{STATIC}/vendor and {STATIC}/dist (they may be out of date)"
                )
                return
            raise RuntimeError(
                "Building visualizeai needs Node.js and npm on PATH to build the web front end "
                f"(npm ci && npm run build write {STATIC}/vendor and {STATIC}/dist). "
                "Install Node.js 18 or newer, or install a released wheel instead."
            )
        lock = root / "package-lock.json"
        installed = root / "node_modules" / ".package-lock.json"
        if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
            self._npm(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
        self._npm(npm, "run", "build")
        if not (root / MARKER).is_file():
            raise RuntimeError(f"npm run build finished but {MARKER} is missing")

    def _npm(self, npm: str, *args: str) -> None:
        self.app.display_info(f"running npm {' '.join(args)}")
        result = subprocess.run([npm, *args], cwd=self.root, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"`npm {' '.join(args)}` failed with exit status {result.returncode}")
