"""The training loop: AdaNAT's Algorithm 1 (PPO against a co-trained adversarial reward), or any registered SB3 /
sb3-contrib algorithm against any registered reward. Read it top to bottom.

One iteration is one policy update (:meth:`Trainer.train_iteration`). SB3 owns the rollout / update loop
(``learn()``); the trainer acts only at the two hooks SB3 offers around a rollout (:class:`_Algorithm1Hooks`):

========  ==========================================================  ==========================================
when      ``--d-fakes rollout`` (default)                              ``--d-fakes fresh`` (the official loop)
========  ==========================================================  ==========================================
once      discriminator warm-up: ``--d-warmup`` updates on fresh generations of the initial policy (:meth:`warm_up`)
1         exploration std from its schedule (:class:`~agents.callbacks.StdScheduleCallback`)
2         --                                                          discriminator step on ``--d-epochs`` fresh
                                                                      batches of the policy (not before the
                                                                      first rollout: no update yet)
3         rollout: ``--episodes`` generations of T steps; the current discriminator scores each final image
4         discriminator step on the rollout's own final images        --
5         policy update (PPO: ``--epochs`` epochs over the rollout) on the rewards of step 3
6         validation FID every ``--curve-every`` iterations (the curve; ``--select best`` keeps the best), checkpoint
========  ==========================================================  ==========================================

With ``rollout`` fakes the discriminator therefore scores the rollout with the weights it had before it saw
those images and then trains on them: it lags the policy by one update and generates nothing of its own. Steps
2 and 4 are :meth:`Trainer._before_rollout` and :meth:`Trainer._after_rollout`.

The env and every RNG are re-seeded from (seed, iteration) at the start of each iteration, and the checkpoint
written after it holds everything that changes (policy and optimizer, the reward's state with the discriminator
and its optimizer, the samplers' RNG states, the counters): a resumed run ends with the same weights as an
uninterrupted one.

Data-parallel (``torchrun``, docs/distributed.md): each rank of a process group runs this loop on its share of
the global sizes (:meth:`TrainConfig.per_rank`) with its own random streams; DDP (:mod:`agents.data_parallel`)
and one all-reduce per discriminator update keep the weights identical; validation and evaluation share out
their batches. Rank 0 alone logs and writes the run directory. Files in ``out``: ``checkpoint.pt``, ``config.json``, ``history.json`` and, from
:meth:`Trainer.evaluate`, ``metrics.json``, ``grid_{cosine,heuristic,learned}.png``, ``training_curve.png``;
TensorBoard logs in ``tb/`` when ``tensorboard`` is installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any
import os

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from adanat_env.distributed import COMM, Ranks
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule
from adanat_env.sb3 import to_sb3
from adanat_env.utils import make_grid, resolve_device, seed_everything
from adanat_env.wrappers import PooledObservation

from ..callbacks import CanvasStatsCallback, StdScheduleCallback
from ..data_parallel import data_parallel
from ..device_buffer import DeviceDictRolloutBuffer
from ..generation_policy import SB3GenerationPolicy
from ..policies import StdSchedule
from ..registry import ALGOS, DEVICE_BUFFER_ALGOS, make_algo
from ..sb3_internals import generations_done, restart_rollouts
from .builders import build_env, build_reward, train_split
from .checkpoint import CHECKPOINT_FORMAT, claim_on_ranks, load_on_ranks, policy_state_from, save_atomic
from .config import RESUMABLE, TrainConfig, saved_options
from .preflight import preflight
from .report import (Validation, evaluate_on_test, judged_summary, heldout_real_accuracy, heldout_reals, mean_over_ranks, plot_training_curve,
                     rollout_diagnostics, tensorboard_writer)

__all__ = ["Trainer", "iteration_seed"]


def iteration_seed(config: TrainConfig, iteration: int, ranks: Ranks | None = None) -> int:
    """The seed of iteration ``iteration`` (-1: the discriminator warm-up) on rank ``ranks.rank`` (default 0)."""
    return (ranks or Ranks()).rank_seed((config.seed * 1_000_003 + iteration * 7919) % 2**31)


class _Algorithm1Hooks(BaseCallback):
    """SB3's two hooks around every rollout, handed to the trainer's discriminator steps (steps 2 and 4). With
    ``timed`` (one rollout per iteration: not the off-policy algorithms, whose "rollout" is one env step) they also
    time the iteration's phases (``times``: rollout, discriminator, and from the rollout's end the update)."""

    def __init__(self, trainer: Trainer, timed: bool) -> None:
        super().__init__()
        self.trainer, self.timed = trainer, timed
        self.times: dict[str, float] = {}

    def _now(self) -> float:
        if not self.timed:
            return 0.0
        if self.trainer.device.type == "cuda":
            torch.cuda.synchronize(self.trainer.device)
        return time.perf_counter()

    def _on_rollout_start(self) -> None:
        t0 = self._now()
        self.trainer._before_rollout(self.logger)
        self.times["rollout_start"] = t1 = self._now()
        self.times["discriminator"] = t1 - t0

    def _on_rollout_end(self) -> None:
        t0 = self._now()
        self.trainer._after_rollout(self.logger)
        self.times["rollout"] = t0 - self.times["rollout_start"]
        self.times["update_start"] = t1 = self._now()
        self.times["discriminator"] += t1 - t0

    def _on_step(self) -> bool:
        return True


class Trainer:
    """One training run: the env with its reward, the discriminator (adversarial reward), the algorithm, the
    history.

    :param config: the run's options (validated here, and every input they name checked against the generator by
        :func:`~agents.training.preflight.preflight`, before any work and before anything is written to ``out``).
    :param out: the run directory (``None``: nothing is written, e.g. for benchmarks).
    :param overwrite: replace the files of another run in ``out`` (otherwise that is refused).
    :param command: the command line that started the run, recorded in ``config.json`` and ``metrics.json``.
    :param log: where progress lines go.
    :raises RunDirectoryError: ``out`` holds another run and neither ``overwrite`` nor :meth:`resume` was used.
    :raises adanat_env.inputs.InputError: a bad option, data set or file (one line naming it and the fix), e.g.
        global sizes that do not split evenly over the ranks of an initialised process group.
    """

    def __init__(self, config: TrainConfig, out: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                 command: str = "", log: Callable[[str], None] = print, _resuming: bool = False) -> None:
        config.validate()
        #: this process's rank among the data-parallel ranks (a world of one without a process group)
        self.ranks = Ranks.current()
        local = config.per_rank(self.ranks.world)  # what this rank runs: its share of the global sizes
        self.config, self.command = config, command
        self.log: Callable[[str], None] = log if self.ranks.main else (lambda message: None)
        self.out = Path(out) if out is not None else None
        if self.out is not None and not _resuming:
            claim_on_ranks(self.out, overwrite, self.ranks, self.log)
        seed_everything(config.seed)
        self.device = resolve_device(config.device)
        if self.ranks.distributed and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())  # torchrun's cuda:LOCAL_RANK
        self._t0, self._elapsed_before = time.perf_counter(), 0.0

        venv = build_env(local, self.device)
        with torch.random.fork_rng(devices=[]):  # the checks draw nothing from the run's random streams
            preflight(local, venv.unwrapped.generator, self.device)
        if self.out is not None and not _resuming and self.ranks.main:
            (self.out / "config.json").write_text(json.dumps({**asdict(config), "command": command}, indent=2))
        built = build_reward(local, venv, self.device)
        self.generator = built.env.unwrapped.generator
        #: the adversarial reward's wrapper (``None`` for other rewards): it scores final images and trains here
        self.discriminator = built.discriminator
        self._reward_state = built.state
        self.env = PooledObservation(built.env) if ALGOS[config.algo].pooled else built.env
        #: observations and the rollout buffer stay on the device (agents.device_buffer)
        self.device_rollouts = config.rollout_buffer == "device" or (
            config.rollout_buffer == "auto" and self.device.type == "cuda" and config.algo in DEVICE_BUFFER_ALGOS)
        self.sb3_env = to_sb3(self.env, device_observations=self.device_rollouts)
        self.n_steps = local.steps * local.episodes // local.batch_size
        extra: dict[str, Any] = {"rollout_buffer_class": DeviceDictRolloutBuffer} if self.device_rollouts else {}
        self.model: BaseAlgorithm = make_algo(
            config.algo, self.sb3_env, lr=config.lr, n_steps=self.n_steps, minibatch=local.minibatch,
            epochs=config.epochs, clip_range=config.clip_range, seed=config.seed, device=str(self.device),
            std=config.std_init, policy=config.policy, kl_coef=config.kl_coef, **extra)
        if config.hold_shared or config.hold_sample:  # before DDP, which reduces only the parameters that learn
            (self.model.policy.hold_shared if config.hold_shared else self.model.policy.hold_sample)()
        if self.ranks.distributed:  # gradients averaged over the ranks (PyTorch's DDP), rank 0's initial weights
            data_parallel(self.model.policy, self.device)
        std = StdSchedule(config.std_init, tuple(config.std_decay_at), config.std_rate, config.std_min)
        self.std_callback = StdScheduleCallback(std, last_std=config.stop_std or None)
        self._hooks = _Algorithm1Hooks(self, timed=ALGOS[config.algo].on_policy and not ALGOS[config.algo].pooled)
        self.callbacks: list[BaseCallback] = [self.std_callback, self._hooks, CanvasStatsCallback()]
        if config.init_from and not _resuming:  # a resumed run loads its own weights
            source = config.init_from.replace("{seed}", str(config.seed))
            new, which = policy_state_from(source, self.model.policy.state_dict())  # its reported iterate
            self.model.policy.load_state_dict(new)
            self.log(f"policy initialised from {source} (its {which})")

        self.iteration = 0
        self.rollouts = 0  # rollouts started, over all calls
        self.d_stats: dict[str, float] = {}  # the discriminator's last training statistics
        self.history: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self._validation: Validation | None = None
        self._heldout_reals: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------------------ the discriminator's steps
    def warm_up(self) -> dict[str, float]:
        """Before the first rollout: discriminator updates on fresh generations of the initial policy (sampled
        actions), so that the first rollout's rewards already mean something."""
        if self.discriminator is None or self.config.d_warmup <= 0:
            return {}
        seed_everything(iteration_seed(self.config, -1, self.ranks))
        stats = self.discriminator.co_train(self.generation_policy(deterministic=False), updates=self.config.d_warmup)
        self.log(f"discriminator warm-up ({self.config.d_warmup} updates): "
                 + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))
        return stats

    def _before_rollout(self, logger: Any) -> None:
        """Step 2, after the exploration std is set: with fresh fakes, the discriminator trains on fresh generations
        of the policy just updated (sampled actions, through the training env's decoding spec); with the
        rollout's fakes, it only forgets the images of the last rollout."""
        if self.discriminator is None:
            return
        if self.config.d_fakes == "rollout":
            self.discriminator.clear_rollout()
        elif self.rollouts > 0:  # the first rollout has no policy update before it
            policy = SB3GenerationPolicy.from_env(self.model, self.discriminator, deterministic=False)
            self._record(self.discriminator.co_train(policy), logger)
        self.rollouts += 1

    def _after_rollout(self, logger: Any) -> None:
        """Step 4, after the rollout's rewards and before the policy update: with the rollout's fakes, the
        discriminator trains on the final images it has just scored."""
        if self.discriminator is not None and self.config.d_fakes == "rollout":
            stats = self.discriminator.co_train_on_rollout()
            if stats:  # an off-policy algorithm's short rollout may end before any sample finished
                self._record(stats, logger)

    def _record(self, stats: dict[str, float], logger: Any) -> None:
        self.d_stats = stats
        for k, v in stats.items():
            logger.record(f"discriminator/{k}", v)

    # ------------------------------------------------------------------------------ one iteration
    def train_iteration(self) -> dict[str, Any]:
        """Steps 1-5 (SB3's ``learn()`` over one rollout and one policy update); returns the iteration's record."""
        cfg, it = self.config, self.iteration
        t_it = time.perf_counter()
        seed_everything(iteration_seed(cfg, it, self.ranks))
        self.sb3_env.seed(iteration_seed(cfg, it, self.ranks))
        restart_rollouts(self.model)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._hooks.times.clear()
        self.model.learn(total_timesteps=self.n_steps * self.sb3_env.num_envs, reset_num_timesteps=False,
                         callback=self.callbacks)
        rec: dict[str, Any] = {"iteration": it + 1, "time_s": round(time.perf_counter() - t_it, 2),
                               "generations": self.generations()}  # rollouts so far, over all ranks
        times = self._hooks.times
        if self._hooks.timed and "update_start" in times:  # where the iteration's time went (the communication is inside the phases)
            rec.update(time_rollout_s=round(times["rollout"], 3), time_discriminator_s=round(times["discriminator"], 3),
                       time_update_s=round(self._hooks._now() - times["update_start"], 3))
        buf = getattr(self.model, "rollout_buffer", None)
        if getattr(buf, "rewards", None) is not None:
            if not np.isfinite(buf.rewards).all():
                raise FloatingPointError("non-finite rewards in the rollout buffer; the last checkpoint is untouched")
            rec["reward_mean"] = float(buf.rewards.sum() / (buf.rewards.size / cfg.steps))
            rec.update(rollout_diagnostics(buf, self.generation_policy().spec, cfg.steps))
            if self.discriminator is not None:
                # the rollout's fakes were judged (logit < 0) when they were rewarded, before any training on them
                rec["d_acc_heldout_fake"] = self.discriminator.reward.pop_fake_accuracy()
                rec["d_acc_heldout_real"] = self._heldout_real_accuracy()
        else:  # off-policy algorithms keep no rollout buffer
            eps = self.model.ep_info_buffer
            rec["reward_mean"] = float(np.mean([e["r"] for e in eps])) if eps else math.nan
        if self.std_callback.current is not None:
            rec["action_std"] = self.std_callback.current
        if self.device.type == "cuda":  # rollout, update and discriminator training of this iteration
            rec["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2)
        rec.update(self.d_stats)
        if self.ranks.distributed:
            rec = mean_over_ranks(rec, self.ranks)
        if self.changes and self.changes[-1]["iteration"] == it:
            rec["config_changes"] = {k: v for k, v in self.changes[-1].items() if k != "iteration"}
        return rec

    def _heldout_real_accuracy(self) -> float:
        """The discriminator's accuracy on a fixed set of validation images it never saw (:func:`heldout_reals`)."""
        if self._heldout_reals is None:
            self._heldout_reals = heldout_reals(self.config, self.generator, self.device)
        return heldout_real_accuracy(self.discriminator.reward, *self._heldout_reals)

    # ------------------------------------------------------------------------------ the run
    def fit(self, max_iterations: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
        """Train up to ``config.iterations`` (or ``max_iterations`` more in this call), checkpointing after each.

        :raises FloatingPointError: non-finite rewards or weights (the last checkpoint stays intact and resumable).
        :raises rewards.adversarial.DiscriminatorDivergedError: the discriminator diverged (same).
        :return: the history of all iterations so far.
        """
        cfg = self.config
        writer = tensorboard_writer(self.out) if self.ranks.main else None
        try:
            if cfg.curve_every > 0:
                self.validation()
            if self.iteration == 0:
                self.warm_up()
            end = cfg.iterations if max_iterations is None else min(cfg.iterations, self.iteration + max_iterations)
            bar = tqdm(range(self.iteration, end), desc="AdaNAT training", initial=self.iteration,
                       total=cfg.iterations, disable=not (progress and self.ranks.main))
            for _ in bar:
                rec = self.train_iteration()
                done = rec["iteration"]
                if cfg.curve_every > 0 and (done % cfg.curve_every == 0 or done == cfg.iterations):
                    rec["fid_quick"], samples, nfe = self.validation().fid(self.generation_policy())
                    if cfg.adaptive_steps:
                        rec["nfe_quick"] = nfe
                    if not self.best or rec["fid_quick"] < self.best["fid_quick"]:
                        self.best = {"iteration": done, "fid_quick": rec["fid_quick"],
                                     "policy": {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}}
                    if writer is not None:
                        writer.add_image("samples/learned", make_grid(samples.clamp(0, 1), nrow=10), done)
                if self.ranks.distributed:
                    rec.update(COMM.pop())  # rank 0's communication in this iteration (its validation included)
                self._check_finite(done)
                self.iteration = done
                self.history.append(rec)
                if self.out is not None:
                    self.save()
                if writer is not None:
                    for k, v in rec.items():
                        if isinstance(v, (int, float)) and k != "iteration":
                            writer.add_scalar(f"train/{k}", v, done)
                bar.set_postfix({k: f"{rec[k]:.3f}" for k in ("reward_mean", "d_acc", "fid_quick") if k in rec})
            bar.close()
        except torch.OutOfMemoryError as e:
            where = f" The checkpoint of iteration {self.iteration} in '{self.out}' is intact." if self.out else ""
            raise RuntimeError(
                f"out of memory on {self.device} ({' '.join(str(e).split())[:200]}). Lower --batch-size (generations "
                f"in parallel, now {cfg.batch_size}) and/or --episodes (rollout buffer size, now {cfg.episodes}), "
                f"or use --obs-dtype float16.{where}") from e
        finally:
            if writer is not None:
                writer.close()
            if self.out is not None and self.ranks.main:
                (self.out / "history.json").write_text(json.dumps(self.history, indent=1))
        return self.history

    def _check_finite(self, done: int) -> None:
        ok = all(bool(torch.isfinite(p).all()) for p in self.model.policy.parameters())
        if ok and (self.discriminator is None or self.discriminator.reward.is_finite()):
            return
        cfg = self.config
        where = f" (the checkpoint of iteration {self.iteration} in '{self.out}' is intact)" if self.out else ""
        raise FloatingPointError(
            f"non-finite weights after iteration {done}; not saved{where}. Resume with a lower learning rate: "
            f"python experiments/ppo_adversarial.py --resume {self.out} --lr {cfg.lr / 3:.2g} --d-lr {cfg.d_lr / 3:.2g}")

    # ------------------------------------------------------------------------------ validation and the report
    def validation(self) -> Validation:
        """The validation reference and the baselines' validation FIDs, computed once."""
        if self._validation is None:
            self._validation = Validation(self.config, self.generator, self.device, log=self.log, ranks=self.ranks)
        return self._validation

    def generation_policy(self, deterministic: bool = True) -> SB3GenerationPolicy:
        """The current policy as a generation :class:`~adanat_env.policy.Policy` (mean action by default)."""
        return SB3GenerationPolicy.from_env(self.model, self.env, deterministic=deterministic)

    @contextlib.contextmanager
    def selected(self) -> Iterator[tuple[SB3GenerationPolicy, int]]:
        """Within the block, the policy is the one the run reports: the iterate with the lowest validation FID
        with ``select="best"``, otherwise the last. Yields (its mean-action generation policy, its iteration);
        the trained weights are restored on exit."""
        trained = {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}
        selected = self.iteration
        if self.config.select == "best" and self.best:
            self.model.policy.load_state_dict(self.best["policy"])
            selected = self.best["iteration"]
            self.log(f"selected the policy of iteration {selected} (validation FID {self.best['fid_quick']:.2f})")
        try:
            yield self.generation_policy(), selected
        finally:
            self.model.policy.load_state_dict(trained)

    def evaluate(self, num_samples: int | None = None) -> dict[str, Any]:
        """FID / KID / precision / recall / coverage (and class accuracy where there is a classifier) of the cosine
        and heuristic schedules and of the reported policy, on the test split; writes ``metrics.json``, the grids
        and ``training_curve.png`` into ``out``.

        :param num_samples: samples per schedule (default ``config.eval_samples``).
        """
        cfg, out = self.config, self._require_out()
        n = cfg.eval_samples if num_samples is None else int(num_samples)
        with self.selected() as (learned, selected):
            self.log(f"evaluating cosine, heuristic and learned on {n} samples each ...")
            policies = {"cosine": maskgit_cosine_schedule(cfg.steps), "heuristic": heuristic_schedule(cfg.steps),
                        "learned": learned}
            results = evaluate_on_test(cfg, self.generator, policies, out, self.device, n, ranks=self.ranks)
        baselines = self._validation.baselines if self._validation is not None else {}
        metrics = {
            "fid": {k: v["fid"] for k, v in results.items()},
            "kid": {k: v["kid_x1e3"] / 1e3 for k, v in results.items()},
            "details": results,
            "steps": cfg.steps, "seed": cfg.seed, "algo": cfg.algo, "policy": cfg.policy, "reward": cfg.reward,
            "iterations": cfg.iterations, "episodes_per_iteration": cfg.episodes, "eval_samples": n,
            "generations": self.generations(),
            "metric": cfg.metric, "judge": cfg.judge, **judged_summary(results), "wall_time_s": round(self.wall_time(), 1),
            "fid_reduction_vs_cosine": 1 - results["learned"]["fid"] / results["cosine"]["fid"],
            "fid_reduction_vs_heuristic": 1 - results["learned"]["fid"] / results["heuristic"]["fid"],
            "fid_quick_baselines": baselines, "selected_iteration": selected, "select": cfg.select,
            "stop_decision": learned.stop if cfg.adaptive_steps else None,
            "config_changes": self.changes, "device": str(self.device), "world_size": self.ranks.world,
            "torch": torch.__version__, "command": self.command,
        }
        if self.ranks.main:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
            plot_training_curve(self.history, baselines, out / "training_curve.png")
        return metrics

    # ------------------------------------------------------------------------------ checkpoint and resume
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors, numbers and strings only: loads with ``weights_only``). Over
        several ranks (a collective: every rank calls it) the weights are rank 0's, the same on every rank, and
        ``reward_ranks`` holds every rank's own part of the reward state (its random streams)."""
        state = {
            "format": CHECKPOINT_FORMAT, "world_size": self.ranks.world, "config": asdict(self.config),
            "iteration": self.iteration, "model": self.model.get_parameters(), "num_timesteps": self.model.num_timesteps,
            "std_callback": self.std_callback.state_dict(), "rollouts": self.rollouts, "history": self.history,
            "changes": self.changes, "best": self.best, "wall_time_s": self.wall_time(),
        }
        if self._reward_state is not None:  # the discriminator and its optimizer, or e.g. the FID reward's pool
            state["reward"] = self._reward_state.state_dict()
            if self.ranks.distributed:  # every rank's own part (its random streams), rank 0's included
                st = self._reward_state
                mine = st.rank_state_dict() if hasattr(st, "rank_state_dict") else state["reward"]
                state["reward_ranks"] = self.ranks.gather_objects(mine, phase="checkpoint")
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into a trainer built with the same configuration."""
        self.model.set_parameters(state["model"], exact_match=True, device=self.device)
        self.model.num_timesteps = int(state["num_timesteps"])
        self.std_callback.load_state_dict(state["std_callback"])
        if self._reward_state is not None and "reward" in state:
            self._reward_state.load_state_dict(state["reward"])
            own = state.get("reward_ranks")
            if own and self.ranks.rank:  # this rank's own random streams (or its whole reward state)
                st = self._reward_state
                (st.load_rank_state_dict if hasattr(st, "rank_state_dict") else st.load_state_dict)(own[self.ranks.rank])
        self.rollouts = int(state["rollouts"])
        self.iteration = int(state["iteration"])
        self.history = list(state["history"])
        self.changes = list(state.get("changes", []))
        self.best = dict(state.get("best", {}))
        self._elapsed_before = float(state["wall_time_s"])
        self._t0 = time.perf_counter()

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the checkpoint atomically (default: ``out/checkpoint.pt``); over several ranks every rank calls it
        and rank 0 writes."""
        target = Path(path) if path is not None else self._require_out() / "checkpoint.pt"
        state = self.state_dict()
        if self.ranks.main:
            save_atomic(target, state)
        return target

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, command: str = "", log: Callable[[str], None] = print,
               **changes: Any) -> Trainer:
        """Continue a run from its checkpoint (a run directory or ``checkpoint.pt``), exactly.

        :param path: the run directory or checkpoint file.
        :param changes: options of :data:`~agents.training.config.RESUMABLE` to change (e.g. ``iterations=48``,
            ``d_lr=5e-4`` after a diverged discriminator); they are recorded in the checkpoint and ``history.json``.
        :raises ValueError: a change of an option outside ``RESUMABLE``.
        """
        state = load_on_ranks(path, Ranks.current())
        saved = saved_options(state["config"])
        unknown = sorted(set(changes) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ValueError(f"unknown options {unknown}")
        changed = {k: v for k, v in changes.items() if saved.get(k) != (tuple(v) if isinstance(v, list) else v)}
        frozen = sorted(set(changed) - set(RESUMABLE))
        if frozen:
            raise ValueError(f"a resumed run keeps its configuration: {', '.join('--' + k.replace('_', '-') for k in frozen)} "
                             f"differ from the checkpoint's ({', '.join(f'{k}={saved[k]!r}' for k in frozen)}); only "
                             f"{', '.join(RESUMABLE)} may change. Start a new run (another --out) to change them.")
        p = Path(path)
        trainer = cls(TrainConfig(**{**saved, **changed}), p if p.is_dir() else p.parent, command=command, log=log,
                      _resuming=True)
        trainer.load_state_dict(state)
        if changed:
            trainer.changes.append({"iteration": trainer.iteration, **{k: [saved[k], v] for k, v in changed.items()}})
            trainer.log(f"resumed at iteration {trainer.iteration} with changed options: "
                + ", ".join(f"{k} {saved[k]} -> {v}" for k, v in changed.items()))
        else:
            trainer.log(f"resumed at iteration {trainer.iteration} ({path})")
        return trainer

    def generations(self) -> int:
        """Generations rolled out so far, over all ranks."""
        return generations_done(self.model, self.config.steps) * self.ranks.world

    def wall_time(self) -> float:
        """Seconds this run has taken, over all calls."""
        return self._elapsed_before + time.perf_counter() - self._t0

    def _require_out(self) -> Path:
        if self.out is None:
            raise ValueError("this trainer has no run directory (out=None)")
        return self.out
