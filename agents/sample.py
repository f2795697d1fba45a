"""Sampling CLI for trained policies: a class-by-class grid with a trained policy or a budget family.

The agents-layer twin of :mod:`adanat_env.cli` (the environment package never imports the agents layer): the same
options, grid and one-line JSON summary, plus the two sources that need the agents layer to load.

Examples::

    # a trained policy (a run directory or its checkpoint.pt; its own generator and T)
    python -m agents.sample --policy runs/ppo_adversarial --out learned.png
    # a budget family: each class runs the learned fixed-T policy of its own step budget (agents.budget)
    python -m agents.sample --family docs/results/compute_family/family_seed0_lam4.json --out family.png

Without ``--policy`` / ``--family`` it samples hand-designed schedules exactly as ``python -m adanat_env.cli``.
One row per class, ``--per-class`` samples per row. Installed, the command is also ``adanat-policy-sample``.
Errors are one line on stderr: exit status 2 for bad options, 1 when loading or sampling fails, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adanat_env import cli

from .budget import load_family_file
from .export import load_generation_policy

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: :func:`adanat_env.cli.build_parser` with ``--policy`` and ``--family``."""
    prog = "adanat-policy-sample" if Path(sys.argv[0]).name == "adanat-policy-sample" else "python -m agents.sample"
    return cli.build_parser(prog=prog, description=__doc__, trained=True)


def _sample(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """Load the trained policy or budget family (or, without either, the schedule), sample the grid and write it.

    :param parser: the CLI's parser.
    :param args: the parsed, checked options.
    :return: a JSON-able summary of the run.
    """
    if args.policy is None and args.family is None:
        return cli.sample_schedule(parser, args)
    t0 = time.perf_counter()
    if args.policy is not None:
        gen, policy, config = load_generation_policy(args.policy, str(args.device))
        args.steps, what = config.steps, f"policy {args.policy}"
    else:
        gen, policy, args.steps = load_family_file(args.family, str(args.device))
        what = f"family {args.family}"
    return cli.sample_grid(parser, args, gen, policy, what, t0)


def main(argv: list[str] | None = None) -> int:
    """Run the sampling CLI with trained policies.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    :return: the exit status: 0, 1 (loading or sampling failed) or 130 (interrupted); bad options exit with 2.
    """
    return cli.run(build_parser(), argv, _sample)


if __name__ == "__main__":
    raise SystemExit(main())
