"""VisualizeAI: explore the attention of transformer language models."""

__version__ = "0.1.0"
