"""Optional parts of the package: import them, or fail with one line naming the install command."""

from __future__ import annotations

import importlib
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
