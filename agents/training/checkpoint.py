"""A run directory and its checkpoint: claimed once, written atomically, read safely (``weights_only``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from adanat_env.checkpoint import read_checkpoint
from adanat_env.inputs import InputError

__all__ = ["CHECKPOINT_FORMAT", "RUN_FILES", "RunDirectoryError", "claim_run_directory", "load_checkpoint", "save_atomic"]

#: Version 3 holds the reward's state under one key, ``reward``; version 2 (adanat-gym 0.1.0) is read too.
CHECKPOINT_FORMAT = "adanat-train/3"
_READABLE = ("adanat-train/2", CHECKPOINT_FORMAT)

#: Files a run writes into its directory (what ``overwrite=True`` removes).
RUN_FILES = ("checkpoint.pt", "checkpoint.tmp", "config.json", "history.json", "metrics.json", "training_curve.png",
             "grid_cosine.png", "grid_heuristic.png", "grid_learned.png")


class RunDirectoryError(FileExistsError):
    """A new run was asked to write into a directory that holds another run."""


def claim_run_directory(out: Path, overwrite: bool) -> bool:
    """Make ``out`` this run's: refuse another run's files unless ``overwrite`` (which removes them). A run that
    stopped before its first checkpoint (``config.json`` and perhaps ``history.json``, nothing to resume) is
    replaced: a retry of the same command works.

    :return: whether such a failed start was replaced.
    :raises RunDirectoryError: ``out`` holds another run.
    """
    present = [f for f in RUN_FILES if (out / f).exists()]
    failed_start = bool(present) and set(present) <= {"config.json", "history.json", "checkpoint.tmp"}
    if present and not overwrite and not failed_start:
        raise RunDirectoryError(
            f"'{out}' already holds a run ({', '.join(present)}); continue it with --resume {out}, "
            "pick another --out, or pass --overwrite to replace it")
    for f in present:
        (out / f).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return failed_start and not overwrite


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint (a file or a run directory holding ``checkpoint.pt``), read with ``weights_only``,
    in today's format (a 0.1.0 checkpoint's reward state is moved under ``reward``).

    :raises FileNotFoundError: no checkpoint there.
    :raises InputError: not a checkpoint of this trainer.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at '{p}' (a run directory holds 'checkpoint.pt' from its first "
                                "finished iteration on; a run that stopped before it starts again with the same "
                                "command, without --resume)")
    state = read_checkpoint(p, what="training checkpoint")
    if not isinstance(state, dict) or state.get("format") not in _READABLE:
        raise InputError(f"'{p}' is not a checkpoint of agents.training (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("config", "model", "iteration", "history") if k not in state]
    if missing:
        raise InputError(f"'{p}' is a damaged training checkpoint (no {', '.join(missing)}); start a new run")
    if state["format"] == "adanat-train/2":
        state = dict(state, format=CHECKPOINT_FORMAT)
        if "reward_model" in state:
            state["reward"] = state.pop("reward_model")
        state["rollouts"] = int(state.pop("disc_callback", state["std_callback"])["rollouts"])
    return state


def save_atomic(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write never leaves a broken checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
