"""POST /predict: the check-worthiness classifier alone."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from api.deps import PipelineDep, SettingsDep, SlotDep
from api.errors import APIError
from api.schemas import ErrorResponse, PredictRequest, PredictResponse, SentencePrediction
from graph.blocking import run_blocking

logger = logging.getLogger(__name__)
router = APIRouter(tags=["classifier"])


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={
        401: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def predict(
    _caller: SlotDep, body: PredictRequest, pipeline: PipelineDep, settings: SettingsDep
) -> PredictResponse:
    """Score sentences for check-worthiness, in order."""
    if len(body.sentences) > settings.max_predict_sentences:
        raise APIError(
            413, f"{len(body.sentences)} sentences; the limit is {settings.max_predict_sentences} per request"
        )
    total = sum(len(s) for s in body.sentences)
    if total > settings.max_text_chars:
        raise APIError(413, f"{total} characters in all; the limit is {settings.max_text_chars}")
    scorer = pipeline.context.scorer
    threshold = body.threshold if body.threshold is not None else scorer.threshold
    try:
        scores = await run_blocking(scorer.score, body.sentences)
    except Exception as exc:  # the same failure in /verify is a 503 with the cause, as here
        logger.exception("the classifier failed")
        raise APIError(503, f"the classifier failed: {type(exc).__name__}: {exc}") from exc
    return PredictResponse(
        predictions=[
            SentencePrediction(
                text=t, score=s.score, check_worthy=s.score >= threshold, truncated=s.truncated
            )
            for t, s in zip(body.sentences, scores, strict=True)
        ],
        threshold=threshold,
        model=dict(pipeline.context.versions.get("classifier") or {}),
    )
