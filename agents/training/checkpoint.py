"""A run directory and its checkpoint: claimed once, written atomically, read safely (``weights_only``); over
several data-parallel ranks, claimed and read by rank 0 for all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from adanat_env.checkpoint import read_checkpoint
from adanat_env.distributed import Ranks
from adanat_env.inputs import InputError

from .config import saved_options

__all__ = ["CHECKPOINT_FORMAT", "RUN_FILES", "RunDirectoryError", "claim_run_directory", "claim_on_ranks",
           "load_checkpoint", "load_on_ranks", "policy_state_from", "save_atomic"]

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


def _on_rank0(ranks: Ranks, work: Callable[[], Any]) -> Any:
    """``work()`` on rank 0, its result (or its exception, raised) on every rank."""
    result: Any = None
    if ranks.main:
        try:
            result = work()
        except Exception as e:  # noqa: BLE001  (raised on every rank below)
            result = e
    result = ranks.broadcast(result, phase="checkpoint")
    if isinstance(result, Exception):
        raise result
    return result


def claim_on_ranks(out: Path, overwrite: bool, ranks: Ranks, log: Callable[[str], None]) -> None:
    """:func:`claim_run_directory` by rank 0; every rank raises its refusal (before any work)."""
    if _on_rank0(ranks, lambda: claim_run_directory(out, overwrite)):
        log(f"'{out}' held a run that stopped before its first checkpoint: starting it again")


def load_on_ranks(path: str | os.PathLike[str], ranks: Ranks) -> dict[str, Any]:
    """:func:`load_checkpoint` by rank 0, handed to every rank (no shared file system needed).

    :raises InputError: the run was trained at another world size (naming the launch line to use).
    """
    state = _on_rank0(ranks, lambda: load_checkpoint(path))
    world = int(state.get("world_size", 1))
    if world != ranks.world:
        launch = (f"torchrun --nproc-per-node {world} experiments/ppo_adversarial.py" if world > 1
                  else "python experiments/ppo_adversarial.py")
        raise InputError(f"'{path}' was trained on {world} rank{'s' * (world > 1)} and this launch has {ranks.world}: "
                         "a run resumes only at its own world size (each rank's share of the episodes and its random "
                         f"streams are part of the run); resume with {launch} --resume {path}")
    return state


#: buffers a policy measures on its own rollouts (the confidence policy's standardisation): a source without them
#: (a step-only run starting a confidence policy) leaves this policy's
_MEASURED_BUFFERS = ("stat_mean", "stat_std", "next_mean", "next_std")
#: a class-step policy's class table: from a step-only source it starts at zero (every class at the source's schedule)
_CLASS_TABLE = "y_embedder.weight"


def policy_state_from(path: str | os.PathLike[str], dst: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Another run's reported policy (``--init-from``: its selected iterate with ``--select best``, else its last)
    as a state dict for a policy whose state dict is ``dst``; returns it and which iterate it is. The exploration
    std stays ``dst``'s; a fixed-T run's action head may start a stop-action policy's, whose stop row keeps ``dst``'s;
    a step-only run's may start a confidence policy's, whose per-sample columns keep ``dst``'s (zero) start, or a
    class-step policy's, whose class table starts at zero (every class begins at the source's schedule).

    :raises FileNotFoundError: no checkpoint there.
    :raises ValueError: another architecture (a weight missing, extra or of another shape).
    """
    state = load_checkpoint(path)
    src_cfg = saved_options(state["config"])
    best = state.get("best") or {}
    use_best = src_cfg.get("select", "best") == "best" and "policy" in best
    src = best["policy"] if use_best else state["model"]["policy"]
    own = {k for k in set(dst) - set(src) if k.rsplit(".", 1)[-1] in _MEASURED_BUFFERS}  # a step-only source
    table = {k for k in set(dst) - set(src) if k.endswith(_CLASS_TABLE)}  # a step-only source of a class-step policy
    if set(src) - set(dst) or set(dst) - set(src) - own - table:
        raise ValueError(f"--init-from {path}: its policy has other weights ({sorted(set(src) ^ set(dst))[:4]}); "
                         f"it needs the same --algo, --policy and generator, or a step-only run for --policy "
                         f"confidence or class-step (it has --algo {src_cfg.get('algo')}, --policy "
                         f"{src_cfg.get('policy')}, --env {src_cfg.get('env')})")
    new: dict[str, torch.Tensor] = {k: dst[k] for k in own} | {k: torch.zeros_like(dst[k]) for k in table}
    for k, v in src.items():
        v = v.to(dst[k].device, dst[k].dtype)
        if k == "log_std":  # the exploration std follows this run's schedule, not the source's
            new[k] = dst[k]
        elif v.shape == dst[k].shape:
            new[k] = v
        elif k.startswith("action_net.") and v.shape[1:] == dst[k].shape[1:] and v.shape[0] < dst[k].shape[0]:
            new[k] = dst[k].clone()
            new[k][: v.shape[0]] = v  # the step parameters; the stop row (a fixed-T source has none) stays
        elif (own and k.split(".")[0] in ("action_net", "value_net") and k.endswith("weight")
              and v.shape[0] == dst[k].shape[0] and v.shape[1] < dst[k].shape[1]):
            new[k] = dst[k].clone()
            new[k][:, : v.shape[1]] = v  # the shared schedule; the per-sample columns keep dst's (zero) start
        else:
            raise ValueError(f"--init-from {path}: weight {k} has shape {tuple(v.shape)}, this policy's "
                             f"{tuple(dst[k].shape)}; it needs the same generator, --steps and --policy")
    return new, f"selected iterate {best['iteration']}" if use_best else "last iterate"
