#!/usr/bin/env bash
# One-shot GPU check: the CUDA tests, the env / training benchmarks with --device cuda (ImageNet-L bf16 B = 64:
# host vs device-resident rollout buffer), a short Fashion-MNIST main job on the GPU, and the data-parallel path
# under torchrun at --nproc-per-node 1 with NCCL (its iteration time against the plain process).
# Runs with whatever python3 holds torch on the GPU machine; pure-Python deps it lacks may be carried as
# wheels in .whl/ (see README). Writes logs to $OUT (or ./device-out). Optional stages: WITH_SAMPLER=1 (the
# sampler grid), WITH_ALL_TESTS=1 (the whole suite, not only the CUDA tests), WITH_ALGOS=1 (the algos suite).
set -uo pipefail
out="${OUT:-device-out}"; mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import gymnasium, stable_baselines3, sb3_contrib" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
tests="tests/test_cuda.py tests/test_device_rollouts.py"
[ "${WITH_ALL_TESTS:-0}" = 1 ] && tests=tests
python3 -m pytest -q $tests -p no:cacheprovider 2>&1 | tail -n 25 | tee "$out/pytest.txt"
{
  python3 benchmarks/bench_env.py --env AdaNAT-FashionMNIST-v0 --num-envs 256 --steps 8 --device cuda
  for buf in host device; do
    python3 benchmarks/bench_env.py --env AdaNAT-ImageNet256-v0 --weights random --num-envs 64 --steps 8 \
      --device cuda --amp bf16 --rollout-buffer "$buf"
    python3 benchmarks/bench_training.py --env AdaNAT-ImageNet256-v0 --weights random --num-envs 64 --steps 8 \
      --episodes 128 --repeats 2 --device cuda --amp bf16 --rollout-buffer "$buf"
  done
  python3 benchmarks/bench_training.py --device cuda --num-envs 256
  if [ "${WITH_SAMPLER:-0}" = 1 ]; then
    for amp in none bf16; do for bs in 16 64 256; do
      python3 benchmarks/bench_sampler.py --nat imagenet256-L --device cuda --amp "$amp" --batch-size "$bs" --steps 8 --repeats 3
    done; done
  fi
} 2>&1 | grep -v Warning | tee "$out/bench.jsonl"
# the Fashion-MNIST main job on the GPU (a shortened run: 8 iterations), its history holds peak_memory_gib
python3 experiments/ppo_adversarial.py --device cuda --iterations 8 --eval-samples 2000 --out "$out/fmnist_cuda" \
  2>&1 | grep -v "it/s" | tail -n 20 | tee "$out/main_job.txt"
# the torchrun path on one GPU (NCCL): the same main job as one rank, and its timing against the plain process
python3 -m torch.distributed.run --nproc-per-node 1 experiments/ppo_adversarial.py --device cuda --iterations 4 \
  --eval-samples 2000 --out "$out/fmnist_torchrun" 2>&1 | grep -v "it/s" | tail -n 12 | tee "$out/torchrun.txt"
python3 benchmarks/bench_distributed.py --nproc 1 --device cuda --iterations 4 2>&1 | grep -v Warning \
  | tail -n 3 | tee "$out/bench_distributed.jsonl"
if [ "${WITH_ALGOS:-0}" = 1 ]; then
  python3 experiments/compare.py algos --iterations 4 --eval-samples 1000 --curve-samples 1000 --device cuda \
    --out "$out/algos" 2>&1 | grep -v "it/s" | tail -n 40 | tee "$out/algos.txt"
fi
