"""The ``local`` executor: a process pool on this machine.

Each worker gets ``max(1, cores // workers)`` torch threads, so ``--workers 2`` on two cores runs
two single-threaded workers instead of four competing threads. With one worker the tasks run in
this process, without a pool.

How workers start (:func:`start_method`): on Linux they are forked from the driver, which has
torch and the plugins imported already, so a pool is ready in a fraction of a second instead of
the 1.5 s each spawned worker spends importing torch (on two cores that start is what separated
``--workers 2`` from a 2x speed-up). Forking is only done while it is safe: no CUDA context in the
driver, and no other thread running in it (a fork copies locks held by other threads). The pool
is therefore started when the executor is built, before the progress display starts its thread;
a pool rebuilt later (after a worker died) and every other platform use ``spawn``. A forked
worker sets its torch thread count before computing anything; with one thread torch never
enters an OpenMP region, so the driver's OpenMP pool is never used in the child.

A worker that dies (killed, out of memory) breaks the pool: its pending tasks fail with
:class:`BrokenProcessPool`, the pool is rebuilt for later submissions and the driver retries
those shards.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from llbench.api.executors import Executor, Handle


def start_method() -> str:
    """``"fork"`` where forking the driver is safe (module docstring), else ``"spawn"``."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return "spawn"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "spawn"
    return "fork"


def _init_worker(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["LLBENCH_WORKER_THREADS"] = str(threads)
    torch = sys.modules.get("torch")  # imported already in a forked worker: set it directly
    if torch is not None:
        torch.set_num_threads(threads)
    _exit_with_parent()


def _ready() -> int:
    return os.getpid()


def _exit_with_parent() -> None:
    """On Linux, ask the kernel to end this worker when the driver dies (even by SIGKILL), so a
    killed driver leaves no orphan workers behind."""
    import signal

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no glibc: workers end when their pipe breaks
            pass


class _FutureHandle(Handle):
    def __init__(self, future: cf.Future):
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> Any:
        return self.future.result()

    def cancel(self) -> None:
        self.future.cancel()


class _Finished(Handle):
    def __init__(self, fn: Callable[[Any], Any], arg: Any):
        try:
            self._value, self._error = fn(arg), None
        except Exception as exc:  # noqa: BLE001 - handed back through result()
            self._value, self._error = None, exc

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, options: Mapping[str, Any] | None = None):
        super().__init__(options)
        cores = int(self.options.get("cores", os.cpu_count() or 1))
        self.threads = int(self.options.get("threads", max(1, cores // self.workers)))
        self._pool: cf.ProcessPoolExecutor | None = None
        if self.workers > 1:  # start now, while forking is still safe (module docstring)
            self._get_pool().submit(_ready).result()

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None or getattr(self._pool, "_broken", False):
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context(start_method()),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self._pool

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Handle:
        if self.workers == 1:
            return _Finished(fn, arg)
        return _FutureHandle(self._get_pool().submit(fn, arg))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads_per_worker": self.threads}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
