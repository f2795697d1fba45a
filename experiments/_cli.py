"""Shared command-line plumbing of the experiment scripts: a dataclass config becomes the flags."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import torch

from adanat_env.utils import resolve_device, seed_everything

T = TypeVar("T")


def parse_config(cls: type[T], argv: list[str] | None, description: str | None) -> T:
    """One ``--flag`` per dataclass field (``snake_case`` -> ``--kebab-case``), typed by the field's default.

    Tuple defaults take several values; ``None`` defaults take a string.
    """
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = cls()
    for f in fields(cls):
        default = getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(default, tuple):
            p.add_argument(flag, type=type(default[0]), nargs="+", default=list(default))
        else:
            p.add_argument(flag, default=default, type=None if default is None else type(default))
    args = vars(p.parse_args(argv))
    return cls(**{k: tuple(v) if isinstance(getattr(defaults, k), tuple) else v for k, v in args.items()})


def command_line(argv: list[str] | None) -> str:
    """The command that ran (for provenance JSON)."""
    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])


def start_run(cls: type[T], argv: list[str] | None, description: str | None) -> tuple[T, torch.device, Path, float]:
    """Parse the config, seed everything, resolve ``cfg.device``, create ``cfg.out``; returns (cfg, device, out, t0)."""
    cfg = parse_config(cls, argv, description)
    seed_everything(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    return cfg, resolve_device(cfg.device), out, time.perf_counter()
