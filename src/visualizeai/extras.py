"""Optional parts of the package: import them, or fail with one line naming the install command."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from .errors import MissingExtra

# module → the extra that installs it
EXTRAS = {
    "ray": "corpus",
    "ray.data": "corpus",
    "pyarrow": "corpus",
    "pyarrow.parquet": "corpus",
    "anywidget": "notebook",
    "traitlets": "notebook",
}


def require(module: str) -> ModuleType:
    """Import `module`; if it is missing, raise MissingExtra naming `pip install 'visualizeai[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module, module.split(".")[0])
        raise MissingExtra(
            f"{module} is not installed; install it with: pip install 'visualizeai[{extra}]'"
        ) from err


def check_installed(module: str) -> None:
    """Raise MissingExtra as ``require`` does if the top-level package of ``module`` cannot be found, without
    importing it (importing Ray fixes its settings for the process, so a command checks first, then sets them
    and imports). A module blocked in ``sys.modules`` counts as missing."""
    top = module.split(".")[0]
    blocked = top in sys.modules and sys.modules[top] is None
    if blocked or (top not in sys.modules and importlib.util.find_spec(top) is None):
        extra = EXTRAS.get(module, top)
        raise MissingExtra(f"{module} is not installed; install it with: pip install 'visualizeai[{extra}]'")
