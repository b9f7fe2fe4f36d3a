"""Blocking calls from async code, on a thread pool sized for waiting rather than for cores.

Most blocking calls a run makes (score sentences, search, score pairs) hand their items to a
micro-batcher (`graph.batching`) and then wait for the batch. The waiting holds a thread. asyncio's
default executor has cores + 4 threads, so on 2 cores the seventh waiting caller queues for a
thread: the batchers then see a handful of requests at a time and the cores idle between batches.
In process at concurrency 16, the pipeline did 14.0 paragraphs a second on the default executor
and 16.4 to 18.2 on pools of 32 to 128 threads; waiting threads cost no CPU.

`run_blocking` is `asyncio.to_thread` on that pool: the caller's context variables go along.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_BLOCKING_THREADS = 64
"""Enough for 16 concurrent runs of a few claims each to wait on the batchers at once."""

_lock = threading.Lock()
_size = DEFAULT_BLOCKING_THREADS
_pool: ThreadPoolExecutor | None = None


def set_blocking_threads(threads: int) -> None:
    """Size the pool; calls already running finish on the old one.

    Raises:
        ValueError: ``threads`` is below 1.
    """
    global _pool, _size
    if threads < 1:
        raise ValueError(f"blocking threads must be at least 1, not {threads}")
    with _lock:
        if threads == _size:
            return
        old, _pool, _size = _pool, None, threads
    if old is not None:
        old.shutdown(wait=False)


def blocking_threads() -> int:
    """The pool's size."""
    return _size


def _submit(call: Callable[[], R]) -> Future[R]:
    # Under the lock, so that a resize in another thread cannot shut the pool down in between.
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_size, thread_name_prefix="verifact-blocking")
        return _pool.submit(call)


async def run_blocking(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` in the pool, awaited; exceptions come back to the caller."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.wrap_future(_submit(call))
