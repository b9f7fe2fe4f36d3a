"""Encoder tuning: labelled pairs come from train parts only, and a tuned model is a loadable encoder."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from retrieval.climate_fever import claim_key, load_claims, split_of, training_claims
from retrieval.errors import EncoderError, IngestError
from retrieval.tune import (
    TuneConfig,
    TunePair,
    _epoch_averager,
    climate_fever_pairs,
    labelled_pairs,
    read_pairs_file,
    tune_encoder,
)
from tests.conftest import CHATTER_WORDS, CLAIM_WORDS, build_tiny_bert

EVIDENCE_LABELS = ["SUPPORTS", "NOT_ENOUGH_INFO", "REFUTES", "NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO"]


def write_climate_fever(root: Path, n_claims: int = 60) -> Path:
    """A Climate-FEVER-shaped file: claim ids 0..n-1, two gold and three NEI sentences each."""
    folder = root / "climate_fever"
    folder.mkdir(parents=True)
    with (folder / "climate-fever.jsonl").open("w") as fh:
        for cid in range(n_claims):
            evidences = [
                {
                    "evidence_id": f"Article {cid}:{j}",
                    "evidence_label": label,
                    "article": f"Article {cid}",
                    "evidence": f"sentence {j} about claim {cid}",
                }
                for j, label in enumerate(EVIDENCE_LABELS)
            ]
            fh.write(
                json.dumps(
                    {
                        "claim_id": str(cid),
                        "claim": f"claim {cid}",
                        "claim_label": "SUPPORTS",
                        "evidences": evidences,
                    }
                )
                + "\n"
            )
    return root


def test_the_split_is_fixed_by_the_md5_of_the_claim_id() -> None:
    # Values pinned once from the rule, so a change to the rule cannot slip through.
    assert [split_of(str(i)) for i in range(8)] == [
        "train",
        "train",
        "train",
        "test",
        "train",
        "test",
        "train",
        "train",
    ]
    shares = [split_of(str(i)) for i in range(20_000)]
    assert abs(shares.count("train") / 20_000 - 0.70) < 0.02
    assert abs(shares.count("dev") / 20_000 - 0.10) < 0.02
    assert abs(shares.count("test") / 20_000 - 0.20) < 0.02


def test_tuning_pairs_come_only_from_train_claims_with_nei_sentences_as_hard_negatives(
    tmp_path: Path,
) -> None:
    data = write_climate_fever(tmp_path)
    train_claims = {c.text for c in load_claims(data, "train")}
    held_out = {c.text for c in load_claims(data) if c.split != "train"}
    assert train_claims and held_out
    pairs = climate_fever_pairs(data)
    assert {p.query for p in pairs} == train_claims
    assert len(pairs) == 2 * len(train_claims)  # SUPPORTS and REFUTES sentences are gold
    for p in pairs:
        cid = p.query.split()[-1]
        assert p.positive.startswith(f"Article {cid}: sentence ")
        assert p.positive.split()[-4] in ("0", "2")
        assert p.negative is not None and p.negative.split()[-4] in ("1", "3", "4")
    assert all(p.negative is None for p in climate_fever_pairs(data, hard_negatives=False))


def test_unknown_sources_and_bad_pair_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="unknown tuning source 'wikipedia'"):
        labelled_pairs(tmp_path, ["wikipedia"])
    with pytest.raises(IngestError, match="no such file"):
        read_pairs_file(tmp_path / "missing.jsonl")
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{"query": "only a query"}\n')
    with pytest.raises(IngestError, match=r"pairs.jsonl:2: .*'query' and 'positive'"):
        read_pairs_file(bad)
    bad.write_text('{"query": "q", "positive": "p", "negative": "n"}\n')
    assert read_pairs_file(bad) == [TunePair("q", "p", "n")]


@pytest.fixture(scope="module")
def tiny_sentence_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    bert = build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    out = tmp_path_factory.mktemp("tiny-st")
    model = SentenceTransformer(
        modules=[Transformer(str(bert)), Pooling(32, "mean"), Normalize()], device="cpu"
    )
    model.save(str(out))
    return out


def _pair_accuracy(model_dir: Path, pairs: list[TunePair]) -> float:
    from retrieval.encoder import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(str(model_dir))
    q = enc.encode_query([p.query for p in pairs])
    d = enc.encode_document([p.positive for p in pairs])
    return float(np.mean((q @ d.T).argmax(1) == np.arange(len(pairs))))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mnrl", "guided"])
def test_tuning_saves_an_encoder_that_ranks_its_pairs_better(
    tiny_sentence_model: Path, tmp_path: Path, loss: str
) -> None:
    from retrieval.encoder import SentenceTransformerEncoder

    # Each query word must learn to land near its own partner word.
    pairs = [
        TunePair(f"{a} {a}", f"{b} {b}") for a, b in zip(CLAIM_WORDS[:8], CHATTER_WORDS[:8], strict=True)
    ]
    before = _pair_accuracy(tiny_sentence_model, pairs)
    report = tune_encoder(
        str(tiny_sentence_model),
        pairs * 8,
        tmp_path / "tuned",
        TuneConfig(
            epochs=6, batch_size=8, learning_rate=5e-3, hard_negatives=False, max_seq_length=16, loss=loss
        ),
    )
    after = _pair_accuracy(tmp_path / "tuned", pairs)
    assert report["pairs"] == 64 and np.isfinite(report["train_loss"]) and report["averaged_epochs"] == 0
    assert report["config"]["loss"] == loss
    assert json.loads((tmp_path / "tuned" / "verifact_tune.json").read_text())["base"] == str(
        tiny_sentence_model
    )
    assert after > before and after >= 0.75, (before, after)
    tuned = SentenceTransformerEncoder(str(tmp_path / "tuned"))
    assert tuned.fingerprint != SentenceTransformerEncoder(str(tiny_sentence_model)).fingerprint


def test_epoch_averaging_keeps_the_mean_of_the_last_epochs_ends() -> None:
    import torch

    model = torch.nn.Linear(2, 1)
    averager = _epoch_averager(model, epochs=4, last=3)
    ends = []
    for epoch in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(epoch * epoch))
            model.bias.fill_(-float(epoch))
        ends.append(model.weight.detach().clone())
        averager.on_epoch_end(None, SimpleNamespace(epoch=float(epoch)), None)
    assert averager.apply() == 3
    # Epochs 2, 3 and 4: weights 4, 9, 16 and biases -2, -3, -4; epoch 1 is left out.
    assert torch.allclose(model.weight, torch.full_like(model.weight, 29 / 3))
    assert torch.allclose(model.bias, torch.tensor([-3.0]))
    assert not torch.equal(model.weight, ends[-1])


def test_tuning_with_bad_settings_no_pairs_or_a_missing_base_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="average_last_epochs must be between 0 and epochs"):
        tune_encoder(
            "anything", [TunePair("q", "p")], tmp_path / "out", TuneConfig(epochs=2, average_last_epochs=3)
        )
    with pytest.raises(EncoderError, match="unknown tuning loss 'triplet'; choose from mnrl, guided"):
        tune_encoder("anything", [TunePair("q", "p")], tmp_path / "out", TuneConfig(loss="triplet"))
    with pytest.raises(EncoderError, match="no tuning pairs"):
        tune_encoder("anything", [], tmp_path / "out")
    with pytest.raises(EncoderError, match="cannot load base encoder"):
        tune_encoder(str(tmp_path / "no-such-model"), [TunePair("q", "p")], tmp_path / "out")


def test_a_train_claim_that_repeats_a_held_out_claim_is_not_trained_on(tmp_path: Path) -> None:
    data = write_climate_fever(tmp_path)
    claims = load_claims(data)
    test_claim = next(c for c in claims if c.split == "test")
    train_ids = [c.id for c in claims if c.split == "train"]
    lines = (data / "climate_fever" / "climate-fever.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for rec in records:
        if rec["claim_id"] == train_ids[0]:
            rec["claim"] = test_claim.text.upper() + "."  # same words, other case and punctuation
    (data / "climate_fever" / "climate-fever.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    assert claim_key(test_claim.text.upper() + ".") == claim_key(test_claim.text)
    kept = {c.id for c in training_claims(data)}
    assert train_ids[0] not in kept and set(train_ids[1:]) <= kept
    assert all(p.query != test_claim.text.upper() + "." for p in climate_fever_pairs(data))
