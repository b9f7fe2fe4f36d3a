"""The micro-batcher: concurrent callers share calls, keep their own results, and see failures."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from graph.batching import MicroBatcher


def test_concurrent_requests_share_one_call_and_keep_their_results() -> None:
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.01)
        return [2 * i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(double, max_wait_ms=50, name="t")
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(batcher, [10 * k + j for j in range(3)]) for k in range(8)]
            results = [f.result(timeout=10) for f in futures]
    finally:
        batcher.close()
    assert results == [[2 * (10 * k + j) for j in range(3)] for k in range(8)]
    assert len(calls) < 8  # at least two requests were merged
    assert sorted(i for c in calls for i in c) == sorted(10 * k + j for k in range(8) for j in range(3))


def test_a_failing_call_fails_its_callers_and_the_worker_survives() -> None:
    def picky(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("no negatives")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(picky, max_wait_ms=0, name="t")
    try:
        with pytest.raises(ValueError, match="no negatives"):
            batcher([-1])
        assert batcher([1, 2]) == [1, 2]
    finally:
        batcher.close()


def test_a_wrong_result_count_is_an_error_not_a_mix_up() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items[:-1], max_wait_ms=0, name="t")
    try:
        with pytest.raises(RuntimeError, match="2 results for 3 items"):
            batcher([1, 2, 3])
    finally:
        batcher.close()


def test_batches_respect_max_items() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def record(items: list[int]) -> list[int]:
        gate.wait(5)
        sizes.append(len(items))
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(record, max_items=4, max_wait_ms=200, name="t")
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(batcher, [i]) for i in range(6)]
            time.sleep(0.1)
            gate.set()
            assert [f.result(timeout=10) for f in futures] == [[i] for i in range(6)]
    finally:
        batcher.close()
    assert max(sizes) <= 4 and sum(sizes) == 6


def test_empty_requests_and_closed_batchers() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: items, name="t")
    assert batcher([]) == []
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher([1])
