#!/usr/bin/env bash
# One-shot GPU check: the test suite (CUDA tests included) and the benchmarks with --device cuda.
# Runs with whatever python3 holds torch on the GPU machine; writes logs to $OUT (or ./device-out).
set -uo pipefail
out="${OUT:-device-out}"; mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
python3 -m pytest -q -x tests "$@" 2>&1 | tail -n 25 | tee "$out/pytest.txt"
{
  for amp in none bf16; do
    for bs in 16 64 256; do
      python3 benchmarks/bench_sampler.py --nat imagenet256-L --device cuda --amp "$amp" --batch-size "$bs" --steps 8 --repeats 3
    done
  done
  python3 benchmarks/bench_sampler.py --nat imagenet256-L --device cuda --amp bf16 --batch-size 256 --steps 8 --repeats 3 --no-decode
} 2>&1 | tee "$out/bench.jsonl"
