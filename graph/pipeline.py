"""Running the graph: `Pipeline.averify` / `verify` for one answer, `astream` for node-by-node events."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graph.blocking import run_blocking
from graph.builder import build_graph
from graph.context import Context
from graph.judges import describe_error
from graph.nodes import export_trace, run_header, trace_path
from graph.report import RunTrace, Summary, TraceEvent, VerifyOptions, VerifyResult
from graph.state import InputState

if TYPE_CHECKING:
    from graph.services import PipelineConfig

logger = logging.getLogger(__name__)


class PipelineError(Exception):
    """A run failed as a whole (the splitter or the classifier broke); its trace is stored."""

    def __init__(self, message: str, *, trace_id: str) -> None:
        super().__init__(message)
        self.trace_id = trace_id


class RunLimitError(PipelineError):
    """A run was stopped by one of the service's limits; its partial trace is stored with the reason."""

    def __init__(self, message: str, *, trace_id: str, limit: str, actual: int, maximum: int) -> None:
        super().__init__(message, trace_id=trace_id)
        self.limit = limit
        """Which limit: "sentences"."""
        self.actual = actual
        self.maximum = maximum


class RunDeadlineError(PipelineError):
    """A run passed its deadline and was stopped; its partial trace is stored with the reason."""

    def __init__(self, message: str, *, trace_id: str, timeout_s: float) -> None:
        super().__init__(message, trace_id=trace_id)
        self.timeout_s = timeout_s


@dataclass(frozen=True)
class RunLimits:
    """What a service allows one run; None is no limit (the in-process default)."""

    max_sentences: int | None = None
    """Sentences a text may split into; beyond it the run stops after split (`RunLimitError`)."""
    timeout_s: float | None = None
    """Seconds a whole run may take, streaming included; beyond it the run stops (`RunDeadlineError`)."""


class _DeadlinePassed(Exception):
    """The run's deadline passed while the graph was working (not a timeout raised inside a node)."""


@dataclass(frozen=True)
class NodeUpdate:
    """One node run finished (what `astream` yields before the result)."""

    node: str
    events: list[TraceEvent]


def new_trace_id() -> str:
    """A fresh, sortable-enough, unguessable trace id."""
    return uuid.uuid4().hex


class Pipeline:
    """The compiled graph and the services it runs with."""

    def __init__(self, context: Context, *, limits: RunLimits | None = None) -> None:
        """Compile the graph once for ``context``; every run is held to ``limits``."""
        self.context = context
        self.limits = limits or RunLimits()
        self._graph = build_graph()
        self._store_failures = 0
        self._count_lock = threading.Lock()  # failed runs are stored from worker threads
        self._running: set[str] = set()

    @property
    def running(self) -> int:
        """Runs started and not yet over (answered, failed, or cancelled and stored)."""
        return len(self._running)

    async def drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the running runs to end; how many are still running.

        A server stopping cancels its requests and then shuts down; a cancelled run stores its partial
        trace at its next turn on the event loop, so the shutdown waits here first, or those traces
        would be lost with the process.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._running and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        return len(self._running)

    @property
    def trace_store_failures(self) -> int:
        """Runs whose trace the store refused since this pipeline was built (each one is logged too)."""
        return self._store_failures

    def _count_store_failure(self) -> None:
        with self._count_lock:
            self._store_failures += 1

    def _input(self, text: str, options: VerifyOptions | None, owner: str | None) -> InputState:
        opts = options or VerifyOptions()
        self.context.judge_for(opts.judge)  # an unavailable judge is refused before any work
        return InputState(
            text=text, options=opts, trace_id=new_trace_id(), started_at=datetime.now(UTC), owner=owner
        )

    def _config(self) -> dict[str, Any]:
        return {"max_concurrency": self.context.max_concurrency, "recursion_limit": 50}

    async def averify(
        self, text: str, options: VerifyOptions | None = None, *, owner: str | None = None
    ) -> VerifyResult:
        """Verify ``text``; see `astream` for what is raised."""
        result: VerifyResult | None = None
        async for item in self.astream(text, options, owner=owner):
            if isinstance(item, VerifyResult):
                result = item
        assert result is not None  # astream always ends with the result or raises
        return result

    def verify(
        self, text: str, options: VerifyOptions | None = None, *, owner: str | None = None
    ) -> VerifyResult:
        """`averify` for synchronous callers (not from inside a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.averify(text, options, owner=owner))
        raise RuntimeError("Pipeline.verify was called inside an event loop; await Pipeline.averify instead")

    async def astream(
        self, text: str, options: VerifyOptions | None = None, *, owner: str | None = None
    ) -> AsyncIterator[NodeUpdate | VerifyResult]:
        """Yield a `NodeUpdate` as each node run finishes, then the `VerifyResult`.

        A run that does not finish stores what it did so far (status "error", with the reason):
        when it fails, passes a limit or its deadline, or is cancelled (a client going away).

        Raises:
            JudgeUnavailableError: the options ask for a judge the service does not have.
            RunLimitError: the text has more sentences than `RunLimits.max_sentences`.
            RunDeadlineError: the run took longer than `RunLimits.timeout_s`.
            PipelineError: the run failed as a whole.
        """
        state = self._input(text, options, owner)
        events: list[TraceEvent] = []
        result: VerifyResult | None = None
        stream = self._graph.astream(
            state, context=self.context, config=self._config(), stream_mode="updates"
        )
        timeout_s = self.limits.timeout_s
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        self._running.add(state.trace_id)
        try:
            # Once report has answered, the deadline no longer applies: the run is done and stored.
            while (chunk := await _next_step(stream, None if result is not None else deadline)) is not None:
                for node, update in chunk.items():
                    if not isinstance(update, dict):
                        continue
                    new_events = list(update.get("events", []))
                    events.extend(new_events)
                    if node == "split":
                        self._check_sentences(state, events, len(update.get("sentences", [])))
                    if update.get("result") is not None:
                        result = update["result"]
                        if not result.trace_stored and self.context.trace_store is not None:
                            self._count_store_failure()
                    yield NodeUpdate(node, new_events)
        except RunLimitError as exc:
            logger.warning("run %s stopped: %s", state.trace_id, exc)
            await run_blocking(self._store_failure, state, events, str(exc))
            raise
        except _DeadlinePassed:
            reason = f"deadline exceeded after {timeout_s:g} s"
            logger.warning("run %s stopped: %s", state.trace_id, reason)
            await run_blocking(self._store_failure, state, events, reason)
            raise RunDeadlineError(
                f"the run was stopped: {reason}", trace_id=state.trace_id, timeout_s=timeout_s or 0.0
            ) from None
        except Exception as exc:
            error = describe_error(exc)
            logger.exception("run %s failed", state.trace_id)
            await run_blocking(self._store_failure, state, events, error)
            raise PipelineError(f"the verification run failed: {error}", trace_id=state.trace_id) from exc
        except (asyncio.CancelledError, GeneratorExit):
            if result is None:  # else report has stored the whole run already
                # Stored in the loop's thread: a cancelled task may be cancelled again at its next await.
                reason = "cancelled before the run finished (the client went away or the server stopped)"
                self._store_failure(state, events, reason)
            raise
        finally:
            self._running.discard(state.trace_id)
            await stream.aclose()
        if result is None:  # the graph always ends in report; this guards a miswired graph
            raise PipelineError("the run ended without a result", trace_id=state.trace_id)
        yield result

    def _check_sentences(self, state: InputState, events: list[TraceEvent], count: int) -> None:
        """Stop the run after split when the text has more sentences than the limit allows."""
        limit = self.limits.max_sentences
        if limit is None or count <= limit:
            return
        message = f"the text has {count} sentences; the limit is {limit}"
        if events and events[-1].node == "split":  # the trace shows where the run stopped, and why
            events[-1] = events[-1].model_copy(update={"error": f"RunLimitError: {message}"})
        raise RunLimitError(message, trace_id=state.trace_id, limit="sentences", actual=count, maximum=limit)

    def _store_failure(self, state: InputState, events: list[TraceEvent], error: str) -> None:
        header = run_header(state, self.context, status="error", reason=error)
        empty = Summary(
            sentences=0, check_worthy=0, checked=0, supported=0, refuted=0, not_enough_info=0, errors=1
        )
        trace = RunTrace(
            header=header, text=state.text, summary=empty, events=events, path=trace_path(events)
        )
        export_trace(self.context, trace)
        if self.context.trace_store is None:
            return
        try:
            self.context.trace_store.save(trace)
        except Exception as exc:  # already failing; the store's failure is logged, not raised over it
            self._count_store_failure()
            logger.error("the failed run %s was not stored either: %s", state.trace_id, describe_error(exc))


async def _next_step(stream: AsyncIterator[dict[str, Any]], deadline: float | None) -> dict[str, Any] | None:
    """The graph's next update, or None at its end; raises `_DeadlinePassed` once ``deadline`` passes.

    The deadline scope wraps each step, never a ``yield`` of `Pipeline.astream`: a timeout scope left
    open across a yield would cancel whatever the consumer is doing in between, not the graph.
    """
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await anext(stream)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        if scope.expired():
            raise _DeadlinePassed from None
        raise


_LOADED: dict[str, Pipeline] = {}
_LOAD_LOCK = threading.Lock()


def load_pipeline(config: PipelineConfig | None = None) -> Pipeline:
    """The pipeline for ``config`` (the defaults when None), loaded once per process and reused."""
    from graph.services import PipelineConfig, load_services

    config = config or PipelineConfig()
    key = config.model_dump_json()
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Pipeline(load_services(config).context)
        return _LOADED[key]


def verify(text: str, *, config: PipelineConfig | None = None, **options: Any) -> VerifyResult:
    """Verify ``text`` in-process: ``verify("...", top_k=3)``; options as in `VerifyOptions`."""
    return load_pipeline(config).verify(text, VerifyOptions(**options))


async def averify(text: str, *, config: PipelineConfig | None = None, **options: Any) -> VerifyResult:
    """`verify` for async callers; the first call loads the models in a worker thread."""
    pipeline = await run_blocking(load_pipeline, config)
    return await pipeline.averify(text, VerifyOptions(**options))
