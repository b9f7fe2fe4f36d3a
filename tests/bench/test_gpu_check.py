"""scripts/gpu-check.sh in its CPU mode: both models, both engines, losses fall, a report is written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_mode_trains_both_models_with_both_engines(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [
            str(ROOT / "scripts" / "gpu-check.sh"),
            "--cpu",
            "--steps",
            "20",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "gpu-check: OK" in proc.stdout
    rows = json.loads((tmp_path / "gpu_check_cpu.json").read_text())["rows"]
    assert {(r["model"], r["engine"]) for r in rows} == {
        (m, e) for m in ("minilm", "bert-base-config") for e in ("trainer", "custom_loop")
    }
    assert all(r["loss_fell"] and r["samples_per_s"] > 0 and r["precision"] == "fp32" for r in rows)
