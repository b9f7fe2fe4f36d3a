"""``verifact prepare``: which steps `plan` lists for what is missing, and how `prepare` runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.config import Settings
from api.prepare import (
    NLI_DATA,
    QUICK_CLASSIFIER,
    QUICK_NLI,
    PrepareError,
    Step,
    plan,
    prepare,
    resolve_model_dirs,
)

# The hermetic fixture runs each test in an empty working directory, so the relative defaults
# (runs/cpu-minilm/model, runs/quick-minilm/model, runs/nli-data, ...) start out missing.


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with the two demo corpora."""
    data = tmp_path / "data"
    for rel in ("climate_fever/corpus.jsonl", "covid_fact/corpus.jsonl"):
        (data / rel).parent.mkdir(parents=True)
        (data / rel).write_text('{"id": "p1", "text": "A passage."}\n')
    return data


def _model(path: str | Path, *, tuned: bool = False) -> None:
    folder = Path(path)
    (folder / "onnx").mkdir(parents=True, exist_ok=True)  # exported too, so no optional export is planned
    (folder / "config.json").write_text("{}")
    if tuned:
        (folder / "nli_judge.json").write_text("{}")


def _index(path: str | Path) -> None:
    Path(path).mkdir(parents=True, exist_ok=True)
    (Path(path) / "manifest.json").write_text("{}")


def _outputs(steps: list[Step]) -> list[str]:
    """The outputs of the required steps (optional speed-ups, such as ONNX exports, left out)."""
    return [str(step.output) for step in steps if not step.optional]


def test_a_fresh_checkout_plans_every_step_in_order(data_dir: Path) -> None:
    steps = [step for step in plan(Settings(data_dir=str(data_dir))) if not step.optional]

    assert _outputs(steps) == [
        QUICK_CLASSIFIER,
        NLI_DATA,
        QUICK_NLI,
        str(Path(QUICK_NLI) / "nli_judge.json"),
        "runs/index",
    ]
    assert all(step.args[:3] == [sys.executable, "-m", "api.cli"] for step in steps)
    assert steps[0].args[3:] == [
        "train",
        "--config",
        "configs/quick-minilm.json",
        "--data-dir",
        str(data_dir),
    ]
    assert steps[3].args[3:] == ["nli", "tune", "--model", QUICK_NLI, "--nli-data", NLI_DATA]
    index_args = steps[4].args
    assert str(data_dir / "climate_fever/corpus.jsonl") in index_args
    assert str(data_dir / "covid_fact/corpus.jsonl") in index_args
    assert index_args[-2:] == ["--out", "runs/index"]


def test_nothing_is_planned_when_models_settings_and_index_exist(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=str(tmp_path / "no-data"),  # not needed when the index exists
        classifier_dir=str(tmp_path / "clf"),
        nli_model=str(tmp_path / "nli"),
        index_dir=str(tmp_path / "index"),
    )
    _model(settings.classifier_dir)
    _model(settings.nli_model, tuned=True)
    _index(settings.index_dir)

    assert plan(settings) == []


def test_ensembles_are_models_and_their_members_are_what_gets_exported(tmp_path: Path) -> None:
    from classifier.ensemble import write_spec

    members = [tmp_path / "runs" / name for name in ("a", "b")]
    for m in members:
        _model(m)
    shutil.rmtree(members[1] / "onnx")  # one member not exported yet
    settings = Settings(
        data_dir=str(tmp_path / "no-data"),
        classifier_dir=str(tmp_path / "runs" / "ens"),
        nli_model=str(tmp_path / "nli"),
        index_dir=str(tmp_path / "index"),
    )
    write_spec(settings.classifier_dir, members, PrepareError, {"threshold": 0.5})
    _model(settings.nli_model, tuned=True)
    _index(settings.index_dir)

    # An ensemble directory has no config.json of its own, yet it is no missing model.
    steps = plan(settings)
    assert [(s.optional, s.args[3:5]) for s in steps] == [(True, ["export", "--model"])]
    assert steps[0].args[5] == settings.classifier_dir
    _model(members[1])
    assert plan(settings) == []


def test_the_light_models_stand_in_for_missing_defaults(data_dir: Path) -> None:
    _model(QUICK_CLASSIFIER)
    _model(QUICK_NLI, tuned=True)
    settings = Settings(data_dir=str(data_dir))

    assert _outputs(plan(settings)) == ["runs/index"]
    resolved = resolve_model_dirs(settings)
    assert (resolved.classifier_dir, resolved.nli_model) == (QUICK_CLASSIFIER, QUICK_NLI)


def test_an_explicit_model_directory_is_never_replaced(data_dir: Path, tmp_path: Path) -> None:
    _model(QUICK_CLASSIFIER)
    settings = Settings(data_dir=str(data_dir), classifier_dir=str(tmp_path / "mine"))

    assert resolve_model_dirs(settings).classifier_dir == str(tmp_path / "mine")


def test_existing_nli_pairs_are_not_rebuilt_and_an_untuned_model_is_only_tuned(data_dir: Path) -> None:
    (Path(NLI_DATA)).mkdir(parents=True)
    (Path(NLI_DATA) / "train.tsv").write_text("claim\tevidence\tlabel\n")
    _model(QUICK_CLASSIFIER)
    assert _outputs(plan(Settings(data_dir=str(data_dir)))) == [
        QUICK_NLI,
        str(Path(QUICK_NLI) / "nli_judge.json"),
        "runs/index",
    ]

    _model("runs/cpu-minilm-nli/model")  # the full model, trained but not tuned
    _index("runs/index")
    assert _outputs(plan(Settings(data_dir=str(data_dir)))) == [
        str(Path("runs/cpu-minilm-nli/model") / "nli_judge.json")
    ]


def test_a_missing_index_without_the_demo_corpora_raises_prepare_error(tmp_path: Path) -> None:
    _model(QUICK_CLASSIFIER)
    _model(QUICK_NLI, tuned=True)
    settings = Settings(data_dir=str(tmp_path / "empty"))

    with pytest.raises(PrepareError, match=r"demo corpus missing: .*climate_fever/corpus\.jsonl"):
        plan(settings)
    _index("runs/index")
    assert plan(settings) == []


def test_prepare_says_everything_is_prepared_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _model(QUICK_CLASSIFIER)
    _model(QUICK_NLI, tuned=True)
    _index("runs/index")
    monkeypatch.setattr(subprocess, "run", _never_run)

    settings = prepare(Settings(data_dir=str(tmp_path)))

    assert capsys.readouterr().out.strip() == "verifact: everything is prepared"
    assert settings.classifier_dir == QUICK_CLASSIFIER and settings.nli_model == QUICK_NLI


def _never_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"nothing should run: {args}")


def test_prepare_runs_the_steps_in_order_and_stops_at_the_first_required_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = [
        Step("first", tmp_path / "a", ["python", "-m", "api.cli", "one"]),
        Step("a speed-up", tmp_path / "b", ["python", "-m", "api.cli", "two"], optional=True),
        Step("the needed one", tmp_path / "c", ["python", "-m", "api.cli", "three"]),
        Step("never reached", tmp_path / "d", ["python", "-m", "api.cli", "four"]),
    ]
    ran: list[str] = []

    def fake_run(args: list[str], check: bool) -> subprocess.CompletedProcess[bytes]:
        ran.append(args[-1])
        return subprocess.CompletedProcess(args, returncode=0 if args[-1] == "one" else 3)

    monkeypatch.setattr("api.prepare.plan", lambda _settings: steps)
    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(PrepareError, match=r"^step failed: the needed one; rerun: -m api.cli three$"):
        prepare(Settings(data_dir=str(tmp_path)))

    assert ran == ["one", "two", "three"]
    out = capsys.readouterr().out
    assert out.startswith("verifact: 4 step(s) to prepare\n[1/4] first")
    assert "skipped: a speed-up failed" in out and "[3/4] the needed one" in out


def test_an_explicit_missing_model_dir_is_refused_rather_than_trained_elsewhere(
    data_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "my-classifier"
    with pytest.raises(PrepareError, match="my-classifier does not exist") as info:
        plan(Settings(data_dir=str(data_dir), classifier_dir=str(missing)))
    assert "VERIFACT_CLASSIFIER_DIR" in str(info.value)
    with pytest.raises(PrepareError, match="VERIFACT_NLI_MODEL"):
        plan(Settings(data_dir=str(data_dir), nli_model=str(tmp_path / "my-nli")))
