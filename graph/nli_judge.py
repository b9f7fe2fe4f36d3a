"""The local NLI judge: a pair model scores each passage, a tuned rule turns the scores into a verdict.

No key and no server: the embedded default. Per call, every (claim, passage) pair goes through the
model in one batched call, run in a worker thread so the event loop stays free; the logits are
divided by the temperature fitted on dev, and the rule of `graph.nli_rule` (thresholds tuned on dev
claims) decides, or the learned aggregator of `graph.nli_aggregator` when the settings hold one.
Temperature, rule and aggregator live in ``nli_judge.json`` beside the model (`NLIJudgeParams`,
written by `graph.nli_tune.tune_judge`); without one the judge runs untuned (temperature 1,
thresholds 0.5, margin 0) and says so in every trace.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from classifier.metrics import FloatArray
from graph.blocking import run_blocking
from graph.errors import VerifierError
from graph.judges import EMPTY_CLAIM_REASON, NO_EVIDENCE_REASON, abstain, describe_error
from graph.nli_aggregator import LearnedAggregator, decide_learned
from graph.nli_calibration import verdict_probabilities
from graph.nli_ensemble import load_pair_scorer
from graph.nli_model import NLISettings, PairScorer
from graph.nli_records import evidence_text
from graph.nli_rule import AggregationRule, Decision, aggregate
from graph.schemas import LABELS, EvidencePassage, Judgement, JudgeTrace, Verdict

PARAMS_FILE = "nli_judge.json"
"""The judge's settings file, written beside the model directory's weights."""


class NLIJudgeParams(BaseModel):
    """What the NLI judge learned on dev: the temperature and the aggregation rule (nli_judge.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    """Format version of this file."""
    temperature: float = Field(default=1.0, gt=0.0)
    """Every logit is divided by it before the softmax; fitted on dev pairs."""
    rule: AggregationRule = Field(default_factory=AggregationRule)
    """The claim-level rule and its parameters, tuned on dev claims; decides when `aggregator` is None."""
    aggregator: LearnedAggregator | None = None
    """The learned claim-level aggregator fitted on dev claims; None: the rule decides."""
    tuned: bool = False
    """True when temperature and rule were fitted on dev; False for the defaults."""
    model_hash: str = ""
    """The hash of the model they were fitted for; a judge with another model warns in its traces."""
    fitted_on: dict[str, Any] = Field(default_factory=dict)
    """Which files and how many pairs and claims the fit used."""
    dev_metrics: dict[str, Any] = Field(default_factory=dict)
    """NLL and ECE before and after scaling, the rule's claim-level scores, and the aggregator choice."""

    @property
    def aggregator_name(self) -> str:
        """The name of what turns passage probabilities into a verdict: the aggregator's, else the rule's."""
        return self.aggregator.name if self.aggregator else self.rule.name


def decide_claim(
    params: NLIJudgeParams,
    probs: FloatArray,
    claim: str = "",
    texts: Sequence[str] | None = None,
    scores: Sequence[float | None] | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """The claim-level decision under `params`, and what the trace records about how it was made.

    The learned aggregator decides when `params` holds one, the rule otherwise.

    Args:
        params: The judge's settings.
        probs: Calibrated per-passage probabilities, shape (passages, 3) in `LABELS` order.
        claim: The claim text (the learned aggregator's consistency cues read it).
        texts: The passage texts as the model saw them; None: the aggregator's text cues are 0.
        scores: Retrieval scores per passage, if any.
    """
    if params.aggregator is None:
        return aggregate(probs, params.rule), {"aggregator": params.rule.name}
    decision, features = decide_learned(params.aggregator, probs, claim, texts, scores, params.rule)
    return decision, {"aggregator": params.aggregator.name, "features": features}


def load_params(path: str | Path) -> NLIJudgeParams:
    """Read an nli_judge.json; raises `VerifierError` for a missing or invalid file."""
    p = Path(path)
    try:
        return NLIJudgeParams.model_validate_json(p.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise VerifierError(f"cannot read NLI judge settings {p}: {exc}") from exc


def save_params(params: NLIJudgeParams, path: str | Path) -> None:
    """Write an nli_judge.json atomically."""
    from classifier.reporting import write_json

    write_json(Path(path), params.model_dump(mode="json"))


class NLIJudge:
    """A `Judge` backed by a local sentence-pair NLI model. `judge` never raises an `Exception`."""

    def __init__(
        self,
        scorer: PairScorer,
        params: NLIJudgeParams | None = None,
        *,
        name: str = "nli",
        params_file: str | None = None,
    ) -> None:
        """Build a judge from a loaded model and its tuned settings.

        Args:
            scorer: The pair model (`PairModel`, or any `PairScorer`).
            params: Temperature, rule and aggregator; None for the untuned defaults.
            name: The judge's name in verdicts and traces.
            params_file: Where `params` came from, for traces.
        """
        self._scorer = scorer
        self._params = params or NLIJudgeParams()
        self._name = name
        self._params_file = params_file
        self._model = scorer.describe()
        self._warnings: list[str] = []
        if not self._params.tuned:
            self._warnings.append("untuned: temperature 1 and default thresholds (run 'verifact nli tune')")
        fitted_for, loaded = self._params.model_hash, str(self._model.get("model_hash", ""))
        if fitted_for and loaded and fitted_for != loaded:
            self._warnings.append(f"settings were fitted for model {fitted_for}, not the loaded {loaded}")

    @classmethod
    def load(cls, settings: NLISettings) -> NLIJudge:
        """Load the model (or an ensemble directory) and its nli_judge.json.

        The settings file is `settings.params_file`, else the one in the model directory.

        Raises:
            VerifierError: the model or the settings file cannot be used.
        """
        scorer = load_pair_scorer(settings)
        path = Path(settings.params_file) if settings.params_file else Path(settings.model) / PARAMS_FILE
        if settings.params_file or path.is_file():
            return cls(scorer, load_params(path), name=settings.name, params_file=str(path))
        return cls(scorer, name=settings.name)

    @property
    def name(self) -> str:
        """The judge's name in verdicts and traces."""
        return self._name

    @property
    def params(self) -> NLIJudgeParams:
        """The temperature and rule in use."""
        return self._params

    @property
    def scorer(self) -> PairScorer:
        """The pair model."""
        return self._scorer

    def probabilities(self, claim: str, passages: Sequence[EvidencePassage]) -> FloatArray:
        """Calibrated probabilities over `LABELS` per passage, shape (passages, 3); blocking."""
        texts = [evidence_text(p.title, p.text) for p in passages]
        logits = self._scorer.log_probs([claim] * len(texts), texts)
        return verdict_probabilities(logits, self._scorer.matrix, self._params.temperature)

    def decide(
        self, probs: FloatArray, claim: str = "", passages: Sequence[EvidencePassage] | None = None
    ) -> Decision:
        """The claim-level decision on calibrated per-passage probabilities (see `decide_claim`).

        The learned aggregator reads the claim and the passages too; without `passages` its text
        cues are 0 and its decision may differ from the one `judge` gives.
        """
        return self._decide(probs, claim, passages)[0]

    def _decide(
        self, probs: FloatArray, claim: str, passages: Sequence[EvidencePassage] | None
    ) -> tuple[Decision, dict[str, Any]]:
        texts = None if passages is None else [evidence_text(p.title, p.text) for p in passages]
        scores = None if passages is None else [p.score for p in passages]
        return decide_claim(self._params, probs, claim, texts, scores)

    async def judge(self, claim: str, evidence: Sequence[EvidencePassage]) -> Judgement:
        """Judge `claim` against `evidence`; see `graph.judges.Judge`. Never raises an `Exception`."""
        started = time.perf_counter()
        details: dict[str, Any] = self._base_details()
        errors: tuple[str, ...] = ()
        skipped: str | None = None
        passages = list(evidence)
        try:
            if not claim.strip():
                skipped = EMPTY_CLAIM_REASON
                verdict = abstain(self._name, EMPTY_CLAIM_REASON)
            elif not passages:
                skipped = NO_EVIDENCE_REASON
                verdict = abstain(self._name, NO_EVIDENCE_REASON)
            else:
                probs = await run_blocking(self.probabilities, claim, passages)
                decision, how = self._decide(probs, claim, passages)
                details.update(how)
                verdict = self._verdict(decision, probs, passages, details)
        except Exception as exc:  # the judge's boundary: every failure becomes a recorded abstention
            errors = (describe_error(exc),)
            verdict = abstain(self._name, "the NLI model failed", error=describe_error(exc))
        trace = JudgeTrace(
            judge=self._name,
            model=str(self._model.get("model", "")),
            latency_ms=(time.perf_counter() - started) * 1000.0,
            errors=errors,
            skipped_reason=skipped,
            details=details,
        )
        return Judgement(verdict=verdict, trace=trace)

    def _base_details(self) -> dict[str, Any]:
        return {
            **self._model,
            "temperature": self._params.temperature,
            "rule": self._params.rule.model_dump(),
            "aggregator": self._params.aggregator_name,
            "tuned": self._params.tuned,
            "params_file": self._params_file,
            "warnings": list(self._warnings),
        }

    def _verdict(
        self, decision: Decision, probs: FloatArray, passages: list[EvidencePassage], details: dict[str, Any]
    ) -> Verdict:
        details["passages"] = [
            {"id": p.id, **{label: round(float(v), 6) for label, v in zip(LABELS, row, strict=True)}}
            for p, row in zip(passages, probs, strict=True)
        ]
        details.update(support=decision.support, refute=decision.refute, decision=decision.reason)
        return Verdict(
            label=decision.label,
            confidence=min(max(decision.confidence, 0.0), 1.0),
            rationale=decision.reason,
            citations=tuple(dict.fromkeys(passages[i].id for i in decision.cited)),
            judge=self._name,
        )
