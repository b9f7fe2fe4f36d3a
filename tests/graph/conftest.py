"""NLI fixtures: toy claim/evidence data in our pair format and a tiny pair model trained on it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from graph.nli_records import ClaimRecord, EvidenceRecord, NLIPair, write_pairs
from graph.schemas import Label
from tests.conftest import CHATTER_WORDS, NUMBERS, SHARED_WORDS, build_tiny_bert

NLI_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cpu-minilm-nli.json"
TOPICS = ["tax", "jobs", "unemployment", "rate"]


def toy_claim(rng: random.Random) -> str:
    """A short claim in the tiny BERT's vocabulary: something increased by a number."""
    return (
        " ".join([*rng.sample(SHARED_WORDS, 2), rng.choice(TOPICS), "increased", rng.choice(NUMBERS)]) + "."
    )


def toy_evidence(rng: random.Random, claim: str, label: Label) -> str:
    """Evidence that repeats the claim (SUPPORTED), says the opposite (REFUTED), or chats (NEI)."""
    if label == "NOT_ENOUGH_INFO":
        return " ".join(rng.sample(CHATTER_WORDS, 5)) + "."
    words = claim.rstrip(".").split()
    if label == "REFUTED":
        words = ["cut" if w == "increased" else w for w in words]
    return " ".join(words) + "."


def toy_pairs(n: int, seed: int) -> list[NLIPair]:
    """`n` labelled pairs, the three labels in turn."""
    rng = random.Random(seed)
    labels: tuple[Label, ...] = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")
    pairs = []
    for i in range(n):
        claim = toy_claim(rng)
        label = labels[i % 3]
        pairs.append(NLIPair(claim, toy_evidence(rng, claim, label), label, "toy", f"toy-{seed}-{i}"))
    return pairs


def toy_claims(n: int, seed: int) -> list[ClaimRecord]:
    """`n` claims with three passages each; the label says which kind of passage is among them."""
    rng = random.Random(seed)
    labels: tuple[str, ...] = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO", "DISPUTED")
    records = []
    for i in range(n):
        claim, label = toy_claim(rng), labels[i % 4]
        kinds: list[Label] = ["NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO"]
        kinds.append("SUPPORTED" if label in ("SUPPORTED", "DISPUTED") else "REFUTED")
        if label == "NOT_ENOUGH_INFO":
            kinds[-1] = "NOT_ENOUGH_INFO"
        evidences = tuple(
            EvidenceRecord(f"c{seed}-{i}-{k}", toy_evidence(rng, claim, kind), "Toy", kind)
            for k, kind in enumerate(kinds)
        )
        records.append(ClaimRecord(f"toy-{seed}-{i}", claim, label, "toy", evidences))
    return records


@dataclass(frozen=True)
class NLIRun:
    """A trained tiny pair model and the toy files it was trained and tuned on."""

    data: Path
    model: Path
    output: Path


def build_tiny_pair_base(out: Path) -> Path:
    """The tiny BERT of tests/conftest.py without its 2-class head, so a 3-class head can be fitted."""
    from transformers import BertModel

    build_tiny_bert(out)
    BertModel.from_pretrained(out).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def nli_run(tmp_path_factory: pytest.TempPathFactory) -> NLIRun:
    """configs/cpu-minilm-nli.json run for a few steps on toy pairs, from the tiny BERT."""
    from classifier.args import parse_run_config
    from classifier.train import MODEL_SUBDIR, run_training

    data = tmp_path_factory.mktemp("nli-data")
    write_pairs(data / "train.tsv", toy_pairs(150, seed=1))
    write_pairs(data / "dev.tsv", toy_pairs(45, seed=2))
    (data / "claims_dev.jsonl").write_text("".join(c.to_json() + "\n" for c in toy_claims(24, seed=3)))
    base = build_tiny_pair_base(tmp_path_factory.mktemp("tiny-pair-base"))
    out = tmp_path_factory.mktemp("nli-run")
    overrides = {
        "model_name_or_path": str(base),
        "data_dir": str(data),
        "output_dir": str(out),
        "learning_rate": 3e-3,
        "num_train_epochs": 2,
        "eval_steps": 10,
        "logging_steps": 5,
        "plots": False,
        "disable_tqdm": True,
    }
    summary = run_training(parse_run_config(NLI_CONFIG, overrides))
    assert summary is not None
    return NLIRun(data=data, model=out / MODEL_SUBDIR, output=out)
