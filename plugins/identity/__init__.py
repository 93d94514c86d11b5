"""The ``input`` method: the low-light image itself, unchanged.

This is the "Input"/"Dark"/"Low" row of LLIE papers' tables: scoring the unprocessed input gives
the floor every enhancer is compared against. It has no parameters and no paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llbench.api import MethodSpec, hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llbench.api.methods import Method


def _build(config: Mapping[str, Any], device: torch.device) -> Method:
    from .method import Identity

    return Identity(config, device)


SPEC = MethodSpec(
    name="input",
    build=_build,
    summary="The low-light input unchanged (the 'Dark'/'Input' row of papers' tables).",
    paper="",
    supervision="none",
    trains=False,
    default_config={},
)


@hookimpl
def register_methods(register):
    register(SPEC)
