"""AdaNAT training, the main job: learn a generation policy with PPO against a co-trained adversarial reward
(paper Algorithm 1), then compare it with the hand-designed schedules on the test split.

    python experiments/ppo_adversarial.py                      # Fashion-MNIST, T = 4, CPU-friendly, seed 0
    python experiments/ppo_adversarial.py --algo a2c --iterations 10 --out runs/a2c
    python experiments/ppo_adversarial.py --resume runs/ppo_adversarial   # continue a stopped run exactly
    python experiments/ppo_adversarial.py --resume runs/ppo_adversarial --d-lr 5e-4   # ... with a lower D lr
    python experiments/ppo_adversarial.py --data-dir D --nat-dir N --tokenizer-dir T --classifier-dir C   # your own
    python experiments/ppo_adversarial.py --preset official-imagenet --data-dir $IMAGENET --fid-stats S.npz \
        --inception-weights pt_inception-2015-12-05-6726825d.pth --device cuda   # ImageNet-256 (docs/imagenet.md)
    torchrun --nproc-per-node 8 experiments/ppo_adversarial.py --preset official-imagenet ...   # data-parallel,
        # 8 GPUs: --episodes, --batch-size and the minibatches are global and split evenly (docs/distributed.md)

A thin command line over agents.training (the library does the work: build, fit, checkpoint, resume, evaluate).
Writes to --out: checkpoint.pt (after every iteration), config.json, history.json, metrics.json, the sample grids
grid_{cosine,heuristic,learned}.png and training_curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from adanat_env.config import ANTICIPATED, add_config_arguments, command_line, config_from_args
from adanat_env.distributed import Ranks, exit_process, init_from_env, launched_by_torchrun
from adanat_env.inputs import InputError
from agents.training import PRESETS, RESUMABLE, TrainConfig, Trainer

SCRIPT = "python experiments/ppo_adversarial.py"


def script() -> str:
    """How to run this script again: with torchrun at the same world size when launched by it."""
    if launched_by_torchrun():
        return f"torchrun --nproc-per-node {os.environ['WORLD_SIZE']} experiments/ppo_adversarial.py"
    return SCRIPT


def build_parser() -> argparse.ArgumentParser:
    """Every option, with its default; no abbreviations (``--kl`` is not ``--kl-coef``)."""
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run = p.add_argument_group("run directory")
    run.add_argument("--out", default=None, help="run directory (default: runs/ppo_adversarial)")
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help=f"continue the run in RUN_DIR (or a checkpoint.pt) exactly; only {', '.join(RESUMABLE)} "
                          "may be changed with it (default: none)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run already in --out (default: refuse to mix two runs' files)")
    run.add_argument("--preset", choices=tuple(PRESETS), default=None,
                     help="start from a named set of defaults (agents.training.PRESETS); options given with it win "
                          "(default: none)")
    run.add_argument("--max-iterations-this-call", type=int, default=0, metavar="N",
                     help="stop after N iterations in this call, resumable (default: 0 = run to the end)")
    run.add_argument("--debug", action="store_true", help="show an error's traceback instead of its one line "
                                                          "(default: off)")
    add_config_arguments(p, TrainConfig)  # grouped by step: agents.training.config.GROUPS
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the run-directory options against each other."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and (args.out or args.overwrite or args.preset):
        parser.error("--resume continues a run in its own directory with its own settings: drop --out / --overwrite / --preset")
    if args.max_iterations_this_call < 0:
        parser.error("--max-iterations-this-call must be >= 0")
    args.out = args.out or "runs/ppo_adversarial"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) one training job; returns metrics.json's content (or the iteration reached)."""
    args = parse(argv)
    command = command_line(argv)
    if launched_by_torchrun():  # the launch line, for provenance
        command = command.replace("python ", f"torchrun --nproc-per-node {os.environ['WORLD_SIZE']} ", 1)
    config, given = config_from_args(TrainConfig, args)
    if launched_by_torchrun():  # one of torchrun's ranks: join the process group (NCCL on cuda:LOCAL_RANK, or gloo)
        init_from_env(config.device)
    main_rank = Ranks.current().main
    if args.preset:
        config = TrainConfig(**{**PRESETS[args.preset], **{k: getattr(config, k) for k in given}})
    if args.resume:
        trainer = Trainer.resume(args.resume, command=command, **{k: getattr(config, k) for k in given})
    else:
        trainer = Trainer(config, args.out, overwrite=args.overwrite, command=command)
    trainer.fit(max_iterations=args.max_iterations_this_call or None)
    if trainer.iteration < trainer.config.iterations:
        if main_rank:
            print(f"stopped after iteration {trainer.iteration} of {trainer.config.iterations}; "
                  f"continue with: {script()} --resume {trainer.out}")
        return {"iteration": trainer.iteration}
    metrics = trainer.evaluate()
    if main_rank:
        print(json.dumps({k: metrics[k] for k in ("fid", "kid", "fid_judge", "worst_class_vs_heuristic", "wall_time_s",
                                                  "fid_reduction_vs_cosine", "fid_reduction_vs_heuristic")
                          if k in metrics}, indent=2))
    return metrics


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cli(argv: list[str] | None = None) -> int:
    """:func:`main` for a terminal: errors and Ctrl-C as one line (with the resume command where one exists;
    under torchrun the line names the rank, and torchrun then stops the other ranks); ``--debug`` keeps the
    traceback."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)  # usage errors exit 2 here, with argparse's one-line message
    run_dir = Path(args.resume or args.out)
    run_dir = run_dir.parent if run_dir.suffix == ".pt" else run_dir

    def resume_hint() -> str:
        return f"; resume with: {script()} --resume {run_dir}" if (run_dir / "checkpoint.pt").is_file() else ""

    where = f" (rank {os.environ['RANK']})" if launched_by_torchrun() else ""
    if where:  # torchrun stops the other ranks with SIGTERM when one fails or on Ctrl-C: end as an interrupt
        signal.signal(signal.SIGTERM, _interrupt)

    try:
        main(argv)
    except KeyboardInterrupt:
        if args.debug:
            raise
        if where and os.environ["RANK"] != "0":
            return 130  # rank 0 says it
        print(f"\ninterrupted{where}{resume_hint()}", file=sys.stderr)
        return 130
    except ANTICIPATED as e:
        if args.debug:
            raise
        if where and isinstance(e, InputError) and os.environ["RANK"] != "0":
            return 1  # a bad input is refused alike on every rank: rank 0 says it
        message = " ".join(str(e).split())
        print(f"error{where}: {message}{resume_hint() if '--resume' not in message else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # log lines appear as they happen, also when redirected
    exit_process(cli())
