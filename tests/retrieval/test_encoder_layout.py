"""Reading a sentence-transformers folder: pooling, normalisation and length, in both config layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.encoder import SentenceModelLayout, load_encoder
from retrieval.errors import EncoderError

MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def _folder(root: Path, pooling: dict[str, object], modules: list[dict[str, str | int]] = MODULES) -> Path:
    (root / "1_Pooling").mkdir(parents=True)
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return root


def test_sentence_transformers_5_layout(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True})
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 200}))
    layout = SentenceModelLayout.read(root)
    assert (layout.pooling, layout.normalize, layout.max_seq_length) == ("mean", True, 200)


def test_sentence_transformers_6_layout_keeps_length_with_the_tokenizer(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"embedding_dimension": 8, "pooling_mode": "cls"}, MODULES[:2])
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    layout = SentenceModelLayout.read(root)
    assert (layout.pooling, layout.normalize, layout.max_seq_length) == ("cls", False, 128)


def test_pooling_the_export_cannot_reproduce_is_flagged(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"pooling_mode": "max"})
    assert SentenceModelLayout.read(root).pooling == "unsupported"


def test_the_fingerprint_follows_the_weights(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"pooling_mode": "mean"})
    (root / "model.safetensors").write_bytes(b"weights one")
    first = SentenceModelLayout.read(root).fingerprint()
    (root / "model.safetensors").write_bytes(b"weights two")
    assert SentenceModelLayout.read(root).fingerprint() != first


def test_unknown_backend_and_missing_model_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="unknown encoder backend 'gpu'"):
        load_encoder("packaged:all-MiniLM-L6-v2", "gpu")  # type: ignore[arg-type]
    with pytest.raises(EncoderError, match="cannot load encoder"):
        load_encoder(str(tmp_path / "nothing-here"), "torch")


def test_a_missing_reranker_is_a_clear_error(tmp_path: Path) -> None:
    from retrieval.retriever import CrossEncoderReranker

    with pytest.raises(EncoderError, match="cannot load reranker"):
        CrossEncoderReranker(str(tmp_path / "no-reranker"))
