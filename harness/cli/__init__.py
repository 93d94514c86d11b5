"""The ``llbench`` command line: one module per command group (entry point :func:`main`)."""
