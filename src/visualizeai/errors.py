"""Exceptions that carry a message meant for a person; the web layer maps each class to a status code."""


class VisualizeAIError(Exception):
    """Base class: ``str(exc)`` is shown to the user as is."""


class InputError(VisualizeAIError):
    """The request itself is wrong (empty text, bad index, malformed id)."""


class ModelNotFound(VisualizeAIError):
    """The model id names nothing in the catalog, the hub grammar or the allowed directories."""


class ModelUnavailable(VisualizeAIError):
    """The model exists but cannot be loaded here (needs a download while offline, pickle-only, …)."""


class TaskUnsupported(VisualizeAIError):
    """The model cannot do what was asked (fill-mask without trained MLM head weights, …)."""


class ResultExpired(VisualizeAIError):
    """An analysis key is unknown, or its result was evicted from the cache."""


class MissingExtra(VisualizeAIError):
    """An optional dependency is not installed; the message names the pip command that installs it."""
