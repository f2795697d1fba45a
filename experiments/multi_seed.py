"""The multi-seed protocol as one command: every arm with every seed at the same budget, the test split only in
each run's final evaluation, and a table of mean ± std (and worst seed) in --out/summary.md.

    python experiments/multi_seed.py                                        # the default main job, seeds 0 1 2
    python experiments/multi_seed.py --arms adversarial "fid=--reward fid --kl-coef 0" "prm=--reward prm" \
        --out runs/rewards                                                  # the reward ablations, same budget
    python experiments/multi_seed.py --seeds 0 1 --iterations 8 --out runs/short   # any training option applies to all arms

An arm is NAME or NAME=FLAGS, FLAGS being training options that override the common ones for that arm. A stopped
protocol continues where it stopped (finished runs are read, interrupted ones resumed exactly).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from adanat_env.config import add_config_arguments, command_line, config_from_args, config_parser, run_script
from agents.protocol import run_protocol
from agents.training import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every arm (default: 0 1 2)")
    p.add_argument("--arms", nargs="+", default=["default"], metavar="NAME[=FLAGS]",
                   help="arms: a name, or name=training flags for that arm (default: one arm, 'default')")
    p.add_argument("--out", default="runs/multi_seed", help="protocol directory (default: runs/multi_seed)")
    add_config_arguments(p, TrainConfig)  # training options, common to every arm, grouped by step
    return p


def parse_arms(specs: list[str]) -> dict[str, dict[str, Any]]:
    """``["a", "b=--reward fid"]`` -> ``{"a": {}, "b": {"reward": "fid"}}``.

    :raises ValueError: a repeated name or a flag that is not a training option.
    """
    arm_parser = config_parser(TrainConfig, "arm flags")
    arms: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, _, flags = spec.partition("=")
        if not name or name in arms or "/" in name:
            raise ValueError(f"arm names must be unique, non-empty and without '/': {spec!r}")
        try:
            cfg, given = config_from_args(TrainConfig, arm_parser.parse_args(shlex.split(flags)))
        except SystemExit as e:  # argparse already printed why
            raise ValueError(f"bad flags in arm {spec!r}") from e
        arms[name] = {k: getattr(cfg, k) for k in given}
    return arms


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    base, _ = config_from_args(TrainConfig, args)
    summary = run_protocol(base, args.out, seeds=args.seeds, arms=parse_arms(args.arms), command=command_line(argv))
    print((Path(args.out) / "summary.md").read_text())
    return summary


if __name__ == "__main__":
    run_script(main, continue_hint="run the same command again to continue where it stopped")
