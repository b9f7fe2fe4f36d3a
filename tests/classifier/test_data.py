"""The data loader: formats, label maps, and the errors a user sees for bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from classifier.args import DataArguments, parse_run_config
from classifier.data import load_dataset, read_rows
from classifier.errors import ConfigError, DataError


def _args(d: Path, **kw: object) -> DataArguments:
    base: dict[str, object] = {
        "data_dir": str(d),
        "train_file": "train.tsv",
        "validation_file": "dev.tsv",
        "test_file": "test.tsv",
        "class_names": ["No", "Yes"],
    }
    base.update(kw)
    return DataArguments(**base)  # type: ignore[arg-type]


def _tsv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("Text", "class_label")) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def test_loads_tsv_with_label_map(toy_data: Path) -> None:
    ds = load_dataset(_args(toy_data))
    assert (len(ds.train), len(ds.validation or ()), len(ds.test or ())) == (400, 80, 80)
    assert ds.label_names == ("No", "Yes") and ds.positive_index == 1
    assert set(ds.train.labels) == {0, 1}


def test_reads_csv_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('text,label\n"Hello, world",0\nTax rose 5%,1\n', encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "x", "label": 1}) + "\n\n", encoding="utf-8")
    assert read_rows(tmp_path / "a.csv")[0]["text"] == "Hello, world"
    assert read_rows(tmp_path / "a.jsonl") == [{"text": "x", "label": 1}]


def test_pair_mode_reads_the_second_text(tmp_path: Path) -> None:
    p = tmp_path / "nli.jsonl"
    p.write_text(
        "".join(
            json.dumps({"claim": f"c{i}", "evidence": f"e{i}", "label": lab}) + "\n"
            for i, lab in enumerate(["SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO"])
        ),
        encoding="utf-8",
    )
    ds = load_dataset(
        DataArguments(
            train_file=str(p),
            validation_file=None,
            test_file=None,
            text_column="claim",
            text_pair_column="evidence",
            label_column="label",
            positive_label=None,
        )
    )
    assert ds.train.pairs == ("e0", "e1", "e2")
    assert ds.label_names == ("NOT_ENOUGH_INFO", "REFUTES", "SUPPORTS")
    assert ds.positive_index is None


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: .*nope\.tsv"):
        load_dataset(_args(tmp_path, train_file="nope.tsv"))


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    _tsv(tmp_path / "train.tsv", [("a", "Yes")], header=("sentence", "class_label"))
    with pytest.raises(DataError, match=r"no column 'Text'; the columns are: class_label, sentence"):
        load_dataset(_args(tmp_path, validation_file=None, test_file=None))


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("Text\tclass_label\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_dataset(_args(tmp_path, validation_file=None, test_file=None))


def test_unknown_labels_are_listed(tmp_path: Path) -> None:
    _tsv(tmp_path / "train.tsv", [("a", "Yes"), ("b", "No"), ("c", "Maybe")])
    with pytest.raises(DataError, match=r"unknown labels 'Maybe' \(1 rows\)"):
        load_dataset(_args(tmp_path, validation_file=None, test_file=None))


def test_label_aliases_map_raw_values(tmp_path: Path) -> None:
    _tsv(tmp_path / "train.tsv", [("a", "1"), ("b", "0")])
    ds = load_dataset(
        _args(tmp_path, validation_file=None, test_file=None, label_aliases='{"1": "Yes", "0": "No"}')
    )
    assert ds.train.labels == (1, 0)


def test_bad_json_line_and_bad_encoding(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        read_rows(tmp_path / "bad.jsonl")
    (tmp_path / "latin.tsv").write_bytes("Text\tclass_label\ncaf\xe9\tYes\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_rows(tmp_path / "latin.tsv")


def test_overlap_between_train_and_eval_is_warned_and_can_be_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _tsv(tmp_path / "train.tsv", [("Taxes  rose.", "Yes"), ("Hello.", "No"), ("Jobs fell.", "Yes")])
    _tsv(tmp_path / "dev.tsv", [("taxes rose.", "Yes"), ("Bye.", "No")])
    with caplog.at_level(logging.WARNING):
        kept = load_dataset(_args(tmp_path, test_file=None))
    assert "1 training sentences also occur" in caplog.text
    assert len(kept.train) == 3
    dropped = load_dataset(_args(tmp_path, test_file=None, drop_eval_overlap=True))
    assert dropped.train.texts == ("Hello.", "Jobs fell.")


def test_extra_training_files_are_deduplicated_against_eval(tmp_path: Path) -> None:
    _tsv(tmp_path / "train.tsv", [("Taxes rose.", "Yes"), ("Hello.", "No")])
    _tsv(tmp_path / "dev.tsv", [("Jobs fell by half.", "Yes"), ("Bye.", "No")])
    _tsv(
        tmp_path / "extra.tsv",
        [("jobs fell by half.", "1"), ("Hello.", "0"), ("New line.", "0")],
        header=("text", "label"),
    )
    ds = load_dataset(
        _args(
            tmp_path,
            test_file=None,
            extra_train_files=["extra.tsv|text|label"],
            label_aliases='{"1": "Yes", "0": "No"}',
        )
    )
    assert ds.train.texts == ("Taxes rose.", "Hello.", "New line.")
    only_positive = load_dataset(
        _args(
            tmp_path,
            test_file=None,
            extra_train_files=["extra.tsv|text|label|1"],
            label_aliases='{"1": "Yes", "0": "No"}',
        )
    )
    assert only_positive.train.texts == ("Taxes rose.", "Hello.")


def test_validation_holdout_takes_the_newest_rows(tmp_path: Path) -> None:
    rows = "".join(
        f"{i}\tsentence {i}\t{'Yes' if i % 2 else 'No'}\n" for i in (5, 1, 9, 3, 7, 2, 8, 4, 6, 10)
    )
    (tmp_path / "train.tsv").write_text("Sentence_id\tText\tclass_label\n" + rows, encoding="utf-8")
    ds = load_dataset(
        _args(tmp_path, validation_file=None, test_file=None, validation_holdout="Sentence_id:0.2")
    )
    assert ds.validation is not None and ds.validation.texts == ("sentence 9", "sentence 10")
    assert len(ds.train) == 8 and "sentence 9" not in ds.train.texts
    with pytest.raises(DataError, match="COLUMN:FRACTION"):
        load_dataset(_args(tmp_path, validation_file=None, test_file=None, validation_holdout="Sentence_id"))


def test_run_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        parse_run_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_run_config(bad)
    with pytest.raises(ConfigError, match="invalid run configuration"):
        parse_run_config(None, {"no_such_key": 1})
    with pytest.raises(ConfigError, match="engine must be"):
        parse_run_config(None, {"engine": "magic"})


def test_shipped_run_files_parse() -> None:
    cpu = parse_run_config("configs/cpu-minilm.json")
    # bf16 is refused on a machine without a GPU unless the run is told to use the CPU.
    gpu = parse_run_config("configs/gpu-bert-base.json", {"use_cpu": True})
    assert cpu.model.model_name_or_path == "packaged:all-MiniLM-L6-v2"
    assert gpu.model.model_name_or_path == "bert-base-uncased" and gpu.training.bf16
    for cfg in (cpu, gpu):
        assert cfg.training.learning_rate == 2e-5 and cfg.training.max_grad_norm == 5.0
        assert cfg.training.metric_for_best_model == "f1"


def test_the_drift_run_file_is_the_cpu_one_with_the_benchmarked_holdout() -> None:
    from bench.classifier_quality import CONFIG, DRIFT, DRIFT_CONFIG

    base = json.loads(Path(CONFIG).read_text(encoding="utf-8"))
    drift = json.loads(Path(DRIFT_CONFIG).read_text(encoding="utf-8"))
    expected = {k: v for k, v in base.items() if k != "validation_file"} | DRIFT
    assert {k: v for k, v in drift.items() if k != "output_dir"} == {
        k: v for k, v in expected.items() if k != "output_dir"
    }
    cfg = parse_run_config(DRIFT_CONFIG)
    assert cfg.data.validation_holdout == "Sentence_id:0.1"
