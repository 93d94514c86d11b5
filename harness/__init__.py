"""llbench: a benchmarking harness for low-light image enhancement."""

__version__ = "0.1.0"
