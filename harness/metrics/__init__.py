"""Core metrics (placeholder module being written)."""
