"""One process does a run's (or a training's) work: a claim in the database, held while working.

A second process asking for the same key waits until the holder releases it (then finds the
work done and reuses it) or, with ``wait=False``, stops with an error naming the holder. Claims
of processes that died are taken over (same host: the process is gone; other hosts: no heartbeat
for two minutes).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llbench.errors import LLBenchError
from llbench.store.database import Store

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class BusyError(LLBenchError):
    """Another live process holds the claim."""


@contextmanager
def holding(
    store: Store,
    key: str,
    *,
    wait: bool = True,
    poll: float = 1.0,
    on_wait: Callable[[dict], None] | None = None,
) -> Iterator[None]:
    """Hold the claim on ``key`` for the duration of the block."""
    told = False
    while True:
        other = store.claim(key, HOLDER, socket.gethostname(), os.getpid())
        if other is None:
            break
        if not wait:
            raise BusyError(
                f"{key} is being computed by process {other['pid']} on {other['host']} "
                f"(since {time.strftime('%H:%M:%S', time.localtime(other['since']))}); "
                "run the same command again when it is done, or wait for it"
            )
        if on_wait is not None and not told:
            on_wait(other)
            told = True
        time.sleep(poll)
    try:
        yield
    finally:
        store.release(key, HOLDER)
