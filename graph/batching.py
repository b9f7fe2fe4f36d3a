"""Micro-batching: concurrent callers' small requests merged into one model call.

On a CPU, one forward pass over 40 sentences costs far less than 8 passes over 5, and one model
call at a time keeps 2 cores from being oversubscribed by competing thread pools. Callers block in
worker threads (never on the event loop); a single worker thread drains the queue, waiting at most
``max_wait_ms`` after the first request for others to join.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Request(Generic[T, R]):
    items: list[T]
    future: Future[list[R]]


class MicroBatcher(Generic[T, R]):
    """Runs ``fn`` over the concatenated items of requests that arrive close together.

    ``fn`` must return one result per item, in order. An exception from ``fn`` fails every request
    of that batch (each caller sees it); the worker keeps running.
    """

    def __init__(
        self, fn: Callable[[list[T]], list[R]], *, max_items: int = 256, max_wait_ms: float = 2.0, name: str
    ) -> None:
        """Start the worker thread.

        Args:
            fn: The batched function.
            max_items: Stop collecting once this many items are waiting.
            max_wait_ms: How long the first request of a batch waits for company.
            name: The worker thread's name.
        """
        self._fn = fn
        self._max_items = max_items
        self._max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue[_Request[T, R] | None] = queue.SimpleQueue()
        self._closed = False
        self.batches = 0
        """Model calls made so far (for stats and tests)."""
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def __call__(self, items: Sequence[T]) -> list[R]:
        """``fn(items)``, possibly computed together with other callers' items; blocking."""
        if not items:
            return []
        if self._closed:
            raise RuntimeError("the batcher is closed")
        request: _Request[T, R] = _Request(list(items), Future())
        self._queue.put(request)
        return request.future.result()

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _collect(self, first: _Request[T, R]) -> tuple[list[_Request[T, R]], bool]:
        batch, count = [first], len(first.items)
        deadline = time.monotonic() + self._max_wait_s
        while count < self._max_items:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
            count += len(nxt.items)
        return batch, False

    def _work(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            items = [item for req in batch for item in req.items]
            try:
                results = self._fn(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batched call returned {len(results)} results for {len(items)} items")
            except BaseException as exc:  # handed to the callers, who decide what it means
                for req in batch:
                    req.future.set_exception(exc)
                continue
            finally:
                self.batches += 1
            offset = 0
            for req in batch:
                req.future.set_result(results[offset : offset + len(req.items)])
                offset += len(req.items)
