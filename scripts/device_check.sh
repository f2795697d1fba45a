#!/usr/bin/env bash
# One-shot GPU check: the test suite (CUDA tests included) and the benchmarks with --device cuda.
# Runs with whatever python3 holds torch on the GPU machine; pure-Python deps it lacks may be carried as
# wheels in .whl/ (see README). Writes logs to $OUT (or ./device-out).
set -uo pipefail
out="${OUT:-device-out}"; mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import gymnasium, stable_baselines3, sb3_contrib" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
python3 -m pytest -q tests -p no:cacheprovider 2>&1 | tail -n 25 | tee "$out/pytest.txt"
{
  python3 benchmarks/bench_env.py --env AdaNAT-FashionMNIST-v0 --num-envs 256 --steps 8 --device cuda
  python3 benchmarks/bench_env.py --env AdaNAT-FashionMNIST-v0 --num-envs 1024 --steps 8 --device cuda
  python3 benchmarks/bench_env.py --env AdaNAT-ImageNet256-v0 --weights random --num-envs 64 --steps 8 --device cuda --amp bf16
  if [ "${WITH_SAMPLER:-0}" = 1 ]; then
    for amp in none bf16; do for bs in 16 64 256; do
      python3 benchmarks/bench_sampler.py --nat imagenet256-L --device cuda --amp "$amp" --batch-size "$bs" --steps 8 --repeats 3
    done; done
  fi
} 2>&1 | grep -v Warning | tee "$out/bench.jsonl"
