#!/usr/bin/env bash
# Problem 418 on a GPU with the released DiffusionGemma weights: grades the reference through the
# normal pipeline (`grader submit`; on a GPU the model handle loads there in bfloat16, and the
# hidden tests that run on any model run on it; the grader's trusted copy shares the GPU, what does
# not fit beside the worker's copy waiting in host memory), first with the bundled tiny model (the
# tests only it can show), then runs the benchmark in bfloat16 on the GPU.
#
#   scripts/gpu_check.sh [WEIGHTS_FOLDER]        (default: $GRADER_DIFFUSIONGEMMA_PATH)
#
# It stops with an error, before anything else, where torch sees no GPU. Never part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: FAILED: no GPU is visible to torch (torch.cuda.is_available() is False)." >&2
    echo "gpu_check: run this on a machine with a CUDA GPU and a CUDA build of torch." >&2
    exit 1
fi
weights="${1:-${GRADER_DIFFUSIONGEMMA_PATH:-}}"
if [ -z "$weights" ] || [ ! -f "$weights/config.json" ]; then
    echo "gpu_check: FAILED: give the folder of the released weights (config.json, safetensors)" \
         "as the argument or in GRADER_DIFFUSIONGEMMA_PATH (got '${weights}')." >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
echo "== grader submit 418 (reference) on the GPU with the bundled tiny model (its tests of confident stopping and eos)"
env -u GRADER_DIFFUSIONGEMMA_PATH GRADER_DATA_DIR="$data" python3 -m runner.cli submit 418 solutions/418-full-inference/solution.py

echo "== grader submit 418 (reference) on the GPU with $weights"
# generous limits: the first calls on a GPU include kernel warm-up
GRADER_DIFFUSIONGEMMA_PATH="$weights" GRADER_DATA_DIR="$data" GRADER_LIMITS="${GRADER_LIMITS:-time_s=120,total_s=600}" \
    python3 -m runner.cli submit 418 solutions/418-full-inference/solution.py

echo "== benchmark: reference vs transformers generate() vs autoregressive, bfloat16 on the GPU"
python3 scripts/bench_capstone.py --model "$weights" --device cuda --dtype bfloat16 --steps 48 --batch 4 --repeats 3
