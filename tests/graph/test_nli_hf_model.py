"""Any Hugging Face NLI classifier loads as the verifier, its labels mapped to ours and the premise first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from graph.errors import VerifierError
from graph.nli_judge import NLIJudge
from graph.nli_model import HUB_MAX_LENGTH, NLISettings, PairModel
from graph.schemas import EvidencePassage
from tests.conftest import build_tiny_bert

NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


def save_nli_model(out: Path, id2label: dict[int, str]) -> Path:
    """A tiny BertForSequenceClassification with NLI label names, as any hub NLI model is saved."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    build_tiny_bert(out)
    config = BertConfig.from_pretrained(out)
    config.num_labels = len(id2label)
    config.id2label = id2label
    config.label2id = {v: k for k, v in id2label.items()}
    import torch

    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        # Loud segment embeddings: a pair scored without its segment ids would come out visibly different.
        model.bert.embeddings.token_type_embeddings.weight.mul_(50.0)
    model.save_pretrained(out)
    BertTokenizer.from_pretrained(out).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def nli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_nli_model(tmp_path_factory.mktemp("hf-nli"), NLI_LABELS)


def direct_probs(model_dir: Path, first: list[str], second: list[str]) -> np.ndarray:
    """The model's own softmax, run by transformers directly."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        logits = model(**tok(first, second, padding=True, return_tensors="pt")).logits
    return torch.softmax(logits, -1).numpy()


def test_nli_label_names_map_to_ours_and_the_evidence_goes_first(nli_dir: Path) -> None:
    model = PairModel.load(NLISettings(model=str(nli_dir)))
    described = model.describe()
    assert described["label_map"] == {
        "entailment": "SUPPORTED",
        "neutral": "NOT_ENOUGH_INFO",
        "contradiction": "REFUTED",
    }
    assert (described["pair_order"], described["max_length"]) == ("evidence_claim", HUB_MAX_LENGTH)

    claim, passages = (
        "tax cut 5.",
        [EvidencePassage(id="a", text="the tax increased 5."), EvidencePassage(id="b", text="hello folks.")],
    )
    judge = NLIJudge(model)
    ours = judge.probabilities(claim, passages)
    theirs = direct_probs(nli_dir, [p.text for p in passages], [claim] * 2)
    # Our columns: SUPPORTED <- entailment, REFUTED <- contradiction, NOT_ENOUGH_INFO <- neutral.
    assert ours == pytest.approx(theirs[:, [0, 2, 1]], abs=1e-6)
    result = asyncio.run(judge.judge(claim, passages))
    assert result.trace.details["model_labels"] == ["entailment", "neutral", "contradiction"]
    assert set(result.verdict.citations) <= {"a", "b"}


def test_the_pair_order_can_be_forced(nli_dir: Path) -> None:
    model = PairModel.load(NLISettings(model=str(nli_dir), pair_order="claim_evidence", max_length=64))
    assert model.describe()["max_length"] == 64
    got = np.exp(model.log_probs(["tax cut 5."], ["the tax increased 5."]))
    assert got == pytest.approx(direct_probs(nli_dir, ["tax cut 5."], ["the tax increased 5."]), abs=1e-6)


def test_generic_label_names_need_a_label_map(tmp_path: Path) -> None:
    model_dir = save_nli_model(tmp_path / "generic", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(VerifierError, match="label_map"):
        PairModel.load(NLISettings(model=str(model_dir)))
    mapped = PairModel.load(
        NLISettings(model=str(model_dir), label_map={"LABEL_0": "NOT_ENOUGH_INFO", "LABEL_1": "SUPPORTED"})
    )
    assert mapped.matrix.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_a_missing_model_is_a_verifier_error(tmp_path: Path) -> None:
    with pytest.raises(VerifierError, match="NLI model directory not found"):
        PairModel.load(NLISettings(model=str(tmp_path / "nothing-here")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VerifierError, match="cannot load the NLI model"):
        PairModel.load(NLISettings(model=str(tmp_path / "empty")))
