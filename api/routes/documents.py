"""POST /documents: add documents to the evidence index (saved to disk at once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, PipelineDep, SettingsDep, SlotDep
from api.errors import APIError
from api.schemas import DocumentsRequest, DocumentsResponse, ErrorResponse
from graph.blocking import run_blocking

router = APIRouter(tags=["documents"])


@router.post(
    "/documents",
    response_model=DocumentsResponse,
    responses={
        401: {"model": ErrorResponse},
        403: {
            "model": ErrorResponse,
            "description": "The server has API keys and this one is not an admin's.",
        },
        409: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        501: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
async def add_documents(
    _admin: AdminDep, _slot: SlotDep, body: DocumentsRequest, pipeline: PipelineDep, settings: SettingsDep
) -> DocumentsResponse:
    """Add documents to the index; exact repeats are skipped, an id reused for another text is refused.

    With API keys on, only admin keys may (403 for the others); with keys off, anyone who can reach
    the server may, which is why such a server listens on loopback only by default.
    """
    from retrieval.errors import IngestError, RetrievalError
    from retrieval.types import Passage, content_id

    if len(body.documents) > settings.max_documents:
        raise APIError(413, f"{len(body.documents)} documents; the limit is {settings.max_documents}")
    searcher: Any = pipeline.context.searcher
    if not hasattr(searcher, "add_passages"):
        raise APIError(501, "this server's evidence index does not accept documents", code="not_implemented")
    passages = [
        Passage(
            id=d.id or content_id(d.text),
            text=d.text,
            title=d.title,
            source=d.source,
            url=d.url,
            metadata=dict(d.metadata),
        )
        for d in body.documents
    ]
    try:
        added, duplicates, total = await run_blocking(searcher.add_passages, passages)
    except IngestError as exc:
        raise APIError(409, str(exc), code="conflict") from exc
    except (RetrievalError, OSError) as exc:
        # Nothing was kept: the index rolls back what it could not save, so a retry is safe.
        raise APIError(503, f"the documents could not be added: {exc}", headers={"Retry-After": "5"}) from exc
    return DocumentsResponse(added=added, skipped_duplicates=duplicates, total=total)
