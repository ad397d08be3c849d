"""Corpus scale: every head statistic for every text of a file, batched on Ray Data, resumable.

``runner.run_corpus`` is the entry point (``visualizeai corpus`` on the command line); ``reader`` reads the
input formats, ``batching`` and ``worker`` do the model work, ``summary`` aggregates (pure numpy/pyarrow) and
``schema`` documents the Parquet tables. Importing this package imports neither Ray nor torch.
"""
