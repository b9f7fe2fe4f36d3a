"""The verification graph, its judges and its trace; ``graph.verify(text)`` runs it in-process.

Nothing heavy is imported here: the models load on the first `verify` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graph.report import VerifyResult
    from graph.services import PipelineConfig


def verify(text: str, *, config: PipelineConfig | None = None, **options: Any) -> VerifyResult:
    """Verify ``text`` with the pipeline of ``config`` (None: the default paths)."""
    from graph.pipeline import verify as run

    return run(text, config=config, **options)


async def averify(text: str, *, config: PipelineConfig | None = None, **options: Any) -> VerifyResult:
    """`verify` for async callers."""
    from graph.pipeline import averify as run

    return await run(text, config=config, **options)
