"""The multi-process path: ``accelerate launch`` with 2 CPU processes over gloo, both engines."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import toy_overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["custom_loop", "trainer"])
def test_two_process_run_finishes_and_shards_the_data(
    engine: str, tiny_base: Path, toy_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(toy_overrides(tiny_base, toy_data, out, engine=engine)))
    # --multi_gpu picks accelerate's distributed launcher; with no GPU each process runs on the
    # CPU and the process group uses gloo.
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "api.cli",
        "train",
        "--config",
        str(run_file),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).resolve().parents[2]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Every rank leaves the process group before exiting (a rank that did not once aborted in teardown).
    assert "terminate called" not in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # Two processes of 16 each: 400 rows make 13 optimizer steps per epoch, not 25.
    assert max(h["step"] for h in metrics["history"]) == math.ceil(400 / 32) * 3
    assert metrics["results"]["validation"]["at_threshold"]["f1"] > 0.7
    assert (out / "model" / "model.safetensors").is_file()
