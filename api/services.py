"""The app's services: loaded once in the background at start, or injected by tests."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from api.config import Settings
from api.errors import APIError
from graph.blocking import run_blocking
from graph.judges import describe_error
from graph.pipeline import Pipeline
from graph.services import LoadedServices, load_services

logger = logging.getLogger(__name__)

DRAIN_S = 5.0
"""Seconds a stopping app waits for its running (by then cancelled) runs to store their traces."""


class AppServices:
    """Holds the pipeline once loaded, and says why not while it is not."""

    def __init__(self, settings: Settings, loaded: LoadedServices | None = None) -> None:
        """With ``loaded`` the app is ready at once; without, `start` loads from ``settings``."""
        self.settings = settings
        self.loaded = loaded
        self.pipeline: Pipeline | None = self._pipeline(loaded) if loaded else None
        self.state: Literal["loading", "ready", "failed"] = "ready" if loaded else "loading"
        self.reason: str | None = None if loaded else "loading models and the index"
        self._task: asyncio.Task[None] | None = None
        self._owned = loaded is None

    def _pipeline(self, loaded: LoadedServices) -> Pipeline:
        # The settings' limits hold for injected services too, so tests see what a server does.
        return Pipeline(loaded.context, limits=self.settings.run_limits())

    async def start(self) -> None:
        """Begin loading in a worker thread; requests get 503 until it is done."""
        if self.loaded is None and self._task is None:
            self._task = asyncio.create_task(self._load())

    async def wait_ready(self) -> None:
        """Wait for loading to finish (successfully or not)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _load(self) -> None:
        try:
            loaded = await run_blocking(load_services, self.settings.pipeline())
        except Exception as exc:  # reported by /readyz and every 503; the server stays up to say so
            self.state, self.reason = "failed", describe_error(exc)
            logger.error("verifact could not load its services: %s", self.reason)
            return
        self.loaded, self.pipeline = loaded, self._pipeline(loaded)
        self.state, self.reason = "ready", None
        logger.info("verifact is ready")

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Cancel loading, let running runs end, close what was loaded (only what this object loaded).

        At shutdown the server has just cancelled the requests still running past its grace; each
        stores its partial trace on its next turn on the event loop, which the drain gives it.
        """
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.pipeline is not None and (left := await self.pipeline.drain(drain_s)):
            logger.error("%d runs were still running at shutdown; their traces are not stored", left)
        if self._owned and self.loaded is not None:
            await self.loaded.aclose()

    def require(self) -> Pipeline:
        """The pipeline, or a 503 saying why there is none yet."""
        if self.pipeline is None:
            headers = {"Retry-After": "5"} if self.state == "loading" else None
            raise APIError(503, f"not ready: {self.reason}", headers=headers)
        return self.pipeline
