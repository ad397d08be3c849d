"""Models: the catalog, offline-first loading into a bounded LRU, and inference."""
