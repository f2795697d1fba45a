"""What a run reports: the per-iteration diagnostics of a rollout, the validation FID that selects the reported
policy, the final evaluation on the test split, ``metrics.json`` and ``training_curve.png``."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from adanat_env.data_core import DataError
from adanat_env.distributed import Ranks
from adanat_env.embedded import ASSET_DIR
from adanat_env.evaluation.clip_score import load_clip_scorer
from adanat_env.evaluation.metrics import (ReferenceStats, extract_features, feature_stats, frechet_distance,
                                           load_fid_stats, load_reference, save_reference)
from adanat_env.evaluation.sampling import evaluate_policy, sample_images
from adanat_env.plotting import Panel, Series, line_panels
from adanat_env.policy import Policy
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule
from adanat_env.utils import save_grid

from .builders import metric_features, open_split, real_features, run_classifier, train_split

if TYPE_CHECKING:
    from .config import TrainConfig  # type-only: annotations

__all__ = ["Validation", "rollout_diagnostics", "mean_over_ranks", "tensorboard_writer", "heldout_reals",
           "heldout_real_accuracy", "reference_of_test_split", "SplitSpace", "judged_summary",
           "evaluate_on_test", "plot_training_curve", "STEP_PARAM_NAMES"]

#: Names of the step parameters in ``step_params`` (the order of :class:`~adanat_env.decoding.StepParams`).
STEP_PARAM_NAMES = ("mask ratio m", "sampling temperature tau1", "re-masking temperature tau2", "guidance w")


def captions_of(ds: Any, indices: np.ndarray | None, generator: Any) -> torch.Tensor | None:
    """A captioned data set's (prompts tied to images) captions of the images ``indices`` of ``ds`` (default
    all), one per image: the prompts an evaluation against those images draws; ``None`` for every other
    generator (class-balanced over all conditions)."""
    if getattr(generator, "prompt_images", None) is None:
        return None
    labels = np.asarray(ds.labels)
    return torch.as_tensor(labels if indices is None else labels[indices])


class Validation:
    """Validation FID against held-out TRAIN images (never the test split), on ``curve_samples`` samples drawn
    with one fixed sampler seed, so every iterate and the baselines are compared on the same labels and noise.

    :param config: the run's options. :param generator: the frozen generator. :param device: the metric's device.
    :param ranks: several ranks share out the sample batches; their features are gathered (the same FID).
    """

    def __init__(self, config: TrainConfig, generator: Any, device: torch.device,
                 log: Callable[[str], None] = print, ranks: Ranks | None = None) -> None:
        self.config, self.generator, self.ranks = config, generator, ranks or Ranks()
        self.fn = metric_features(config, device)
        ds, _, val_idx = train_split(config, generator)
        #: a captioned data set: the held-out images' captions are the validation prompts
        self.conditions = captions_of(ds, val_idx, generator)
        feats = real_features(self.fn, ds, val_idx, generator, device)
        self.ref = ReferenceStats(feature_stats(feats), feats.astype(np.float32), config.metric)
        #: the validation FIDs of the MaskGIT cosine and the official heuristic schedules
        self.baselines = {name: self.fid(sched)[0] for name, sched in (
            ("cosine", maskgit_cosine_schedule(config.steps)), ("heuristic", heuristic_schedule(config.steps)))}
        log(f"validation FID ({config.curve_samples} samples vs {len(val_idx)} held-out train images) of the "
            "baselines: " + ", ".join(f"{k} {v:.2f}" for k, v in self.baselines.items()))

    def fid(self, policy: Policy) -> tuple[float, torch.Tensor, float]:
        """(validation FID of ``policy``, its first 100 samples (rank 0's), their mean NFE); the same on every rank."""
        nfe: list[torch.Tensor] = []
        ranks = self.ranks
        images, _ = sample_images(self.generator, policy, self.config.steps, self.config.curve_samples,
                                  seed=self.config.seed + 999, nfe=nfe, conditions=self.conditions, ranks=ranks)
        feats = torch.from_numpy(extract_features(self.fn, images)) if len(images) else torch.empty(0, 0, dtype=torch.float64)
        feats = ranks.gather(feats)
        nfe_mean = float(ranks.gather(torch.cat(nfe).float().cpu() if nfe else torch.empty(0)).mean())
        fid = frechet_distance(feature_stats(feats.numpy()), self.ref.stats) if ranks.main else None
        return ranks.broadcast(fid), images[:100], nfe_mean


# -------------------------------------------------------------------------------------------- per iteration
def _time_major(x: Any, buf: Any, flattened: bool) -> np.ndarray:
    """A rollout-buffer array as (n_steps, n_envs, ...) on the host.

    :param flattened: SB3's ``get()`` has flattened it env-major (observations and actions, once the update has
        sampled from the buffer: ``buf.generator_ready``); rewards and episode starts are never flattened.
    """
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if flattened:
        return x.reshape(buf.n_envs, buf.buffer_size, *x.shape[1:]).swapaxes(0, 1)
    return x.reshape(buf.buffer_size, buf.n_envs, *x.shape[2:])


def rollout_diagnostics(buf: Any, spec: Any, steps: int) -> dict[str, Any]:
    """What shows whether the reward is healthy, from the rollout buffer just used (nothing sampled, no RNG).

    Fixed T: every episode is exactly T steps and every rollout starts from a fresh batch, so row ``r`` of the
    buffer is step ``r % T``. Adaptive step counts: each transition's step is read from its observation, and an
    episode's last transition is the one before its slot's next episode start.

    :param buf: the algorithm's rollout buffer. :param spec: the env's :class:`~adanat_env.envs.DecodingSpec`.
    :return: ``reward_std`` (spread of the terminal rewards), ``step_params`` (T rows of the executed
        (m, tau_1, tau_2, w), averaged over the rollout), and with adaptive steps ``reward_mean`` per finished
        generation, ``nfe_mean`` (steps per finished generation) and ``step_stop_rate`` (per step, the share of
        sampled actions that stopped).
    """
    rewards = buf.rewards
    acts = _time_major(buf.actions, buf, buf.generator_ready)  # (n_steps, n_envs, dim)
    dim = acts.shape[-1]
    out: dict[str, Any] = {}
    if spec.adaptive:
        step = _time_major(buf.observations["step"], buf, buf.generator_ready).reshape(buf.buffer_size, buf.n_envs)
        starts = _time_major(buf.episode_starts, buf, False).astype(bool)
        last = np.zeros_like(starts)
        last[:-1] = starts[1:]  # the rollout's final row is not known to be terminal: left out
        terminal, nfe = rewards[last], step[last] + 1
        out["nfe_mean"] = float(nfe.mean()) if last.any() else math.nan
        out["reward_mean"] = float(terminal.mean()) if terminal.size else math.nan  # per finished generation
    else:
        terminal = rewards[steps - 1::steps].reshape(-1)
        step = np.broadcast_to((np.arange(buf.buffer_size) % steps)[:, None], acts.shape[:2])
    step_of_row, actions = step.reshape(-1), acts.reshape(-1, dim)
    params = [spec.step_params(torch.from_numpy(actions[step_of_row == t]), t).as_tensor().mean(0)
              for t in range(steps)]
    out.update({"reward_std": float(terminal.std()) if terminal.size else math.nan,
                "step_params": [[round(float(v), 5) for v in p] for p in params]})
    if spec.adaptive:  # how often the (sampled) stop action fired at each step of the rollout
        fired = spec.finish(torch.from_numpy(actions)).numpy()
        out["step_stop_rate"] = [round(float(fired[step_of_row == t].mean()), 4) if (step_of_row == t).any()
                                 else math.nan for t in range(steps)]
    return out


def mean_over_ranks(rec: dict[str, Any], ranks: Ranks) -> dict[str, Any]:
    """An iteration's record with the rollout's and the discriminator's figures averaged over the data-parallel
    ranks (each measured its own share, ``step_params`` and ``step_stop_rate`` included); times and counters stay
    this rank's."""
    keep = {"iteration", "generations", "action_std", "peak_memory_gib"}
    flat = {k: float(v) for k, v in rec.items()
            if isinstance(v, (int, float)) and k not in keep and not k.startswith("time_")}
    for name in ("step_params", "step_stop_rate"):
        for t, row in enumerate(rec.get(name, [])):
            for j, v in enumerate(row if isinstance(row, list) else [row]):
                flat[f"{name}/{t}/{j}"] = float(v)
    mean = ranks.mean(flat)
    out = {**rec, **{k: v for k, v in mean.items() if "/" not in k}}
    for name in ("step_params", "step_stop_rate"):
        if name in rec:
            out[name] = [[round(mean[f"{name}/{t}/{j}"], 5) for j in range(len(row))] if isinstance(row, list)
                         else round(mean[f"{name}/{t}/0"], 4) for t, row in enumerate(rec[name])]
    return out


def heldout_reals(config: TrainConfig, generator: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The first validation images (never shown to the discriminator) as float images in [0, 1] and labels on
    ``device``: as many as an iteration's generations, whose held-out fake accuracy they mirror, and at most a
    validation FID's samples and 512."""
    ds, _, val_idx = train_split(config, generator)
    count = min(512, config.curve_samples, config.episodes)
    x, y = ds.load(val_idx[:count], generator.image_shape[-1], generator.image_shape[0])
    return x.to(device).float().div_(255.0), y.long().to(device)


def heldout_real_accuracy(reward: Any, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The discriminator's accuracy on real images it never trained on (validation images)."""
    r = torch.cat([reward.probability(x, y) for x, y in zip(images.split(256), labels.split(256))])
    return float((r > 0.5).float().mean())


# -------------------------------------------------------------------------------------------- test split
def reference_of_test_split(config: TrainConfig, fn: Callable[[torch.Tensor], torch.Tensor], generator: Any,
                            out: Path, device: torch.device) -> ReferenceStats:
    """The real test split's features in ``config.metric``'s space: ``--fid-stats`` when given (mu / sigma only:
    FID, no KID or precision / recall), shipped for the embedded default, otherwise computed once from the test
    split and cached as ``out/ref_test_<metric>.npz``. The shipped classifiers (the metric's and the judge's) ship
    their reference of the embedded Fashion-MNIST test split."""
    if config.fid_stats:
        return load_fid_stats(config.fid_stats, config.metric)
    if config.metric == "classifier" and not config.data_dir:
        directory = Path(config.classifier_dir or ASSET_DIR).expanduser().resolve()
        if directory in (ASSET_DIR.resolve(), (ASSET_DIR / "judge").resolve()):
            return load_reference(directory / "fid_ref_test_classifier.npz")
    path = Path(out) / f"ref_test_{config.metric}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        test = open_split(config, "test", generator)
        save_reference(path, real_features(fn, test, None, generator, device), config.metric)
    return load_reference(path)


class SplitSpace:
    """One feature space's test reference, with per-class features when the split's labels are at hand.

    Attributes: ``fn`` (images in [0, 1] -> features), ``ref`` (the reference statistics), ``features`` and
    ``labels`` (every test image's features and label), cached under ``out`` (a run directory, or
    :func:`agents.paired.split_cache_folder`) unless a shipped reference holds them."""

    def __init__(self, config: Any, metric: str, generator: Any, out: Path, device: torch.device) -> None:
        kind, _, directory = metric.partition(":")
        if kind == "classifier" and directory:  # another classifier of the same data: its own cache folder
            cfg = replace(config, metric="classifier", classifier_dir=directory, fid_stats="")
            tag = hashlib.blake2b(str(Path(directory).resolve()).encode(), digest_size=6).hexdigest()
            out = out / f"classifier_{tag}"  # made when something is cached there (a shipped reference needs none)
            metric = "classifier"
        else:  # --fid-stats are the metric's: another space's reference comes from the test split
            cfg = replace(config, metric=metric, fid_stats=config.fid_stats if metric == config.metric else "")
        self.fn = metric_features(cfg, device)
        self.ref: ReferenceStats = reference_of_test_split(cfg, self.fn, generator, out, device)
        cache = out / f"ref_test_{metric}_labels.npz"
        if not cache.is_file():
            test = open_split(cfg, "test", generator)
            if self.ref.features is not None and len(self.ref.features) == len(test.labels):
                # the reference holds every test image's features in the split's order: only the labels are new
                self.features, self.labels = self.ref.features, np.asarray(test.labels)
                return
            channels, side = generator.image_shape[0], generator.image_shape[-1]
            feats, labels = [], []
            for x, y in test.batches(None, side, channels):  # labels from the batches: unreadable files drop out
                feats.append(extract_features(self.fn, x.to(device).float().div_(255.0)))
                labels.append(np.asarray(y))
            tmp = cache.with_suffix(".tmp.npz")  # written whole, then renamed: a parallel reader never sees half
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(tmp, features=np.concatenate(feats).astype(np.float32), labels=np.concatenate(labels))
            tmp.replace(cache)
        with np.load(cache, allow_pickle=False) as z:
            self.features, self.labels = z["features"], z["labels"]


def evaluate_on_test(config: TrainConfig, generator: Any, policies: dict[str, Policy], out: str | os.PathLike[str],
                     device: torch.device, num_samples: int | None = None, progress: bool = True,
                     ranks: Ranks | None = None) -> dict[str, dict]:
    """The final evaluation of every policy on the test split (FID / KID / precision / recall / coverage, and
    class accuracy where the data set has a classifier, the CLIP score with ``--clip-dir``), all on the same class-balanced labels and sampler seed
    (``config.seed + 12345``); writes ``grid_<name>.png`` (the first 100 samples: one column per class) into ``out``.

    A class-conditional generator's evaluation also reports each class's FID and recall (``per_class_fid``,
    ``per_class_recall``), and with a judge (:meth:`TrainConfig.judge_space`, the shipped judge classifier for the
    embedded default) FID in the judge's feature space, overall and per class (``fid_judge``,
    ``per_class_fid_judge``): a second opinion that neither the reward nor the selection of the iterate reads.

    :param policies: name -> generation policy (schedules or learned policies).
    :param num_samples: samples per policy (default ``config.eval_samples``).
    :param ranks: several ranks share out the samples (:func:`~adanat_env.evaluation.sampling.evaluate_policy`);
        rank 0 reads or computes the test reference and writes the grids; every rank returns the results.
    """
    ranks = ranks or Ranks()
    out = Path(out)
    n = config.eval_samples if num_samples is None else int(num_samples)
    fn = metric_features(config, device)
    ref = reference_of_test_split(config, fn, generator, out, device) if ranks.main else None
    clf = run_classifier(config, device)
    scorers = {}
    if config.clip_dir:  # a text generator's samples against their prompts
        clip, texts = load_clip_scorer(config.clip_dir, device), generator.prompt_texts
        scorers["clip_score"] = lambda images, labels: clip(images, [texts[int(i)] for i in labels])
    conditions = None  # a captioned data set: the test images' captions (FID-30K draws validation captions)
    if getattr(generator, "prompt_images", None) is not None:
        try:
            conditions = captions_of(open_split(config, "test", generator), None, generator)
        except (DataError, ValueError):
            if not config.fid_stats:
                raise
            # --fid-stats without a test split on disk: the prompts come from the whole file
    by_class = getattr(generator, "prompts", None) is None and ref is not None and ref.features is not None
    ref_labels = SplitSpace(config, config.metric, generator, out, device).labels if by_class else None
    judges = {}
    if config.judge_space():  # rank 0 holds the judge's test reference; every rank extracts its features
        judges["judge"] = (SplitSpace(config, config.judge_space(), generator, out, device) if ranks.main
                           else _FeaturesOnly(metric_features(replace(config, **_judge_metric(config)), device)))
    results = {}
    for name, pol in policies.items():
        results[name], first = evaluate_policy(generator, pol, config.steps, fn, ref, num_samples=n,
                                               seed=config.seed + 12345, classifier=clf, progress=progress,
                                               scorers=scorers, conditions=conditions, ranks=ranks,
                                               reference_labels=ref_labels, judges=judges)
        if ranks.main:
            save_grid(first[:100], out / f"grid_{name}.png", nrow=10, scale=3)
    return results


def judged_summary(results: dict[str, dict]) -> dict[str, Any]:
    """What ``metrics.json`` shows beside FID: the judge's FID of every schedule (``fid_judge``) and, against the
    heuristic, the learned policy's worst class in each space (``worst_class_vs_heuristic``: the largest relative
    increase of a class's FID; positive = worse)."""
    out: dict[str, Any] = {}
    if all("fid_judge" in r for r in results.values()):
        out["fid_judge"] = {k: r["fid_judge"] for k, r in results.items()}
    if "learned" in results and "heuristic" in results:
        worst = {}
        for key, space in (("per_class_fid", "metric"), ("per_class_fid_judge", "judge")):
            a, b = results["learned"].get(key), results["heuristic"].get(key)
            ratios = [x / y - 1 for x, y in zip(a or (), b or ()) if y > 0 and math.isfinite(x / y)]
            if ratios:  # classes with too few samples have no FID (NaN)
                worst[space] = max(ratios)
        if worst:
            out["worst_class_vs_heuristic"] = worst
    return out


class _FeaturesOnly:
    """A judge on a rank other than 0: its feature function only (rank 0 computes the figures)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn, self.ref, self.features, self.labels = fn, None, None, None


def _judge_metric(config: TrainConfig) -> dict[str, str]:
    """The options that make ``config.judge_space()`` the metric (for its feature function)."""
    kind, _, directory = config.judge_space().partition(":")
    return {"metric": kind, "classifier_dir": directory} if directory else {"metric": kind}


def tensorboard_writer(out: Path | None) -> Any:
    """A TensorBoard writer into ``out/tb``, or ``None`` (no run directory, or no ``tensorboard`` package)."""
    if out is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package
    except ImportError:
        return None
    return SummaryWriter(str(out / "tb"))


def plot_training_curve(history: list[dict[str, Any]], baselines: dict[str, float], path: Path) -> None:
    """training_curve.png, what a user needs to see the reward is healthy: rollout reward mean and spread,
    discriminator accuracy (training batches, held-out fresh fakes, held-out reals), validation FID with the
    baselines', and the per-step mean of each executed step parameter over the iterations."""
    its = [h["iteration"] for h in history]

    def col(k: str) -> list[float]:
        return [h.get(k, math.nan) for h in history]

    fid = [(h["iteration"], h["fid_quick"]) for h in history if "fid_quick" in h]
    panels = [
        Panel("terminal reward (rollouts)", [Series("mean", its, col("reward_mean")), Series("std", its, col("reward_std"))]),
        Panel("discriminator accuracy", [Series("training", its, col("d_acc")),
                                         Series("held-out fakes", its, col("d_acc_heldout_fake")),
                                         Series("held-out reals", its, col("d_acc_heldout_real"))], ylim=(0.0, 1.0)),
        Panel("validation FID (mean action)", [Series("learned", *zip(*fid))] if fid else [], hlines=baselines),
    ]
    steps = max((len(h.get("step_params", [])) for h in history), default=0)
    for j, name in enumerate(STEP_PARAM_NAMES if steps else ()):
        panels.append(Panel(name, [Series(f"step {t}", its, [h["step_params"][t][j] if "step_params" in h else math.nan
                                                              for h in history]) for t in range(steps)]))
    line_panels(panels, path, columns=4)
