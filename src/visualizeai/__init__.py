"""VisualizeAI: explore the attention of transformer language models.

``visualizeai.analyze``, ``save``, ``load``, ``figure``, ``offline_view`` and ``configure`` come from
``visualizeai.python_api``, ``show`` (the notebook widget) from ``visualizeai.notebook``; they are imported on
first use, so ``import visualizeai`` stays cheap (no torch).
"""

__version__ = "0.1.0"

_API = ("analyze", "configure", "figure", "load", "offline_view", "save", "show")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name == "show":  # the notebook widget (anywidget, imported only when a widget is made)
        from visualizeai import notebook

        return notebook.show
    if name in _API:
        from visualizeai import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'visualizeai' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
