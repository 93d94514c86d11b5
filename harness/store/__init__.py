"""The system of record: the SQLite schema and every query, and DataFrames read from it."""

from llbench.store.database import DATASET_ROW, REFERENCES, Store

__all__ = ["DATASET_ROW", "REFERENCES", "Store"]
