"""Inference: save/load round trips, the stored threshold, ordering, odd inputs, ONNX agreement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifier.args import parse_run_config
from classifier.errors import ModelLoadError
from classifier.predict import CheckWorthinessClassifier
from classifier.train import MODEL_SUBDIR, run_training
from quantize import MAX_BATCH_DRIFT, SCHEME
from tests.conftest import toy_overrides

SENTENCES = [
    "the unemployment rate was cut by 5 percent this year.",
    "thank you folks, what a wonderful night.",
    "",
    "we doubled jobs and tax by 7 million in our year.",
    "hello everybody.",
]


@pytest.fixture(scope="module")
def model_dir(tiny_base: Path, toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained toy classifier directory."""
    out = tmp_path_factory.mktemp("run-infer")
    run_training(parse_run_config(None, toy_overrides(tiny_base, toy_data, out, plots=False)))
    return out / MODEL_SUBDIR


def test_load_twice_gives_identical_scores(model_dir: Path) -> None:
    a = CheckWorthinessClassifier.load(model_dir, backend="torch").predict(SENTENCES)
    b = CheckWorthinessClassifier.load(model_dir, backend="torch").predict(SENTENCES)
    assert [p.score for p in a] == [p.score for p in b]


def test_saved_model_matches_the_in_memory_model(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    with torch.inference_mode():
        direct = [
            torch.softmax(model(**tok(s, return_tensors="pt")).logits, -1)[0, 1].item() for s in SENTENCES
        ]
    loaded = CheckWorthinessClassifier.load(model_dir, backend="torch").scores(SENTENCES)
    assert np.allclose(direct, loaded, atol=1e-5)


def test_claims_score_higher_than_chatter(model_dir: Path) -> None:
    # Ranked, not thresholded: a toy model's tuned threshold can sit close to one of these scores.
    scores = CheckWorthinessClassifier.load(model_dir, backend="torch").scores(SENTENCES)
    assert min(scores[0], scores[3]) > max(scores[1], scores[4])


def test_stored_threshold_is_applied(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    scores = CheckWorthinessClassifier.load(copy, backend="torch").scores(SENTENCES)
    cut = float(np.median(scores))
    cfg_path = copy / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["verifact"]["threshold"] = cut
    cfg_path.write_text(json.dumps(cfg))
    clf = CheckWorthinessClassifier.load(copy, backend="torch")
    assert clf.threshold == cut
    labels = [p.label for p in clf.predict(SENTENCES)]
    assert labels == ["Yes" if s >= cut else "No" for s in scores]
    assert all(p.threshold == cut for p in clf.predict(SENTENCES))


def test_batched_prediction_keeps_input_order(model_dir: Path) -> None:
    clf = CheckWorthinessClassifier.load(model_dir, backend="torch", batch_size=2)
    together = clf.scores(SENTENCES)
    alone = [clf.scores([s])[0] for s in SENTENCES]
    assert np.allclose(together, alone, atol=1e-5)
    assert [p.text for p in clf.predict(SENTENCES)] == SENTENCES


def test_empty_and_very_long_inputs_do_not_crash(model_dir: Path) -> None:
    clf = CheckWorthinessClassifier.load(model_dir, backend="torch")
    long = "the tax rate was cut by 5 percent " * 3000
    preds = clf.predict(["", long, "hello."])
    assert [p.truncated for p in preds] == [False, True, False]
    assert preds[1].n_tokens == clf.meta.max_length
    assert all(0.0 <= p.score <= 1.0 for p in preds)
    assert clf.predict([]) == []


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        CheckWorthinessClassifier.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        CheckWorthinessClassifier.load(tmp_path / "empty")


def test_onnx_int8_agrees_with_torch_and_is_picked_by_default(
    model_dir: Path, tmp_path: Path, toy_data: Path
) -> None:
    from classifier.data import read_rows
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    texts = [r["Text"] for r in read_rows(toy_data / "dev.tsv")]
    report = export_onnx(copy, texts, min_agreement=0.95)
    assert report["label_agreement"] >= 0.95
    assert (copy / "onnx" / "model.int8.onnx").is_file()
    auto = CheckWorthinessClassifier.load(copy)
    assert auto.backend.name == "onnx"
    torch_scores = CheckWorthinessClassifier.load(copy, backend="torch").scores(texts)
    batched = np.array(auto.scores(texts))
    assert np.max(np.abs(batched - np.array(torch_scores))) < 0.1
    # Activations are quantized per token: a sentence scores the same alone as among the others.
    assert report["activations"] == f"int8 {SCHEME}"
    assert report["max_batch_drift"] <= MAX_BATCH_DRIFT
    alone = np.array([auto.scores([t])[0] for t in texts])
    assert np.max(np.abs(alone - batched)) <= MAX_BATCH_DRIFT


def test_an_export_made_before_per_token_activations_is_flagged(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    export_onnx(copy, SENTENCES, min_agreement=0.5)
    caplog.clear()
    with caplog.at_level("WARNING", logger="classifier.predict"):
        CheckWorthinessClassifier.load(copy, backend="onnx")
    assert not [r for r in caplog.records if r.name == "classifier.predict"]
    report_file = copy / "onnx" / "export.json"
    report = json.loads(report_file.read_text())
    del report["activations"]  # as the export.json of an older release
    report_file.write_text(json.dumps(report))
    with caplog.at_level("WARNING", logger="classifier.predict"):
        CheckWorthinessClassifier.load(copy, backend="onnx")
    assert "verifact export --model" in caplog.text


def test_onnx_sessions_stop_spinning_when_the_service_says_so(model_dir: Path, tmp_path: Path) -> None:
    from classifier.export import export_onnx
    from classifier.predict import set_onnx_spinning

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    export_onnx(copy, SENTENCES, quantize=False)
    key = "session.intra_op.allow_spinning"
    # A process-wide setting: whatever loaded the service earlier in this process may have turned it off.
    previous = set_onnx_spinning(True)
    try:
        default = CheckWorthinessClassifier.load(copy, backend="onnx")
        set_onnx_spinning(False)
        quiet = CheckWorthinessClassifier.load(copy, backend="onnx")
    finally:
        set_onnx_spinning(previous)
    with pytest.raises(RuntimeError):  # ONNX Runtime's default (spinning) is left alone
        default.backend.session.get_session_options().get_session_config_entry(key)  # type: ignore[attr-defined]
    assert quiet.backend.session.get_session_options().get_session_config_entry(key) == "0"  # type: ignore[attr-defined]
    assert quiet.scores(SENTENCES) == default.scores(SENTENCES)


def test_onnx_fp32_export_is_exact(model_dir: Path, tmp_path: Path) -> None:
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    report = export_onnx(copy, SENTENCES, quantize=False)
    assert report["max_abs_prob_diff"] < 1e-4


def test_low_agreement_leaves_no_onnx_model(model_dir: Path, tmp_path: Path) -> None:
    from classifier.errors import ExportError
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    with pytest.raises(ExportError, match="below the required"):
        export_onnx(copy, SENTENCES, min_agreement=1.01)
    assert not (copy / "onnx" / "model.int8.onnx").exists()
    assert CheckWorthinessClassifier.load(copy).backend.name == "torch"


def test_a_probability_moved_too_far_leaves_no_onnx_model(model_dir: Path, tmp_path: Path) -> None:
    from classifier.errors import ExportError
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    with pytest.raises(ExportError, match=r"more than the allowed 0\.000"):
        export_onnx(copy, SENTENCES, min_agreement=0.0, max_prob_diff=0.0)
    assert not (copy / "onnx" / "model.int8.onnx").exists()


def test_near_ties_are_told_from_decisive_inputs(model_dir: Path) -> None:
    from classifier.export import DECISIVE_MARGIN, _margins

    clf = CheckWorthinessClassifier.load(model_dir, backend="torch")
    assert clf.positive_index is not None and clf.threshold is not None
    pos, cut = clf.positive_index, clf.threshold
    # Positive-class probabilities just under, at, and well above the stored threshold.
    p = np.array([max(cut - DECISIVE_MARGIN / 2, 0.0), cut, min(cut + 3 * DECISIVE_MARGIN, 0.999)])
    probs = np.zeros((3, 2))
    probs[:, pos], probs[:, 1 - pos] = p, 1 - p
    label_margin, argmax_margin = _margins(clf, probs)
    assert label_margin == pytest.approx(np.abs(p - cut))
    assert list(label_margin >= DECISIVE_MARGIN) == [False, False, True]
    assert argmax_margin == pytest.approx(np.abs(p - 0.5))


def test_parallel_onnx_runs_match_serial_ones_and_threads_are_set(model_dir: Path, tmp_path: Path) -> None:
    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    export_onnx(copy, SENTENCES, quantize=False)
    texts = [f"{s} number {i} of the tax plan" for i in range(40) for s in SENTENCES[:2]]
    serial = CheckWorthinessClassifier.load(copy, backend="onnx", max_batch_tokens=64)
    par = CheckWorthinessClassifier.load(copy, backend="onnx", num_threads=1, max_batch_tokens=64, parallel=3)
    try:
        assert par.parallel == 3
        assert par.backend.session.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
        assert np.array_equal(par.probabilities(texts), serial.probabilities(texts))
    finally:
        par.close()
    assert par.parallel == 1
    assert np.array_equal(par.probabilities(texts), serial.probabilities(texts))  # still scores, serially


def test_torch_backend_runs_batches_one_after_another(model_dir: Path) -> None:
    clf = CheckWorthinessClassifier.load(model_dir, backend="torch", parallel=4)
    assert clf.parallel == 1
    with pytest.raises(ValueError, match="at least 1"):
        CheckWorthinessClassifier.load(model_dir, backend="torch", parallel=0)


def test_concurrent_encodes_keep_their_own_truncation(model_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoTokenizer

    from classifier.predict import encode

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = ["the unemployment rate was cut by five percent this year " * 8] * 64

    def wrong_lengths(i: int) -> int:
        limit = 24 if i % 2 else 40  # two callers of one tokenizer, two different limits
        return sum(len(row) != limit for row in encode(tokenizer, texts, None, limit).input_ids)

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(wrong_lengths, range(200))) == 0


def test_batched_logits_runs_the_batches_of_one_call_at_once() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from classifier.predict import Encoded, batched_logits

    # Two batches that each wait for the other: only concurrent runs get past the barrier.
    barrier = threading.Barrier(2, timeout=10)

    def backend(batch: dict[str, np.ndarray]) -> np.ndarray:
        barrier.wait()
        return batch["input_ids"][:, :1].astype(np.float32)

    enc = Encoded([[5, 6], [1], [7, 8, 9], [2]], None, [False] * 4)
    with ThreadPoolExecutor(2) as runner:
        logits = batched_logits(backend, enc, 0, batch_size=2, runner=runner)
    assert logits[:, 0].tolist() == [5.0, 1.0, 7.0, 2.0]  # input order


def test_a_call_smaller_than_one_batch_is_spread_over_the_passes() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from classifier.predict import Encoded, batched_logits

    sizes: list[int] = []
    lock = threading.Lock()

    def backend(batch: dict[str, np.ndarray]) -> np.ndarray:
        with lock:
            sizes.append(len(batch["input_ids"]))
        return batch["input_ids"][:, :1].astype(np.float32)

    rows = [[9, 1], [8], [7, 2, 3], [6], [5, 4]]
    enc = Encoded(rows, None, [False] * 5)
    # Five rows fit one batch; without a runner they run as one.
    assert batched_logits(backend, enc, 0, batch_size=64, spread=3)[:, 0].tolist() == [9, 8, 7, 6, 5]
    assert sizes == [5]
    sizes.clear()
    with ThreadPoolExecutor(3) as runner:
        logits = batched_logits(backend, enc, 0, batch_size=64, runner=runner, spread=3)
        assert sorted(sizes) == [1, 2, 2] and logits[:, 0].tolist() == [9, 8, 7, 6, 5]
        sizes.clear()
        # Never more batches than rows.
        two = Encoded(rows[:2], None, [False] * 2)
        logits = batched_logits(backend, two, 0, batch_size=64, runner=runner, spread=3)
        assert logits[:, 0].tolist() == [9, 8]
        assert sorted(sizes) == [1, 1]


def test_onnx_defaults_to_single_threaded_passes_one_per_core(model_dir: Path, tmp_path: Path) -> None:
    import os

    from classifier.export import export_onnx

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    export_onnx(copy, SENTENCES, quantize=False)
    cores = os.cpu_count() or 1

    seen: dict[str, tuple[int, int]] = {}
    for name, kwargs in {"default": {}, "threads": {"num_threads": 2}, "parallel": {"parallel": 3}}.items():
        clf = CheckWorthinessClassifier.load(copy, backend="onnx", **kwargs)
        seen[name] = (clf.parallel, clf.backend.session.get_session_options().intra_op_num_threads)  # type: ignore[attr-defined]
        clf.close()
    assert seen["default"] == ((cores, 1) if cores > 1 else (1, 0))
    assert seen["threads"] == (1, 2)  # a thread count asked for: one pass at a time
    assert seen["parallel"] == (3, 1)  # passes at once asked for: one thread each
