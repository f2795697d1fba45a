"""Data-parallel training against one process: iteration time, where it goes, and the bytes the ranks exchange.

    python benchmarks/bench_distributed.py                       # CPU: 1 process x all cores vs 2 ranks (gloo)
    python benchmarks/bench_distributed.py --nproc 1 --device cuda --options "--batch-size 256"   # NCCL, 1 GPU

Runs the main job (``experiments/ppo_adversarial.py``, its defaults plus ``--options``) for ``--iterations``
iterations without validation or final evaluation, once as one process and once under
``torchrun --nproc-per-node N`` (on CPU every rank gets cores / N threads; the single process all the cores),
each in its own process, one after the other. From each run's ``history.json`` (the first iteration left out as
a warm-up) it prints one JSON line: the median iteration time and its split into rollout, discriminator and policy
update (each includes its own communication), the communication time and bytes per iteration of rank 0 by phase
(``policy``: DDP's gradient all-reduce; ``discriminator``: its gradient all-reduce; ``metrics``: the gathered
figures), and ``speedup`` (one process's iteration time over the N ranks').
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from adanat_env.distributed import available_cpus

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "experiments" / "ppo_adversarial.py")


def _run(command: list[str], out: Path, env: dict[str, str]) -> list[dict]:
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "history.json").read_text())


def _summary(history: list[dict]) -> dict:
    rows = history[1:] or history  # the first iteration pays for warm caches
    keys = sorted({k for h in rows for k in h if k.startswith(("time_", "comm_"))})
    out = {k: round(statistics.median(h[k] for h in rows if k in h), 4) for k in keys}
    out["iterations_timed"] = len(rows)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--nproc", type=int, default=2, help="ranks of the data-parallel run (default 2)")
    p.add_argument("--iterations", type=int, default=5, help="iterations of each run (default 5)")
    p.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per rank) (default cpu)")
    p.add_argument("--options", default="", help="more options of the main job, e.g. \"--seed 1\" (default none)")
    p.add_argument("--single", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the single process (default on)")
    args = p.parse_args(argv)
    common = ["--iterations", str(args.iterations), "--curve-every", "0", "--device", args.device,
              "--max-iterations-this-call", str(args.iterations), *shlex.split(args.options)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "RANK", "WORLD_SIZE")}
    result: dict = {"device": args.device, "nproc": args.nproc, "cpus": available_cpus(), "options": args.options}
    with tempfile.TemporaryDirectory(prefix="adanat-bench-dist-") as tmp:
        if args.single:
            out = Path(tmp) / "single"
            result["single"] = _summary(_run([sys.executable, SCRIPT, *common, "--out", str(out)], out, env))
        out = Path(tmp) / "ranks"
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.nproc),
                    "--master-port", "29631"]
        result["ranks"] = _summary(_run([*torchrun, SCRIPT, *common, "--out", str(out)], out,
                                        {**env, "OMP_NUM_THREADS": str(max(1, available_cpus() // args.nproc))}))
    if args.single:
        result["speedup"] = round(result["single"]["time_s"] / result["ranks"]["time_s"], 3)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
