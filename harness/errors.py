"""Exceptions llbench raises for problems a user can fix.

Every message says what went wrong and what to do about it; the CLI prints it without a
traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LLBenchError(Exception):
    """Base class: a problem the user can act on."""


class UnknownNameError(LLBenchError, KeyError):
    """A method, dataset, metric or other plugin name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        msg = f"unknown {kind} {name!r}."
        if close:
            msg += f" Did you mean: {', '.join(close)}?"
        msg += f" Known {kind}s: {', '.join(known) if known else '(none registered)'}"
        super().__init__(msg)
        self.kind, self.name, self.known, self.close = kind, name, known, close

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class DuplicateNameError(LLBenchError):
    """Two plugins registered the same name."""


class ImageError(LLBenchError):
    """An image that cannot be read, or does not fit with its pair."""


class DatasetError(LLBenchError):
    """A dataset that is missing, incomplete or inconsistent."""


class MethodOutputError(LLBenchError):
    """A method returned NaN/inf values or a tensor of the wrong shape."""


class WeightsError(LLBenchError):
    """Weights that are missing, unreadable or do not fit the model."""


class ConfigError(LLBenchError):
    """A configuration file or option that cannot be used."""


class WaitingForInput(LLBenchError):
    """Work that cannot go on until people provide something (e.g. labels of a human-in-the-loop
    stage). The run is stored with status ``waiting``; running the same command again resumes it
    once the input is there. The message says what is awaited and where (a study's URL)."""
