"""The real packaged all-MiniLM-L6-v2: it loads offline as our base and takes a training step."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.args import PACKAGED_MINILM, ModelArguments
from classifier.modeling import build_model_and_tokenizer, resolve_model_path


@pytest.mark.integration
def test_packaged_minilm_loads_offline_and_trains_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = Path(resolve_model_path(PACKAGED_MINILM))
    assert (path / "model.safetensors").is_file()
    model, tok = build_model_and_tokenizer(ModelArguments(freeze_embeddings=True), ["No", "Yes"])
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.config.id2label == {0: "No", 1: "Yes"}
    assert not model.get_input_embeddings().weight.requires_grad
    batch = tok(["We cut taxes by 20 percent.", "Thank you."], padding=True, return_tensors="pt")
    labels = torch.tensor([1, 0])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = model(**batch, labels=labels).loss
    first.backward()
    opt.step()
    second = model(**batch, labels=labels).loss
    assert torch.isfinite(first) and second.item() < first.item()
