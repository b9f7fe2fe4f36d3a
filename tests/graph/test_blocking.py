"""The pool for blocking calls: sized for callers that wait, context kept, failures returned."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Iterator

import pytest

from graph import blocking
from graph.blocking import blocking_threads, run_blocking, set_blocking_threads

REQUEST = contextvars.ContextVar("REQUEST", default="none")


@pytest.fixture(autouse=True)
def _default_size() -> Iterator[None]:
    yield
    set_blocking_threads(blocking.DEFAULT_BLOCKING_THREADS)


def test_more_callers_wait_at_once_than_the_default_executor_has_threads() -> None:
    # asyncio's default executor has cores + 4 threads; 20 callers that each wait for all the
    # others pass the barrier only if all 20 hold a thread at the same time.
    set_blocking_threads(24)
    barrier = threading.Barrier(20)

    def wait() -> str:
        barrier.wait(timeout=20)
        return threading.current_thread().name

    async def main() -> list[str]:
        return await asyncio.gather(*(run_blocking(wait) for _ in range(20)))

    names = asyncio.run(main())
    assert len(set(names)) == 20
    assert all(name.startswith("verifact-blocking") for name in names)


def test_a_pool_smaller_than_the_waiting_callers_makes_them_queue() -> None:
    # The same barrier with 3 threads: the fourth caller cannot start until one returns.
    set_blocking_threads(3)
    barrier = threading.Barrier(4)

    def wait() -> None:
        barrier.wait(timeout=0.5)

    async def main() -> list[object]:
        return await asyncio.gather(*(run_blocking(wait) for _ in range(4)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert any(isinstance(o, threading.BrokenBarrierError) for o in outcomes)


def test_context_variables_arguments_and_errors_cross_to_the_thread() -> None:
    def read(prefix: str, *, suffix: str) -> str:
        return f"{prefix}{REQUEST.get()}{suffix}"

    def fail() -> None:
        raise KeyError("missing")

    async def main() -> str:
        REQUEST.set("abc")
        with pytest.raises(KeyError, match="missing"):
            await run_blocking(fail)
        return await run_blocking(read, "<", suffix=">")

    assert asyncio.run(main()) == "<abc>"


def test_resizing_lets_running_calls_finish_on_the_old_pool() -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(timeout=10)
        return threading.current_thread().name

    async def main() -> tuple[str, str]:
        first = asyncio.ensure_future(run_blocking(slow))
        await asyncio.to_thread(started.wait, 10)
        set_blocking_threads(5)
        release.set()
        return await first, await run_blocking(lambda: threading.current_thread().name)

    set_blocking_threads(2)
    old, new = asyncio.run(main())
    assert blocking_threads() == 5
    assert old.startswith("verifact-blocking") and new.startswith("verifact-blocking")


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        set_blocking_threads(0)
    assert blocking_threads() == blocking.DEFAULT_BLOCKING_THREADS


def test_calls_submitted_while_another_thread_resizes_all_run() -> None:
    # A resize shuts the old pool down; a call looked up on it just before must still be taken.
    stop = threading.Event()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to hit the window

    def resize() -> None:
        size = 2
        while not stop.is_set():
            size = 5 - size  # 2, 3, 2, ...
            set_blocking_threads(size)

    async def main() -> list[int]:
        return await asyncio.gather(*(run_blocking(abs, -i) for i in range(2000)))

    resizer = threading.Thread(target=resize)
    resizer.start()
    try:
        results = asyncio.run(main())
    finally:
        stop.set()
        resizer.join()
        sys.setswitchinterval(switch)
    assert results == list(range(2000))
