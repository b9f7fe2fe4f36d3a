"""``verifact prepare``: make the embedded defaults exist (models, NLI settings, demo index) once.

On a fresh machine it trains the light run files (minutes on 2 cores), builds the NLI pairs, tunes
the NLI judge on dev and indexes the Climate-FEVER and COVID-Fact corpora; whatever already exists
is kept, so a second run does nothing. Each step runs our own CLI in a child process, with its
progress bars, so a failed step says which one and stops.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from api.config import Settings
from graph.nli_cli import DEFAULT_NLI_DATA_DIR

QUICK_CLASSIFIER = "runs/quick-minilm/model"
QUICK_NLI = "runs/quick-minilm-nli/model"
NLI_DATA = DEFAULT_NLI_DATA_DIR  # where `verifact export` looks for a pair model's check pairs
DEMO_CORPORA = (("climate_fever/corpus.jsonl", "article"), ("covid_fact/corpus.jsonl", "title"))


class PrepareError(Exception):
    """A preparation step failed; the message names it and the command to retry."""


@dataclass(frozen=True)
class Step:
    """One preparation step: what it makes and the command that makes it."""

    name: str
    output: Path
    args: list[str]
    optional: bool = False
    """A failure is reported and preparation goes on (a speed-up, not a need)."""


def _has_model(path: str) -> bool:
    from classifier.ensemble import is_ensemble

    return (Path(path) / "config.json").is_file() or is_ensemble(path)


def _lacks_onnx(path: str) -> bool:
    """Whether the model, or any member of an ensemble, has no ONNX export yet."""
    from classifier.ensemble import is_ensemble, read_spec

    members = read_spec(path, PrepareError)[0] if is_ensemble(path) else [Path(path)]
    return any(not (m / "onnx").is_dir() for m in members)


def resolve_model_dirs(settings: Settings) -> Settings:
    """The settings with each default model directory replaced by the light one when only that exists.

    An explicitly configured directory is never replaced.
    """
    updates: dict[str, str] = {}
    defaults = Settings.model_fields
    for key, light in (("classifier_dir", QUICK_CLASSIFIER), ("nli_model", QUICK_NLI)):
        current = getattr(settings, key)
        if current == defaults[key].default and not _has_model(current) and _has_model(light):
            updates[key] = light
    return settings.model_copy(update=updates) if updates else settings


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnxscript"))


def plan(settings: Settings) -> list[Step]:
    """The steps still to do, in order."""
    cli = [sys.executable, "-m", "api.cli"]
    data = settings.data_dir
    steps: list[Step] = []
    resolved = resolve_model_dirs(settings)
    for key, what in (("classifier_dir", "check-worthiness model"), ("nli_model", "NLI verifier")):
        configured = getattr(resolved, key)
        if configured != Settings.model_fields[key].default and not _has_model(configured):
            raise PrepareError(
                f"the configured {what} {configured} does not exist: train it there, or unset "
                f"VERIFACT_{key.upper()} to use the default that prepare trains"
            )
    classifier_dir = resolved.classifier_dir
    if not _has_model(classifier_dir):
        steps.append(
            Step(
                "check-worthiness classifier (light run file; full: configs/cpu-minilm.json, 10-14 min)",
                Path(QUICK_CLASSIFIER),
                [*cli, "train", "--config", "configs/quick-minilm.json", "--data-dir", data],
            )
        )
        classifier_dir = QUICK_CLASSIFIER
    nli_model = resolved.nli_model
    if not _has_model(nli_model):
        if not (Path(NLI_DATA) / "train.tsv").is_file():
            steps.append(
                Step(
                    "NLI verifier pairs",
                    Path(NLI_DATA),
                    [*cli, "data", "nli", "--data-dir", data, "--out", NLI_DATA],
                )
            )
        steps.append(
            Step(
                "NLI verifier (light run file; full: configs/cpu-minilm-nli.json, ~21 min)",
                Path(QUICK_NLI),
                [*cli, "train", "--config", "configs/quick-minilm-nli.json"],
            )
        )
        nli_model = QUICK_NLI
    if not (Path(nli_model) / "nli_judge.json").is_file():
        steps.append(
            Step(
                "NLI judge calibration and rule, tuned on dev",
                Path(nli_model) / "nli_judge.json",
                [*cli, "nli", "tune", "--model", nli_model, "--nli-data", NLI_DATA],
            )
        )
    if _onnx_available():
        if _lacks_onnx(classifier_dir):
            steps.append(
                Step(
                    "int8 ONNX export of the classifier (faster serving; checked against torch on CT24 dev)",
                    Path(classifier_dir) / "onnx",
                    [*cli, "export", "--model", classifier_dir, "--data-dir", data],
                    optional=True,
                )
            )
        if _lacks_onnx(nli_model):
            steps.append(
                Step(
                    "int8 ONNX export of the NLI verifier (checked against torch on the dev pairs)",
                    Path(nli_model) / "onnx",
                    # A sentence-pair model is checked on the dev pairs of `verifact data nli` by default.
                    [*cli, "export", "--model", nli_model],
                    optional=True,
                )
            )
    if not (Path(settings.index_dir) / "manifest.json").is_file():
        inputs: list[str] = []
        for rel, _ in DEMO_CORPORA:
            path = Path(data) / rel
            if not path.is_file():
                raise PrepareError(
                    f"demo corpus missing: {path} (set VERIFACT_DATA_DIR to the shared data folder)"
                )
            inputs.append(str(path))
        steps.append(
            Step(
                "demo evidence index (Climate-FEVER and COVID-Fact corpora)",
                Path(settings.index_dir),
                [*cli, "index", "build", *inputs, "--title-field", "article", "--out", settings.index_dir],
            )
        )
    return steps


def prepare(settings: Settings, *, echo: bool = True) -> Settings:
    """Run the missing steps; return the settings the server should use.

    Raises:
        PrepareError: a step failed.
    """
    steps = plan(settings)
    if echo:
        print(
            "verifact: everything is prepared" if not steps else f"verifact: {len(steps)} step(s) to prepare"
        )
    for i, step in enumerate(steps, 1):
        if echo:
            print(f"[{i}/{len(steps)}] {step.name}\n      $ {' '.join(step.args[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(step.args, check=False).returncode != 0:
            if not step.optional:
                raise PrepareError(f"step failed: {step.name}; rerun: {' '.join(step.args[1:])}")
            if echo:
                print(f"      skipped: {step.name} failed; the torch model is used instead", flush=True)
            continue
        if echo:
            print(f"      done in {time.perf_counter() - started:.0f} s", flush=True)
    return resolve_model_dirs(settings)
