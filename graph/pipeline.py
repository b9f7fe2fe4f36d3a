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

from graph.builder import build_graph
from graph.context import Context
from graph.judges import describe_error
from graph.nodes import export_trace, trace_path
from graph.report import RunHeader, RunTrace, Summary, TraceEvent, VerifyOptions, VerifyResult
from graph.state import InputState

if TYPE_CHECKING:
    from graph.services import PipelineConfig

logger = logging.getLogger(__name__)


class PipelineError(Exception):
    """A run failed as a whole (the splitter or the classifier broke); its trace is stored."""

    def __init__(self, message: str, *, trace_id: str) -> None:
        super().__init__(message)
        self.trace_id = trace_id


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

    def __init__(self, context: Context) -> None:
        """Compile the graph once for ``context``."""
        self.context = context
        self._graph = build_graph()

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

        Raises:
            JudgeUnavailableError: the options ask for a judge the service does not have.
            PipelineError: the run failed as a whole; a trace with status "error" is stored.
        """
        state = self._input(text, options, owner)
        events: list[TraceEvent] = []
        result: VerifyResult | None = None
        try:
            async for chunk in self._graph.astream(
                state, context=self.context, config=self._config(), stream_mode="updates"
            ):
                for node, update in chunk.items():
                    if not isinstance(update, dict):
                        continue
                    new_events = list(update.get("events", []))
                    events.extend(new_events)
                    if update.get("result") is not None:
                        result = update["result"]
                    yield NodeUpdate(node, new_events)
        except Exception as exc:
            error = describe_error(exc)
            logger.exception("run %s failed", state.trace_id)
            await asyncio.to_thread(self._store_failure, state, events, error)
            raise PipelineError(f"the verification run failed: {error}", trace_id=state.trace_id) from exc
        if result is None:  # the graph always ends in report; this guards a miswired graph
            raise PipelineError("the run ended without a result", trace_id=state.trace_id)
        yield result

    def _store_failure(self, state: InputState, events: list[TraceEvent], error: str) -> None:
        finished = datetime.now(UTC)
        header = RunHeader(
            trace_id=state.trace_id,
            created_at=state.started_at,
            finished_at=finished,
            duration_ms=(finished - state.started_at).total_seconds() * 1000.0,
            status="error",
            status_reason=error,
            options=state.options.model_dump(mode="json"),
            versions=dict(self.context.versions),
            owner=state.owner,
        )
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
            logger.error("the failed run %s was not stored either: %s", state.trace_id, describe_error(exc))


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
    pipeline = await asyncio.to_thread(load_pipeline, config)
    return await pipeline.averify(text, VerifyOptions(**options))
