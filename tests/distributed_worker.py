"""One rank of the two-process (gloo) job of tests/test_distributed.py: run in a spawned process."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from adanat_env.distributed import Ranks, exit_process, init_from_env
from adanat_env.evaluation.metrics import feature_extractor, load_reference
from adanat_env.evaluation.sampling import evaluate_policy
from adanat_env.models.classifier import load_classifier
from adanat_env.schedules import heuristic_schedule
from agents.training import TrainConfig, Trainer

#: A tiny run whose global sizes split over 2 ranks (per rank: 4 envs, 8 episodes, minibatches of 8 and 4).
TINY = TrainConfig(steps=2, batch_size=8, episodes=16, minibatch=16, epochs=1, d_epochs=1, d_batch_size=8,
                   d_updates=2, d_minibatch=8, d_warmup=1, d_real_count=500, val_count=200, curve_every=1,
                   curve_samples=40, eval_samples=24, amp="none", device="cpu", seed=3, iterations=2)
#: The evaluation both ranks share out, and the single process repeats: 2 batches of 100.
EVAL = dict(num_samples=200, batch_size=100, seed=5)


def digest(trainer: Trainer) -> str:
    """A hash of every weight and optimizer state that training changes (policy, value, discriminator)."""
    h = hashlib.sha256()
    states = [trainer.model.policy.state_dict(), trainer.discriminator.reward.discriminator.state_dict()]
    for opt in (trainer.model.policy.optimizer, trainer.discriminator.reward.optimizer):
        states += list(opt.state_dict()["state"].values())
    for state in states:
        for k in sorted(state):
            v = state[k]
            if isinstance(v, torch.Tensor):
                h.update(k.encode() if isinstance(k, str) else bytes(str(k), "utf8"))
                h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def evaluation(generator, ranks: Ranks | None) -> dict:
    fn = feature_extractor("classifier")
    metrics, _ = evaluate_policy(generator, heuristic_schedule(2), 2, fn, load_reference(), classifier=load_classifier(),
                                 ranks=ranks, **EVAL)
    return {k: v for k, v in metrics.items() if not k.endswith("_s")}  # timings differ


def run(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), ADANAT_DIST_TIMEOUT_S="60")
    init_from_env("cpu")
    tmp_path, quiet, out = Path(tmp), (lambda _: None), {"threads": torch.get_num_threads()}
    try:  # an uneven split: refused before any work, on every rank
        Trainer(replace(TINY, batch_size=9, episodes=18), tmp_path / "uneven", log=quiet)
    except ValueError as e:
        out["uneven"] = str(e)
    full = Trainer(TINY, tmp_path / "full", log=quiet)
    full.fit(progress=False)
    out["digest"] = digest(full)
    cut = Trainer(TINY, tmp_path / "cut", log=quiet)
    cut.fit(max_iterations=1, progress=False)
    resumed = Trainer.resume(tmp_path / "cut", log=quiet)
    resumed.fit(progress=False)
    out["resumed_digest"] = digest(resumed)
    out["eval"] = evaluation(full.generator, Ranks.current())
    # one rank fails: the other, waiting in a collective, must stop with an error, not hang
    if rank == 1:
        (tmp_path / f"result_{rank}.json").write_text(json.dumps(out))
        exit_process(1)  # as ppo_adversarial.py ends a rank whose run raised
    t0 = time.perf_counter()
    try:
        Trainer.resume(tmp_path / "full", iterations=3, log=quiet).fit(progress=False)
        out["after_failure"] = "no error"
    except Exception as e:  # noqa: BLE001  (what the surviving rank saw)
        out["after_failure"] = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
    out["after_failure_s"] = time.perf_counter() - t0
    (tmp_path / f"result_{rank}.json").write_text(json.dumps(out))
    exit_process(1)
